"""Running a task when GPU memory runs out: smaller pieces first, then the CPU.

Out-of-memory depends on the image, the batch and the card, so it is recovered per call rather
than configured up front (chaiNNer halves its tile budget on OOM; Upscayl and IOPaint users ask
for a CPU fallback). `run_with_fallback` retries the task with less memory per network call
(upscale: half the tiles per batch; colorize: half the render size, not below the model's;
inpaint: half the finest working scale), and when nothing is left to shrink, rebuilds the model
on the CPU from its weights and runs once more with the caller's original arguments. Every step
is reported through `log`, so the user learns why the job was slower.
"""

from __future__ import annotations

import dataclasses
import gc
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .inpaint import InpaintOptions
from .pipeline import Model

TASKS = ("generate", "inpaint", "colorize", "upscale", "stroke_edit")


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA/ROCm/MPS out-of-memory, whichever exception type this torch build raises for it."""
    types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None))
                  if isinstance(t, type))
    if types and isinstance(error, types):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _default(fn: Callable[..., Any], name: str) -> Any:
    return inspect.signature(fn).parameters[name].default


def _smaller(model: Model, task: str, kwargs: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The same call with less memory per network evaluation, and what changed; None when at the minimum."""
    if task == "upscale":
        batch = int(kwargs.get("batch") or _default(model.upscale, "batch"))
        if batch > 1:
            return {**kwargs, "batch": batch // 2}, f"{batch // 2} tile{'s' if batch // 2 > 1 else ''} per batch"
    elif task == "colorize":
        size = int(kwargs.get("render_size") or model.resolution)
        if size > model.resolution:
            new = max(model.resolution, size // 2)
            return {**kwargs, "render_size": new}, f"a render size of {new} px"
    elif task == "inpaint":
        opts = kwargs.get("options") or InpaintOptions()
        if opts.max_scale > 1:
            new = dataclasses.replace(opts, max_scale=opts.max_scale // 2)
            return {**kwargs, "options": new}, f"a finest working size of {new.max_scale}x the model's"
    return None


def _release(model: Model) -> None:
    gc.collect()  # the failed attempt's tensors are only garbage once its frames are gone
    if model.device.type == "cuda":
        torch.cuda.empty_cache()
    elif model.device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def cpu_copy(model: Model) -> Model:
    """The same network on the CPU, rebuilt from the weights (the GPU copy is left alone)."""
    state = {k: v.detach().to("cpu", torch.float32) for k, v in model.denoiser.net.state_dict().items()}
    # Exact fp32 stays fp32 (the user asked for it); half precision becomes the CPU's own choice.
    precision = "fp32" if model.dtype == torch.float32 else "auto"
    cpu = Model(model.spec, state, device="cpu", precision=precision, source=model.source)
    cpu.class_label = model.class_label
    return cpu


def run_with_fallback(model: Model, task_name: str, kwargs: Mapping[str, Any],
                      log: Callable[[str], None] = lambda message: None) -> Any:
    """`getattr(model, task_name)(**kwargs)`, recovering from out-of-memory as the module docstring says.

    Any other exception (including `Cancelled` from a progress callback) propagates at once. If the
    model is already on the CPU and the smallest settings still do not fit, the error propagates.
    """
    if task_name not in TASKS:
        raise ValueError(f"unknown task {task_name!r}; one of {', '.join(TASKS)}")
    current = dict(kwargs)
    while True:
        try:
            return getattr(model, task_name)(**current)
        except Exception as e:  # noqa: BLE001 - filtered on the next line; everything else re-raised
            if not is_out_of_memory(e):
                raise
            smaller = _smaller(model, task_name, current)
            if smaller is None and model.device.type == "cpu":
                raise
        # Outside the except block: the traceback (and the tensors its frames hold) is released now.
        _release(model)
        if smaller is None:
            break
        current, what = smaller
        log(f"Out of memory on {model.device.type.upper()}: retrying with {what}.")
    log(f"Out of {model.device.type.upper()} memory even with the smallest settings: running on the CPU instead "
        "(slower).")
    return getattr(cpu_copy(model), task_name)(**kwargs)
