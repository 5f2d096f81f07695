"""Saving and opening large files works on a thread: the window keeps painting, yet the step stays
modal (input held off, the engine's results applied after it, a close waiting for it)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest

from app import _documents
from app.files import ImageError
from app.model import Task

from .conftest import wait_idle

SLOW_S = 0.8


class Ticks:
    """A 20 ms timer on the UI thread: how often it fired is how often the event loop ran."""

    def __init__(self) -> None:
        self.count = 0
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        self.count += 1


@pytest.fixture
def slow_save(monkeypatch):
    """Saving takes SLOW_S (a large PNG); records on which thread it ran."""
    real = _documents.save_picture_safely
    threads: list[bool] = []

    def slow(*args, **kwargs):
        import threading

        threads.append(threading.current_thread() is threading.main_thread())
        time.sleep(SLOW_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(_documents, "save_picture_safely", slow)
    return threads


def paint_mask(c) -> None:
    c.set_params(task=Task.inpaint)
    c.begin_stroke(10, 20)
    c.extend_stroke(40, 22)
    c.end_stroke()


def test_a_slow_save_runs_off_the_ui_thread_and_the_window_keeps_painting(window, dialog_log, slow_save, tmp_path):
    dialog_log.save_path = str(tmp_path / "copy.png")
    ticks = Ticks()
    window.act_save_as.trigger()
    ticks.timer.stop()
    assert slow_save == [False]  # the write ran on another thread
    # The event loop ran all along (it ran not once in the 8-10 s a 24 Mpx PNG took on the UI thread).
    assert ticks.count >= SLOW_S / 0.02 / 3, ticks.count
    assert (tmp_path / "copy.png").is_file() and not window.controller.document.dirty
    assert window.status_text.text().startswith("Saved copy.png.")
    with Image.open(tmp_path / "copy.png") as im:
        assert np.array_equal(np.asarray(im), window.controller.document.image)


def test_keys_and_clicks_during_a_save_are_held_off(window, dialog_log, slow_save, tmp_path, qtbot):
    c = window.controller
    paint_mask(c)
    mask = c.document.mask.copy()
    assert mask.any() and c.history.can_undo
    dialog_log.save_path = str(tmp_path / "copy.png")
    sent = []

    def user() -> None:  # Ctrl+Z, then a click on the canvas, while the save works
        QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(30, 30))
        sent.append(window._file_step)

    QTimer.singleShot(200, user)
    window.act_save_as.trigger()
    assert sent == [True]
    assert np.array_equal(c.document.mask, mask) and c.history.can_undo  # neither undone nor painted
    window.act_undo.trigger()  # after the save, input works again
    assert not c.document.mask.any()


def test_a_result_that_arrives_during_a_save_is_applied_after_it(window, dialog_log, slow_save, tmp_path, qtbot):
    c = window.controller
    paint_mask(c)
    before = c.document.image.copy()
    dialog_log.save_path = str(tmp_path / "copy.png")
    assert c.run() is not None
    window.act_save_as.trigger()  # the tiny model's inpaint finishes well within SLOW_S
    # The file holds the picture as it was when Save was chosen; the result came after, so the
    # document is changed again (unsaved) rather than marked saved with a picture the file lacks.
    with Image.open(tmp_path / "copy.png") as im:
        assert np.array_equal(np.asarray(im), before)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: not np.array_equal(c.document.image, before))
    assert c.document.dirty


def test_closing_the_window_during_a_save_waits_for_the_save(window, dialog_log, slow_save, tmp_path, qtbot):
    dialog_log.save_path = str(tmp_path / "copy.png")
    closed_during = []
    QTimer.singleShot(200, lambda: (window.close(), closed_during.append(window.isVisible())))
    window.act_save_as.trigger()
    assert closed_during == [True]  # still open while the file was being written
    assert (tmp_path / "copy.png").is_file()
    qtbot.waitUntil(lambda: not window.isVisible())


def test_an_error_in_the_save_thread_is_shown_and_the_work_stays_unsaved(window, dialog_log, monkeypatch, tmp_path):
    def fails(*args, **kwargs):
        time.sleep(SLOW_S / 2)
        raise ImageError("copy.png: could not save (No space left on device); the file on disk was not changed")

    monkeypatch.setattr(_documents, "save_picture_safely", fails)
    c = window.controller
    paint_mask(c)
    c.document.set_image(c.document.image[::-1].copy())  # something to save
    dialog_log.save_path = str(tmp_path / "copy.png")
    assert window.act_save_as.trigger() is None
    assert [t for t, _ in dialog_log.errors] == ["Could not save the image"]
    assert "No space left" in dialog_log.errors[0][1]
    assert c.document.dirty and not (tmp_path / "copy.png").exists()


def test_opening_a_file_runs_off_the_ui_thread(window, monkeypatch, tmp_path):
    real = _documents.open_document
    threads = []

    def slow(path: Path):
        import threading

        threads.append(threading.current_thread() is threading.main_thread())
        time.sleep(SLOW_S / 2)
        return real(path)

    monkeypatch.setattr(_documents, "open_document", slow)
    other = tmp_path / "other.png"
    Image.fromarray(np.full((30, 40, 3), 77, np.uint8)).save(other)
    assert window._open(other)
    assert threads == [False]
    assert window.controller.document.image.shape == (30, 40, 3)


def test_a_long_save_shows_how_far_it_has_come(window, dialog_log, monkeypatch, tmp_path):
    real = _documents.save_picture_safely

    def in_quarters(*args, progress=None, **kwargs):
        for q in range(4):
            progress(q, 4)
            time.sleep(SLOW_S / 4)
        return real(*args, progress=progress, **kwargs)

    monkeypatch.setattr(_documents, "save_picture_safely", in_quarters)
    dialog_log.save_path = str(tmp_path / "copy.png")
    seen: list[str] = []
    ticks = QTimer()
    ticks.setInterval(30)
    ticks.timeout.connect(lambda: seen.append(window.status_text.text()))
    ticks.start()
    window.act_save_as.trigger()
    ticks.stop()
    assert {"Saving copy.png... 25 %", "Saving copy.png... 50 %", "Saving copy.png... 75 %"} <= set(seen), set(seen)
    assert window.status_text.text().startswith("Saved copy.png.")


def test_png_saves_report_their_rows(tmp_path):
    from app.files import save_picture_safely
    from engine.imageio import Picture

    reports = []
    rgb = np.zeros((300, 2000, 3), np.uint8)
    save_picture_safely(tmp_path / "a.png", Picture(rgb=rgb, alpha=None, info={}),
                        progress=lambda d, t: reports.append((d, t)))
    assert reports and reports[-1] == (300, 300) and all(t == 300 for _, t in reports)
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)


def test_a_close_during_a_save_that_fails_waits_until_the_error_is_answered(window, dialog_log, monkeypatch,
                                                                              tmp_path, qtbot):
    from PySide6.QtCore import QEventLoop

    from app.ui import dialogs

    def fails(*args, **kwargs):
        time.sleep(SLOW_S / 2)
        raise ImageError("copy.png: could not save (No space left on device)")

    monkeypatch.setattr(_documents, "save_picture_safely", fails)
    events = []

    def modal_error(parent, title, msg):  # a real message box runs an event loop while it waits
        events.append(("error shown", window.isVisible()))
        loop = QEventLoop()
        QTimer.singleShot(300, loop.quit)
        loop.exec()
        events.append(("error answered", window.isVisible()))

    def ask_unsaved(parent, name):
        events.append(("save changes?", window.isVisible()))
        return "discard"

    monkeypatch.setattr(dialogs, "show_error", modal_error)
    monkeypatch.setattr(dialogs, "ask_unsaved", ask_unsaved)
    c = window.controller
    paint_mask(c)
    c.document.set_image(c.document.image[::-1].copy())
    dialog_log.save_path = str(tmp_path / "copy.png")
    QTimer.singleShot(200, window.close)  # the user closes the window while the save works
    window.act_save_as.trigger()
    # The close came after the error box, not inside it (where it asked "Save changes?" over the
    # error and shut the window under the rest of the save); then it asked and closed.
    qtbot.waitUntil(lambda: not window.isVisible())
    assert events == [("error shown", True), ("error answered", True), ("save changes?", True)], events
