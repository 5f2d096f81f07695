"""Run outputs a person looks at: the CSV log, a loss-curve PNG and sample grids (Pillow only)."""

from __future__ import annotations

import csv
import io
import math
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..checkpoint import atomic_write_bytes
from ..config import ModelSpec
from ..denoiser import Denoiser
from ..sampling import gaussian, sample_heun, sample_multistep, sample_onestep
from ..schedules import karras_sigmas, sigmas_from_ts
from ..tensors import to_uint8

COLUMNS = ("step", "phase", "loss", "lr", "N", "seconds", "imgs_per_s")


class CSVLog:
    """Append-only CSV of training progress; on resume, rows past the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        rows = self.read() if resume_step is not None and self.path.is_file() else []
        rows = [r for r in rows if int(r["step"]) <= (resume_step or 0)]
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, COLUMNS)
            w.writeheader()
            w.writerows(rows)

    def read(self) -> list[dict[str, str]]:
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))

    def append(self, **row: object) -> None:
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, COLUMNS).writerow({k: row.get(k, "") for k in COLUMNS})


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def _save_png(image: Image.Image, path: Path) -> None:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def plot_loss(rows: list[dict[str, str]], path: Path, width: int = 720, panel_height: int = 240) -> None:
    """One log-scale panel per phase (their losses live on different scales), raw points and a running mean."""
    phases: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        loss = float(r["loss"])
        if math.isfinite(loss) and loss > 0:
            phases.setdefault(r["phase"], []).append((int(r["step"]), loss))
    if not phases:
        return
    img = Image.new("RGB", (width, panel_height * len(phases)), "white")
    draw = ImageDraw.Draw(img)
    font = _font()
    left, right, top, bottom = 64, 12, 20, 24
    for p, (phase, pts) in enumerate(phases.items()):
        y0 = p * panel_height
        steps = [s for s, _ in pts]
        logs = [math.log10(v) for _, v in pts]
        s_lo, s_hi = min(steps), max(max(steps), min(steps) + 1)
        l_lo, l_hi = min(logs), max(max(logs), min(logs) + 1e-3)

        def xy(s: float, lv: float) -> tuple[float, float]:
            x = left + (s - s_lo) / (s_hi - s_lo) * (width - left - right)
            y = y0 + top + (l_hi - lv) / (l_hi - l_lo) * (panel_height - top - bottom)
            return x, y

        draw.rectangle([left, y0 + top, width - right, y0 + panel_height - bottom], outline=(160, 160, 160))
        for frac in (0.0, 0.5, 1.0):
            lv = l_lo + frac * (l_hi - l_lo)
            _, y = xy(s_lo, lv)
            draw.text((4, y - 6), f"{10 ** lv:.3g}", fill="black", font=font)
        for frac in (0.0, 0.5, 1.0):
            s = s_lo + frac * (s_hi - s_lo)
            x, _ = xy(s, l_lo)
            draw.text((x - 12, y0 + panel_height - bottom + 6), f"{int(s)}", fill="black", font=font)
        draw.text((left + 4, y0 + 4), f"{phase} loss (log scale) vs step", fill="black", font=font)
        for s, lv in zip(steps, logs):
            x, y = xy(s, lv)
            draw.point((x, y), fill=(150, 180, 230))
        # Running mean over ~5 % of the points shows the trend through the noise of single batches.
        k = max(1, len(logs) // 20)
        smooth = np.convolve(logs, np.ones(k) / k, mode="valid")
        line = [xy(s, lv) for s, lv in zip(steps[k - 1:], smooth)]
        if len(line) > 1:
            draw.line(line, fill=(200, 40, 40), width=2)
    _save_png(img, path)


def save_grid(rows: list[torch.Tensor], labels: list[str], path: Path, scale: int = 2) -> None:
    """Rows of (B, 3, H, W) images in [-1, 1] side by side, each row labelled on the left."""
    tiles = [to_uint8(r) for r in rows]
    n, h, w = tiles[0].shape[:3]
    label_w = 96
    img = Image.new("RGB", (label_w + n * w * scale, len(rows) * h * scale), "white")
    draw = ImageDraw.Draw(img)
    for i, (row, label) in enumerate(zip(tiles, labels)):
        strip = Image.fromarray(np.concatenate(list(row), axis=1)).resize((n * w * scale, h * scale), Image.Resampling.NEAREST)
        img.paste(strip, (label_w, i * h * scale))
        draw.text((4, i * h * scale + 4), label, fill="black", font=_font())
    _save_png(img, path)


@torch.no_grad()
def sample_rows(net: torch.nn.Module, spec: ModelSpec, n: int, *, seed: int, device: torch.device,
                dtype: torch.dtype) -> tuple[list[torch.Tensor], list[str]]:
    """Samples from fixed noise: one- and multi-step (the spec's ts) for a CM, 10 Heun steps for an EDM net.

    Everything runs on `device` (the net's); the noise is drawn on the CPU from a seeded generator
    and moved there, so a seed gives the same grid on every device. Returns CPU tensors.
    """
    d = spec.denoiser
    den = Denoiser(net, d)

    def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        # autocast only when it does something: it refuses device types it has no kernels for.
        amp = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()
        with amp:
            return den(x, sigma).float()

    g = torch.Generator().manual_seed(seed)
    R = spec.unet.image_size
    # The start noise lives on the device too: the samplers combine x with the denoiser's output
    # (x - denoised, x0 + noise), and tensors on two devices cannot be mixed (the CUDA crash at
    # the first sample grid).
    x = (torch.randn((n, 3, R, R), generator=g) * d.sigma_max).to(device)
    if d.kind == "edm":
        sig = karras_sigmas(10, d.sigma_min, d.sigma_max, d.rho) + [0.0]
        return [sample_heun(denoise, x, sig, noise=gaussian(g)).cpu()], ["Heun 19 NFE"]
    multi = sigmas_from_ts(spec.sampler.ts, spec.sampler.steps, d.sigma_min, d.sigma_max, d.rho)
    rows = [sample_onestep(denoise, x, d.sigma_max),
            sample_multistep(denoise, x, multi, noise=gaussian(g), sigma_min=d.sigma_min, sigma_max=d.sigma_max)]
    return [r.cpu() for r in rows], ["1 step", f"{len(multi) - 1} steps"]
