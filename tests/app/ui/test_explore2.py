"""Second round of exploratory testing of the main window: keyboard use, the model picker, layout,
tooltips and help. Each test pins a bug that round found (or a flow it checked that must keep working)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QScrollArea, QSlider,
                               QToolButton)

from app.model import Task
from app.ui import dialogs
from app.ui.main_window import SHORTCUTS_HELP
from tests.app.fakes import kill_after_autosave
from tests.conftest import FIXTURES

from .conftest import wait_idle
from .test_main_window import drag

OFFICIAL_PT = FIXTURES / "refcheck" / "small" / "state_dict.pt"  # OpenAI's layout and key names


def _shortcut_texts(window) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for a in window.actions():
        for s in a.shortcuts():
            seen.setdefault(s.toString(), []).append(a.text())
    return seen


def test_no_two_actions_share_a_shortcut(window) -> None:
    clashes = {k: v for k, v in _shortcut_texts(window).items() if len(v) > 1}
    assert not clashes


def test_tooltips_do_not_show_the_mnemonic_ampersand(window) -> None:
    assert window.act_run.toolTip() == "Run (Ctrl+Return)"
    assert window.panel.run_button.toolTip() == "Run (Ctrl+Return)"
    assert window.panel.cancel_button.toolTip() == "Cancel (Esc)"
    assert [a.toolTip() for a in window.actions() if "&" in a.toolTip()] == []


def test_every_control_of_the_panel_explains_itself(window) -> None:
    """A tooltip on every control, saying more than the control's own text."""
    p = window.panel
    for task in Task:  # rows of every task
        p.task.setCurrentIndex(p.task.findData(task.value))
        for w in [w for kind in (QAbstractButton, QComboBox, QAbstractSpinBox, QSlider) for w in p.findChildren(kind)]:
            text = w.text().replace("&", "") if isinstance(w, QAbstractButton) else ""
            tip = w.toolTip()
            assert tip and tip != text, (type(w).__name__, text, tip)


def test_the_mask_and_import_buttons_say_what_they_import(window) -> None:
    assert "mask" in window.act_import_mask.toolTip().lower()
    assert "mask" in window.act_export_mask.toolTip().lower()
    assert ".pt" in window.panel.import_button.toolTip()


def test_the_shortcuts_help_lists_the_app_s_own_shortcuts(window) -> None:
    # The platform's standard keys (open, save, copy...) are shown in the menus; ours only here.
    standard = {window.act_open, window.act_save, window.act_save_as, window.act_copy, window.act_paste,
                window.act_quit, window.act_shortcuts, window.act_undo, window.act_redo, window.act_zoom_out}
    missing = [a.text() for a in window.actions() if a not in standard and a.shortcuts()
               and not any(s.toString() in SHORTCUTS_HELP for s in a.shortcuts())]
    assert missing == []


def test_help_and_about_open_from_the_keyboard_and_give_the_focus_back(window, monkeypatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(dialogs, "show_text", lambda parent, title, text: shown.append(title))
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_F1)
    window.act_about.trigger()
    assert shown == ["Keyboard shortcuts", "About Consistency Studio"]
    assert QApplication.focusWidget() is window.canvas


def test_keyboard_run_cancel_and_brush_size(window, qtbot) -> None:
    c = window.controller
    window.canvas.setFocus()
    size = c.brush.size
    QTest.keyClick(window.canvas, Qt.Key.Key_BracketRight)
    assert c.brush.size > size and window.panel.size_label.text() == f"{round(c.brush.size)} px"
    window.panel.seed.setFocus()
    QTest.keyClick(window.panel.seed, Qt.Key.Key_BracketLeft)  # typed into the spin box, not a shortcut
    assert c.brush.size > size
    drag(window, [(20, 20), (40, 25)])
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Enter,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.KeypadModifier)
    assert c.busy
    QTest.keyClick(window.canvas, Qt.Key.Key_Escape)
    wait_idle(qtbot, window)
    assert window.status_text.text() == "Cancelled."
    QTest.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert c.busy
    wait_idle(qtbot, window)
    assert window.status_text.text().startswith("Inpaint done")


def test_tab_goes_from_the_brush_to_the_mask_buttons_then_the_canvas(window) -> None:
    p = window.panel
    mask_buttons = p.mask_box.findChildren(QToolButton)
    order = []
    w = p.hardness
    for _ in range(len(mask_buttons) + 1):
        w = w.nextInFocusChain()
        while not (w.focusPolicy() & Qt.FocusPolicy.TabFocus):
            w = w.nextInFocusChain()
        order.append(w)
    assert order[:-1] == mask_buttons
    assert order[-1] is window.canvas


def test_the_panel_keeps_one_width_for_every_task(window) -> None:
    """The panel used to follow the rows shown: Run and Cancel jumped in width with the task."""
    p = window.panel
    widths = set()
    for task in Task:
        p.task.setCurrentIndex(p.task.findData(task.value))
        QApplication.processEvents()
        assert p.width() >= p.sizeHint().width(), task  # nothing clipped
        widths.add((p.width(), p.run_button.width(), p.cancel_button.width()))
    assert len(widths) == 1, widths


def test_a_short_window_scrolls_the_panel_without_clipping_it(window) -> None:
    p = window.panel
    p.task.setCurrentIndex(p.task.findData("colorize"))
    window.resize(640, 400)
    QApplication.processEvents()
    scroll = window.findChild(QScrollArea)
    assert scroll.verticalScrollBar().isVisible()
    assert scroll.viewport().width() >= p.sizeHint().width()
    assert window.canvas.width() > 200


def _import(window, qtbot, monkeypatch, source: Path) -> None:
    c = window.controller
    monkeypatch.setattr(dialogs, "open_checkpoint", lambda parent, start, folder: str(source))
    window.act_import.trigger()
    qtbot.waitUntil(lambda: not c.importing and c._model_job is None and c.model is not None, timeout=60000)


def _picker(window) -> list[str]:
    return [window.panel.model.itemText(i) for i in range(window.panel.model.count())]


def test_a_checkpoint_imported_twice_is_told_apart_in_the_picker(window, qtbot, monkeypatch, dialog_log,
                                                                 tmp_path: Path) -> None:
    for _ in range(2):
        _import(window, qtbot, monkeypatch, OFFICIAL_PT)
    assert dialog_log.errors == []
    names = _picker(window)
    assert len(names) == 3 and len(set(names)) == 3, names
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["state_dict-2.safetensors",
                                                                      "state_dict.safetensors"]
    current = window.panel.model.currentText()
    assert current.endswith("[state_dict-2.safetensors]")  # the import just made is selected
    # That fixture's layout is no released model's: its size is a guess, which the state says after the name.
    assert window.panel.model_state.text().startswith(f"Model: {current}. Guessed on import: resolution")
    assert str(tmp_path / "models" / "state_dict-2.safetensors") in window.panel.model.toolTip()


def test_a_damaged_copy_of_a_model_is_told_apart_and_reported_when_picked(window, qtbot, monkeypatch, dialog_log,
                                                                         tmp_path: Path) -> None:
    c = window.controller
    _import(window, qtbot, monkeypatch, OFFICIAL_PT)
    good = tmp_path / "models" / "state_dict.safetensors"
    data = good.read_bytes()
    (tmp_path / "models" / "zcopy.safetensors").write_bytes(data[: len(data) // 2])  # header intact
    c.refresh_models(select=str(good))
    qtbot.waitUntil(lambda: c._model_job is None, timeout=60000)
    names = _picker(window)
    assert len(set(names)) == len(names) == 3, names
    # Switch during a run: the job finishes on the model it started with, then the pick loads.
    drag(window, [(20, 20), (40, 25)])
    window.act_run.trigger()
    assert c.busy
    window.panel.model.setCurrentIndex(2)
    assert window.panel.model_state.text() == f"Loading {names[2]}..."
    assert not window.act_run.isEnabled()
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: c._model_job is None, timeout=60000)
    assert c.history.undo_label == "Inpaint"
    assert dialog_log.errors and dialog_log.errors[-1][0] == "Could not load the model"
    assert "zcopy.safetensors" in dialog_log.errors[-1][1] and "truncated" in dialog_log.errors[-1][1]
    assert window.panel.model_state.text() == "No model loaded: pick another one."
    assert not window.act_run.isEnabled()
    # Picking the same entry again retries it: no index changes, only `activated` says so.
    picks: list[int] = []
    window.panel.model_selected.connect(picks.append)
    window.panel.model.activated.emit(2)
    assert picks == [2] and window.panel.model_state.text() == f"Loading {names[2]}..."
    qtbot.waitUntil(lambda: c._model_job is None, timeout=60000)
    # A pick of another entry is one choice, though Qt sends both a change and an activation.
    window.panel.model.setCurrentIndex(0)
    window.panel.model.activated.emit(0)
    assert picks == [2, 0]
    qtbot.waitUntil(lambda: c._model_job is None, timeout=60000)


def test_the_autosave_tick_keeps_changed_settings_for_a_start_after_a_kill(window, tmp_path: Path) -> None:
    from app.model.settings import load_settings
    c = window.controller
    p = window.panel
    p.task.setCurrentIndex(p.task.findData("stroke_edit"))
    p.steps.setCurrentIndex(p.steps.findData(2))
    from app.ui.control_panel import size_to_slider  # the slider is logarithmic: a position, not px
    p.size.setValue(size_to_slider(20))
    c.autosave_tick()  # what the window's timer calls every 30 s; a kill -9 gives no other chance
    saved = load_settings(tmp_path / "settings.json")
    assert (saved.task, saved.steps, saved.brush_size) == ("stroke_edit", 2, 20.0)



def test_mask_shortcuts_and_menu_do_nothing_in_a_task_without_a_mask(window) -> None:
    c = window.controller
    drag(window, [(20, 20), (40, 25)])
    window.panel.task.setCurrentIndex(window.panel.task.findData("colorize"))
    mask, steps = c.document.mask.copy(), c.history.undo_label
    window.canvas.setFocus()
    for key, mods in ((Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier),
                      (Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier),
                      (Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)):
        QTest.keyClick(window.canvas, key, mods)
    assert (c.document.mask == mask).all() and c.history.undo_label == steps
    assert not any(a.isEnabled() for a in window.mask_actions)
    window.panel.task.setCurrentIndex(window.panel.task.findData("stroke_edit"))
    QTest.keyClick(window.canvas, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    assert c.history.undo_label == "Invert mask"


CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from PySide6.QtTest import QTest
from app.gui import launch
app, w = launch([sys.argv[1]])
c, p = w.controller, w.panel
while c.model is None:
    QTest.qWait(20)
p.task.setCurrentIndex(p.task.findData("stroke_edit"))
from app.ui.control_panel import size_to_slider  # the slider is logarithmic: a position, not px
p.size.setValue(size_to_slider(20))
for y in (10, 20, 30):
    c.begin_stroke(5, y); c.extend_stroke(50, y + 3); c.end_stroke()
c.autosave_tick()  # the window's 30 s timer
c.autosave.flush()
print("autosaved", int(c.document.mask.astype(int).sum()), flush=True)
time.sleep(120)
"""


def test_a_killed_app_s_work_and_settings_come_back_in_the_next_window(qtbot, dialog_log, photo_file: Path) -> None:
    from app.gui import build
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # the private config and state folders too
    line = kill_after_autosave([sys.executable, "-c", CHILD.format(root=str(root)), str(photo_file)], env)
    for answer in ("later", "recover"):
        dialog_log.recover_answer = answer
        w = build()
        qtbot.addWidget(w)
        try:
            w.controller.start([])
            c = w.controller
            assert dialog_log.recover_asked[-1].startswith("photo.png, autosaved ")
            assert (c.params.task, c.brush.size) == (Task.stroke_edit, 20.0)
            assert w.panel.task.currentData() == "stroke_edit" and w.panel.size_label.text() == "20 px"
            if answer == "later":
                assert c.document.path is None and not c.document.mask.any()
            else:
                assert c.document.path == photo_file and int(c.document.mask.astype(int).sum()) == int(line[1])
                assert c.history.undo_label == "Brush stroke"
                assert w.status_text.text().startswith("Recovered photo.png")
        finally:
            w.controller.document.saved_revision = w.controller.document.image_revision
            w.close()
            w.engine.shutdown()
    assert len(dialog_log.recover_asked) == 2

