"""The engine thread: EngineWorker is the one QObject that lives on it; EngineClient stays on the UI thread.

EngineWorker owns the loaded model and runs one request at a time (queued signals serialise
them). It only emits `progress`, `finished` and `failed`; every exception becomes `failed`, so an
engine error can never reach Qt's event loop. Cancelling is a plain attribute written from the
UI thread and read in the per-step progress callback, because the worker thread is busy inside
torch and cannot process a queued "cancel" signal until the job ends.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from engine import Cancelled, CheckpointError, Model

from . import tasks
from .model.jobs import ImportDone, ImportRequest, JobFailed, JobRequest, JobResult, LoadModelRequest, ModelReady, Progress


def _message(e: BaseException) -> str:
    if isinstance(e, (tasks.TaskError, CheckpointError, ValueError)):
        return str(e)
    if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
        return "Out of memory: try a smaller image, fewer steps, or a smaller model."
    return f"{type(e).__name__}: {e}"


class EngineWorker(QObject):
    progress = Signal(object)  # Progress
    finished = Signal(object)  # JobResult | ModelReady | ImportDone
    failed = Signal(object)  # JobFailed

    def __init__(self, device: str = "auto") -> None:
        super().__init__()
        self.device = device
        self._model: Model | None = None
        # Every job with an id <= this is cancelled. A single int store is atomic under the GIL.
        self._cancel_upto = 0

    def cancel(self, job_id: int) -> None:
        """Called from the UI thread (see module docstring)."""
        self._cancel_upto = max(self._cancel_upto, job_id)

    def _check(self, job_id: int) -> None:
        if job_id <= self._cancel_upto:
            raise Cancelled()

    def _progress_fn(self, job_id: int) -> Callable[[int, int], None]:
        def progress(done: int, total: int) -> None:
            self._check(job_id)
            self.progress.emit(Progress(job_id, done, total))
        return progress

    @Slot(object)
    def handle(self, request: object) -> None:
        job_id = getattr(request, "job_id", 0)
        try:
            self._check(job_id)  # cancelled while it waited in the queue
            if isinstance(request, LoadModelRequest):
                self._model = None  # free the old weights before loading the new ones
                self._model, info = tasks.load(request.info, device=self.device)
                self.finished.emit(ModelReady(job_id, info))
            elif isinstance(request, JobRequest):
                if self._model is None:
                    raise tasks.TaskError("No model is loaded.")
                t0 = time.perf_counter()
                image = tasks.execute(self._model, request, self._progress_fn(job_id))
                self._check(job_id)  # a cancel that raced the last step still wins
                self.finished.emit(JobResult(job_id, image, request.image_revision, time.perf_counter() - t0,
                                             request.task))
            elif isinstance(request, ImportRequest):
                def stage(done: int, total: int, text: str) -> None:
                    self._check(job_id)
                    self.progress.emit(Progress(job_id, done, total, text))
                path = tasks.import_checkpoint(request.source, request.dest_dir, stage)
                self.finished.emit(ImportDone(job_id, path))
            else:
                raise TypeError(f"unknown request {type(request).__name__}")
        except Cancelled:
            self.failed.emit(JobFailed(job_id, "Cancelled.", cancelled=True))
        except Exception as e:  # noqa: BLE001 - the whole point: nothing escapes into Qt
            if not isinstance(e, (tasks.TaskError, CheckpointError)):
                traceback.print_exc()  # unexpected: keep the details for bug reports
            self.failed.emit(JobFailed(job_id, _message(e)))


class EngineClient(QObject):
    """UI-thread handle on the worker: `submit`/`cancel` in, `progress/finished/failed` out (queued)."""

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(object)
    _request = Signal(object)

    def __init__(self, device: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("engine")
        self.worker = EngineWorker(device)
        self.worker.moveToThread(self._thread)
        queued = Qt.ConnectionType.QueuedConnection
        self._request.connect(self.worker.handle, queued)
        # Explicitly queued: the receivers are our own signals, re-emitted on the UI thread.
        self.worker.progress.connect(self.progress, queued)
        self.worker.finished.connect(self.finished, queued)
        self.worker.failed.connect(self.failed, queued)
        self._thread.start()

    def submit(self, request: object) -> None:
        self._request.emit(request)

    def cancel(self, job_id: int) -> None:
        self.worker.cancel(job_id)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        if not self._thread.isRunning():
            return
        self.worker.cancel(1 << 62)  # stop whatever runs, within one step
        self._thread.quit()
        self._thread.wait(timeout_ms)
