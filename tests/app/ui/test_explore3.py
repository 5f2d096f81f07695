"""Third round of exploratory testing, as an artist at work: large photos, zoom, Live mode, saving.
Each test pins a bug that round found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPointF

from app.model import Task
from app.model.brush import BrushTool
from app.ui import dialogs
from tests.app.fakes import make_controller

from .conftest import wait_idle
from .test_explore import _canvas


def _live_stroke(tmp_path: Path, x0: int, x1: int):
    """A controller in Live mode after one stroke along row 50 from x0 to x1: its live job is queued."""
    c, view, engine = make_controller(tmp_path)
    c.set_params(live=True)
    image = c.document.image
    c.begin_stroke(x0, 50)
    c.extend_stroke(x1, 50)
    c.end_stroke()
    return c, view, engine, image


def test_a_live_result_for_a_stroke_undone_while_it_ran_is_dropped(tmp_path: Path) -> None:
    c, view, engine, image = _live_stroke(tmp_path, 50, 80)  # the live job starts with this stroke's mask
    c.undo()  # changed their mind before the result came
    engine.process()
    # Not painted where no mask is any more, and the stroke can still be redone.
    assert c.document.image is image
    assert c.history.redo_label == "Brush stroke" and not c.history.can_undo
    assert "discarded" in view.set_status.call_args.args[0]


def test_a_live_result_for_a_mask_partly_erased_while_it_ran_is_dropped_and_rerun(tmp_path: Path) -> None:
    c, view, engine, image = _live_stroke(tmp_path, 40, 120)
    first = engine.queue[-1]
    c.begin_stroke(120, 50, erase=True)  # take back the right end while the job runs
    c.end_stroke()
    engine.process()
    # The first result (for the longer mask) never shows; the re-run for the mask as it is now does.
    assert c.history.undo_label == "Inpaint (live)"
    assert c.history._undo[-1].snapshot.image is image  # one result on top of the strokes, not two
    assert c.document.image is not image
    assert first.mask[50, 120] > 0 and c.document.mask[50, 120] == 0
    # Where the mask was taken back the picture is as it was.
    assert np.array_equal(c.document.image[46:55, 116:126], image[46:55, 116:126])


def test_a_live_result_still_applies_when_strokes_were_only_added(tmp_path: Path) -> None:
    c, view, engine = make_controller(tmp_path)
    c.set_params(live=True)
    c.begin_stroke(40, 50)
    c.end_stroke()
    c.begin_stroke(150, 150)  # another area, painted while the first runs: queued, not a reason to drop
    c.end_stroke()
    engine.process()
    labels = [e.label for e in c.history._undo]
    assert labels == ["Brush stroke", "Brush stroke", "Inpaint (live)", "Inpaint (live)"]


def test_save_of_an_image_opened_from_a_read_only_format_goes_straight_to_save_as(window, dialog_log,
                                                                                  monkeypatch, tmp_path: Path) -> None:
    gif = tmp_path / "anim.gif"
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(gif)
    assert window._open(gif)
    c = window.controller
    c.set_brush(tool=BrushTool.colour)
    c.begin_stroke(5, 5)
    c.end_stroke()
    suggested: list[str] = []
    monkeypatch.setattr(dialogs, "save_image_file", lambda parent, name: suggested.append(name))
    window.act_save.trigger()
    # No "cannot save as .gif" box first, and a name that is saved as given (not "anim.gif.png").
    assert dialog_log.errors == []
    assert suggested == [str(tmp_path / "anim.png")]


def test_the_before_slider_splits_the_part_of_the_image_in_view(qtbot) -> None:
    image = np.zeros((300, 4000, 3), np.uint8)
    cv = _canvas(qtbot, image)
    cv.set_before(np.full_like(image, 255))
    cv.set_zoom(1.0)
    qtbot.wait(1)  # the scroll bars appear: the view gets narrower
    cv.horizontalScrollBar().setValue(0)  # the left end of a wide photo, at 100 %
    cv.set_split(0.5)

    def line_x() -> float:
        return cv.mapFromScene(QPointF(cv._split_line.line().x1(), 0)).x()

    # Half way across the view, not at x = 2000 (far right of it, where nothing showed 'before').
    assert abs(line_x() - cv.viewport().width() / 2) <= 1
    cv.horizontalScrollBar().setValue(cv.horizontalScrollBar().maximum())  # panning keeps it there
    assert abs(line_x() - cv.viewport().width() / 2) <= 1
    cv.zoom_fit()  # the whole image in view: half of the image
    qtbot.wait(1)  # the scroll bars go
    assert cv._split_line.line().x1() == 2000
    cv.set_compare(True)  # holding C still shows all of it, also what is out of view
    cv.set_zoom(2.0)
    assert cv._clip.rect().width() == 4000


def test_holding_c_shows_before_over_the_whole_image_after_a_result(window, qtbot) -> None:
    window.controller.set_params(task=Task.colorize)
    window.act_run.trigger()
    wait_idle(qtbot, window)
    window.canvas.set_zoom(8.0)
    window.split.setValue(30)
    window.canvas.set_compare(True)
    w, _ = window.controller.document.size
    assert window.canvas._clip.rect().width() == w and not window.canvas._split_line.isVisible()


def test_undo_and_redo_say_what_they_took_back(window, qtbot) -> None:
    c = window.controller
    c.set_params(task=Task.upscale)
    window.act_run.trigger()
    wait_idle(qtbot, window)
    assert window.status_text.text().startswith("Upscale done")
    window.act_undo.trigger()
    # Not still "Upscale done in ... s." over a picture back at its old size.
    assert window.status_text.text() == "Undone: Upscale."
    window.act_redo.trigger()
    assert window.status_text.text() == "Redone: Upscale."
