"""The main window end to end: real widgets, the real engine thread, the tiny random model."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage, QKeySequence, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.model import Task
from app.ui.dialogs import save_image_file as REAL_SAVE_IMAGE_FILE  # before any test patches it

from .conftest import canvas_image, wait_idle


def _mouse(w, kind: QEvent.Type, x: float, y: float, button=Qt.MouseButton.LeftButton) -> None:
    """A mouse event at image pixel (x, y), delivered to the canvas viewport like a real one."""
    pos = QPointF(w.canvas.mapFromScene(QPointF(x, y)))
    held = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
    ev = QMouseEvent(kind, pos, w.canvas.viewport().mapToGlobal(pos), button, held, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(w.canvas.viewport(), ev)


def drag(w, points: list[tuple[float, float]], button=Qt.MouseButton.LeftButton) -> None:
    _mouse(w, QEvent.Type.MouseButtonPress, *points[0], button=button)
    for p in points[1:]:
        _mouse(w, QEvent.Type.MouseMove, *p, button=button)
    _mouse(w, QEvent.Type.MouseButtonRelease, *points[-1], button=button)


def drop_files(w, paths: list[Path]) -> None:
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    # Qt's own argument types (a drag enters at a QPoint, drops at a QPointF): PySide6 before 6.12
    # takes no other.
    for cls, pos in ((QDragEnterEvent, QPoint(20, 20)), (QDropEvent, QPointF(20, 20))):
        ev = cls(pos, Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(w.canvas.viewport(), ev)
        assert ev.isAccepted()


def test_window_starts_with_the_file_and_the_labelled_test_model(window) -> None:
    assert "photo.png" in window.windowTitle()
    assert window.panel.model.currentText().startswith("Untrained test model")
    assert "untrained test model" in window.panel.model_state.text()
    assert window.act_run.isEnabled() and not window.act_cancel.isEnabled()
    assert (canvas_image(window) == window.controller.document.image).all()


def test_a_mouse_stroke_sets_mask_pixels_and_the_overlay(window) -> None:
    window.controller.set_brush(size=6)
    drag(window, [(10, 20), (20, 20), (30, 20)])
    mask = window.controller.document.mask
    assert mask[20, 10:30].min() == 255 and mask[40, 20] == 0
    overlay = window.canvas._overlay.array
    assert overlay[20, 20, 3] > 0 and overlay[40, 20, 3] == 0  # semi-transparent, not opaque
    assert overlay[20, 20, 3] < 255
    drag(window, [(18, 20), (22, 20)], button=Qt.MouseButton.RightButton)  # right button erases
    assert window.controller.document.mask[20, 20] == 0


@pytest.mark.parametrize("task", list(Task))
def test_each_task_runs_and_its_result_appears_on_the_canvas(window, qtbot, task: Task) -> None:
    c = window.controller
    before = c.document.image
    drag(window, [(20, 20), (40, 25)])
    window.panel.task.setCurrentIndex(window.panel.task.findData(task.value))
    assert c.params.task == task
    if task == Task.upscale:
        window.panel.factor.setCurrentIndex(window.panel.factor.findData(2))
    with qtbot.waitSignal(window.engine.finished, timeout=20000):
        window.act_run.trigger()
    wait_idle(qtbot, window)
    assert c.document.image is not before
    assert (canvas_image(window) == c.document.image).all()
    assert window.canvas.has_before() and window.split.isEnabled()
    assert "done in" in window.status_text.text()


def test_cancel_mid_run(window, qtbot, tmp_path: Path) -> None:
    c = window.controller
    big = np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8)
    c.open_array(big)
    c.set_params(task="upscale", upscale_factor=4)
    steps: list[int] = []
    window.engine.progress.connect(lambda p: steps.append(p.done))
    window.act_run.trigger()
    qtbot.waitUntil(lambda: len(steps) >= 1, timeout=20000)
    assert window.act_cancel.isEnabled()
    window.act_cancel.trigger()
    n_at_cancel = len(steps)
    wait_idle(qtbot, window)
    assert len(steps) <= n_at_cancel + 1  # honoured within one step
    assert c.document.image is not None and c.document.image.shape == big.shape
    assert window.status_text.text() == "Cancelled."
    assert not window.act_cancel.isEnabled() and window.act_run.isEnabled()


def test_undo_redo_with_the_standard_shortcuts(window, qtbot) -> None:
    c = window.controller
    window.activateWindow()
    window.canvas.setFocus()
    drag(window, [(20, 20), (30, 20)])
    assert c.document.mask.any()
    assert "Ctrl+Z" in [s.toString() for s in window.act_undo.shortcuts()]
    assert "Ctrl+Shift+Z" in [s.toString() for s in window.act_redo.shortcuts()]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not c.document.mask.any()
    assert "Brush stroke" in window.act_redo.text()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert c.document.mask.any()
    assert (window.canvas._overlay.array[..., 3] > 0).any()


def test_dropping_a_file_opens_it(window, tmp_path: Path) -> None:
    other = tmp_path / "other.jpg"
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(other)
    drop_files(window, [other])
    assert window.controller.document.path == other
    assert canvas_image(window).shape == (30, 40, 3)
    assert "other.jpg" in window.windowTitle()
    assert window.recent_menu.actions()[0].text() == "other.jpg"


def test_a_bad_file_shows_an_error_and_leaves_the_document_intact(window, dialog_log, tmp_path: Path) -> None:
    c = window.controller
    drag(window, [(20, 20), (30, 20)])
    doc, image = c.document, canvas_image(window).copy()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    drop_files(window, [bad])
    assert len(dialog_log.errors) == 1 and "broken.png" in dialog_log.errors[0][1]
    assert c.document is doc and doc.mask.any()
    assert (canvas_image(window) == image).all()


def test_unsaved_changes_prompt_on_close(window, qtbot, dialog_log, tmp_path: Path) -> None:
    c = window.controller
    c.set_brush(tool="colour")
    drag(window, [(20, 20), (30, 20)])
    assert c.document.dirty and window.isWindowModified()
    dialog_log.unsaved_answer = "cancel"
    assert not window.close()
    assert window.isVisible() and dialog_log.unsaved_asked == 1
    dialog_log.unsaved_answer = "save"
    dialog_log.save_path = str(tmp_path / "saved")  # no extension: PNG is added
    window.controller.document.path = None
    assert window.close()
    assert (tmp_path / "saved.png").is_file() and not c.document.dirty


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_save_as_each_format(window, dialog_log, tmp_path: Path, suffix: str) -> None:
    dialog_log.save_path = str(tmp_path / f"out{suffix}")
    window.act_save_as.trigger()
    assert Image.open(tmp_path / f"out{suffix}").size == (64, 48)
    assert window.controller.document.path == tmp_path / f"out{suffix}"


def test_copy_and_paste_through_the_clipboard(window) -> None:
    c = window.controller
    window.act_copy.trigger()
    clip = QGuiApplication.clipboard().image()
    assert (clip.width(), clip.height()) == (64, 48)
    QGuiApplication.clipboard().setImage(QImage(20, 10, QImage.Format.Format_RGB32))
    window.act_paste.trigger()
    assert c.document.size == (20, 10) and c.document.name == "Pasted image"


def test_zoom_pan_and_compare(window, qtbot) -> None:
    cv = window.canvas
    window.act_zoom_100.trigger()
    assert cv.zoom() == pytest.approx(1.0)
    window.act_zoom_in.trigger()
    assert cv.zoom() == pytest.approx(1.25)
    assert any(s.toString() == "Ctrl+=" for s in window.act_zoom_in.shortcuts())
    wheel = QWheelEvent(QPointF(50, 50), cv.viewport().mapToGlobal(QPointF(50, 50)), QPoint(0, 0), QPoint(0, -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(cv.viewport(), wheel)
    assert cv.zoom() == pytest.approx(1.0)
    cv.set_zoom(30)  # far enough in to scroll
    h = cv.horizontalScrollBar().value()
    _mouse(window, QEvent.Type.MouseButtonPress, 30, 20, button=Qt.MouseButton.MiddleButton)
    pos = QPointF(cv.mapFromScene(QPointF(30, 20))) + QPointF(-40, 0)
    QApplication.sendEvent(cv.viewport(), QMouseEvent(QEvent.Type.MouseMove, pos, cv.viewport().mapToGlobal(pos),
                                                      Qt.MouseButton.NoButton, Qt.MouseButton.MiddleButton,
                                                      Qt.KeyboardModifier.NoModifier))
    _mouse(window, QEvent.Type.MouseButtonRelease, 30, 20, button=Qt.MouseButton.MiddleButton)
    assert cv.horizontalScrollBar().value() == h + 40
    assert not window.controller.document.mask.any()  # panning never paints
    window.act_zoom_fit.trigger()
    # Compare: after a result, holding C shows the earlier image; the slider shows part of it.
    window.controller.set_params(task="colorize")
    window.act_run.trigger()
    wait_idle(qtbot, window)
    QApplication.sendEvent(window, _key(QEvent.Type.KeyPress, Qt.Key.Key_C))
    assert cv._compare_held and cv._clip.isVisible() and cv._clip.rect().width() == 64
    QApplication.sendEvent(window, _key(QEvent.Type.KeyRelease, Qt.Key.Key_C))
    assert not cv._clip.isVisible()
    window.split.setValue(50)
    assert cv._clip.isVisible() and cv._clip.rect().width() == 32


def _key(kind: QEvent.Type, key: Qt.Key):
    from PySide6.QtGui import QKeyEvent

    return QKeyEvent(kind, key, Qt.KeyboardModifier.NoModifier)


def test_bracket_keys_resize_the_brush(window) -> None:
    size = window.controller.brush.size
    assert window.act_bigger.shortcut() == QKeySequence("]")
    window.act_bigger.trigger()
    assert window.controller.brush.size > size
    from app.ui.control_panel import size_to_slider  # the slider is logarithmic: a position, not px
    assert window.panel.size.value() == size_to_slider(window.controller.brush.size)
    window.act_smaller.trigger()
    window.act_smaller.trigger()
    assert window.controller.brush.size < size


def test_live_mode_reruns_inpainting_when_a_stroke_is_released(window, qtbot) -> None:
    c = window.controller
    assert window.panel.live.isEnabled()
    window.panel.live.setChecked(True)
    assert c.params.live
    finished: list[object] = []
    window.engine.finished.connect(finished.append)
    for y in (10, 20, 30):  # three quick strokes: at most one job in flight, the latest wins
        drag(window, [(10, y), (40, y)])
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: c.history.undo_label == "Inpaint (live)", timeout=10000)
    assert 1 <= len(finished) <= 2


def test_ui_thread_stays_responsive_while_a_job_runs(window, qtbot, capsys) -> None:
    """Heartbeat: a 5 ms timer on the UI thread keeps ticking while the job runs. A job run on the UI
    thread would stop it for the whole job; the bound is half of that, not a speed target, so a
    busy machine's hiccups (tens of ms) do not fail it."""
    c = window.controller
    c.open_array(np.random.default_rng(1).integers(0, 255, (32, 48, 3), np.uint8))
    c.set_params(task="upscale", upscale_factor=4)
    ticks: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    qtbot.wait(100)
    ticks.clear()
    t0 = time.perf_counter()
    ticks.append(t0)  # a Run that blocked the UI thread shows as the gap from here to the first tick
    window.act_run.trigger()
    wait_idle(qtbot, window, timeout=60000)
    elapsed = time.perf_counter() - t0
    timer.stop()
    gaps = np.diff(ticks) * 1000
    worst = float(gaps.max())
    with capsys.disabled():
        print(f"\n[heartbeat] job {elapsed:.2f} s, {len(ticks)} ticks, worst UI gap {worst:.1f} ms, "
              f"p99 {np.percentile(gaps, 99):.1f} ms")
    assert elapsed > 0.2, "the job must be long enough to measure anything"
    assert c.document.image.shape == (128, 192, 3)
    assert worst < 500 * elapsed, f"the UI thread stopped for {worst:.0f} ms of a {elapsed * 1000:.0f} ms job"


def test_fine_detail_shows_for_x4_and_x8_upscaling_and_sets_the_parameter(window) -> None:
    c, panel = window.controller, window.panel
    panel.task.setCurrentIndex(panel.task.findData(Task.upscale.value))
    panel.factor.setCurrentIndex(panel.factor.findData(4))
    assert panel.detail.isVisibleTo(panel) and not panel.detail.isChecked()
    panel.detail.setChecked(True)
    assert c.params.upscale_detail
    assert panel.detail.isChecked()  # the round trip through the controller keeps it
    panel.factor.setCurrentIndex(panel.factor.findData(2))
    assert not panel.detail.isVisibleTo(panel)  # x2's default loop already carries the detail
    panel.task.setCurrentIndex(panel.task.findData(Task.colorize.value))
    assert not panel.detail.isVisibleTo(panel)


# -- input the canvas never sees the end of, Save As file types, settings that cannot be shown ----


def test_an_error_dialog_during_a_drag_ends_the_stroke(window, dialog_log) -> None:
    from app.model import JobFailed

    c = window.controller
    c.set_brush(size=6)
    drag(window, [(20, 20), (40, 20)])
    job = c.run()
    _mouse(window, QEvent.Type.MouseButtonPress, 10, 40)
    _mouse(window, QEvent.Type.MouseMove, 20, 40)
    # The engine's failure arrives mid-drag; its modal box takes the mouse, so the release never comes.
    c.on_failed(JobFailed(job, "Out of memory."))
    assert dialog_log.errors == [("The task failed", "Out of memory.")]
    assert not window.canvas._painting and c._stroke is None
    assert c.history.undo_label == "Brush stroke" and c.document.mask[40, 15] == 255
    _mouse(window, QEvent.Type.MouseMove, 40, 40, button=Qt.MouseButton.NoButton)  # hovering after the box
    assert c.document.mask[40, 40] == 0
    c.undo()  # undo works again (it is refused mid-stroke)
    assert c.document.mask[40, 15] == 0


def test_a_release_the_canvas_never_saw_ends_the_stroke_on_the_next_move(window) -> None:
    c = window.controller
    c.set_brush(size=6)
    _mouse(window, QEvent.Type.MouseButtonPress, 10, 30)
    _mouse(window, QEvent.Type.MouseMove, 20, 30)
    _mouse(window, QEvent.Type.MouseMove, 40, 30, button=Qt.MouseButton.NoButton)  # no button held any more
    assert c._stroke is None and c.history.undo_label == "Brush stroke"
    assert c.document.mask[30, 15] == 255 and c.document.mask[30, 40] == 0
    # Losing the focus (another window, a popup) mid-drag ends the stroke too.
    _mouse(window, QEvent.Type.MouseButtonPress, 10, 10)
    from PySide6.QtGui import QFocusEvent

    QApplication.sendEvent(window.canvas, QFocusEvent(QEvent.Type.FocusOut, Qt.FocusReason.ActiveWindowFocusReason))
    assert c._stroke is None and not window.canvas._painting


@pytest.mark.parametrize("chosen, saved", [("JPEG (*.jpg *.jpeg)", "photo.jpg"), ("WebP (*.webp)", "photo.webp"),
                                           ("TIFF (*.tif *.tiff)", "photo.tif"), ("PNG (*.png)", "photo.png"),
                                           ("BMP (*.bmp)", "photo.bmp")])
def test_save_as_adds_the_chosen_file_type(window, monkeypatch, tmp_path: Path, chosen: str, saved: str) -> None:
    from app.ui import dialogs

    folder = tmp_path / "saved"
    folder.mkdir()

    class FileDialog:  # stands in for QFileDialog: the user typed "photo" and picked a type
        @staticmethod
        def getSaveFileName(parent, caption, suggested, filters, selected=""):
            assert chosen in filters.split(";;")
            return str(folder / "photo"), chosen

    monkeypatch.setattr(dialogs, "save_image_file", REAL_SAVE_IMAGE_FILE)
    monkeypatch.setattr(dialogs, "QFileDialog", FileDialog)
    window.act_save_as.trigger()
    assert [p.name for p in folder.iterdir()] == [saved]
    assert window.controller.document.path == folder / saved
    fmt = {".jpg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".png": "PNG", ".bmp": "BMP"}[Path(saved).suffix]
    assert Image.open(folder / saved).format == fmt


def test_settings_that_cannot_be_shown_do_not_stop_the_start(qtbot, tmp_path: Path, dialog_log, photo_file) -> None:
    from app.gui import build

    settings = tmp_path / "settings.json"
    settings.write_text('{"brush_size": NaN, "brush_hardness": Infinity, "steps": 3}')
    w = build(settings_file=settings, models_dir=tmp_path / "models")
    qtbot.addWidget(w)
    try:
        w.controller.start([str(photo_file)])  # used to raise in round(nan) while filling the panel
        c = w.controller
        from app.ui.control_panel import size_to_slider  # the slider is logarithmic: a position, not px
        assert w.panel.size.value() == size_to_slider(c.brush.size) and round(c.brush.size) == 48
        assert w.panel.steps.currentData() == c.params.steps == 0  # the value used is the value shown
    finally:
        w.close()
        w.engine.shutdown()


# -- typed values, held keys (C, Space), screen scale, brush range, mask export -------------------


def test_a_value_typed_without_enter_is_used_by_run(window, qtbot, monkeypatch) -> None:
    """Feather typed, no Enter, then the Run button (which takes no focus): the run uses the typed value."""
    c, p = window.controller, window.panel
    c.set_params(task="inpaint", feather=8)
    drag(window, [(20, 20), (40, 25)])
    _focus(window, qtbot, p.feather)
    p.feather.selectAll()  # the number, not the suffix
    qtbot.keyClicks(p.feather, "20")
    assert p.feather.text() == "20 px" and c.params.feather == 8  # keyboard tracking is off: nothing sent yet
    submitted = []
    submit = window.engine.submit
    monkeypatch.setattr(window.engine, "submit", lambda request: (submitted.append(request), submit(request))[1])
    qtbot.mouseClick(p.run_button, Qt.MouseButton.LeftButton)
    assert c.params.feather == 20 and submitted and submitted[-1].params.feather == 20
    wait_idle(qtbot, window)


def _focus(window, qtbot, widget) -> None:
    window.activateWindow()
    widget.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=2000)


def test_holding_c_on_a_focused_combo_compares_and_leaves_the_combo_alone(window, qtbot) -> None:
    """A non-editable combo searches its items by key: C would pick Colorize. It must compare instead."""
    from PySide6.QtGui import QKeyEvent

    c, p, cv = window.controller, window.panel, window.canvas
    c.set_params(task="inpaint")
    window.set_before(c.document.image)  # something to compare with (C does nothing without)
    _focus(window, qtbot, p.task)
    qtbot.keyPress(p.task, Qt.Key.Key_C)
    assert cv.comparing() and not cv._mask_layer.isVisible()
    repeat = QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_C, Qt.KeyboardModifier.NoModifier, "c", True)
    QApplication.sendEvent(p.task, repeat)  # the auto-repeat of a held key goes nowhere either
    qtbot.keyRelease(p.task, Qt.Key.Key_C)
    assert not cv.comparing() and cv._mask_layer.isVisible()
    assert c.params.task == Task.inpaint and p.task.currentData() == Task.inpaint.value
    # Where C is typed (a spin box), it is left alone.
    _focus(window, qtbot, p.seed)
    qtbot.keyPress(p.seed, Qt.Key.Key_C)
    qtbot.keyRelease(p.seed, Qt.Key.Key_C)
    assert not cv.comparing()
    # With a menu open, C is the menu's mnemonic (&Copy Image), not compare.
    menu = window.menuBar().actions()[0].menu()
    menu.popup(window.mapToGlobal(QPoint(10, 10)))
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is menu, timeout=2000)
    qtbot.keyClick(menu, Qt.Key.Key_C)
    assert not cv.comparing() and window.status_text.text() == "Image copied to the clipboard."
    menu.close()


def test_compare_ends_when_the_window_loses_the_keyboard(window) -> None:
    """C released in a dialog or another window (Alt+Tab) never reaches us: compare must not stay on."""
    cv = window.canvas
    window.set_before(window.controller.document.image)  # something to compare with (C does nothing without)
    QApplication.sendEvent(window, _key(QEvent.Type.KeyPress, Qt.Key.Key_C))
    assert cv.comparing() and not cv._mask_layer.isVisible()
    QApplication.sendEvent(window, QEvent(QEvent.Type.WindowDeactivate))
    assert not cv.comparing() and cv._mask_layer.isVisible()
    QApplication.sendEvent(window, _key(QEvent.Type.KeyPress, Qt.Key.Key_C))
    assert cv.comparing()
    window.act_shortcuts.trigger()  # a modal dialog (patched: returns at once) takes the keyboard
    assert not cv.comparing() and cv._mask_layer.isVisible()


def test_actual_size_is_one_image_pixel_per_device_pixel(window, monkeypatch) -> None:
    """At 200 % screen scaling 100 % means a view scale of 0.5; the zoom label counts device pixels."""
    from app.ui.canvas import CanvasView

    cv = window.canvas
    monkeypatch.setattr(CanvasView, "devicePixelRatioF", lambda self: 2.0)
    window.act_zoom_100.trigger()
    assert cv.zoom() == pytest.approx(0.5) and cv.device_zoom() == pytest.approx(1.0)
    assert window.zoom_text.text() == "100 %"
    window.act_zoom_in.trigger()
    assert window.zoom_text.text() == "125 %"


def test_space_pans_over_the_canvas_whatever_has_the_focus(window, qtbot) -> None:
    """With the Live checkbox focused, Space+drag pans: Live is not toggled and the drag does not paint."""
    c, p, cv = window.controller, window.panel, window.canvas
    c.set_params(task="inpaint", live=False)
    cv.set_zoom(30)
    _focus(window, qtbot, p.live)
    cv.setAttribute(Qt.WidgetAttribute.WA_UnderMouse, True)  # the pointer is over the canvas (offscreen has none)
    qtbot.keyPress(p.live, Qt.Key.Key_Space)
    assert cv.pan_key_held()
    h = cv.horizontalScrollBar().value()
    _mouse(window, QEvent.Type.MouseButtonPress, 30, 20)
    pos = QPointF(cv.mapFromScene(QPointF(30, 20))) + QPointF(-40, 0)
    QApplication.sendEvent(cv.viewport(), QMouseEvent(QEvent.Type.MouseMove, pos, cv.viewport().mapToGlobal(pos),
                                                      Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton,
                                                      Qt.KeyboardModifier.NoModifier))
    _mouse(window, QEvent.Type.MouseButtonRelease, 30, 20)
    qtbot.keyRelease(p.live, Qt.Key.Key_Space)
    assert not cv.pan_key_held() and cv.horizontalScrollBar().value() == h + 40
    assert not p.live.isChecked() and not c.params.live and not c.document.mask.any()
    # With the pointer elsewhere, Space keeps its usual meaning for the focused checkbox.
    cv.setAttribute(Qt.WidgetAttribute.WA_UnderMouse, False)
    _focus(window, qtbot, p.live)  # the press on the canvas gave it the focus
    qtbot.keyClick(p.live, Qt.Key.Key_Space)
    assert p.live.isChecked() and not cv.pan_key_held()
    p.live.setChecked(False)


def test_the_brush_size_slider_covers_the_whole_brush_range(window) -> None:
    from app.model.brush import MAX_SIZE, MIN_SIZE

    c, p = window.controller, window.panel
    from app.ui.control_panel import slider_to_size  # the slider is logarithmic: positions, not px
    assert (slider_to_size(p.size.minimum()), slider_to_size(p.size.maximum())) == (MIN_SIZE, MAX_SIZE)
    c.set_brush(size=MAX_SIZE - 100)
    for _ in range(10):
        window.act_bigger.trigger()  # ] up to the brush's own maximum
    assert c.brush.size == MAX_SIZE and p.size.value() == p.size.maximum() and p.size_label.text() == f"{MAX_SIZE:.0f} px"


def test_export_mask_starts_beside_the_image_and_always_writes_png(window, monkeypatch, photo_file: Path) -> None:
    from app.ui import dialogs

    c = window.controller
    drag(window, [(20, 20), (30, 20)])
    c.save_settings(last_dir="")  # never chose a folder: not the process's working folder
    asked: list[str] = []
    typed = photo_file.parent / "mask.jpg"
    monkeypatch.setattr(dialogs, "save_mask_file", lambda parent, suggested: (asked.append(suggested), str(typed))[1])
    window.act_export_mask.trigger()
    assert Path(asked[0]) == photo_file.parent / "photo-mask.png"
    assert not typed.exists()  # PNG data under a .jpg name would be a lie
    with Image.open(photo_file.parent / "mask.jpg.png") as im:
        assert im.format == "PNG" and im.size == (64, 48)
    # An extension added after the dialog: the file it lands on is asked about, not replaced silently.
    (photo_file.parent / "mask.jpg.png").write_bytes(b"the user's own file")
    monkeypatch.setattr(dialogs, "confirm_replace", lambda parent, name: False)
    window.act_export_mask.trigger()
    assert (photo_file.parent / "mask.jpg.png").read_bytes() == b"the user's own file"
    monkeypatch.setattr(dialogs, "confirm_replace", lambda parent, name: True)
    window.act_export_mask.trigger()
    with Image.open(photo_file.parent / "mask.jpg.png") as im:
        assert im.format == "PNG"
    c.open_array(np.zeros((8, 8, 3), np.uint8))  # no file behind it: home
    window.act_export_mask.trigger()
    assert Path(asked[-1]).parent == Path.home()
