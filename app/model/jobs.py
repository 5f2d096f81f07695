"""Messages between the controller and the engine thread. All frozen: they cross a thread boundary."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .catalog import ModelInfo
from .params import GenerationParams, Task


class JobIds:
    """Monotonic job ids; a result whose id is not the newest is stale and dropped."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self) -> int:
        return next(self._counter)


# eq=False: the arrays make value equality meaningless (and ambiguous for numpy).
@dataclass(frozen=True, eq=False)
class JobRequest:
    """Run `params.task` on a copy of the document taken when Run was pressed."""

    job_id: int
    params: GenerationParams
    image: np.ndarray  # (H, W, 3) uint8, read-only
    mask: np.ndarray  # (H, W) uint8, 0 = keep, 255 = fill; soft values blend
    image_revision: int  # the document revision the result applies to
    live: bool = False  # started by live mode rather than the Run button
    alpha: np.ndarray | None = None  # (H, W) transparency, same dtype as the image; upscaled with it

    @property
    def task(self) -> Task:
        return self.params.task


@dataclass(frozen=True)
class LoadModelRequest:
    job_id: int
    info: ModelInfo  # path None = the untrained test model


@dataclass(frozen=True)
class ImportRequest:
    job_id: int
    source: Path  # an official .pt, a .safetensors or a diffusers folder
    dest_dir: Path  # the user's models folder


@dataclass(frozen=True)
class Progress:
    job_id: int
    done: int
    total: int
    stage: str = ""  # e.g. "Reading checkpoint"; empty for network steps


@dataclass(frozen=True, eq=False)
class JobResult:
    job_id: int
    image: np.ndarray  # (H', W', 3), the request's dtype; already composited through a soft mask
    image_revision: int
    elapsed_s: float
    task: Task
    alpha: np.ndarray | None = None  # the result's own transparency (upscale), else None
    notes: tuple[str, ...] = ()  # e.g. "out of GPU memory: ran on the CPU"


# The formats a batch can write its results in (the settings file keeps the key), as the command
# line's `--format` names them (engine.cli.OUTPUT_FORMATS): the extension each output gets, or None
# for "same" (each input's own format where it can be written, else PNG: `engine.batch.output_suffix`).
BATCH_FORMATS: dict[str, str | None] = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tif": ".tif", "bmp": ".bmp",
                                        "same": None}
DEFAULT_BATCH_FORMAT = "png"


def batch_suffix(fmt: str) -> str | None:
    """The output extension of a `BATCH_FORMATS` key (None: each input's own); an unknown key is PNG."""
    return BATCH_FORMATS.get(fmt, BATCH_FORMATS[DEFAULT_BATCH_FORMAT])


@dataclass(frozen=True)
class BatchRequest:
    """Run `params.task` (upscale or colorize) on every image in `inputs` (files or folders)."""

    job_id: int
    params: GenerationParams
    inputs: tuple[Path, ...]
    out_dir: Path | None = None  # None = each result next to its input
    skip_existing: bool = True
    suffix: str | None = ".png"  # the outputs' extension (`batch_suffix`); None = each input's own format

    @property
    def task(self) -> Task:
        return self.params.task


@dataclass(frozen=True)
class BatchDone:
    job_id: int
    written: tuple[Path, ...]
    skipped: tuple[Path, ...]  # outputs that existed already
    failed: tuple[tuple[Path, str], ...]  # (input, reason)
    cancelled: bool = False
    notes: tuple[str, ...] = ()
    total: int = 0  # files the batch had; those neither written, skipped nor failed were not reached (a cancel)
    out_dir: Path | None = None  # where the results went; None = next to each input
    unreadable: tuple[Path, ...] = ()  # of `skipped`: existing outputs that do not open as pictures, left alone

    @property
    def not_processed(self) -> int:
        return max(0, self.total - len(self.written) - len(self.skipped) - len(self.failed))

    def summary(self) -> str:
        if self.cancelled:
            return (f"{len(self.written)} written, {len(self.skipped)} skipped, {self.not_processed} not processed"
                    + (f", {len(self.failed)} failed" if self.failed else ""))
        return f"{len(self.written)} written, {len(self.skipped)} skipped (output exists), {len(self.failed)} failed"


@dataclass(frozen=True)
class ModelReady:
    job_id: int
    info: ModelInfo  # filled in from the loaded spec


@dataclass(frozen=True)
class ImportDone:
    job_id: int
    path: Path  # the converted native model


@dataclass(frozen=True)
class JobFailed:
    job_id: int
    message: str  # one or two plain sentences for the user
    cancelled: bool = False
