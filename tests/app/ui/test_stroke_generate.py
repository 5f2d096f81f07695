"""Stroke edit and Generate as an artist meets them: what a run tells, keeps and lets undo."""

from __future__ import annotations

import numpy as np

from app.model.brush import BrushTool
from app.model.params import Task

from ..conftest import make_photo
from ..fakes import make_controller


def _paint(c, points, tool=BrushTool.colour):
    c.set_brush(tool=tool, size=12, colour=(220, 30, 30))
    c.begin_stroke(*points[0])
    for p in points[1:]:
        c.extend_stroke(*p)
    c.end_stroke()


def _last_status(view) -> str:
    return view.set_status.call_args_list[-1].args[0]


def test_unmasked_stroke_edit_of_a_large_photo_is_refused_until_masked(tmp_path):
    # Without a mask the whole photo was redrawn from a copy a few model resolutions wide and came
    # back soft everywhere (faces never painted turned to smears), and only then a note said why.
    c, view, engine = make_controller(tmp_path)
    c.open_array(make_photo(200, 300), "photo")
    c.set_params(task=Task.stroke_edit, strength=0.3)
    _paint(c, [(60 + i, 100) for i in range(0, 80, 4)])
    painted = np.array(c.document.image)
    assert c.run() is None and not engine.queue
    said = _last_status(view)
    assert "without a mask" in said and "paint the mask over your strokes" in said, said
    assert np.array_equal(c.document.image, painted)
    c.invert_mask()  # the way to redraw it all anyway, as the message says
    assert c.run() is not None
    engine.process()
    assert not np.array_equal(c.document.image, painted)


def test_masked_stroke_edit_keeps_the_rest_and_undo_brings_back_the_strokes(tmp_path):
    c, view, engine = make_controller(tmp_path)
    photo = make_photo(200, 300)
    c.open_array(photo, "photo")
    c.set_params(task=Task.stroke_edit, strength=0.5)
    _paint(c, [(60 + i, 100) for i in range(0, 80, 4)])
    painted = np.array(c.document.image)
    _paint(c, [(60 + i, 100) for i in range(0, 80, 4)], tool=BrushTool.mask)
    mask = c.document.mask.copy()
    assert c.run() is not None
    engine.process()
    out = c.document.image
    assert "mask" not in _last_status(view).split("done", 1)[1]  # a masked run needs no advice
    assert np.array_equal(out[mask == 0], painted[mask == 0])
    assert (out[mask > 0] != painted[mask > 0]).any()
    c.undo()
    assert np.array_equal(c.document.image, painted) and np.array_equal(c.document.mask, mask)
    c.undo()
    c.undo()
    assert np.array_equal(c.document.image, photo)


def test_small_photo_needs_no_note(tmp_path):
    c, view, engine = make_controller(tmp_path)
    c.open_array(make_photo(48, 64), "photo")
    c.set_params(task=Task.stroke_edit)
    _paint(c, [(20, 20), (30, 24)])
    c.run()
    engine.process()
    assert _last_status(view).startswith("Stroke edit done") and "mask" not in _last_status(view)


def test_the_strength_slider_shows_its_value_and_what_its_ends_mean(window, qtbot) -> None:
    w = window
    w.controller.set_params(task=Task.stroke_edit, strength=0.3)
    assert w.panel.strength_row.isVisibleTo(w) and w.panel.strength_value.text() == "30 %"
    w.panel.strength.setValue(75)
    assert w.panel.strength_value.text() == "75 %" and w.controller.params.strength == 0.75
    tip = w.panel.strength.toolTip()
    assert "low keeps" in tip and "high lets the model redraw" in tip
    w.controller.set_params(task=Task.inpaint)
    assert not w.panel.strength_row.isVisibleTo(w)


def test_the_soft_note_names_the_real_working_size_and_covers_panoramas(tmp_path):
    """A panorama below the short-side limit is still shrunk (the long side is capped at 4x the
    short one): it got no note; a tall one was said to be redrawn at the short-side limit."""
    from app import tasks
    from tests.app.fakes import make_controller as _mc

    c, view, engine = _mc(tmp_path)
    engine.process()
    model = engine.runner.model
    R = model.resolution
    wide = np.zeros((R, 12 * R, 3), np.uint8)  # short side at R: only the long side shrinks
    (note,) = tasks.stroke_notes(model, wide, None)
    h, w = model.stroke_size(*wide.shape[:2])
    assert f"{w}x{h} px" in note and w < wide.shape[1]
    assert tasks.stroke_notes(model, np.zeros((R, 2 * R, 3), np.uint8), None) == []
