"""Bugs found by exploratory testing of the main window, each pinned by the test that showed it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QRectF
from PySide6.QtGui import QGuiApplication, QImage

from app.ui.canvas import MAX_ZOOM, MIN_ZOOM, CanvasView

from .conftest import wait_idle
from .test_main_window import drag, drop_files


def _canvas(qtbot, image: np.ndarray, size: tuple[int, int] = (400, 300)) -> CanvasView:
    cv = CanvasView()
    qtbot.addWidget(cv)
    cv.resize(*size)
    cv.show()
    qtbot.waitExposed(cv)
    cv.set_image(image)
    cv.set_mask(np.zeros(image.shape[:2], np.uint8))
    cv.zoom_fit()
    return cv


def test_a_1x1_image_shown_first_is_drawn(qtbot) -> None:
    cv = _canvas(qtbot, np.array([[[10, 200, 30]]], np.uint8))
    assert cv.sceneRect() == QRectF(0, 0, 1, 1)
    shot = cv.viewport().grab().toImage()
    centre = shot.pixelColor(shot.width() // 2, shot.height() // 2)
    assert (centre.red(), centre.green(), centre.blue()) == (10, 200, 30)


def test_zooming_in_from_a_fit_beyond_the_limit_never_zooms_out(qtbot) -> None:
    cv = _canvas(qtbot, np.zeros((2, 2, 3), np.uint8))
    fit = cv.zoom()
    assert fit > MAX_ZOOM
    cv.zoom_in()
    assert cv.zoom() >= fit
    cv.zoom_out()
    assert cv.zoom() < fit


def test_zooming_out_from_a_fit_below_the_limit_never_zooms_in(qtbot) -> None:
    cv = _canvas(qtbot, np.zeros((1, 30000, 3), np.uint8))
    fit = cv.zoom()
    assert fit < MIN_ZOOM
    cv.zoom_out()
    assert cv.zoom() <= fit


def test_progress_names_the_running_task_after_the_picker_changes(window, qtbot) -> None:
    c = window.controller
    drag(window, [(20, 20), (40, 25)])
    shown: list[str] = []
    # Connected after the controller: runs once the progress bar shows this step.
    window.engine.progress.connect(lambda p: shown.append(window.progress.format()))
    window.act_run.trigger()
    window.panel.task.setCurrentIndex(window.panel.task.findData("colorize"))  # before any step arrives
    assert c.params.task.value == "colorize"
    wait_idle(qtbot, window)
    assert shown and all(text.startswith("Inpaint") for text in shown), shown
    assert window.status_text.text().startswith("Inpaint done")


def test_opening_an_image_while_a_task_runs_keeps_the_open_message(window, qtbot, tmp_path: Path) -> None:
    c = window.controller
    rotated = tmp_path / "rotated.jpg"
    im = Image.fromarray(np.full((30, 40, 3), 120, np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(rotated, exif=exif.tobytes())
    drag(window, [(20, 20), (40, 25)])
    window.act_run.trigger()
    assert c.busy
    window._open(rotated)
    qtbot.wait(300)  # the cancelled job's answer, if it still came, would arrive meanwhile
    wait_idle(qtbot, window)
    assert c.document.path == rotated
    assert window.act_run.isEnabled() and not window.act_cancel.isEnabled()
    text = window.status_text.text()
    assert text.startswith("Opened rotated.jpg") and "rotated upright" in text, text


def test_batch_progress_names_the_batch_task_after_the_picker_changes(window, qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(folder / f"b{i}.png")
    window.controller.set_params(task="upscale", upscale_factor=2)
    shown: list[str] = []
    window.engine.progress.connect(lambda p: shown.append(window.progress.format()))
    drop_files(window, [folder])
    window.panel.task.setCurrentIndex(window.panel.task.findData("colorize"))
    wait_idle(qtbot, window)
    assert (folder / "b1_upscale_2x.png").is_file()
    assert shown and all(text.startswith("Upscale") for text in shown), shown


def test_a_failed_checkpoint_import_does_not_still_say_importing(window, qtbot, dialog_log, tmp_path: Path) -> None:
    c = window.controller
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\0" * 100)
    c.import_checkpoint(junk)
    assert window.status_text.text() == "Importing junk.safetensors... (Esc cancels)"
    qtbot.waitUntil(lambda: not c.importing, timeout=20000)
    assert dialog_log.errors and dialog_log.errors[-1][0] == "Could not import the checkpoint"
    assert window.status_text.text() == "Could not import junk.safetensors."


def test_run_replaces_the_reason_an_earlier_run_was_refused(window, qtbot) -> None:
    window.act_run.trigger()
    assert "mask is empty" in window.status_text.text()
    drag(window, [(20, 20), (40, 25)])
    window.act_run.trigger()
    assert window.controller.busy
    assert window.status_text.text() == "Inpaint running; Esc cancels."
    wait_idle(qtbot, window)


def test_a_batch_replaces_the_reason_an_earlier_drop_was_refused(window, qtbot, tmp_path: Path) -> None:
    files = []
    for i in range(2):
        files.append(tmp_path / f"b{i}.png")
        Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(files[-1])
    drop_files(window, files)
    assert "choose Upscale or Colorize" in window.status_text.text()
    window.controller.set_params(task="colorize")
    drop_files(window, files)
    assert window.controller.busy
    assert window.status_text.text() == "Colorize batch running; Esc cancels."
    wait_idle(qtbot, window)
    assert window.status_text.text().startswith("Batch done: 2 written")


def test_the_progress_text_fits_its_bar(window, qtbot) -> None:
    drag(window, [(20, 20), (40, 25)])
    window.act_run.trigger()
    window.set_progress(12, 84, "Stroke edit: step 120/120")  # about the longest step text
    bar = window.progress
    assert bar.width() >= bar.fontMetrics().horizontalAdvance(bar.text()) + 16
    window.set_progress(12, 84, "Stroke edit: 14 % \u00b7 about 12 h 55 min left")  # with the time left
    bar = window.progress
    assert bar.isVisible()
    assert bar.width() >= bar.fontMetrics().horizontalAdvance(bar.text()) + 16
    wait_idle(qtbot, window)


def _whole_image_visible(cv: CanvasView) -> bool:
    shown = cv.mapFromScene(cv.sceneRect()).boundingRect()
    return cv.viewport().rect().adjusted(-1, -1, 1, 1).contains(shown)


def test_an_image_opened_after_zooming_in_is_shown_whole(window, tmp_path: Path) -> None:
    cv = window.canvas
    for _ in range(3):
        window.act_zoom_in.trigger()
    big = tmp_path / "big.png"
    Image.fromarray(np.full((600, 800, 3), 90, np.uint8)).save(big)
    drop_files(window, [big])
    assert window.controller.document.path == big
    assert _whole_image_visible(cv)
    window.act_zoom_in.trigger()
    QGuiApplication.clipboard().setImage(QImage(900, 700, QImage.Format.Format_RGB32))
    window.act_paste.trigger()
    assert window.controller.document.size == (900, 700)
    assert _whole_image_visible(cv)


def test_no_painting_while_comparing_since_the_mask_is_hidden(window) -> None:
    c = window.controller
    c.set_params(task="inpaint")
    window.canvas.set_compare(True)
    drag(window, [(20, 20), (60, 40)])
    assert not c.document.mask.any()
    window.canvas.set_compare(False)
    drag(window, [(20, 20), (60, 40)])
    assert c.document.mask.any()


def test_a_task_without_a_mask_refuses_mask_strokes_and_says_why(window) -> None:
    c = window.controller
    c.set_params(task="colorize")
    drag(window, [(20, 20), (60, 40)])
    assert not c.document.mask.any() and not c.history.can_undo
    assert window.status_text.text() == "Colorize does not use a mask: choose Inpaint or Stroke edit to paint one."
    c.set_brush(tool="colour", colour=(255, 0, 0))
    drag(window, [(20, 20), (60, 40)])  # the colour brush paints the picture itself in any task
    assert c.history.can_undo and not c.document.mask.any()
