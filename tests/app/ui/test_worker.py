"""EngineWorker on its QThread: signal order, errors as messages, cancel, and which thread runs what."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

from app.model import TEST_MODEL, GenerationParams, JobFailed, JobRequest, JobResult, LoadModelRequest, ModelReady, Task
from app.worker import EngineClient


@pytest.fixture
def client(qtbot):
    c = EngineClient()
    try:
        with qtbot.waitSignal(c.finished, timeout=10000) as blocker:
            c.submit(LoadModelRequest(1, TEST_MODEL))
        assert isinstance(blocker.args[0], ModelReady)
        yield c
    finally:
        c.shutdown()


def _job(job_id: int, task: Task = Task.generate, shape=(16, 16), **params) -> JobRequest:
    image = np.full(shape + (3,), 100, np.uint8)
    mask = np.zeros(shape, np.uint8)
    mask[4:8, 4:8] = 255
    return JobRequest(job_id, GenerationParams(task=task, **params), image, mask, image_revision=1)


def test_one_qobject_lives_on_the_engine_thread(client) -> None:
    app_thread = QApplication.instance().thread()
    assert client.thread() is app_thread
    assert client.worker.thread() is not app_thread and client.worker.thread().objectName() == "engine"


def test_progress_then_finished_in_order_on_the_ui_thread(client, qtbot) -> None:
    threads: set[int] = set()
    client.progress.connect(lambda p: threads.add(threading.get_ident()))
    signals = [client.progress, client.progress, client.finished]
    with qtbot.waitSignals(signals, order="strict", timeout=10000,
                           check_params_cbs=[lambda p: p.done == 1 and p.total == 2,
                                             lambda p: p.done == 2, lambda r: isinstance(r, JobResult)]):
        client.submit(_job(2, steps=2))
    assert threads == {threading.get_ident()}  # delivered to the UI thread, not the engine's


def test_engine_errors_become_failed_messages(client, qtbot) -> None:
    with qtbot.waitSignal(client.failed, timeout=10000) as blocker:
        client.submit(JobRequest(3, GenerationParams(task=Task.inpaint), np.zeros((8, 8, 3), np.uint8),
                                 np.zeros((8, 8), np.uint8), 1))
    failure = blocker.args[0]
    assert isinstance(failure, JobFailed) and failure.job_id == 3 and not failure.cancelled
    assert "mask is empty" in failure.message
    # A broken request (wrong image shape) is an engine ValueError: still a message, and the thread lives on.
    with qtbot.waitSignal(client.failed, timeout=10000) as blocker:
        client.submit(JobRequest(4, GenerationParams(task=Task.colorize), np.zeros((8, 8), np.uint8),
                                 np.zeros((8, 8), np.uint8), 1))
    assert "shape (H, W, 3)" in blocker.args[0].message
    with qtbot.waitSignal(client.finished, timeout=10000):
        client.submit(_job(5))


def test_a_missing_model_file_fails_cleanly(client, qtbot, tmp_path) -> None:
    from app.model.catalog import ModelInfo

    with qtbot.waitSignal(client.failed, timeout=10000) as blocker:
        client.submit(LoadModelRequest(6, ModelInfo(tmp_path / "gone.safetensors", "gone", 16, "cm")))
    assert "no such file" in blocker.args[0].message


def test_cancel_stops_within_one_step_and_skips_queued_jobs(client, qtbot) -> None:
    done: list[int] = []
    failures: list = []
    client.progress.connect(lambda p: done.append(p.done) if p.job_id == 7 else None)
    # Collected rather than awaited one by one: both failures can arrive in the same pass of the
    # event loop, and a second waitSignal entered after that would miss the second one.
    client.failed.connect(failures.append)
    job = _job(7, Task.upscale, shape=(64, 64), upscale_factor=4)
    client.submit(job)
    client.submit(_job(8))
    qtbot.waitUntil(lambda: len(done) >= 1, timeout=20000)
    client.cancel(8)  # cancelling the newest id cancels everything before it too
    at_cancel = len(done)
    qtbot.waitUntil(lambda: len(failures) >= 2, timeout=20000)
    assert [(f.job_id, f.cancelled) for f in failures] == [(7, True), (8, True)]
    assert len(done) <= at_cancel + 1
    assert QThread.currentThread() is QApplication.instance().thread()


def _checkpoint(tmp_path, tiny_model):
    import torch

    path = tmp_path / "cm.pt"
    torch.save({k: v.float() for k, v in tiny_model.denoiser.net.state_dict().items()}, path)
    return path


def test_cancelling_a_task_never_cancels_an_import(client, qtbot, tmp_path, tiny_model) -> None:
    from app.model import ImportDone, ImportRequest

    finished: list = []
    failures: list = []
    steps: list[int] = []
    client.finished.connect(finished.append)
    client.failed.connect(failures.append)
    client.progress.connect(lambda p: steps.append(p.done) if p.job_id == 9 else None)
    client.submit(_job(9, Task.upscale, shape=(64, 64), upscale_factor=4))  # holds the engine ...
    client.submit(ImportRequest(10, _checkpoint(tmp_path, tiny_model), tmp_path / "models"))  # ... so this waits
    client.submit(_job(11))
    qtbot.waitUntil(lambda: len(steps) >= 1, timeout=20000)
    client.cancel(11)  # Esc: the task in flight and the one queued, not the import between them
    qtbot.waitUntil(lambda: len(finished) + len(failures) >= 3, timeout=20000)
    assert sorted((f.job_id, f.cancelled) for f in failures) == [(9, True), (11, True)]
    assert [type(m) for m in finished] == [ImportDone] and finished[0].path.is_file()


def test_cancelling_an_import_leaves_the_tasks_alone(client, qtbot, tmp_path, tiny_model) -> None:
    from app.model import ImportRequest

    finished: list = []
    failures: list = []
    client.finished.connect(finished.append)
    client.failed.connect(failures.append)
    client.submit(_job(12, steps=2))
    client.submit(ImportRequest(13, _checkpoint(tmp_path, tiny_model), tmp_path / "models"))
    client.cancel(13)
    qtbot.waitUntil(lambda: len(finished) + len(failures) >= 2, timeout=20000)
    assert [(f.job_id, f.cancelled) for f in failures] == [(13, True)]
    assert [(type(m), m.job_id) for m in finished] == [(JobResult, 12)]


def test_shutdown_waits_for_work_that_does_not_check_for_cancel(qtbot, monkeypatch) -> None:
    """Model loading, import stages and file reads cannot stop mid-way: shutdown must outwait them.

    A QThread destroyed while it runs aborts the whole process (Qt's qFatal), losing the clean exit.
    """
    import time

    c = EngineClient()
    started = threading.Event()

    def busy(request, report, cancelled):  # a stage that never looks at `cancelled`
        started.set()
        time.sleep(1.0)
        return JobFailed(request.job_id, "done")

    monkeypatch.setattr(c.worker.runner, "handle", busy)
    c.submit(LoadModelRequest(1, TEST_MODEL))
    assert started.wait(10)
    try:
        c.shutdown(100)  # patience: 0.1 s, far shorter than the stage
        assert c._thread.isFinished()
    finally:
        c._thread.wait()  # whatever the outcome, never let this test destroy a running thread


def test_garbage_is_collected_on_the_ui_thread_while_the_engine_runs(qtbot) -> None:
    import gc

    freed_on: list[str] = []

    class Node:
        def __del__(self) -> None:
            freed_on.append(threading.current_thread().name)

    was_enabled = gc.isenabled()
    c = EngineClient()
    try:
        # Automatic collection could run on the engine thread and finalise Qt objects there.
        assert not gc.isenabled()
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
        del a, b
        junk = [[] for _ in range(3 * gc.get_threshold()[0])]  # well past generation 0's threshold
        for j in junk:
            j.append(j)  # cycles too, so the count cannot fall back under the threshold
        del junk
        qtbot.waitUntil(lambda: len(freed_on) == 2, timeout=3000)  # the UI-thread timer collected it
        assert set(freed_on) == {threading.main_thread().name}
    finally:
        c.shutdown()
    assert gc.isenabled() == was_enabled


def test_a_stuck_engine_step_ends_the_process_with_tracebacks_not_a_hang() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    # In a child process: the step sleeps 30 s and never checks for cancel; closing gives up after 1 s.
    code = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
from PySide6.QtCore import QCoreApplication
from app import worker
app = QCoreApplication([])
c = worker.EngineClient()
c.worker.runner.handle = lambda request, progress, cancelled: time.sleep(30)
c.submit(object())
time.sleep(0.5)
c.shutdown(patience_ms=100, give_up_s=1.0)
print("returned")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 3, proc.stderr
    assert "returned" not in proc.stdout
    assert "did not finish within 1 s" in proc.stderr
    assert "<lambda>" in proc.stderr  # the stuck thread's traceback, to find where it hung
