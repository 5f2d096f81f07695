"""High-level image tasks on a loaded model: the API used by the CLI and the desktop app.

Images cross this boundary as uint8 numpy arrays (H, W, 3); masks as (H, W) arrays where nonzero
means "fill this pixel". Every task takes a seed (same seed, same image) and an optional
`progress(done, total)` callback; raising any exception from it (e.g. `Cancelled`) stops the run
within one network evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_model
from .config import ModelSpec
from .denoiser import Denoiser
from .device import configure_threads, pick_device, pick_precision
from .operators import Colorize, Identity, Inpaint, Operator, SuperRes
from .restore import restore
from .sampling import StepInfo, gaussian, sample_euler, sample_heun, sample_multistep, sample_onestep
from .schedules import karras_sigmas, sigmas_from_ts
from .tensors import resize, resize_float, rgb_to_ycbcr, to_tensor, to_uint8, ycbcr_to_rgb
from .unet import UNet

Progress = Callable[[int, int], None]


class Cancelled(Exception):
    """Raised from a progress callback to stop a running task."""


class Model:
    """A denoiser on a device with its spec and sampling defaults, plus image-level tasks."""

    def __init__(self, spec: ModelSpec, state_dict: dict[str, torch.Tensor] | None = None, *, device: str = "auto",
                 precision: str = "auto", threads: int | None = None, source: str = "") -> None:
        self.spec = spec
        self.source = source
        self.device = pick_device(device)
        self.dtype = pick_precision(self.device, precision)
        if self.device.type == "cpu":
            configure_threads(threads)
        net = UNet(spec.unet)
        if state_dict is not None:
            net.load_state_dict(state_dict, strict=True)
        net.eval().requires_grad_(False)
        # channels_last lets oneDNN/cuDNN run the 3x3 convolutions without layout shuffles.
        net = net.to(self.device, self.dtype).to(memory_format=torch.channels_last)
        self.denoiser = Denoiser(net, spec.denoiser)
        self.class_label: int | None = 0 if spec.unet.num_classes else None

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, **kwargs: object) -> Model:
        spec, sd, _ = load_model(path)
        return cls(spec, sd, source=str(path), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def random(cls, spec: ModelSpec, seed: int = 0, scale: float = 0.05, **kwargs: object) -> Model:
        """Random non-zero weights (tests and benchmarks): a fresh ADM net would output exactly 0."""
        g = torch.Generator().manual_seed(seed)
        with torch.device("meta"):
            shapes = {k: v.shape for k, v in UNet(spec.unet).state_dict().items()}
        sd = {k: torch.randn(s, generator=g) * scale for k, s in shapes.items()}
        for k in sd:
            if k.endswith((".0.weight", "norm.weight")) and sd[k].ndim == 1:  # GroupNorm gains near 1
                sd[k] = 1 + sd[k]
        return cls(spec, sd, **kwargs)  # type: ignore[arg-type]

    @property
    def resolution(self) -> int:
        return self.spec.unet.image_size

    @property
    def kind(self) -> str:
        return self.spec.denoiser.kind

    # -- primitives -----------------------------------------------------------------------------

    def denoise(self, x: torch.Tensor, sigma: float, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """D(x, sigma) on the model's device; x is moved there and the fp32 result returned on it."""
        x = x.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
        if self.spec.unet.num_classes and class_labels is None:
            class_labels = torch.full((x.shape[0],), self.class_label or 0, device=self.device, dtype=torch.long)
        with torch.no_grad():
            return self.denoiser(x, sigma, class_labels)

    def sigmas(self, ts: Sequence[int] | None = None, steps: int | None = None) -> list[float]:
        """Noise levels visited for `ts` on an N=`steps` grid (defaults: the checkpoint's published ones)."""
        d = self.spec.denoiser
        steps = steps or self.spec.sampler.steps
        ts = tuple(ts) if ts is not None else self.spec.sampler.ts
        return sigmas_from_ts(ts, steps, d.sigma_min, d.sigma_max, d.rho)

    def sigmas_from(self, sigma_start: float, num_steps: int) -> list[float]:
        """`num_steps` evaluations from `sigma_start` down the Karras curve, plus the final sigma_min."""
        d = self.spec.denoiser
        sigma_start = min(max(sigma_start, d.sigma_min * 2), d.sigma_max)
        grid = karras_sigmas(num_steps + 1, d.sigma_min, sigma_start, d.rho)
        return grid

    def _callback(self, progress: Progress | None, offset: int = 0, total: int | None = None) -> Callable[[StepInfo], None] | None:
        if progress is None:
            return None
        return lambda info: progress(offset + info.i + 1, total if total is not None else info.total)

    def _generator(self, seed: int) -> torch.Generator:
        # Noise is drawn on the CPU so a seed gives the same image on every device.
        return torch.Generator().manual_seed(int(seed))

    # -- tasks ----------------------------------------------------------------------------------

    def generate(self, n: int = 1, *, seed: int = 0, ts: Sequence[int] | None = None, steps: int | None = None,
                 class_label: int | None = None, progress: Progress | None = None) -> np.ndarray:
        """Unconditional (or class-conditional) samples: (n, R, R, 3) uint8."""
        g = self._generator(seed)
        R, d = self.resolution, self.spec.denoiser
        x = torch.randn((n, 3, R, R), generator=g) * d.sigma_max
        labels = None
        if self.spec.unet.num_classes:
            lab = self.class_label if class_label is None else class_label
            labels = torch.full((n,), int(lab or 0), dtype=torch.long, device=self.device)

        def den(x_: torch.Tensor, s: float) -> torch.Tensor:
            return self.denoise(x_, s, labels)

        if self.kind == "edm":
            sig = karras_sigmas(steps or self.spec.sampler.edm_steps, d.sigma_min, d.sigma_max, d.rho) + [0.0]
            sampler = self.spec.sampler.edm_sampler
            if sampler == "euler":
                out = sample_euler(den, x.to(self.device), sig, callback=self._callback(progress))
            else:
                out = sample_heun(den, x.to(self.device), sig, noise=gaussian(g), callback=self._callback(progress))
        else:
            sig = self.sigmas(ts, steps)
            if len(sig) == 2 and sig[0] == d.sigma_max:
                out = sample_onestep(den, x.to(self.device), d.sigma_max, callback=self._callback(progress))
            else:
                out = sample_multistep(den, x.to(self.device), sig, noise=gaussian(g), sigma_min=d.sigma_min,
                                       sigma_max=d.sigma_max, callback=self._callback(progress))
        return to_uint8(out)

    def _restore(self, y: torch.Tensor, op: Operator, *, seed: int, x_start: torch.Tensor | None, sigmas: list[float],
                 progress: Progress | None, offset: int = 0, total: int | None = None) -> torch.Tensor:
        d = self.spec.denoiser
        g = self._generator(seed)
        return restore(self.denoise, y.to(self.device), op, sigmas, noise=gaussian(g),
                       x_start=None if x_start is None else x_start.to(self.device),
                       sigma_min=d.sigma_min, sigma_max=d.sigma_max, callback=self._callback(progress, offset, total))

    def _edit_sigmas(self, ts: Sequence[int] | None, sigma_start: float | None, num_steps: int) -> list[float]:
        if sigma_start is not None:
            return self.sigmas_from(sigma_start, num_steps)
        return self.sigmas(ts) if ts is not None else self.sigmas(tuple(range(0, self.spec.sampler.steps, 10)) + (self.spec.sampler.steps - 1,))

    def inpaint(self, image: np.ndarray, mask: np.ndarray, *, seed: int = 0, ts: Sequence[int] | None = None,
                sigma_start: float | None = None, num_steps: int = 4, progress: Progress | None = None) -> np.ndarray:
        """Fill the pixels where `mask` is nonzero; all other pixels come back bit-identical."""
        image, hole = _check_image(image), _check_mask(mask, image)
        H, W = hole.shape
        R = self.resolution
        small = resize(image, (R, R))
        known = 1.0 - np.asarray(resize((hole * 255).astype(np.uint8), (R, R), resample=0) > 0, np.float32)
        m = torch.from_numpy(known)[None, None]
        y = to_tensor(small)
        # Start from the mean colour of the known pixels so a low start sigma does not see a black hole.
        fill = (y * m).sum((2, 3), keepdim=True) / m.sum().clamp(min=1)
        x_start = y * m + fill * (1 - m)
        out = self._restore(y, Inpaint(m), seed=seed, x_start=x_start,
                            sigmas=self._edit_sigmas(ts, sigma_start, num_steps), progress=progress)
        filled = to_uint8(out)[0]
        if (H, W) != (R, R):
            filled = resize(filled, (W, H))
        result = image.copy()
        result[hole] = filled[hole]
        return result

    def colorize(self, image: np.ndarray, *, seed: int = 0, ts: Sequence[int] | None = None,
                 sigma_start: float | None = None, num_steps: int = 4, render_size: int | None = None,
                 progress: Progress | None = None) -> np.ndarray:
        """Colour a grey (or colour) photo: the model picks chroma at render size, the original luma is kept."""
        image = _check_image(image)
        H, W = image.shape[:2]
        R = render_size or self.resolution
        small = resize(image, (R, R))
        grey = torch.from_numpy(rgb_to_ycbcr(small)[..., 0] / 127.5 - 1)[None, None].float()
        y = Colorize.from_grey(grey)
        out = self._restore(y, Colorize(), seed=seed, x_start=None,
                            sigmas=self._edit_sigmas(ts, sigma_start, num_steps), progress=progress)
        colour = to_uint8(out)[0]
        chroma = resize_float(rgb_to_ycbcr(colour)[..., 1:], (W, H))
        luma = rgb_to_ycbcr(image)[..., :1]
        return np.clip(ycbcr_to_rgb(np.concatenate([luma, chroma], axis=-1)) + 0.5, 0, 255).astype(np.uint8)

    def upscale(self, image: np.ndarray, factor: int = 4, *, seed: int = 0, ts: Sequence[int] | None = None,
                sigma_start: float | None = 4.0, num_steps: int = 3, batch: int = 16, overlap: float = 0.25,
                progress: Progress | None = None) -> np.ndarray:
        """Super-resolve by `factor` with overlapping model-size tiles blended by raised-cosine weights.

        Each tile keeps its k x k block means equal to the input pixels (the SuperRes projection);
        the loop starts from a bicubic upscale noised to `sigma_start` (None = from sigma_max).
        """
        image = _check_image(image)
        k = int(factor)
        R = self.resolution
        if k < 1 or R % k:
            raise ValueError(f"factor must divide the model resolution {R}: choose from "
                             f"{', '.join(str(f) for f in (2, 4, 8) if R % f == 0)}")
        h, w = image.shape[:2]
        t = R // k  # tile side in input pixels
        step = max(1, t - max(1, round(t * overlap)))
        # Reflect-pad small images up to one tile so every tile is full size.
        ph, pw = max(0, t - h), max(0, t - w)
        src = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
        Hs, Ws = src.shape[:2]
        ys = _tile_starts(Hs, t, step)
        xs = _tile_starts(Ws, t, step)
        bicubic = to_tensor(resize(src, (Ws * k, Hs * k), resample=3))
        low = to_tensor(src)
        acc = torch.zeros(3, Hs * k, Ws * k)
        wsum = torch.zeros(1, Hs * k, Ws * k)
        win = _blend_window(R)
        coords = [(yy, xx) for yy in ys for xx in xs]
        sig = self._edit_sigmas(ts, sigma_start, num_steps)
        total = math.ceil(len(coords) / batch) * (len(sig) - 1)
        op = SuperRes(k)
        for b0 in range(0, len(coords), batch):
            chunk = coords[b0:b0 + batch]
            lo = torch.cat([low[:, :, yy:yy + t, xx:xx + t] for yy, xx in chunk])
            start = torch.cat([bicubic[:, :, yy * k:yy * k + R, xx * k:xx * k + R] for yy, xx in chunk])
            out = self._restore(op.from_low(lo), op, seed=seed + b0, x_start=start, sigmas=sig, progress=progress,
                                offset=(b0 // batch) * (len(sig) - 1), total=total)
            out = out.float().cpu().clamp(-1, 1)
            for (yy, xx), tile in zip(chunk, out):
                acc[:, yy * k:yy * k + R, xx * k:xx * k + R] += tile * win
                wsum[:, yy * k:yy * k + R, xx * k:xx * k + R] += win
        result = (acc / wsum)[None]
        return to_uint8(result)[0][: h * k, : w * k]

    def stroke_edit(self, guide: np.ndarray, *, strength: float = 0.5, mask: np.ndarray | None = None, seed: int = 0,
                    num_steps: int = 3, progress: Progress | None = None) -> np.ndarray:
        """SDEdit-style: turn rough colour strokes into a plausible image; strength 0..1 maps to sigma 0.5..40."""
        guide = _check_image(guide)
        H, W = guide.shape[:2]
        R = self.resolution
        y = to_tensor(resize(guide, (R, R)))
        sigma_start = float(0.5 * (80.0 ** min(max(strength, 0.0), 1.0)))
        op: Operator
        if mask is not None:
            hole = _check_mask(mask, guide)
            keep = 1.0 - np.asarray(resize((hole * 255).astype(np.uint8), (R, R), resample=0) > 0, np.float32)
            op = Inpaint(torch.from_numpy(keep)[None, None])
        else:
            op = Identity()
        out = self._restore(y, op, seed=seed, x_start=None, sigmas=self.sigmas_from(sigma_start, num_steps), progress=progress)
        result = to_uint8(out)[0]
        return resize(result, (W, H)) if (H, W) != (R, R) else result


def _check_image(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {a.dtype} {a.shape}")
    if min(a.shape[:2]) < 1:
        raise ValueError("the image is empty")
    return a


def _check_mask(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.shape != image.shape[:2]:
        raise ValueError(f"mask size {m.shape[1]}x{m.shape[0]} does not match image size {image.shape[1]}x{image.shape[0]}")
    return m > 0


def _tile_starts(size: int, tile: int, step: int) -> list[int]:
    starts = list(range(0, max(1, size - tile + 1), step))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return starts


def _blend_window(n: int) -> torch.Tensor:
    """Separable raised-cosine weights that never reach zero, so every pixel has positive total weight."""
    r = torch.arange(n, dtype=torch.float32)
    w1 = 0.5 - 0.5 * torch.cos(2 * math.pi * (r + 0.5) / n)
    w1 = w1.clamp(min=1e-3)
    return (w1[:, None] * w1[None, :])[None]
