"""The controller's results and status bar: results racing an undo, stale status messages, the progress
text against the Steps picker, and messages that named a tool the app lacks or a file twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.controller import EditorController
from app.model import Progress, Task
from tests.app.fakes import make_controller


@pytest.fixture
def photo_file(tmp_path: Path, photo: np.ndarray) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


def _stroke(c: EditorController, *points: tuple[float, float], erase: bool = False) -> None:
    c.begin_stroke(*points[0], erase=erase)
    for p in points[1:]:
        c.extend_stroke(*p)
    c.end_stroke()


def _said(view) -> str:
    return view.set_status.call_args.args[0]


# -- a result racing an undo ---------------------------------------------------------


def test_a_result_for_a_stroke_undone_while_it_ran_is_discarded_and_its_redo_kept(tmp_path, photo_file) -> None:
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    c.set_params(task="inpaint")
    image = c.document.image
    _stroke(c, (10, 20), (40, 20))
    assert c.run() is not None
    c.undo()  # Ctrl+Z right after Run
    engine.process()
    # Not painted where no mask is any more, and the stroke can still be redone.
    assert c.document.image is image and not c.document.mask.any()
    assert c.history.redo_label == "Brush stroke" and not c.history.can_undo
    assert "mask was undone" in _said(view) and "Redo" in _said(view)
    c.redo()
    assert c.document.mask[20, 25] == 255


def test_a_result_for_a_mask_partly_erased_while_it_ran_is_discarded(tmp_path, photo_file) -> None:
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    c.set_params(task="inpaint")
    image = c.document.image
    _stroke(c, (10, 20), (50, 20))
    c.run()
    _stroke(c, (45, 20), (50, 20), erase=True)  # took back the right end while it ran
    engine.process()
    assert c.document.image is image
    assert c.history.undo_label == "Erase stroke" and c.document.mask[20, 20] == 255
    assert "erased" in _said(view) and "Run again" in _said(view)


def test_an_erase_is_not_blamed_on_an_unrelated_undo(tmp_path, photo_file) -> None:
    """Erased part of the stroke, then painted and undid another: the redo brings back the other
    stroke, not the erased area, so the message must not send the user to Redo."""
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    c.set_params(task="inpaint")
    c.set_brush(size=6)
    _stroke(c, (10, 20), (40, 20))
    c.run()
    _stroke(c, (35, 20), (40, 20), erase=True)  # part of what the job fills
    _stroke(c, (10, 40), (30, 40))  # elsewhere...
    c.undo()  # ...and taken back
    engine.process()
    assert "erased" in _said(view) and "Redo" not in _said(view)
    c.redo()
    assert c.document.mask[20, 38] != 255  # indeed: Redo did not bring the erased part back


def test_a_result_still_applies_when_only_a_stroke_painted_meanwhile_was_undone_and_says_its_redo_went(
        tmp_path, photo_file) -> None:
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    c.set_params(task="inpaint")
    image = c.document.image
    _stroke(c, (10, 20), (30, 20))
    c.run()
    _stroke(c, (10, 40), (30, 40))  # the next area, painted while it runs...
    c.undo()  # ...and taken back: the area the job fills is still masked
    engine.process()
    assert c.document.image is not image and c.history.undo_label == "Inpaint"
    assert not c.history.can_redo
    assert _said(view).startswith("Inpaint done in")
    assert "Redo of Brush stroke is no longer available" in _said(view)


def test_a_result_after_an_undo_made_before_the_run_says_nothing_of_the_redo(tmp_path, photo_file) -> None:
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    c.set_params(task="inpaint")
    _stroke(c, (10, 20), (30, 20))
    _stroke(c, (10, 40), (30, 40))
    c.undo()  # before Run: the Run itself is the new step the user chose, as in any editor
    c.run()
    engine.process()
    assert c.history.undo_label == "Inpaint" and "no longer available" not in _said(view)


# -- status messages that stayed or were replaced -------------------------------------


def test_a_broken_model_file_does_not_hide_what_the_open_said(tmp_path, photo_file) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "broken.safetensors").write_bytes(b"junk")
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    said = [call.args[0] for call in view.set_status.call_args_list]
    assert any(t.startswith("Opened photo.png (64x48).") and "Skipped unreadable model files: broken.safetensors" in t
               for t in said), said
    assert said[-1].startswith("Opened photo.png")


def test_the_status_says_what_a_mask_import_did_not_what_the_export_before_it_did(tmp_path, photo_file) -> None:
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    _stroke(c, (10, 20), (30, 20))
    assert c.export_mask(tmp_path / "m.png")
    assert _said(view) == "Mask saved to m.png."
    c.clear_mask()
    assert c.import_mask(tmp_path / "m.png")
    assert _said(view) == "Imported the mask from m.png." and c.document.mask[20, 20] == 255
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert not c.import_mask(tmp_path / "bad.png")
    assert _said(view).startswith("Could not import the mask from bad.png")
    assert view.show_error.call_args.args[0] == "Could not import the mask"


def test_an_undo_message_goes_once_a_new_step_is_made(tmp_path, photo_file) -> None:
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    c.set_params(task="generate")
    c.run()
    engine.process()
    c.undo()
    assert _said(view) == "Undone: Generate."
    c.set_params(task="stroke_edit")
    c.set_brush(tool="colour")
    _stroke(c, (10, 20), (30, 20))
    assert c.history.undo_label == "Colour stroke"
    assert _said(view) == ""  # not "Undone: Generate." next to "Undo Colour stroke"


def test_a_stroke_keeps_a_status_that_still_holds(tmp_path, photo_file) -> None:
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    c.set_params(task="inpaint")
    _stroke(c, (10, 20), (30, 20))
    c.run()
    running = _said(view)
    assert running.startswith("Inpaint running")
    _stroke(c, (10, 40), (30, 40))
    assert _said(view) == running  # nothing stale to take away
    c.undo()
    _stroke(c, (10, 40), (20, 40))
    assert _said(view) == running  # the undo message goes, the job still runs


# -- the progress text and the Steps picker -------------------------------------------


def test_the_progress_text_shows_no_step_count_the_picker_does_not_name(tmp_path, photo_file) -> None:
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    c.set_params(task="inpaint")
    _stroke(c, (10, 20), (30, 20))
    job = c.run()
    # "Default (80 steps)" in the picker; the engine counts 86 evaluations with the structure and
    # refinement passes. The bar said "step 29/86".
    c.on_progress(Progress(job, 29, 86))
    text = view.set_progress.call_args.args[2]
    assert text == "Inpaint: 33 %" and "86" not in text


# -- messages ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit, way", [(20_000, "choose a smaller factor (2x)"),
                                        (5_000, "crop or shrink the picture")])
def test_a_refused_upscale_names_only_what_the_user_can_do(tmp_path, photo_file, monkeypatch, limit, way) -> None:
    from app import controller as controller_module
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    monkeypatch.setattr(controller_module.imageio, "MAX_PIXELS", limit)  # 64x48: x4 is 49152 px, x2 12288
    c.set_params(task="upscale", upscale_factor=4)
    assert c.run() is None and not engine.queue
    said = _said(view)
    assert said.startswith("Upscaling 64x48 by 4 would make 256x192") and way in said
    assert "in another image editor" in said and "crop the picture first" not in said


def test_a_failed_batch_file_is_named_once(tmp_path, photo_file) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.open(photo_file).save(folder / "a.png")
    (folder / "c.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    c.set_params(task=Task.colorize)
    assert c.run_batch([folder]) is not None
    engine.process()
    title, message = view.show_error.call_args.args
    assert title == "Some files could not be processed"
    assert message.startswith("c.jpg: ") and str(folder) not in message and message.count("c.jpg") == 1


# -- the busy state lasts until a result is shown ----------------------------------------


def _view_calls(view) -> list[tuple[str, tuple]]:
    return [(name, args) for name, args, _ in view.mock_calls]


def test_the_view_stays_busy_until_the_result_is_shown(tmp_path, photo_file) -> None:
    """Putting a 96 Mpx result on screen holds the UI thread for 0.6 s: the progress bar went first, so
    the window looked idle while frozen."""
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    _stroke(c, (10, 20), (40, 20))
    c.run()
    view.reset_mock()
    engine.process()
    calls = _view_calls(view)
    idle = calls.index(("set_busy", (False,)))
    shown = max(i for i, (name, _) in enumerate(calls) if name == "set_image")
    said = max(i for i, (name, args) in enumerate(calls) if name == "set_status" and "done in" in args[0])
    assert shown < idle and said < idle
    assert [args for name, args in calls if name == "set_busy"] == [(False,)]
    assert c._job is None and c.history.undo_label == "Inpaint"


def test_the_busy_state_ends_even_when_applying_a_result_fails(tmp_path, photo_file, monkeypatch) -> None:
    c, view, engine = make_controller(tmp_path, start=[str(photo_file)])
    _stroke(c, (10, 20), (40, 20))
    c.run()
    view.reset_mock()

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(c.document, "set_image", out_of_memory)
    with pytest.raises(MemoryError):
        engine.process()
    view.set_busy.assert_called_once_with(False)
    assert c._job is None
