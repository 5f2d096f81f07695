"""The engine side of a job, without Qt: load a model, run a request, import a checkpoint.

`app.runner` calls these on the engine thread; tests call them directly. Every function reports
through `progress(done, total)`, which may raise `engine.Cancelled` to stop within one network
evaluation. Engine calls go through `engine.fallback`, so GPU out-of-memory is retried with smaller
batches and then on the CPU, and the user is told so.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine import Cancelled, CheckpointError, Model, ModelSpec, load_model, preset, save_model
from engine.classes import class_names
from engine.fallback import run_with_fallback
from engine.imageio import ImageError
from engine.inpaint import InpaintOptions
from engine.pipeline import COLOUR_REPLACED
from engine.tensors import near_grey

from .model.catalog import ModelInfo
from .model.jobs import JobRequest
from .model.params import NEEDS_MASK, GenerationParams, Task

ProgressFn = Callable[[int, int], None]
StageFn = Callable[[int, int, str], None]


class TaskError(Exception):
    """A request the model cannot serve (wrong factor, empty mask); the message is for the user."""


def load(info: ModelInfo, *, device: str = "auto") -> tuple[Model, ModelInfo]:
    """Build the model for a picker entry and describe it from its real spec."""
    if info.path is None:
        model = Model.random(preset("tiny"), seed=0, device=device)
    elif info.size_chosen:
        # The file holds the importer's guess; the user stated the size the network was trained at.
        spec, state_dict, _ = load_model(info.path)
        model = Model(at_size(spec, info.resolution), state_dict, device=device, source=str(info.path))
    else:
        model = Model.load(info.path, device=device)
    return model, describe(model, info)


def at_size(spec: ModelSpec, size: int) -> ModelSpec:
    """`spec` for images of `size` px. Only the attention placement depends on the size, and it is
    tied to the network's levels (the downsampling factors that have attention), which stay; the
    weights fit any size the levels divide."""
    try:
        resized = spec.unet.at_size(size)
    except ValueError as e:  # a size the levels do not divide (a kept size edited by hand)
        raise TaskError(f"This model cannot run at {size} px ({e}).") from None
    return dataclasses.replace(spec, unet=resized)


def describe(model: Model, info: ModelInfo) -> ModelInfo:
    s = model.spec
    # replace(): what the catalog knows and the spec does not (the guess, the size kept) stays.
    return dataclasses.replace(info, name=info.name if info.untrained else (s.name or info.name),
                               resolution=model.resolution, kind=s.denoiser.kind, grid_steps=s.sampler.steps,
                               published_ts=tuple(s.sampler.ts), edm_steps=s.sampler.edm_steps,
                               num_classes=s.unet.num_classes, class_names=class_names(s.unet.num_classes))


def use_class(model: Model, params: GenerationParams) -> None:
    """Make `params.class_label` the class a class-conditional model conditions on for this job.

    Every task's denoiser calls read `model.class_label` (engine.pipeline.Model.denoise), so this one
    assignment reaches generate and every edit; the engine thread runs one job at a time, and each job
    sets it before its first evaluation. Models without classes ignore the parameter."""
    classes = model.spec.unet.num_classes
    if not classes:
        return
    try:
        model.class_label = params.class_label  # the model checks the range (Model.check_class_label)
    except ValueError:
        raise TaskError(f"This model knows classes 0 to {classes - 1}; {params.class_label} is not one of them.") from None


def _steps(steps: int) -> dict[str, int]:
    """0 = the engine's per-task default loop; otherwise that many evaluations from its start sigma."""
    return {"num_steps": steps} if steps else {}


def _composite(original: np.ndarray, generated: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend through the soft mask: pixels where mask == 0 come back bit-identical (any pixel dtype)."""
    peak = 65535.0 if original.dtype == np.uint16 else 255.0
    a = mask.astype(np.float32)[..., None] / 255
    out = original.astype(np.float32) * (1 - a) + generated.astype(np.float32) * a
    out = np.clip(out + 0.5, 0, peak).astype(original.dtype)
    out[mask == 0] = original[mask == 0]
    return out


def user_message(e: BaseException) -> str:
    """One or two plain sentences for a failed job."""
    if isinstance(e, (TaskError, CheckpointError, ImageError, ValueError)):
        return str(e)
    if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
        return "Out of memory: try a smaller image, fewer steps, or a smaller model."
    return f"{type(e).__name__}: {e}"


@dataclass(frozen=True, eq=False)
class TaskOutput:
    image: np.ndarray  # (H', W', 3), the input's dtype
    alpha: np.ndarray | None  # resampled transparency (upscale with alpha), else None
    notes: tuple[str, ...]  # what the user should know (out-of-memory retries, CPU fallback)


def task_call(model: Model, params: GenerationParams, image: np.ndarray, mask: np.ndarray | None,
              alpha: np.ndarray | None, progress: ProgressFn) -> tuple[str, dict[str, Any]]:
    """(method name, keyword arguments) of the engine call for `params.task` on this image."""
    p = params
    if p.task == Task.generate:
        # 0 = the model's own loop (a consistency model's published ts, a denoiser's Heun steps);
        # otherwise that many evaluations, which the engine spreads over a consistency model's grid.
        return "generate", {"n": 1, "seed": p.seed, "steps": p.steps or None, "progress": progress}
    if p.task == Task.inpaint:
        # The engine blends its fill into the surroundings itself (grown mask, feathered band) and
        # keeps pixels away from the mask bit-identical; a second blend here would re-harden the seam.
        opts = InpaintOptions(context=p.context, min_context=p.min_context, grow=p.grow, feather=p.feather,
                              grain=p.grain)
        # Steps = evaluations from the engine's start (a smooth fill noised to a low sigma), per
        # blended sample. One step is the live preview's setting: one sample, not the default blend.
        return "inpaint", {"image": image, "mask": mask, "seed": p.seed, "options": opts, "progress": progress,
                           **_steps(p.steps), **({"blend": 1} if p.steps == 1 else {})}
    if p.task == Task.colorize:
        return "colorize", {"image": image, "seed": p.seed, "render_size": p.render_size or None, "progress": progress,
                            **_steps(p.steps)}
    if p.task == Task.upscale:
        if model.resolution % p.upscale_factor:
            ok = [f for f in (2, 4, 8) if model.resolution % f == 0]
            raise TaskError(f"This model ({model.resolution} px) can upscale by {', '.join(f'{f}x' for f in ok)} only.")
        # The engine starts from a bicubic upscale at a low sigma.
        return "upscale", {"image": image, "factor": p.upscale_factor, "seed": p.seed, "alpha": alpha,
                           "detail": p.upscale_detail, "progress": progress,
                           **_steps(p.steps)}
    if p.task == Task.stroke_edit:
        region = mask if mask is not None and mask.any() else None
        return "stroke_edit", {"guide": image, "strength": p.strength, "mask": region, "seed": p.seed,
                               "progress": progress, **_steps(p.steps)}
    raise TaskError(f"unknown task {p.task!r}")


def stroke_notes(model: Model, image: np.ndarray, mask: np.ndarray | None) -> list[str]:
    """What to know about a stroke edit without a mask: the engine redraws the whole photo at its
    working size (`Model.stroke_size`: a few model resolutions on the short side at most, the long
    side at most 4x that), so a larger photo comes back soft everywhere."""
    H, W = image.shape[:2]
    h, w = model.stroke_size(H, W)
    if mask is not None or (h >= H and w >= W):
        return []
    return [f"Without a mask the whole photo is redrawn at {w}x{h} px, so all of it comes back soft: paint a mask "
            "over your strokes to change only there."]


def input_notes(params: GenerationParams, image: np.ndarray) -> list[str]:
    """What the user should know about running `params.task` on this picture (one run or a batch)."""
    if params.task == Task.colorize and not near_grey(image):  # a scan's channel noise is no colour
        return [COLOUR_REPLACED[0].upper() + COLOUR_REPLACED[1:] + "."]
    return []


def run_task(model: Model, request: JobRequest, progress: ProgressFn) -> TaskOutput:
    """Run one request, recovering from GPU out-of-memory (engine.fallback); the result keeps the input's dtype."""
    p, image, mask = request.params, request.image, request.mask
    if p.task in NEEDS_MASK and not mask.any():
        raise TaskError("Paint over the area to replace first: the mask is empty.")
    notes = input_notes(p, image)
    use_class(model, p)
    name, kwargs = task_call(model, p, image, mask, request.alpha, progress)
    if name == "stroke_edit":
        notes += stroke_notes(model, image, kwargs["mask"])
    out = run_with_fallback(model, name, kwargs, notes.append)
    alpha = None
    if name == "generate":
        out = out[0].astype(image.dtype) * 257 if image.dtype == np.uint16 else out[0]  # keep the document's depth
    elif name == "upscale" and isinstance(out, tuple):
        out, alpha = out
    elif name == "stroke_edit" and kwargs["mask"] is not None:
        out = _composite(image, out, mask)
    return TaskOutput(out, alpha, tuple(notes))


def execute(model: Model, request: JobRequest, progress: ProgressFn) -> np.ndarray:
    """Run one request; returns the new document image (H', W', 3) in the request's dtype."""
    return run_task(model, request, progress).image


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def import_checkpoint(source: Path, dest_dir: Path, stage: StageFn) -> Path:
    """Convert an official `.pt`, a `.safetensors` or a diffusers folder into a native model file.

    Three stages are reported (read, check, write); a failure leaves no partial file behind
    because `save_model` writes atomically.
    """
    source = Path(source)
    stage(0, 3, "Reading checkpoint")
    spec, state_dict, meta = load_model(source)
    stage(1, 3, "Checking weights")
    if not state_dict:
        raise CheckpointError(f"{source}: no weights found")
    dest_dir.mkdir(parents=True, exist_ok=True)
    base = _safe_name(source.stem if source.is_file() else source.name)
    dest = dest_dir / f"{base}.safetensors"
    n = 2
    while dest.exists():
        dest = dest_dir / f"{base}-{n}.safetensors"
        n += 1
    stage(2, 3, "Writing model")
    if not spec.name:
        spec = dataclasses.replace(spec, name=base)
    # The source's notes travel on, as with `cstudio convert`: above all "guessed" (an official file
    # stores no resolution), which the picker shows instead of presenting the guess as a fact. A size
    # the app kept for the source is the new file's own (in its spec), not a note.
    notes = {k: v for k, v in meta.items() if k not in ("format", "format_version", "spec", "image_size_chosen")}
    notes.setdefault("converted_from", source.name)
    # The source's precision, as `cstudio convert` without --fp16: an imported model gives the official
    # code's numbers (to ~1e-6 in fp32), and a weight beyond fp16's range stays importable.
    try:
        save_model(dest, spec, state_dict, metadata=notes)
    except CheckpointError as e:
        raise CheckpointError(f"{source}: could not be imported into {dest_dir}: {e}") from None
    try:
        stage(3, 3, "Done")
    except Cancelled:
        # Cancelled while the file was written: take it back, so a cancelled import leaves nothing.
        dest.unlink(missing_ok=True)
        raise
    return dest
