"""Held-out evaluation of a model on the zero-shot tasks against classical baselines.

On fixed held-out crops at the model's resolution: x2 / x4 super-resolution (area-downsampled
truth; ours = `restore` with `SuperRes(k, smooth=True)`, as the app runs it, from a bicubic start,
vs nearest, bicubic, Lanczos),
colorization (ours vs the grey input) and inpainting with a box and a stroke mask (ours vs mean
fill, and OpenCV Telea / Navier-Stokes when cv2 is installed). Every method is scored by PSNR, Lab
ab error, colourfulness, chroma and high-frequency energy relative to the truth; inpainting is
scored inside the hole. The targets are those of issue 3 ("Done when").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..operators import Colorize, Inpaint, Operator, SuperRes
from ..pipeline import SAMPLER_ETA, Loop, Model, upscale_task
from ..restore import BAND, BasePass, restore_blended
from ..sampling import gaussian, tint_free
from ..tensors import fit_gamut, to_tensor, to_uint8
from ..training.data import fixed_crops, load_photos
from . import baselines as B
from .metrics import ab_measures, hf_energy, hue_agreement, mean_chroma, psnr, region_colourfulness


SMOOTH = "smooth fill (no network)"
NO_CHROMA = 0.01  # mean C*ab below which an image counts as grey (as metrics.hue_agreement's RMS bar)


@dataclass(frozen=True)
class Setting:
    """Our restore loop: start noise level, network evaluations (Karras steps down to sigma_min) and sampler."""

    sigma: float
    steps: int
    samples: int = 1  # >1: the mean of this many samples (the fidelity answer: a sample pays ~3 dB vs the mean; a base's runs)
    sampler: str = "consistency"  # or "ddim", "ancestral" (engine.pipeline.SAMPLER_ETA)
    blend: int = 1  # >1: this many samples' mean structure under one's texture (engine.restore.blend_bands)
    base: Setting | None = None  # the structure from this cheap loop's answer under one sample's texture
    band: tuple[float, float] = BAND  # cycles/px: where structure ends and texture begins

    @property
    def label(self) -> str:
        mean = f", mean of {self.samples}" if self.samples > 1 else ""
        sampler = {"ddim": ", DDIM", "ancestral": ", ancestral"}.get(self.sampler, "")
        blend = f", structure of {self.blend}" if self.blend > 1 else ""
        nfe = f"{self.blend}×{self.steps}" if self.blend > 1 else f"{self.steps}"
        if self.base is not None:
            b = self.base
            nfe = f"{self.steps}+{b.samples * b.steps}"
            runs = f"{b.samples}×{b.steps} NFE averaged" if b.samples > 1 else f"{b.steps} NFE"
            blend = f", over σ0={b.sigma:g} {runs}{ {'ddim': ' DDIM', 'ancestral': ' ancestral'}.get(b.sampler, '')}"
        if (self.base is not None or self.blend > 1) and tuple(self.band) != BAND:
            blend += f" (split {self.band[0]:g}–{self.band[1]:g} cycles/px)"
        return f"ours σ0={self.sigma:g}, {nfe} NFE{sampler}{blend}{mean}"

    @property
    def eta(self) -> float | None:
        return SAMPLER_ETA[self.sampler]


def _as_setting(loop: Loop) -> Setting:
    return Setting(loop.sigma, loop.steps, samples=loop.runs, sampler=loop.sampler, blend=loop.blend,
                   base=None if loop.base is None else _as_setting(loop.base), band=loop.band)


def default_settings(model: Model) -> dict[str, Setting]:
    """The product's default loop per task family ("sr2", "sr4", "colour", "fill") for this model's
    kind, scored for the "detail" bar (engine.pipeline.EDIT_DEFAULTS)."""
    return {"sr2": _as_setting(model.edit_default(upscale_task(2))), "sr4": _as_setting(model.edit_default(upscale_task(4))),
            "sr4detail": _as_setting(model.edit_default(upscale_task(4, detail=True))),
            "colour": _as_setting(model.edit_default("colorize")), "fill": _as_setting(model.edit_default("inpaint"))}


def settings_for(model: Model) -> dict[str, tuple[Setting, ...]]:
    """Each task: low-sigma and averaged (fidelity) settings, the default, a start from pure noise,
    and (where it differs) the other sampler's loop, so a change of default stays comparable."""
    d = default_settings(model)
    both = (Setting(4.0, 3), Setting(4.0, 3, sampler="ddim"), Setting(10.0, 10, sampler="ddim"))
    # The single-sample loops the blended default is built from and was chosen against.
    # The previous default (40 steps over the same base) and the sample alone show what each part gives.
    fills = (Setting(1.0, 3), Setting(1.0, 8, sampler="ddim"), Setting(0.8, 20, sampler="ddim"),
             Setting(2.0, 40, sampler="ancestral"), Setting(2.0, 80, sampler="ancestral"),
             Setting(2.0, 40, sampler="ancestral", base=Setting(0.3, 2)))
    # `cstudio upscale --average 8`: the mean of 8 samples of the factor's default loop.
    sr = {f"sr{k}": (Setting(1.0, 2), Setting(4.0, 2), d[f"sr{k}"], *both, Setting(80.0, 4),
                     Setting(d[f"sr{k}"].sigma, d[f"sr{k}"].steps, samples=8, sampler=d[f"sr{k}"].sampler))
          for k in (2, 4)}
    sr["sr4"] += (d["sr4detail"],)  # `cstudio upscale --detail`
    table = {
        **sr,
        "colour": (Setting(1.0, 2), d["colour"], Setting(80.0, 4), Setting(4.0, 3, samples=8)),
        "fill": (Setting(0.3, 2), d["fill"], *fills, Setting(80.0, 4), Setting(0.5, 2, samples=8)),
    }
    return {k: tuple(dict.fromkeys(v)) for k, v in table.items()}  # the default once, in its place


@dataclass(frozen=True)
class Row:
    """One method on one task; None where a measure does not apply."""

    task: str
    method: str
    psnr: float | None
    hf_ratio: float | None  # high-frequency energy / the truth's
    ab_error: float | None
    colourfulness: float
    chroma_ratio: float | None  # mean chroma / the truth's
    hue_agreement: float | None = None  # chroma-weighted cosine of a*b* vectors vs the truth's (metrics.hue_agreement)


@dataclass(frozen=True)
class Sheet:
    """A contact sheet: the same crops under each method, one column per label."""

    task: str
    labels: tuple[str, ...]
    columns: tuple[np.ndarray, ...]  # each (n, R, R, 3) uint8


@dataclass(frozen=True)
class EvalReport:
    model: str
    resolution: int
    n: int
    rows: tuple[Row, ...]
    sheets: tuple[Sheet, ...]
    notes: tuple[str, ...]
    defaults: dict[str, str] = field(default_factory=dict)  # "sr2" / "sr4" / "colour" / "fill" -> the default setting's label


def score(task: str, method: str, pred: np.ndarray, truth: np.ndarray, holes: np.ndarray | None = None) -> Row:
    """Average the measures over the crops (ratios as ratios of sums, which small crops keep stable)."""
    regions = [None] * len(truth) if holes is None else list(holes)
    hf_p = sum(hf_energy(p, r) for p, r in zip(pred, regions))
    hf_t = sum(hf_energy(t, r) for t, r in zip(truth, regions))
    c_p = sum(mean_chroma(p, r) for p, r in zip(pred, regions))
    c_t = sum(mean_chroma(t, r) for t, r in zip(truth, regions))
    # A grey truth's mean C*ab is the sRGB matrix's round-off (~1e-5), not 0: a ratio to it reads
    # as millions of per cent. Under NO_CHROMA per crop the truth has no colour to compare with.
    has_colour = c_t > NO_CHROMA * len(truth)
    errors, products = zip(*(ab_measures(p, t, r) for p, t, r in zip(pred, truth, regions)))
    dot, pp, tt, count = (sum(v) for v in zip(*products))
    return Row(task, method,
               psnr=float(np.mean([psnr(p, t, r) for p, t, r in zip(pred, truth, regions)])),
               hf_ratio=hf_p / hf_t if hf_t > 0 else None,
               ab_error=float(np.mean(errors)),
               colourfulness=float(np.mean([region_colourfulness(p, r) for p, r in zip(pred, regions)])),
               chroma_ratio=c_p / c_t if has_colour else None,
               hue_agreement=hue_agreement(dot, pp, tt, count))


class _Ours:
    """Runs `restore` over the crops in batches with seeded noise, returning uint8 images."""

    def __init__(self, model: Model, seed: int, batch: int) -> None:
        self.model, self.seed, self.batch = model, seed, batch

    def __call__(self, y: torch.Tensor, make_op: Callable[[slice], Operator], x_start: torch.Tensor | None,
                 setting: Setting, finish: Callable[[torch.Tensor], torch.Tensor] = lambda x: x.clamp(-1, 1),
                 untinted: bool = False) -> np.ndarray:
        """`finish` brings each sample into [-1, 1] before averaging (as the app does for the task);
        `untinted` draws tint-free noise (`engine.sampling.tint_free`, as the app colorizes)."""
        m, d = self.model, self.model.spec.denoiser
        sigmas = m.sigmas_from(setting.sigma, setting.steps)
        out = []
        for b in range(0, len(y), self.batch):
            sl = slice(b, b + self.batch)
            g = torch.Generator().manual_seed(self.seed + b)
            start = None if x_start is None else x_start[sl].to(m.device)
            yb, op = y[sl].to(m.device), make_op(sl)
            noise = tint_free(gaussian(g)) if untinted else gaussian(g)
            b = setting.base
            base = None if b is None else BasePass(m.sigmas_from(b.sigma, b.steps), b.eta, b.samples)
            x = sum(finish(restore_blended(m.denoise, yb, op, sigmas, noise=noise, samples=setting.blend, x_start=start,
                                           band=setting.band, base=base,
                                           sigma_min=d.sigma_min, sigma_max=d.sigma_max, eta=setting.eta))
                    for _ in range(setting.samples)) / setting.samples
            out.append(to_uint8(x))
        return np.concatenate(out)


def _super_resolution(k: int, truth: np.ndarray, ours: _Ours, settings: Sequence[Setting]) -> tuple[list[Row], Sheet]:
    task = f"×{k} super-resolution"
    low = np.stack([B.area_downsample(t, k) for t in truth])
    base = {name: np.stack([B.upscale(lo, k, name) for lo in low]) for name in ("nearest", "bicubic", "lanczos")}
    op = SuperRes(k, smooth=True)  # as the app runs it
    y = op.from_low(to_tensor(low))
    mine = {s.label: ours(y, lambda _sl: op, to_tensor(base["bicubic"]), s) for s in settings}
    rows = [score(task, name, pred, truth) for name, pred in {**base, **mine}.items()]
    sheet = Sheet(task, ("input (nearest)", "bicubic", *mine, "truth"), (base["nearest"], base["bicubic"], *mine.values(), truth))
    return rows, sheet


def _fit_gamut(x: torch.Tensor) -> torch.Tensor:
    """`engine.tensors.fit_gamut` on (B, 3, H, W) in [-1, 1], as `Model.colorize` finishes its render."""
    rgb = fit_gamut(x.detach().float().cpu().permute(0, 2, 3, 1).numpy(), -1.0, 1.0)
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).to(x.device)


def _colorization(truth: np.ndarray, ours: _Ours, settings: Sequence[Setting]) -> tuple[list[Row], Sheet]:
    task = "colorization"
    grey = np.stack([B.grey(t) for t in truth])
    luma = to_tensor(grey)[:, :1]  # all three channels hold the luma
    op = Colorize(neutral=True)  # as the app runs it
    y = op.from_grey(luma)
    mine = {s.label: ours(y, lambda _sl: op, None, s, _fit_gamut, untinted=True) for s in settings}
    rows = [score(task, "grey input", grey, truth)] + [score(task, name, pred, truth) for name, pred in mine.items()]
    rows.append(score(task, "truth", truth, truth))
    sheet = Sheet(task, ("input (grey)", *mine, "truth"), (grey, *mine.values(), truth))
    return rows, sheet


def _colorization_photos(model: Model, photos: Sequence[np.ndarray], seed: int,
                         settings: Sequence[Setting]) -> list[Row]:
    """The app's own path on whole held-out photos: `Model.colorize` picks the chroma of the whole
    scene at the model's size and keeps each photo's luma at full size (averaged settings skipped)."""
    task = "colorization (whole photos)"
    grey = [B.grey(t) for t in photos]
    rows = [score(task, "grey input", grey, photos)]
    for s in settings:
        if s.samples == 1:
            pred = [model.colorize(g, seed=seed + i, sigma_start=s.sigma, num_steps=s.steps, sampler=s.sampler)
                    for i, g in enumerate(grey)]
            rows.append(score(task, s.label, pred, photos))
    return rows


def _inpainting(name: str, holes: np.ndarray, truth: np.ndarray, ours: _Ours, settings: Sequence[Setting],
                classical: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]) -> tuple[list[Row], Sheet]:
    task = f"inpainting ({name})"
    shown = truth.copy()
    shown[holes] = 128
    base = {"mean fill": np.stack([B.mean_fill(t, h) for t, h in zip(truth, holes)]),
            SMOOTH: np.stack([B.smooth_fill(t, h) for t, h in zip(truth, holes)])}
    for label, fill in classical.items():
        base[f"OpenCV {label}"] = np.stack([fill(t, h) for t, h in zip(truth, holes)])
    known = torch.from_numpy((~holes).astype(np.float32))[:, None]
    y = to_tensor(truth) * known
    # Our loop starts from the smooth fill (as the app does), noised to each setting's sigma.
    mine = {s.label: ours(y, lambda sl: Inpaint(known[sl]), to_tensor(base[SMOOTH]), s) for s in settings}
    rows = [score(task, label, pred, truth, holes) for label, pred in {**base, **mine}.items()]
    best_base = "OpenCV Telea" if "OpenCV Telea" in base else "mean fill"
    sheet = Sheet(task, ("input", best_base, *mine, "truth"), (shown, base[best_base], *mine.values(), truth))
    return rows, sheet


def evaluate(model: Model, data: str | Path, *, n: int = 64, seed: int = 0,
             settings: dict[str, Sequence[Setting]] | None = None,
             batch: int = 64, whole_photos: int | None = None, log: Callable[[str], None] = print) -> EvalReport:
    """Score `model` on `n` fixed crops of the held-out split of the photo set in `data`.

    `settings` maps "sr2", "sr4", "colour" and "fill" to the loop settings scored for that task
    (default: `settings_for(model)`); the targets judge `default_settings(model)`.
    `whole_photos`: how many held-out photos (in manifest order) the 'colorization (whole photos)'
    rows colour at full size; None all of them (the scores the model card quotes), 0 none. Those
    rows do not depend on `n` and take most of a small run's time on a CPU.
    """
    if n < 1 or batch < 1:
        raise ValueError(f"n (crops) and batch must be at least 1, got {n} and {batch}")
    if whole_photos is not None and whole_photos < 0:
        raise ValueError(f"whole_photos must be 0 (skip) or more, got {whole_photos}")
    settings = {**settings_for(model), **(settings or {})}
    R = model.resolution
    photos = load_photos(data, "heldout", min_side=R)
    truth = fixed_crops(photos, R, n, seed=seed)
    ours = _Ours(model, seed, batch)
    rows: list[Row] = []
    sheets: list[Sheet] = []
    whole = photos if whole_photos is None else photos[:whole_photos]
    if not whole:
        what = "was skipped (--whole-photos 0)."
    elif len(whole) == len(photos):
        what = f"runs the app's colorize on all {len(photos)} photos at full size."
    else:  # not comparable with a full run's rows: say so where the numbers are read
        what = (f"runs the app's colorize on the first {len(whole)} of the {len(photos)} photos at full size "
                "(--whole-photos), not comparable with a run on all of them.")
    notes = [f"{n} crops of {R}×{R} px from {len(photos)} held-out photos (seed {seed}); inpainting scored inside the hole, "
             f"its HF energy on the hole's bounding box; 'colorization (whole photos)' {what}"]
    for k in (2, 4):
        if R % k == 0:
            log(f"×{k} super-resolution ...")
            r, s = _super_resolution(k, truth, ours, settings[f"sr{k}"])
            rows += r
            sheets.append(s)
    log("colorization ...")
    r, s = _colorization(truth, ours, settings["colour"])
    rows += r
    sheets.append(s)
    if whole:
        log(f"colorization (whole photos: {len(whole)}) ...")
        rows += _colorization_photos(model, [p.pixels for p in whole], seed, settings["colour"])
    classical = B.opencv_inpainters()
    if not classical:
        notes.append("OpenCV (cv2) is not installed: the Telea / Navier-Stokes baselines were skipped "
                     "(dev-only: pip install opencv-python-headless).")
    box = np.broadcast_to(B.box_mask(R), truth.shape[:3])
    strokes = np.stack([B.stroke_mask(R, seed=seed + i) for i in range(n)])
    for name, holes in (("box", box), ("stroke", strokes)):
        log(f"inpainting ({name}) ...")
        r, s = _inpainting(name, np.ascontiguousarray(holes), truth, ours, settings["fill"], classical)
        rows += r
        sheets.append(s)
    defaults = {k: v.label for k, v in default_settings(model).items()}
    return EvalReport(model.source or model.spec.name, R, n, tuple(rows), tuple(sheets), tuple(notes), defaults)
