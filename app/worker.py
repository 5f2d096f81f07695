"""The engine thread: EngineWorker is the one QObject that lives on it; EngineClient stays on the UI thread.

EngineWorker wraps a Qt-free `Runner`, which owns the loaded model and runs one request at a time
(queued signals serialise them). It only emits `progress`, `finished` and `failed`; every
exception becomes `failed`, so an engine error can never reach Qt's event loop. Cancelling is a
plain attribute written from the UI thread and read in the per-step progress callback, because
the worker thread is busy inside torch and cannot process a queued "cancel" signal until the job
ends.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from .model.jobs import JobFailed
from .runner import Runner


class EngineWorker(QObject):
    progress = Signal(object)  # Progress
    finished = Signal(object)  # JobResult | ModelReady | ImportDone | BatchDone
    failed = Signal(object)  # JobFailed

    def __init__(self, device: str = "auto") -> None:
        super().__init__()
        self.runner = Runner(device)
        # Every job with an id <= this is cancelled. A single int store is atomic under the GIL.
        self._cancel_upto = 0

    def cancel(self, job_id: int) -> None:
        """Called from the UI thread (see module docstring)."""
        self._cancel_upto = max(self._cancel_upto, job_id)

    @Slot(object)
    def handle(self, request: object) -> None:
        message = self.runner.handle(request, self.progress.emit, lambda job_id: job_id <= self._cancel_upto)
        (self.failed if isinstance(message, JobFailed) else self.finished).emit(message)


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
