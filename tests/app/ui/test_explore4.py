"""Fourth round of exploratory testing: status-bar messages, the compare key, and keyboard-only use.
Each test pins a bug that round found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QApplication

from app.model.brush import BrushTool
from app.ui import dialogs

from .conftest import wait_idle


def _focus(window, qtbot, widget) -> None:
    window.activateWindow()
    widget.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=2000)


def _key(kind: QEvent.Type, key: Qt.Key, text: str = "", repeat: bool = False) -> QKeyEvent:
    return QKeyEvent(kind, key, Qt.KeyboardModifier.NoModifier, text, repeat)


def _press_on_canvas(window, x: float, y: float, kind: QEvent.Type) -> None:
    cv = window.canvas
    pos = QPointF(cv.mapFromScene(QPointF(x, y)))
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
    event = QMouseEvent(kind, pos, cv.viewport().mapToGlobal(pos), Qt.MouseButton.LeftButton, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(cv.viewport(), event)


def test_holding_c_with_nothing_to_compare_says_so_and_keeps_the_mask_and_brush(window, qtbot) -> None:
    """Before any result, C hid the mask and stopped the brush, showing the same picture, with no word why."""
    c, cv, p = window.controller, window.canvas, window.panel
    assert not cv.has_before()
    _focus(window, qtbot, p.task)  # a focused combo: C and its repeats must not search its items either
    task = c.params.task
    qtbot.keyPress(p.task, Qt.Key.Key_C)
    QApplication.sendEvent(p.task, _key(QEvent.Type.KeyPress, Qt.Key.Key_C, "c", repeat=True))
    assert not cv.comparing() and cv._mask_layer.isVisible()
    assert window.status_text.text().startswith("Nothing to compare yet")
    # Painting while C is still down paints.
    _press_on_canvas(window, 20, 20, QEvent.Type.MouseButtonPress)
    _press_on_canvas(window, 20, 20, QEvent.Type.MouseButtonRelease)
    assert c.document.mask[20, 20] > 0
    qtbot.keyRelease(p.task, Qt.Key.Key_C)
    assert c.params.task == task and p.task.currentData() == task.value
    # Once there is a result, C compares as before.
    c.set_params(task="colorize")
    window.act_run.trigger()
    wait_idle(qtbot, window)
    assert cv.has_before()
    qtbot.keyPress(p.task, Qt.Key.Key_C)
    assert cv.comparing() and not cv._mask_layer.isVisible()
    qtbot.keyRelease(p.task, Qt.Key.Key_C)
    assert not cv.comparing()


def test_opening_notes_stay_in_the_status_bar_beside_the_untrained_model_warning(qtbot, tmp_path: Path,
                                                                                  dialog_log) -> None:
    """The untrained-model warning arrives just after the image opens and replaced its notes there."""
    from app.gui import build

    frames = [Image.fromarray(np.full((40, 60, 3), v, np.uint8)) for v in (40, 120, 200)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    w = build(settings_file=tmp_path / "settings.json", models_dir=tmp_path / "models")
    qtbot.addWidget(w)
    try:
        w.controller.start([str(gif)])
        w.show()
        qtbot.waitExposed(w)
        qtbot.waitUntil(lambda: w.controller.model is not None, timeout=10000)
        status = w.status_text.text()
        assert status.startswith("Opened anim.gif") and "first of 3 frames" in status
        # The warning is still shown, in full, in the panel, and scrolled into view there.
        assert "untrained test model" in w.panel.model_state.text()
        assert w.panel.model_state.isVisible() and not w.panel.model_state.visibleRegion().isEmpty()
    finally:
        w.close()
        w.engine.shutdown()


def test_the_colour_swatch_is_on_the_tab_chain_and_picks_the_colour_brush(window, qtbot, monkeypatch) -> None:
    """With the mask brush (the default) the swatch was greyed out: Tab skipped it, so did the mouse."""
    c, p = window.controller, window.panel
    assert c.brush.tool == BrushTool.mask
    checked = p.tools.checkedButton()
    _focus(window, qtbot, checked)
    qtbot.keyClick(checked, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is p.colour
    qtbot.keyClick(p.colour, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is p.size
    qtbot.keyClick(p.size, Qt.Key.Key_Backtab)
    assert QApplication.focusWidget() is p.colour
    asked: list[tuple[int, int, int]] = []
    monkeypatch.setattr(dialogs, "pick_colour", lambda parent, current: asked.append(current) or (10, 20, 30))
    qtbot.keyClick(p.colour, Qt.Key.Key_Space)
    assert asked == [(200, 60, 40)]
    assert c.brush.colour == (10, 20, 30) and c.brush.tool == BrushTool.colour
    assert p.tools.checkedButton().property("tool") == BrushTool.colour.value


def test_tab_goes_from_the_canvas_straight_to_the_task_and_random_names_its_shortcut(window, qtbot) -> None:
    """Keyboard-only pass: the panel's scroll area was a Tab stop that showed nothing and did nothing."""
    p = window.panel
    _focus(window, qtbot, window.canvas)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is p.task
    qtbot.keyClick(p.task, Qt.Key.Key_Backtab)
    assert QApplication.focusWidget() is window.canvas
    assert "Ctrl+R" in p.randomise.toolTip()
