"""The engine side of a job, without Qt: load a model, run a request, import a checkpoint.

`app.worker` calls these on its thread; tests call them directly. Every function reports through
`progress(done, total)`, which may raise `engine.Cancelled` to stop within one network evaluation.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine import CheckpointError, Model, load_model, preset, save_model

from .model.catalog import ModelInfo
from .model.jobs import JobRequest
from .model.params import NEEDS_MASK, Task, ts_for_steps

ProgressFn = Callable[[int, int], None]
StageFn = Callable[[int, int, str], None]


class TaskError(Exception):
    """A request the model cannot serve (wrong factor, empty mask); the message is for the user."""


def load(info: ModelInfo, *, device: str = "auto") -> tuple[Model, ModelInfo]:
    """Build the model for a picker entry and describe it from its real spec."""
    if info.path is None:
        model = Model.random(preset("tiny"), seed=0, device=device)
    else:
        model = Model.load(info.path, device=device)
    return model, describe(model, info)


def describe(model: Model, info: ModelInfo) -> ModelInfo:
    s = model.spec
    return ModelInfo(path=info.path, name=info.name if info.untrained else (s.name or info.name),
                     resolution=model.resolution, kind=s.denoiser.kind, grid_steps=s.sampler.steps,
                     published_ts=tuple(s.sampler.ts), is_default=info.is_default, untrained=info.untrained)


def _ts(model: Model, steps: int) -> tuple[int, ...]:
    return tuple(model.spec.sampler.ts) if steps == 0 else ts_for_steps(steps, model.spec.sampler.steps)


def _composite(original: np.ndarray, generated: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend through the soft mask: pixels where mask == 0 come back bit-identical."""
    a = mask.astype(np.float32)[..., None] / 255
    out = original.astype(np.float32) * (1 - a) + generated.astype(np.float32) * a
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    out[mask == 0] = original[mask == 0]
    return out


def execute(model: Model, request: JobRequest, progress: ProgressFn) -> np.ndarray:
    """Run one request; returns the new document image (H', W', 3) uint8."""
    p = request.params
    image, mask = request.image, request.mask
    if p.task in NEEDS_MASK and not mask.any():
        raise TaskError("Paint over the area to replace first: the mask is empty.")
    if p.task == Task.generate:
        ts = _ts(model, p.steps) if model.kind == "cm" else None
        return model.generate(1, seed=p.seed, ts=ts, progress=progress)[0]
    if p.task == Task.inpaint:
        # The engine blends its fill into the surroundings itself (grown mask, feathered band) and
        # keeps pixels away from the mask bit-identical; a second blend here would re-harden the seam.
        return model.inpaint(image, mask, seed=p.seed, ts=_ts(model, p.steps), progress=progress)
    if p.task == Task.colorize:
        return model.colorize(image, seed=p.seed, ts=_ts(model, p.steps), progress=progress)
    if p.task == Task.upscale:
        if model.resolution % p.upscale_factor:
            ok = [f for f in (2, 4, 8) if model.resolution % f == 0]
            raise TaskError(f"This model ({model.resolution} px) can upscale by {', '.join(f'{f}x' for f in ok)} only.")
        # The engine starts from a bicubic upscale at a low sigma: 3 evaluations unless asked otherwise.
        return model.upscale(image, p.upscale_factor, seed=p.seed, num_steps=p.steps or 3, progress=progress)
    if p.task == Task.stroke_edit:
        region = mask if mask.any() else None
        out = model.stroke_edit(image, strength=p.strength, mask=region, seed=p.seed, num_steps=p.steps or 3,
                                progress=progress)
        return out if region is None else _composite(image, out, mask)
    raise TaskError(f"unknown task {p.task!r}")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def import_checkpoint(source: Path, dest_dir: Path, stage: StageFn) -> Path:
    """Convert an official `.pt`, a `.safetensors` or a diffusers folder into a native model file.

    Three stages are reported (read, check, write); a failure leaves no partial file behind
    because `save_model` writes atomically.
    """
    source = Path(source)
    stage(0, 3, "Reading checkpoint")
    spec, state_dict, _ = load_model(source)
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
    save_model(dest, spec, state_dict, dtype=torch.float16)
    stage(3, 3, "Done")
    return dest
