"""Very large photos: what undo, the mask overlay and the undo limit cost and tell the user.

Found by exploratory testing with a 12000x8000 photo; the tests use small pictures with the limits
lowered, and count work instead of timing it (two shared cores make timings flaky).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.model import Task
from app.model.brush import BrushTool
from app.model.document import Document
from app.model.history import History
from app.ui import canvas as canvas_module
from app.ui.qimage import OVERLAY_OPACITY, OVERLAY_RGB, overlay_pixels

from .conftest import make_photo
from .fakes import make_controller, scripted_view


def _stroke(c, x0: float, y0: float, x1: float, y1: float) -> None:
    c.begin_stroke(x0, y0)
    c.extend_stroke((x0 + x1) / 2, (y0 + y1) / 2)
    c.extend_stroke(x1, y1)
    c.end_stroke()


@pytest.fixture
def editor(tmp_path: Path):
    c, view, engine = make_controller(tmp_path, view=scripted_view())
    c.open_array(make_photo(120, 160), "photo.png")
    c.set_params(task=Task.inpaint, steps=1)
    c.set_brush(size=12)
    return c, view, engine


# -- undo and redo of a mask edit do not send the unchanged image again --------------------------


def test_undo_and_redo_of_a_mask_stroke_send_only_the_mask(editor) -> None:
    c, view, engine = editor
    _stroke(c, 20, 20, 60, 40)
    c.run()
    engine.process()  # a result: the document now has a 'before' as well
    assert c.document.before is not None
    _stroke(c, 100, 80, 140, 100)
    view.reset_mock()
    c.undo()
    c.redo()
    c.undo()
    # Converting and copying a 96 Mpx image and its 'before' took ~0.3 s each, for pixels unchanged.
    view.set_image.assert_not_called()
    view.set_before.assert_not_called()
    assert view.set_mask.call_count == 3
    assert (view.set_mask.call_args.args[0] == c.document.mask).all()


def test_undo_of_a_result_or_a_colour_stroke_still_shows_the_image_it_restores(editor) -> None:
    c, view, engine = editor
    original = c.document.image
    c.set_brush(tool=BrushTool.colour)
    _stroke(c, 20, 20, 60, 40)
    view.reset_mock()
    c.undo()  # the canvas holds the stroke's pixels: the restored image must be sent
    assert view.set_image.call_args.args[0] is original
    c.redo()
    assert (view.set_image.call_args.args[0] == c.document.image).all()
    c.set_brush(tool=BrushTool.mask)
    _stroke(c, 100, 80, 140, 100)
    c.run()
    engine.process()
    view.reset_mock()
    c.undo()  # back before the result: image and 'before' both change
    view.set_image.assert_called_once()
    view.set_before.assert_called_once()
    assert (view.set_image.call_args.args[0] == c.document.image).all()


def test_a_colour_stroke_started_and_abandoned_by_an_open_shows_the_new_picture(editor) -> None:
    c, view, _ = editor
    c.set_brush(tool=BrushTool.colour)
    c.begin_stroke(20, 20)
    c.extend_stroke(60, 40)
    picture = make_photo(120, 160, seed=3)
    c.open_array(picture, "other.png")
    assert (view.set_image.call_args.args[0] == picture).all()


# -- the mask overlay ------------------------------------------------------------------------------


def test_the_overlay_is_the_premultiplied_overlay_colour_for_every_mask_value() -> None:
    mask = np.arange(256, dtype=np.uint8).reshape(16, 16)
    a = np.floor(np.arange(256) * int(OVERLAY_OPACITY * 256) / 256).reshape(16, 16)
    r, g, b = OVERLAY_RGB
    expected = np.stack([np.floor((a * b + 127) / 255), np.floor((a * g + 127) / 255),
                         np.floor((a * r + 127) / 255), a], axis=-1)
    assert (overlay_pixels(mask) == expected).all()
    assert (overlay_pixels(mask[3:9, 2:5]) == expected[3:9, 2:5]).all()  # a view of a bigger mask


def test_showing_a_whole_mask_converts_only_the_part_painted(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    converted: list[tuple[int, ...]] = []

    def counting(mask: np.ndarray) -> np.ndarray:
        converted.append(mask.shape)
        return overlay_pixels(mask)

    monkeypatch.setattr(canvas_module, "overlay_pixels", counting)
    cv = canvas_module.CanvasView()
    qtbot.addWidget(cv)
    cv.set_image(np.zeros((600, 900, 3), np.uint8))
    mask = np.zeros((600, 900), np.uint8)
    mask[100:140, 200:260] = 255
    mask[150, 300] = 7
    cv.set_mask(mask)  # undo, a result and an open show the whole mask
    assert converted == [(51, 101)]
    assert (cv._overlay.array == overlay_pixels(mask)).all()
    cv.set_mask(np.zeros_like(mask))  # a result clears what it filled
    assert converted == [(51, 101)]
    assert not cv._overlay.array.any()


# -- the undo memory limit -------------------------------------------------------------------------


def test_history_says_how_many_old_steps_it_dropped() -> None:
    doc = Document(make_photo(40, 50))
    hist = History(max_entries=3, max_bytes=10**9)
    assert [hist.record(doc.snapshot(), "Brush stroke") for _ in range(5)] == [0, 0, 0, 1, 1]
    small = History(max_entries=100, max_bytes=doc.image.nbytes + 2 * doc.mask.nbytes)
    assert [small.record(doc.snapshot(), "Brush stroke") for _ in range(4)] == [0, 0, 1, 1]
    assert small.nbytes <= small.max_bytes


def test_the_user_is_told_when_undo_drops_its_oldest_steps(editor) -> None:
    c, view, engine = editor
    mask_bytes = c.document.mask.nbytes
    # The limit of a 96 Mpx photo in small: room for the image and three masks.
    c.history.max_bytes = c.document.image.nbytes + 3 * mask_bytes
    for i in range(3):
        _stroke(c, 10 + 20 * i, 10, 20 + 20 * i, 30)
        assert "dropped" not in view.set_status.call_args.args[0]
    _stroke(c, 100, 10, 110, 30)
    said = view.set_status.call_args.args[0]
    assert "Undo now goes back 3 steps" in said and "oldest were dropped" in said
    c.run()
    engine.process()  # a result is a new image: the note follows what the task says
    said = view.set_status.call_args.args[0]
    assert said.startswith("Inpaint done in") and "oldest were dropped" in said
    steps = 0
    while c.history.can_undo:
        c.undo()
        steps += 1
    assert steps == len(c.history.entries()[1]) >= 1


def test_an_upscale_past_the_size_this_editor_opens_is_refused_before_it_runs(tmp_path: Path, monkeypatch) -> None:
    """x4 of a 96 Mpx photo would be 1536 Mpx (4.6 GB of pixels, hours of compute); here with the
    limit lowered to a small photo's size."""
    import engine.imageio as imageio

    c, view, engine = make_controller(tmp_path, view=scripted_view())
    c.open_array(make_photo(60, 80), "photo.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 200 * 200)
    monkeypatch.setattr(imageio.Image, "MAX_IMAGE_PIXELS", imageio.Image.MAX_IMAGE_PIXELS)  # load_picture sets it
    c.set_params(task=Task.upscale, upscale_factor=4)
    assert c.run() is None and engine.queue == []
    status = view.set_status.call_args.args[0]
    assert "Upscaling 80x60 by 4 would make 320x240" in status and "smaller factor" in status
    c.set_params(upscale_factor=2)
    assert c.run() is not None  # 160x120 fits
