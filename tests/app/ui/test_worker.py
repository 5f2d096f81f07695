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
    with qtbot.waitSignal(c.finished, timeout=10000) as blocker:
        c.submit(LoadModelRequest(1, TEST_MODEL))
    assert isinstance(blocker.args[0], ModelReady)
    yield c
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
