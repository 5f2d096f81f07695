"""High-level image tasks on a loaded model: the API used by the CLI and the desktop app.

Images cross this boundary as uint8 numpy arrays (H, W, 3); masks as (H, W) arrays where nonzero
means "fill this pixel". Every task takes a seed (same seed, same image) and an optional
`progress(done, total)` callback; raising any exception from it (e.g. `Cancelled`) stops the run
within one network evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpoint import load_model
from .config import ModelSpec
from .denoiser import Denoiser
from .device import configure_threads, exact_fp32, pick_device, pick_precision
from .operators import Colorize, Identity, Inpaint, Operator, SuperRes
from .restore import BAND, BasePass, restore, restore_blended
from .sampling import (StepInfo, gaussian, gaussian_each, sample_euler, sample_heun, sample_multistep, sample_onestep,
                       sub_seed, tint_free)
from .schedules import even_ts, karras_sigmas, sigmas_from_ts
from .inpaint import InpaintOptions, inpaint_parts, plan_windows, round_to_multiple
from .tensors import fit_gamut, near_grey, resize_float, rgb_to_ycbcr, shrink_float, to_uint8, ycbcr_to_rgb
from .upscale import bleed_colour, plan_tiles, upscale_alpha, upscale_tiled
from .unet import UNet

Progress = Callable[[int, int], None]

# Editing samplers and their eta for `engine.restore.restore` (None: the consistency loop).
SAMPLER_ETA: dict[str, float | None] = {"consistency": None, "ddim": 0.0, "ancestral": 1.0}


@dataclass(frozen=True)
class Loop:
    """An editing loop: start sigma, network evaluations and sampler.

    "consistency" is the paper's projected multistep loop (Song et al., 2023, Algorithm 4);
    "ddim" takes projected DDIM steps with eta = 0 (`engine.sampling.sample_ddim`), "ancestral"
    with eta = 1 (fresh noise at each step, as DDPM's ancestral sampler). `blend` > 1 draws that
    many samples and keeps their mean's coarse structure under the first one's fine texture
    (`engine.restore.blend_bands`); `steps` counts the evaluations of one sample. `base` instead
    takes the structure from a cheap fidelity loop's answer (run first, same start) under one
    sample's texture; `runs` > 1 makes a base loop's answer the mean of that many draws; `band`
    (cycles/px) is where structure ends and texture begins (`engine.restore.spectral_lowpass`).
    """

    sigma: float
    steps: int
    sampler: str = "consistency"
    blend: int = 1
    base: Loop | None = None
    band: tuple[float, float] = BAND
    runs: int = 1

    def __post_init__(self) -> None:
        if self.base is not None and (self.blend != 1 or self.base.base is not None or self.base.blend != 1):
            raise ValueError("a loop takes its structure from a base loop or from blended samples, not both")
        if self.runs < 1:
            raise ValueError(f"runs must be at least 1, got {self.runs}")

    @property
    def evaluations(self) -> int:
        """Network evaluations per run of this loop (all samples and the base)."""
        return self.runs * self.blend * self.steps + (0 if self.base is None else self.base.evaluations)


# Default loop of each editing task per model kind, chosen on the held-out eval (`cstudio eval`;
# table in resources/models/MODEL_CARD.md). The start is the task's best classical guess (bicubic,
# the grey photo, a smooth membrane fill) noised to that sigma. A consistency model ("cm") maps
# any noise level straight to the data, so its loop re-draws noise each step. An EDM model's
# denoiser returns the average answer, which that loop blurs; deterministic DDIM steps keep the
# detail, and each further DDIM step (or a higher start) trades about 0.03 dB of PSNR for one
# point of the truth's high-frequency energy. Figures on the shipped model's 256 held-out crops:
# x4 upscaling, 3 DDIM steps give 23.71 dB at 14 % HF against 24.15 dB at 6 % for the consistency
# loop (bicubic 23.96 dB at 0 %); reaching 75 % would cost about 1.7 dB, so x4 stays cheap
# (upscaling is the slow task). x2 has room: 11 DDIM steps from sigma 10 give 27.52 dB at 83 %
# (bicubic 28.45), within 1 dB of bicubic at the truth's detail, for under 4x the time of 3 steps;
# 10 steps fell to 74.8 % on a second crop set; 12 went past the 1 dB on the previous file.
# Holes: one sample of 80 ancestral steps (DDIM with eta = 1) from sigma 2 for the texture, over
# the structure of 2 consistency steps from sigma 0.3 (`Loop.base`, `engine.restore.blend_bands`,
# split between 0.15 and 0.25 cycles/px). Box holes 19.62 dB at 96 % HF (OpenCV Telea 20.35 dB at
# 4 %), strokes 22.23 dB at 108 % (Telea 22.61 dB at 43 %). 40 steps gave the same PSNR but only
# 61 % of the truth's HF in box holes on a second crop set (`--seed 1`; 80 steps: 76 %), and a
# 1.5 px Gaussian split 0.15-0.2 dB less at the same HF. Before the base pass, the structure was the
# mean of 4 samples: 160 evaluations per fill against 82 now.
# x4 / x8 --detail: 120 ancestral steps from sigma 10 over the mean of 4 runs of 2 consistency
# steps from sigma 1, split between 0.15 and 0.275 cycles/px: 23.05 dB at 84 % HF (bicubic
# 23.96 dB; second set 22.91 dB at 77 %, bicubic 23.69), against the default's 23.71 dB at 14 %;
# 80 steps left the second set at 72 % HF, one base run instead of 4 cost 0.1 dB, and the earlier
# 80 steps over a 1.5 px Gaussian gave 22.83 dB at 78 %. 128 evaluations per tile against 3;
# a consistency model's loop already samples, so it has no separate detail loop. Colorization
# stays on the consistency loop (DDIM costs 0.45 dB there for 7 points of chroma), with tint-free noise, 6
# evaluations from sigma 10: chosen on 186 training photos (3 seeds) over sigma 4 / 3 evaluations
# (22.33 against 22.14 dB, hue agreement 0.30 against 0.24, 26 % chroma against 17 %); on the 37
# held-out photos 22.03 dB (grey 21.90) at 25 % chroma, hue agreement 0.43. Longer loops do not
# find more colour (256 crops, grey 23.34 dB): RePaint-style resampling (4 jumps per level,
# 40 evaluations) 23.08 dB at 22 % chroma, 40 DDIM steps from pure noise 22.11 dB at 36 % with
# hue agreement 0.21 against this loop's 22.88 dB at 26 % and 0.33: the model's sense of colour
# is what falls short, not the loop. Stroke editing (SDEdit)
# starts from its strength's sigma (the sigma here is strength 0.5's): with an EDM model the
# consistency loop returns a blur of the strokes, while 6 DDIM steps turn them into texture.
EDIT_DEFAULTS: dict[str, dict[str, Loop]] = {
    "cm": {"upscale": Loop(4.0, 3), "upscale_detail": Loop(4.0, 3), "upscale_x2": Loop(4.0, 3),
           "colorize": Loop(4.0, 3), "inpaint": Loop(1.0, 3), "stroke_edit": Loop(4.47, 3)},
    "edm": {"upscale": Loop(4.0, 3, "ddim"), "upscale_detail": Loop(10.0, 120, "ancestral", base=Loop(1.0, 2, runs=4), band=(0.15, 0.275)),
            "upscale_x2": Loop(10.0, 11, "ddim"), "colorize": Loop(10.0, 6),
            "inpaint": Loop(2.0, 80, "ancestral", base=Loop(0.3, 2)), "stroke_edit": Loop(4.47, 6, "ddim")},
}


# The largest working short side of stroke editing, in model resolutions (`Model.stroke_size`):
# the scale inpainting refines up to (`engine.inpaint.InpaintOptions.max_scale`), well inside the
# default model's training zooms (up to 8).
STROKE_MAX_ZOOM = 4

# Pixels of a full-size photo handled as floats at once by the stroke edit (about 12 MB as RGB
# float32): a 96 Mpx photo at once is 1.2 GB a copy.
STRIP_PX = 1 << 20


def upscale_task(factor: int, detail: bool = False) -> str:
    """The EDIT_DEFAULTS key of upscaling by `factor`: x2 has its own loop, x4 and x8 share one,
    and its slower `detail` variant."""
    return "upscale_x2" if int(factor) == 2 else ("upscale_detail" if detail else "upscale")


class Cancelled(Exception):
    """Raised from a progress callback to stop a running task."""


def stroke_work_size(H: int, W: int, resolution: int, multiple: int = 1) -> tuple[int, int]:
    """`Model.stroke_size` for a model of this resolution (and size multiple)."""
    R = resolution
    short = min(max(min(H, W), R), STROKE_MAX_ZOOM * R)
    scale = min(short / min(H, W), 4 * short / max(H, W))
    return round_to_multiple(H * scale, multiple), round_to_multiple(W * scale, multiple)


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
        self._class_label: int | None = 0 if spec.unet.num_classes else None

    @property
    def class_label(self) -> int | None:
        """The class a class-conditional model conditions every task on (None: the model has none)."""
        return self._class_label

    @class_label.setter
    def class_label(self, value: int | None) -> None:
        self._class_label = self.check_class_label(value)

    def check_class_label(self, value: int | None) -> int | None:
        """`value` as this model's class, or ValueError: refused here rather than by an index error in
        the class embedding at the first evaluation (a device-side assert on CUDA)."""
        classes = self.spec.unet.num_classes
        if not classes:
            if value is not None:
                raise ValueError("this model is not class-conditional: it takes no class label")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < classes:
            raise ValueError(f"class_label must be in 0..{classes - 1}, got {value!r}")
        return int(value)

    # -- construction ---------------------------------------------------------------------------

    # The model file's notes (engine.checkpoint.load_model's metadata, e.g. "guessed": settings an
    # official file does not store); empty for a model built in memory. Replaced, never mutated.
    metadata: dict[str, str] = {}

    @classmethod
    def load(cls, path: str | Path, *, image_size: int | None = None, num_head_channels: int | None = None,
             kind: str | None = None, **kwargs: object) -> Model:
        """A model file on a device. `image_size`, `num_head_channels` and `kind` state what an
        official file does not store (engine.checkpoint.load_model); `metadata` says what is still
        a guess."""
        spec, sd, meta = load_model(path, image_size=image_size, num_head_channels=num_head_channels, kind=kind)
        model = cls(spec, sd, source=str(path), **kwargs)  # type: ignore[arg-type]
        model.metadata = meta
        return model

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
            class_labels = torch.full((x.shape[0],), self.class_label, device=self.device, dtype=torch.long)
        exact = exact_fp32(self.device) if self.dtype == torch.float32 else nullcontext()
        with torch.no_grad(), exact:
            return self.denoiser(x, sigma, class_labels)

    def sigmas(self, ts: Sequence[int] | None = None, grid: int | None = None) -> list[float]:
        """Noise levels visited for `ts` on an N=`grid` Karras grid (defaults: the checkpoint's published ones)."""
        d = self.spec.denoiser
        grid = grid or self.spec.sampler.steps
        ts = tuple(ts) if ts is not None else self.spec.sampler.ts
        return sigmas_from_ts(ts, grid, d.sigma_min, d.sigma_max, d.rho)

    def sigmas_from(self, sigma_start: float, num_steps: int) -> list[float]:
        """`num_steps` evaluations from `sigma_start` down the Karras curve, plus the final sigma_min."""
        d = self.spec.denoiser
        if math.isnan(sigma_start):  # min/max below would pass NaN through: a black image, no error
            raise ValueError("the start sigma must be a number, got nan")
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

    def generate(self, n: int = 1, *, seed: int = 0, steps: int | None = None, ts: Sequence[int] | None = None,
                 grid: int | None = None, class_label: int | None = None,
                 progress: Progress | None = None) -> np.ndarray:
        """Unconditional (or class-conditional) samples: (n, R, R, 3) uint8.

        `steps` counts network evaluations (as every other task's `num_steps`). A consistency model
        spreads them evenly over its N=`grid` Karras grid (at most N-1 distinct ones; default N: the
        checkpoint's, 40), or visits the grid indices `ts` (Song et al. 2023, Algorithm 1; default:
        the checkpoint's published ts, e.g. 0,22,39: two evaluations). An EDM model (a teacher /
        plain denoiser) takes `steps` Heun (or Euler) steps down its Karras curve to 0 (default: the
        spec's `edm_steps`); it has no grid."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if self.kind == "edm" and (ts is not None or grid is not None):
            raise ValueError("ts and grid select a consistency model's sampling grid; this is an EDM model, "
                             "which takes `steps` Heun/Euler steps instead")
        if steps is not None and steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if steps is not None and ts is not None:
            raise ValueError("give steps (evaluations spread over the grid) or ts (grid indices), not both")
        if grid is not None:
            if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
                raise ValueError(f"grid must be a whole number of at least 2 points, got {grid!r}")
            if steps is None and ts is None:
                # The published ts belong to the checkpoint's own grid, not to this one.
                raise ValueError("a grid needs steps or ts on it")
        lab = self.class_label if class_label is None else self.check_class_label(class_label)
        g = self._generator(seed)
        R, d = self.resolution, self.spec.denoiser
        x = torch.randn((n, 3, R, R), generator=g) * d.sigma_max
        labels = None
        if lab is not None:
            labels = torch.full((n,), lab, dtype=torch.long, device=self.device)

        def den(x_: torch.Tensor, s: float) -> torch.Tensor:
            return self.denoise(x_, s, labels)

        if self.kind == "edm":
            n_steps = steps or self.spec.sampler.edm_steps
            # One step is a single jump from sigma_max to 0 (a Karras grid needs two points).
            sig = ([d.sigma_max] if n_steps == 1 else karras_sigmas(n_steps, d.sigma_min, d.sigma_max, d.rho)) + [0.0]
            sampler = self.spec.sampler.edm_sampler
            if sampler == "euler":
                out = sample_euler(den, x.to(self.device), sig, callback=self._callback(progress))
            else:
                out = sample_heun(den, x.to(self.device), sig, noise=gaussian(g), callback=self._callback(progress))
        else:
            N = int(grid) if grid is not None else self.spec.sampler.steps
            if steps is not None:
                ts = even_ts(min(steps, N - 1), N)
            sig = self.sigmas(ts, N)
            if len(sig) == 2 and sig[0] == d.sigma_max:
                out = sample_onestep(den, x.to(self.device), d.sigma_max, callback=self._callback(progress))
            else:
                out = sample_multistep(den, x.to(self.device), sig, noise=gaussian(g), sigma_min=d.sigma_min,
                                       sigma_max=d.sigma_max, callback=self._callback(progress))
        return to_uint8(out)

    def _restore(self, y: torch.Tensor, op: Operator, *, seed: int, x_start: torch.Tensor | None, sigmas: list[float],
                 eta: float | None, progress: Progress | None, offset: int = 0, total: int | None = None,
                 untinted: bool = False, blend: int = 1, base: Loop | None = None,
                 band: tuple[float, float] = BAND) -> torch.Tensor:
        d = self.spec.denoiser
        g = self._generator(seed)
        noise = tint_free(gaussian(g)) if untinted else gaussian(g)
        return restore_blended(self.denoise, y.to(self.device), op, sigmas, noise=noise, samples=blend,
                               band=band, base=self._base_run(base),
                               x_start=None if x_start is None else x_start.to(self.device),
                               sigma_min=d.sigma_min, sigma_max=d.sigma_max, eta=eta,
                               callback=self._callback(progress, offset, total))

    def _base_run(self, base: Loop | None) -> BasePass | None:
        """The structure pass of `base` for `engine.restore.restore_blended`; None without one."""
        return None if base is None else BasePass(self.sigmas_from(base.sigma, base.steps), SAMPLER_ETA[base.sampler],
                                                  base.runs)

    def edit_default(self, task: str) -> Loop:
        """The default loop of "upscale" (x4, x8), "upscale_x2", "colorize", "inpaint" or "stroke_edit"
        for this model's kind (`upscale_task(factor)` names the upscaling one)."""
        return EDIT_DEFAULTS.get(self.kind, EDIT_DEFAULTS["cm"])[task]

    def edit_loop(self, task: str, ts: Sequence[int] | None = None, sigma_start: float | None = None,
                  num_steps: int | None = None, sampler: str | None = None) -> tuple[list[float], float | None]:
        """(sigmas, eta) of an editing loop: explicit `ts` (a grid from sigma_max) win over
        `num_steps` evaluations from `sigma_start`; what is not given keeps `edit_default(task)`."""
        loop = self.edit_default(task)
        sampler = sampler or loop.sampler
        if sampler not in SAMPLER_ETA:
            raise ValueError(f"unknown sampler {sampler!r}: choose {' or '.join(SAMPLER_ETA)}")
        if num_steps is not None and num_steps < 1:
            raise ValueError("num_steps must be at least 1")
        sigmas = self.sigmas(ts) if ts is not None else self.sigmas_from(
            loop.sigma if sigma_start is None else sigma_start, num_steps or loop.steps)
        return sigmas, SAMPLER_ETA[sampler]

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (one halving per UNet level)."""
        return 2 ** (len(self.spec.unet.channel_mult) - 1)

    def inpaint(self, image: np.ndarray, mask: np.ndarray, *, seed: int = 0, ts: Sequence[int] | None = None,
                sigma_start: float | None = None, num_steps: int | None = None, sampler: str | None = None,
                blend: int | None = None, options: InpaintOptions | None = None,
                progress: Progress | None = None) -> np.ndarray:
        """Fill the pixels where `mask` is nonzero, any image size; pixels away from the mask stay bit-identical.
        A mask with no nonzero pixel, or with no zero one, is a ValueError.

        image: (H, W, 3) uint8 or uint16; the result has the same dtype. See `engine.inpaint`.
        The loop starts from a smooth membrane fill of the hole noised to `sigma_start`; `ts`
        (a grid from sigma_max) ignores that start and fills from pure noise. `blend` samples make
        the coarsest pass, their mean giving its structure (`Loop.blend`; 1: one sample, no base
        loop); None keeps the default's structure (a base loop or blended samples). Loop settings
        not given keep `edit_default("inpaint")`.
        """
        image, hole = _check_image(image), _check_mask(mask, image)
        # Refused before any compute: an empty mask returned an unchanged copy the caller took for a
        # result, and a full one (nothing known to fill from) a flat grey image.
        if not hole.any():
            raise ValueError("the mask selects no pixel: nothing to fill")
        if hole.all():
            raise ValueError("the mask covers the whole image: inpainting needs some known pixels to fill from "
                             "(to make a new image, generate one)")
        opts = options or InpaintOptions()
        sig_coarse, eta = self.edit_loop("inpaint", ts, sigma_start, num_steps, sampler)
        loop = self.edit_default("inpaint")
        base, band = (loop.base, loop.band) if blend is None else (None, BAND)
        blend = loop.blend if blend is None else int(blend)
        if blend < 1:
            raise ValueError(f"blend must be at least 1, got {blend}")
        coarse_evals = blend * (len(sig_coarse) - 1) + (0 if base is None else base.evaluations)

        def fill(y, start, known, s_start, n_steps, fseed, on_step):
            # The coarsest pass decides the fill's structure (a base loop's or blended samples');
            # finer passes only sharpen it from a low sigma, one sample each.
            coarse = s_start is None
            sig = sig_coarse if coarse else self.sigmas_from(s_start, n_steps)
            return self._restore(y, Inpaint(known), seed=fseed, x_start=start, sigmas=sig, eta=eta,
                                 blend=blend if coarse else 1, base=base if coarse else None, band=band,
                                 progress=None if on_step is None else (lambda d, t: on_step()))

        # A black-and-white photo (a scan's few levels of channel noise included) gets a grey
        # fill, not the model's tint.
        grey = near_grey(image, ~hole)
        out = image.copy()
        # Window by window, converting only those to float: a whole 96 Mpx photo as floats (and the
        # copies a full-size blend makes) took 9 GB for a 1-step fill of a small stroke.
        for sy, sx, blended, alpha in inpaint_parts(image, hole, fill, self.resolution, self.multiple, seed=seed,
                                                    coarse_evals=coarse_evals, opts=opts, progress=progress,
                                                    to_float=as_float):
            if grey:
                # The fill gets no chroma; the share of the known pixels the blend keeps (1 - alpha)
                # keeps theirs, a scan's own noise (nothing, for a truly grey photo: the channels' mean).
                known = as_float(image[sy, sx])
                blended = (blended.mean(axis=2, keepdims=True)
                           + (1 - alpha)[..., None] * (known - known.mean(axis=2, keepdims=True)))
            touched = alpha > 0
            part = out[sy, sx]
            part[touched] = from_float(blended[touched], image.dtype)
        return out

    def colorize(self, image: np.ndarray, *, seed: int = 0, ts: Sequence[int] | None = None,
                 sigma_start: float | None = None, num_steps: int | None = None, sampler: str | None = None,
                 render_size: int | None = None,
                 progress: Progress | None = None) -> np.ndarray:
        """Colour a grey (or colour) photo of any size: the model picks chroma with the photo's short
        side at `render_size` px (its aspect ratio kept), the original luma is kept.

        DeOldify-style: only the chroma is upsampled to full size, so full-resolution detail and the
        photo's tones survive; a smaller render size gives bolder, coarser colour. The photo is not
        squashed to a square: on the 37 held-out photos, keeping the aspect ratio scored 0.28 dB
        better (mean of 3 seeds) with the default model, whose training views are undistorted.
        """
        image = _check_image(image)
        H, W = image.shape[:2]
        R = render_size or self.resolution
        m = self.multiple
        # Never above the photo's own size (colour invented below its pixels is only averaged away,
        # at a cost that grows with the square: 2048 px for a 64x48 photo ran for minutes), never
        # below the model's resolution (the scale it knows).
        R = max(m, min(R, max(self.resolution, -(-min(H, W) // m) * m)))
        # As `stroke_size`, but beyond 8:1 (panoramas) the long side is squeezed rather than the
        # short side shrunk: it bounds the attention's memory and keeps the scale the model knows.
        cap = max(m, 8 * R // m * m)
        h, w = (min(cap, round_to_multiple(n * R / min(H, W), m)) for n in (H, W))
        # The full-size work goes a strip of about a megapixel at a time: a 96 Mpx photo as whole
        # float arrays (RGB, YCbCr, chroma, the result) peaked at 10 GB.
        # The luma is worked out where it is used, never kept whole (384 MB at 96 Mpx).
        strip = max(1, STRIP_PX // W)

        def luma(part: np.ndarray) -> np.ndarray:
            return rgb_to_ycbcr(as_float(part) * 255)[..., 0]

        small_luma = shrink_float(image, (w, h), Image.Resampling.BOX if min(H, W) > min(h, w) else Image.Resampling.BICUBIC,
                                  luma, STRIP_PX)
        grey = torch.from_numpy(np.clip(small_luma, 0, 255) / 127.5 - 1)[None, None].float()
        op = Colorize(neutral=True)
        sigmas, eta = self.edit_loop("colorize", ts, sigma_start, num_steps, sampler)
        # Tint-free noise (`engine.sampling.tint_free`): the colour cast comes from the photo, not the seed.
        out = self._restore(op.from_grey(grey), op, seed=seed, x_start=None, sigmas=sigmas, eta=eta, progress=progress,
                            untinted=True)
        colour = fit_gamut(((out[0].float().cpu() + 1) * 127.5).permute(1, 2, 0).numpy())
        small_chroma = rgb_to_ycbcr(colour)[..., 1:]
        result = np.empty_like(image)
        for r0 in range(0, H, strip):
            r1 = min(H, r0 + strip)
            chroma = resize_float(small_chroma, (W, H), resample=Image.Resampling.BICUBIC, rows=(r0, r1))
            rgb = fit_gamut(ycbcr_to_rgb(np.concatenate([luma(image[r0:r1])[..., None], chroma], axis=-1))) / 255
            result[r0:r1] = from_float(rgb, image.dtype)
        return result

    def upscale(self, image: np.ndarray, factor: int = 4, *, seed: int = 0, ts: Sequence[int] | None = None,
                sigma_start: float | None = None, num_steps: int | None = None, sampler: str | None = None,
                batch: int = 16,
                overlap: float = 0.25,
                alpha: np.ndarray | None = None, samples: int = 1, detail: bool = False,
                progress: Progress | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Super-resolve by `factor` (2, 4, 8) at any size with overlapping, blended model-size tiles.

        Each tile keeps its k x k block means equal to the input pixels (the SuperRes projection);
        the loop starts from a bicubic upscale noised to `sigma_start` (`ts`: from sigma_max on that
        grid); loop settings not given keep the factor's default (`upscale_task`). With `alpha` (straight,
        not premultiplied), returns (rgb, alpha) with alpha resampled on its own, after the colour under
        (nearly) transparent pixels is filled from the visible ones (`bleed_colour`), so no dark fringe.
        `samples` > 1 averages that many samples per tile: the fidelity setting (closer to the
        truth on average, less invented detail). `detail` runs x4 / x8 with the slower loop that
        invents texture (`EDIT_DEFAULTS` "upscale_detail").
        """
        image = _check_image(image)
        k = int(factor)
        R = self.resolution
        if k < 2 or R % k or (R // k) < 1:
            raise ValueError(f"factor must divide the model resolution {R}: choose from "
                             f"{', '.join(str(f) for f in (2, 4, 8) if R % f == 0)}")
        task = upscale_task(k, detail)
        sig, eta = self.edit_loop(task, ts, sigma_start, num_steps, sampler)
        loop = self.edit_default(task)
        samples = max(1, int(samples))
        # An averaged (fidelity) upscale has no texture to put over a base loop's structure.
        base = loop.base if samples == 1 else None
        base_run = self._base_run(base)
        steps = len(sig) - 1 + (0 if base is None else base.evaluations)
        d = self.spec.denoiser
        op = SuperRes(k, smooth=True)  # no k x k grid from the block-mean correction
        plan = plan_tiles(*image.shape[:2], R // k, max(1, round(R // k * overlap)))
        n_batches = math.ceil(plan.count / batch)

        def restore_fn(y: torch.Tensor, start: torch.Tensor, bi: int) -> torch.Tensor:
            # One generator per tile, seeded by (seed, tile index): the picture does not depend on
            # how many tiles share a batch (the out-of-memory fallback halves it).
            noise = gaussian_each([self._generator(sub_seed(seed, bi * batch + j)) for j in range(y.shape[0])])
            y, start = y.to(self.device), start.to(self.device)
            total = 0.0
            for s in range(samples):
                def cb(info: StepInfo, s: int = s) -> None:
                    progress((bi * samples + s) * steps + info.i + 1, n_batches * samples * steps)

                total = total + restore_blended(self.denoise, y, op, sig, noise=noise, samples=1,
                                                base=base_run, band=loop.band, x_start=start,
                                                sigma_min=d.sigma_min, sigma_max=d.sigma_max, eta=eta,
                                                callback=cb if progress is not None else None).clamp(-1, 1)
            return total / samples

        a = None if alpha is None else np.asarray(alpha)
        if a is not None and a.shape != image.shape[:2]:
            raise ValueError(f"alpha is {a.shape[1]}x{a.shape[0]} but the image is {image.shape[1]}x{image.shape[0]}")
        a_peak = 65535.0 if a is not None and a.dtype == np.uint16 else 255.0
        varying = a is not None and bool(a.min() != a.max())  # constant alpha: nothing to resample
        if varying:
            # Colour hidden under transparent pixels must not reach the visible edge (`bleed_colour`);
            # opaque images (and constant alpha) go through untouched.
            image = bleed_colour(image, a.astype(np.float32) / a_peak)
        # A black-and-white photo stays grey, scans with a few levels of channel noise included
        # (`near_grey`): the model invented specks of colour up to 20 levels in those.
        out = upscale_tiled(image, k, R, restore_fn, batch=batch, overlap=overlap, grey=near_grey(image))
        if a is None:
            return out
        if not varying:
            return out, np.full(out.shape[:2], a.flat[0], a.dtype)
        return out, (upscale_alpha(a.astype(np.float32) / a_peak, k) * a_peak + 0.5).astype(a.dtype)

    def stroke_size(self, H: int, W: int) -> tuple[int, int]:
        """Working (h, w) for stroke editing: the guide's aspect ratio with the short side at the
        guide's own size, but between the model's resolution and `STROKE_MAX_ZOOM` x that, multiples
        of `multiple`; the long side is capped at 4x that short side, so a panorama wider than 4:1
        is worked smaller still. Squeezing a wide guide into a square would stretch the invented
        texture.

        Every short side in that range is a scale the model learnt: its training crops are R px
        views of photos scaled to a short side of R .. max_zoom x R (`engine.training.data`; 8 for
        the default model). Working at R alone made a 768x512 photo 48x32 px, so the result came
        back as a blur 16 px per model pixel, even at strength 0 and outside the strokes."""
        return stroke_work_size(H, W, self.resolution, self.multiple)

    def stroke_edit(self, guide: np.ndarray, *, strength: float = 0.5, mask: np.ndarray | None = None, seed: int = 0,
                    num_steps: int | None = None, sampler: str | None = None,
                    progress: Progress | None = None) -> np.ndarray:
        """SDEdit (Meng et al., 2022, "SDEdit: guided image synthesis and editing with stochastic
        differential equations"): the colour guide is noised to sigma(strength) and denoised, so
        rough strokes become a plausible image; strength 0..1 maps to sigma 0.5..40 (log-linear).

        With `mask` (nonzero = edited region), only that region changes; the rest stays bit-identical.
        The edit then works on a context window around the mask (`engine.inpaint.context_window`),
        not the whole photo: the region keeps a scale the model can draw at, where the whole of a
        large photo at the working size (`stroke_size`) would give it a few blurred model pixels.
        Steps and sampler not given keep `edit_default("stroke_edit")`.
        """
        guide = _check_image(guide)
        if math.isnan(strength):
            raise ValueError("strength must be a number in 0..1, got nan")
        if mask is None:
            return self._stroke_window(guide, None, strength, seed, num_steps, sampler, progress, np.empty_like(guide))
        hole = _check_mask(mask, guide)
        if not hole.any():
            return guide.copy()
        # One window per separate part of the mask (as inpainting does): strokes in two corners of a
        # large photo in one window would share its coarse working scale.
        windows = plan_windows(hole)
        final = guide.copy()
        for i, win in enumerate(windows):
            part = None if progress is None else \
                (lambda done, total, i=i: progress(i * total + done, len(windows) * total))
            sl = win.slices()
            # Written straight into `final`: a copy per window was two more full photos for a
            # stroke across all of it.
            self._stroke_window(guide[sl], hole[sl], strength, seed if i == 0 else sub_seed(seed, i),
                                num_steps, sampler, part, final[sl])
        return final

    def _stroke_window(self, guide: np.ndarray, hole: np.ndarray | None, strength: float, seed: int,
                       num_steps: int | None, sampler: str | None, progress: Progress | None,
                       out: np.ndarray) -> np.ndarray:
        """`stroke_edit` of one (H, W, 3) guide at its working size, written into `out` (same shape
        and dtype; returned); with `hole`, only where it is True (the rest is projected back to the
        guide at every step, and `out` is not touched there).

        The full-size steps go `STRIP_PX` pixels at a time (`shrink_float` down, `resize_float`'s
        `rows` back up): a sketch across a 96 Mpx photo held the guide as floats, the full-size
        upscaled result and its clipped and rounded copies at once, 2.7 GB over the photo."""
        H, W = guide.shape[:2]
        h, w = self.stroke_size(H, W)
        y = torch.from_numpy(shrink_float(guide, (w, h), Image.Resampling.LANCZOS, as_float, STRIP_PX))
        y = y.permute(2, 0, 1)[None] * 2 - 1
        sigma_start = float(0.5 * (80.0 ** min(max(strength, 0.0), 1.0)))
        op: Operator = Identity()
        if hole is not None:
            keep = shrink_float(hole, (w, h), Image.Resampling.BOX, lambda m: 1 - m.astype(np.float32), STRIP_PX) > 0.999
            op = Inpaint(torch.from_numpy(keep.astype(np.float32))[None, None])
        sigmas, eta = self.edit_loop("stroke_edit", None, sigma_start, num_steps, sampler)
        res = self._restore(y.clamp(-1, 1), op, seed=seed, x_start=None, sigmas=sigmas, eta=eta, progress=progress)
        result = np.clip(((res[0].float().cpu() + 1) / 2).permute(1, 2, 0).numpy(), 0, 1)
        rows = max(1, STRIP_PX // max(W, 1))
        for r0 in range(0, H, rows):
            r1 = min(H, r0 + rows)
            part = result[r0:r1] if (H, W) == (h, w) else \
                np.clip(resize_float(result, (W, H), Image.Resampling.LANCZOS, rows=(r0, r1)), 0, 1)
            part = from_float(part, guide.dtype)
            if hole is None:
                out[r0:r1] = part
            else:
                m = hole[r0:r1]
                out[r0:r1][m] = part[m]
        return out


# Said (CLI note, app status) when colorize is given a photo that has colour: its chroma is not an
# input of the task, so the result does not keep it.
COLOUR_REPLACED = ("the photo already has colour (a sepia or other tint counts): colorize keeps its brightness "
                   "and replaces its colours")


def as_float(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float32 in [0, 1]."""
    peak = 65535.0 if image.dtype == np.uint16 else 255.0
    return image.astype(np.float32) / peak


def from_float(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float in [0, 1] -> uint8/uint16, rounded."""
    peak = 65535.0 if np.dtype(dtype) == np.uint16 else 255.0
    return np.clip(a * peak + 0.5, 0, peak).astype(dtype)


def _check_image(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected an RGB uint8/uint16 image of shape (H, W, 3), got {a.dtype} {a.shape}")
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
