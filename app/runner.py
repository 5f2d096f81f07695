"""Runner: the engine side of every request, without Qt. It owns the loaded model and never raises.

`EngineWorker` calls `handle` on the engine thread and emits what it returns; tests and the
random-use state machine call it directly, so one code path serves both. Cancelling is a
predicate read in every progress callback, because the thread is busy inside torch.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable

from engine import Cancelled, CheckpointError, Model
from engine.imageio import ImageError

from . import tasks
from .batch import run_batch
from .model.jobs import (BatchRequest, ImportDone, ImportRequest, JobFailed, JobRequest, JobResult, LoadModelRequest,
                         ModelReady, Progress)

Report = Callable[[Progress], None]
IsCancelled = Callable[[int], bool]


class Runner:
    def __init__(self, device: str = "auto") -> None:
        self.device = device
        self.model: Model | None = None

    def handle(self, request: object, report: Report, cancelled: IsCancelled) -> object:
        """The finished message for `request` (ModelReady, JobResult, ImportDone, BatchDone) or a JobFailed."""
        job_id = getattr(request, "job_id", 0)

        def check() -> None:
            if cancelled(job_id):
                raise Cancelled()

        def stage(done: int, total: int, text: str = "") -> None:
            check()
            report(Progress(job_id, done, total, text))

        try:
            check()  # cancelled while it waited in the queue
            return self._dispatch(request, stage, check)
        except Cancelled:
            return JobFailed(job_id, "Cancelled.", cancelled=True)
        except Exception as e:  # noqa: BLE001 - the whole point: a failure is a message, never a crash
            if not isinstance(e, (tasks.TaskError, CheckpointError, ImageError)):
                traceback.print_exc()  # unexpected: keep the details for bug reports
            return JobFailed(job_id, tasks.user_message(e))

    def _dispatch(self, request: object, stage: Callable[..., None], check: Callable[[], None]) -> object:
        if isinstance(request, LoadModelRequest):
            self.model = None  # free the old weights before loading the new ones
            self.model, info = tasks.load(request.info, device=self.device)
            return ModelReady(request.job_id, info)
        if isinstance(request, JobRequest):
            model = self._need_model()
            t0 = time.perf_counter()
            out = tasks.run_task(model, request, stage)
            check()  # a cancel that raced the last step still wins
            return JobResult(request.job_id, out.image, request.image_revision, time.perf_counter() - t0, request.task,
                             alpha=out.alpha, notes=out.notes)
        if isinstance(request, ImportRequest):
            return ImportDone(request.job_id, tasks.import_checkpoint(request.source, request.dest_dir, stage))
        if isinstance(request, BatchRequest):
            return run_batch(self._need_model(), request, stage)
        raise TypeError(f"unknown request {type(request).__name__}")

    def _need_model(self) -> Model:
        if self.model is None:
            raise tasks.TaskError("No model is loaded.")
        return self.model
