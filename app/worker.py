"""The engine thread: EngineWorker is the one QObject that lives on it; EngineClient stays on the UI thread.

EngineWorker wraps a Qt-free `Runner`, which owns the loaded model and runs one request at a time
(queued signals serialise them). It only emits `progress`, `finished` and `failed`; every
exception becomes `failed`, so an engine error can never reach Qt's event loop. Cancelling is a
plain attribute written from the UI thread and read in the per-step progress callback, because
the worker thread is busy inside torch and cannot process a queued "cancel" signal until the job
ends.

Tasks (edits and batches) and the model side (loads, checkpoint imports) share one id counter but
are cancelled apart: cancelling a task also drops older tasks still queued, never an import.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import sys
import time

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from .model.jobs import ImportRequest, JobFailed, LoadModelRequest
from .runner import Runner

# Requests cancelled only by their own id: Esc on a task must not stop an import queued before it.
_CANCELLED_BY_ID = (ImportRequest, LoadModelRequest)


class _UiThreadCollector:
    """While an engine thread runs, Python's cyclic garbage collector runs on the UI thread only.

    Automatic collection runs in whichever thread crosses the allocation threshold, and the engine
    thread allocates the most. There it would finalise Qt objects caught in reference cycles (a
    closed dialog, a widget whose slot is a lambda over itself), deleting their C++ side away from
    the thread that owns them, which can crash the process. So automatic collection is switched off
    while any engine thread lives, and a UI-thread timer runs the generation that is due, by the
    same thresholds the automatic collector uses.
    """

    holders = 0
    was_enabled = True
    last_full = 0.0

    @classmethod
    def hold(cls) -> None:
        if cls.holders == 0:
            cls.was_enabled = gc.isenabled()
            gc.disable()
        cls.holders += 1

    @classmethod
    def release(cls) -> None:
        cls.holders = max(0, cls.holders - 1)
        if cls.holders == 0 and cls.was_enabled:
            gc.enable()

    @classmethod
    def collect_due(cls) -> None:
        (c0, c1, c2), (t0, t1, t2) = gc.get_count(), gc.get_threshold()
        if not t0 or c0 <= t0:
            return
        generation = 1 if c1 > t1 else 0
        # A full collection walks the whole heap (torch's included): the automatic collector also
        # holds it back until enough objects are new, which is not visible from Python; at most one
        # every FULL_EVERY_S seconds keeps the UI from stuttering.
        if generation == 1 and c2 > t2 and time.monotonic() - cls.last_full > FULL_EVERY_S:
            generation = 2
            cls.last_full = time.monotonic()
        gc.collect(generation)


FULL_EVERY_S = 10.0
# How long closing waits for an engine step that cannot be cancelled before it gives up on it.
EXIT_PATIENCE_S = 120.0


class EngineWorker(QObject):
    progress = Signal(object)  # Progress
    finished = Signal(object)  # JobResult | ModelReady | ImportDone | BatchDone
    failed = Signal(object)  # JobFailed

    def __init__(self, device: str = "auto") -> None:
        super().__init__()
        self.runner = Runner(device)
        # Every task with an id <= this is cancelled. A single int store is atomic under the GIL,
        # and so are the set operations below.
        self._cancel_upto = 0
        # Ids of loads and imports (a few per session, kept: a late cancel must still find its kind).
        self._by_id: set[int] = set()
        self._cancelled: set[int] = set()  # of those, the ones cancelled
        self._stopping = False

    def expect(self, request: object) -> None:
        """Called from the UI thread before `request` is queued: notes which ids cancel alone."""
        if isinstance(request, _CANCELLED_BY_ID):
            self._by_id.add(request.job_id)

    def cancel(self, job_id: int) -> None:
        """Called from the UI thread (see module docstring)."""
        if job_id in self._by_id:
            self._cancelled.add(job_id)
        else:
            self._cancel_upto = max(self._cancel_upto, job_id)

    def stop(self) -> None:
        """Called from the UI thread at exit: everything running or queued stops at its next check."""
        self._stopping = True

    def _is_cancelled(self, request: object):  # noqa: ANN202
        if isinstance(request, _CANCELLED_BY_ID):
            return lambda job_id: self._stopping or job_id in self._cancelled
        return lambda job_id: self._stopping or job_id <= self._cancel_upto

    @Slot(object)
    def handle(self, request: object) -> None:
        message = self.runner.handle(request, self.progress.emit, self._is_cancelled(request))
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
        _UiThreadCollector.hold()
        self._held = True
        self._gc_timer = QTimer(self)
        self._gc_timer.timeout.connect(_UiThreadCollector.collect_due)
        self._gc_timer.start(250)
        self._thread.start()

    def submit(self, request: object) -> None:
        self.worker.expect(request)
        self._request.emit(request)

    def cancel(self, job_id: int) -> None:
        self.worker.cancel(job_id)

    def shutdown(self, patience_ms: int = 5000, give_up_s: float | None = None) -> None:
        """Stop the engine thread and return once it has ended.

        Whatever runs is cancelled at its next check, but model loading, import stages and batch
        file reads and writes cannot stop half-way: after `patience_ms` a note goes to stderr and
        the wait goes on, up to `give_up_s` (default EXIT_PATIENCE_S) in all. Letting Python destroy
        a running QThread would abort the process, and waiting for ever would leave a process
        without a window that ignores Ctrl+C; so a step stuck that long (a hung disk, a deadlock)
        gets every thread's traceback written to stderr and the process ends with status 3. By
        then the window is closed and the work autosaved; the step's own writes are atomic.
        """
        self._gc_timer.stop()
        if self._thread.isRunning():
            self.worker.stop()
            self._thread.quit()
            if not self._thread.wait(patience_ms):
                print("Consistency Studio: waiting for the engine to finish its current step before exiting...",
                      file=sys.stderr, flush=True)
                limit = EXIT_PATIENCE_S if give_up_s is None else give_up_s
                if not self._thread.wait(max(0, int(limit * 1000) - patience_ms)):
                    print(f"Consistency Studio: the engine did not finish within {limit:.0f} s; exiting. "
                          "Where each thread was:", file=sys.stderr, flush=True)
                    faulthandler.dump_traceback(all_threads=True)
                    os._exit(3)
        if self._held:  # only now: the engine thread must not collect
            self._held = False
            _UiThreadCollector.release()
