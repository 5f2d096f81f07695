"""What the user asks for: the task and its parameters, as one frozen value."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum


class Task(str, Enum):
    generate = "generate"
    inpaint = "inpaint"
    colorize = "colorize"
    upscale = "upscale"
    stroke_edit = "stroke_edit"


TASK_LABELS: dict[Task, str] = {
    Task.generate: "Generate",
    Task.inpaint: "Inpaint",
    Task.colorize: "Colorize",
    Task.upscale: "Upscale",
    Task.stroke_edit: "Stroke edit",
}

TASK_HINTS: dict[Task, str] = {
    Task.generate: "Make a new image from noise.",
    Task.inpaint: "Paint over what should be replaced, then Run.",
    Task.colorize: "Colour a black-and-white photo; its brightness is kept.",
    Task.upscale: "Enlarge the image with new detail.",
    Task.stroke_edit: "Paint rough colour strokes (Colour brush), mask them to change only there, then Run.",
}

# Tasks that read the mask, and those where it is required rather than optional.
USES_MASK = frozenset({Task.inpaint, Task.stroke_edit})
NEEDS_MASK = frozenset({Task.inpaint})
# Tasks that make sense on a folder of photos (dropping several files queues one of these).
BATCH_TASKS = (Task.upscale, Task.colorize)

# Network evaluations offered in the picker; 0 means "the checkpoint's published ts".
STEP_CHOICES: tuple[int, ...] = (0, 1, 2, 4, 8)
UPSCALE_FACTORS: tuple[int, ...] = (2, 4, 8)


@dataclass(frozen=True)
class GenerationParams:
    """Parameters of the next run; replaced (never mutated) when the user changes a control."""

    task: Task = Task.inpaint
    steps: int = 0  # network evaluations; 0 = the checkpoint's published default
    seed: int = 0  # same seed, same image
    strength: float = 0.5  # stroke edit: 0 keeps the strokes, 1 ignores them
    upscale_factor: int = 4  # must divide the model resolution
    upscale_detail: bool = False  # x4 / x8: the slower loop that invents fine texture
    live: bool = False  # re-run inpainting whenever a stroke is released (one-step models)
    # Inpainting on big photos (engine.inpaint.InpaintOptions): the context window around each hole is
    # max(min_context, context x the hole's side); the fill is pasted inside the mask grown by `grow`
    # and blended over `feather` more pixels.
    context: float = 0.3
    min_context: int = 128
    grow: int = 1  # engine.inpaint.InpaintOptions.grow: why 1
    feather: int = 0
    grain: bool = True  # engine.inpaint.InpaintOptions.grain: a smooth fill gets the photo's own grain
    render_size: int = 0  # colorize: the short side of the view the model colours; 0 = the model's resolution
    # Class-conditional models (the ImageNet 64 px checkpoints): the class every task conditions on, so
    # a photo of a dog is edited with a dog prior rather than class 0's. Its upper bound is the loaded
    # model's class count (ModelInfo.num_classes), checked where the model is known; other models ignore it.
    class_label: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task(self.task))
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must lie in 0..2^32-1, got {self.seed}")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must lie in 0..1, got {self.strength}")
        if not 0.0 <= self.context <= 4.0:
            raise ValueError(f"context must lie in 0..4 (a fraction of the hole's size), got {self.context}")
        for name in ("min_context", "grow", "feather", "render_size"):
            if not 0 <= getattr(self, name) <= 4096:
                raise ValueError(f"{name.replace('_', ' ')} must lie in 0..4096 px, got {getattr(self, name)}")
        if not 0 <= self.class_label < 2**31:
            raise ValueError(f"class must be a class index >= 0, got {self.class_label}")
        if self.upscale_factor not in UPSCALE_FACTORS:
            raise ValueError(f"upscale factor must be one of {UPSCALE_FACTORS}, got {self.upscale_factor}")

    def replace(self, **changes: object) -> GenerationParams:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


# Evaluations of the engine's default loop per model kind and editing task (engine.pipeline.
# EDIT_DEFAULTS; this layer may not import the engine; tests/app/test_catalog_tasks.py checks the
# two agree). EDM-trained models inpaint and stroke-edit with more (DDIM / ancestral) steps, and
# upscale x2 with more than x4 / x8. Inpainting counts the steps of one of the samples it blends.
EDIT_DEFAULT_STEPS = {
    "cm": {Task.upscale: 3, Task.colorize: 3, Task.inpaint: 3, Task.stroke_edit: 3},
    "edm": {Task.upscale: 3, Task.colorize: 6, Task.inpaint: 80, Task.stroke_edit: 6},
}
X2_UPSCALE_STEPS = {"cm": 3, "edm": 11}
DETAIL_UPSCALE_STEPS = {"cm": 3, "edm": 120}


def default_steps(task: Task, published_ts: tuple[int, ...] | None, kind: str = "cm", factor: int = 4,
                  detail: bool = False, edm_steps: int | None = None) -> int | None:
    """Evaluations that "Default" means for `task`: the engine's per-task loop for edits (by model
    kind, and for upscaling by factor and detail), the published ts for generate (an EDM model's
    generate: its `edm_steps` Heun/Euler steps)."""
    steps = EDIT_DEFAULT_STEPS.get(kind, EDIT_DEFAULT_STEPS["cm"])
    if task == Task.upscale and factor == 2:
        return X2_UPSCALE_STEPS.get(kind, X2_UPSCALE_STEPS["cm"])
    if task == Task.upscale and detail:
        return DETAIL_UPSCALE_STEPS.get(kind, DETAIL_UPSCALE_STEPS["cm"])
    if task in steps:
        return steps[task]
    if kind == "edm":  # generate: the checkpoint's Heun/Euler schedule, not its ts
        return edm_steps
    return len(published_ts) - 1 if published_ts else None


def steps_label(steps: int, default: int | None = None) -> str:
    if steps == 0:
        return f"Default ({default} step{'s' if default != 1 else ''})" if default else "Default"
    return f"{steps} step{'s' if steps != 1 else ''}"
