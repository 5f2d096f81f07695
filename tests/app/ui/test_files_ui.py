"""The window's side of issues 5 and 6: controls for context/render size, batches by drop, autosave timer,
recovery at launch, and the question before replacing the original."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from app import gui
from app.model import Task

from ..conftest import make_photo
from .conftest import wait_idle
from .test_main_window import drag, drop_files


def _task(w, task: Task) -> None:
    w.panel.task.setCurrentIndex(w.panel.task.findData(task.value))


def test_inpaint_and_colorize_controls_reach_the_parameters(window) -> None:
    p, c = window.panel, window.controller
    _task(window, Task.inpaint)
    assert p.context_row.isVisible() and p.edge_row.isVisible() and not p.render_size.isVisible()
    p.context.setValue(60)
    p.min_context.setValue(64)
    p.grow.setValue(7)
    p.feather.setValue(20)
    assert (c.params.context, c.params.min_context, c.params.grow, c.params.feather) == (0.6, 64, 7, 20)
    assert p.grain.isChecked() and c.params.grain
    p.grain.setChecked(False)
    assert not c.params.grain
    from app import tasks

    _, kwargs = tasks.task_call(None, c.params, c.document.image, c.document.mask, None, lambda *a: None)
    assert kwargs["options"].grain is False and kwargs["options"].feather == 20
    _task(window, Task.colorize)
    assert p.render_size.isVisible() and not p.context_row.isVisible()
    assert p.render_size.text() == "Model's own"
    p.render_size.setValue(128)
    assert c.params.render_size == 128


def test_dropping_several_files_runs_a_batch_and_keeps_the_document(window, qtbot, tmp_path: Path) -> None:
    c = window.controller
    doc = c.document
    files = []
    for i in range(2):
        files.append(tmp_path / f"in{i}.png")
        Image.fromarray(make_photo(16, 16, seed=i)).save(files[-1])
    _task(window, Task.upscale)
    window.panel.factor.setCurrentIndex(window.panel.factor.findData(2))
    c.set_params(steps=1)
    drop_files(window, files)
    assert c.busy and window.act_cancel.isEnabled()
    wait_idle(qtbot, window)
    assert [f.with_name(f.stem + "_upscale_2x.png").is_file() for f in files] == [True, True]
    assert c.document is doc and "2 written" in window.status_text.text()


def test_autosave_runs_on_a_timer_of_at_most_30_seconds(window, qtbot, tmp_path: Path) -> None:
    timer = window.autosave_timer
    assert timer.isActive() and 0 < timer.interval() <= 30_000
    drag(window, [(20, 20), (30, 20)])
    timer.setInterval(10)
    qtbot.waitUntil(lambda: any((tmp_path / "state" / "autosave").glob("*/session.json")), timeout=5000)


def _crash_with_a_stroke(qtbot, photo_file: Path, monkeypatch) -> np.ndarray:
    """Launch, paint a stroke, autosave, then "crash" (no close handling); returns the autosaved mask."""
    monkeypatch.setattr(gui, "sample_image_path", lambda: None)
    monkeypatch.setattr(gui, "default_model_path", lambda: None)
    _, first = gui.launch([str(photo_file)])
    qtbot.addWidget(first)
    drag(first, [(10, 10), (40, 30)])
    mask = first.controller.document.mask.copy()
    first.controller.autosave_tick()
    first.controller.autosave.flush()
    os.close(first.controller.autosave._lock)  # as kill -9 would: the lock dies with the process, the files stay
    first.controller.autosave._lock = first.controller.autosave._folder = None
    first.engine.shutdown()
    first.controller = None  # no close handling: this app "crashed"
    first.hide()
    return mask


def test_launch_after_a_crash_offers_recovery(qtbot, photo_file: Path, dialog_log, monkeypatch, tmp_path: Path) -> None:
    mask = _crash_with_a_stroke(qtbot, photo_file, monkeypatch)
    _, second = gui.launch([])
    qtbot.addWidget(second)
    try:
        assert len(dialog_log.recover_asked) == 1 and "photo.png" in dialog_log.recover_asked[0]
        assert np.array_equal(second.controller.document.mask, mask)
        assert second.controller.history.undo_label == "Brush stroke"
    finally:
        second.close()
        second.engine.shutdown()


def test_closing_the_recovery_question_keeps_the_autosave_for_later(qtbot, photo_file: Path, dialog_log,
                                                                    monkeypatch) -> None:
    """Esc or the close button mean Later: nothing is opened, nothing deleted, and the next start asks again."""
    mask = _crash_with_a_stroke(qtbot, photo_file, monkeypatch)
    dialog_log.recover_answer = "later"
    _, second = gui.launch([])
    qtbot.addWidget(second)
    try:
        assert len(dialog_log.recover_asked) == 1
        assert not second.controller.document.mask.any() and not second.controller.history.can_undo
    finally:
        second.close()  # a clean exit removes its own autosave only
        second.engine.shutdown()
    dialog_log.recover_answer = "recover"
    _, third = gui.launch([])
    qtbot.addWidget(third)
    try:
        assert len(dialog_log.recover_asked) == 2 and "photo.png" in dialog_log.recover_asked[1]
        assert np.array_equal(third.controller.document.mask, mask)
    finally:
        third.close()
        third.engine.shutdown()


def test_save_asks_before_replacing_the_opened_file(window, dialog_log, photo_file: Path) -> None:
    c = window.controller
    c.set_brush(tool="colour")
    drag(window, [(20, 20), (30, 20)])
    original = photo_file.read_bytes()
    dialog_log.overwrite_answer = False
    dialog_log.save_path = None  # ... and then cancels the Save As dialog
    window.act_save.trigger()
    assert dialog_log.overwrite_asked == ["photo.png"] and photo_file.read_bytes() == original and c.document.dirty
    dialog_log.overwrite_answer = True
    window.act_save.trigger()
    assert photo_file.with_name("photo.bak.png").read_bytes() == original and not c.document.dirty
