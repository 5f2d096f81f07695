"""The image size of an imported official .pt: the file does not store it, the importer guesses
(256 px for a layout no released model has), and the user states the right one in the app: the
Size row under the model, Model > Image Size, or the controller's `set_image_size`. The choice is
kept next to the models (catalog.SIZES_FILE), the model files stay as imported, and a size the
network cannot run at is refused with the reason. Checkpoints are fabricated with the engine's own
code (tests/app/ui/test_import_flow.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.model import Task
from app.model.catalog import SIZES_FILE, read_model_info, scan_models, size_choices
from app.ui import dialogs
from tests.app.fakes import make_controller
from tests.app.ui.test_import_flow import diffusers_folder, official_pt


def _errors(view) -> list[tuple[str, str]]:
    return [c.args for c in view.show_error.call_args_list]


def _imported(tmp_path: Path):
    """A controller with an official .pt imported and loaded: its size (256 px) is a guess."""
    c, view, engine = make_controller(tmp_path)
    c.import_checkpoint(official_pt(tmp_path / "cd_cond10_64.pt"))
    engine.process()
    assert c.model is not None and c.model.resolution == 256 and "256 px?" in c.model.label
    return c, view, engine


def test_the_size_of_a_guessed_model_can_be_set_and_is_used(tmp_path: Path) -> None:
    c, view, engine = _imported(tmp_path)
    # The tiny network has two levels: it runs at any even size; the common ones and the guess are offered.
    assert c.model.size_step == 2 and c.model.size_guess == 256
    assert size_choices(c.model) == (32, 64, 128, 256, 512)
    path = c.model.path
    before = path.read_bytes()

    assert c.set_image_size(32)
    engine.process()  # the model loads again, at 32 px
    assert _errors(view) == []
    info = c.model
    assert info.path == path and info.resolution == 32 and info.size_chosen
    assert "?" not in info.label and "32 px" in info.label
    assert "resolution" not in info.guessed  # the head width is still a guess; the size no longer
    assert engine.runner.model.resolution == 32
    assert engine.runner.model.spec.unet.attention_ds == (2,)  # attention stays at the level its weights have
    state = view.set_model_state.call_args
    assert "the size you chose" in state.args[0] and state.kwargs["ready"]
    assert path.read_bytes() == before  # the model file stays as imported

    c.set_params(task=Task.generate)
    c.run()
    engine.process()
    assert c.document.image.shape[:2] == (32, 32)


def test_the_size_is_remembered_for_that_model(tmp_path: Path) -> None:
    c, view, engine = _imported(tmp_path)
    c.set_image_size(64)
    engine.process()
    name = c.model.path.name

    # A restart: the picker lists the model at its size, and it loads at that size again.
    c2, view2, engine2 = make_controller(tmp_path)
    assert c2.model.path.name == name and c2.model.resolution == 64 and c2.model.size_chosen
    assert engine2.runner.model.resolution == 64
    assert "64 px" in view2.set_models.call_args.args[0][1].label
    # Stored apart from the model files, which the catalog lists as before.
    kept = json.loads((tmp_path / "models" / SIZES_FILE).read_text())
    assert kept["models"][name]["image_size"] == 64
    models, problems = scan_models(None, [tmp_path / "models"])
    assert problems == [] and [m.path.name for m in models if m.path] == [name]


def test_an_impossible_size_is_refused_with_the_reason(tmp_path: Path) -> None:
    c, view, engine = _imported(tmp_path)
    for bad, words in ((33, "multiples of 2 px"), (0, "give a positive number of pixels"), (-64, "-64 px is not an image size"),
                       ("abc", "not an image size"), (1.5, "not an image size"), (8192, "4096 px")):
        view.show_error.reset_mock()
        assert not c.set_image_size(bad)
        (title, message), = _errors(view)
        assert title == "Cannot use that image size" and words in message, message
    assert engine.queue == []  # nothing reloaded
    assert c.model.resolution == 256 and not c.model.size_chosen
    assert not (tmp_path / "models" / SIZES_FILE).exists()


def test_a_model_that_states_its_size_keeps_it(tmp_path: Path) -> None:
    c, view, engine = make_controller(tmp_path)
    c.import_checkpoint(diffusers_folder(tmp_path / "stated64"))
    engine.process()
    assert c.model.resolution == 64 and c.model.size_step == 0 and size_choices(c.model) == ()
    assert not c.set_image_size(128)
    (title, message), = _errors(view)
    assert "states its own image size (64 px)" in message
    assert c.model.resolution == 64


def test_a_damaged_or_stale_size_file_falls_back_to_the_guess(tmp_path: Path) -> None:
    c, view, engine = _imported(tmp_path)
    path = c.model.path
    sizes = tmp_path / "models" / SIZES_FILE
    sizes.write_text("{not json")
    assert read_model_info(path).resolution == 256  # a damaged file is no failure
    sizes.write_text(json.dumps({"models": {path.name: {"image_size": 33, "bytes": path.stat().st_size}}}))
    assert read_model_info(path).resolution == 256  # a size this network cannot run at
    sizes.write_text(json.dumps({"models": {path.name: {"image_size": 64, "bytes": 1}}}))
    assert read_model_info(path).resolution == 256  # kept for another file of that name
    sizes.write_text(json.dumps({"models": {path.name: {"image_size": 64, "bytes": path.stat().st_size}}}))
    assert read_model_info(path).resolution == 64


def test_a_new_import_under_an_old_name_starts_from_its_own_guess(tmp_path: Path) -> None:
    c, view, engine = _imported(tmp_path)
    c.set_image_size(64)
    engine.process()
    path = c.model.path
    path.unlink()  # the user deletes the model, then imports the same file again
    c.import_checkpoint(official_pt(tmp_path / "cd_cond10_64.pt"))
    engine.process()
    assert c.model.path == path and c.model.resolution == 256 and not c.model.size_chosen


# -- the window ----------------------------------------------------------------------------------------------------


def _import_in_window(qtbot, w, source: Path) -> None:
    w.controller.import_checkpoint(source)
    qtbot.waitUntil(lambda: w.controller.model is not None and w.controller.model.path is not None
                    and not w.controller.importing, timeout=30000)


def test_the_size_row_and_menu_offer_the_sizes(qtbot, window, tmp_path: Path, dialog_log,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    w = window
    p = w.panel
    # The built-in test model states its size: no row, no menu entry.
    assert not p.model_size.isVisibleTo(p) and not w.act_image_size.isEnabled()

    _import_in_window(qtbot, w, official_pt(tmp_path / "cd_cond10_64.pt"))
    assert p.model_size.isVisibleTo(p) and w.act_image_size.isEnabled()
    items = [p.model_size.itemText(i) for i in range(p.model_size.count())]
    assert items == ["32 px", "64 px", "128 px", "256 px (guessed)", "512 px", "Other..."]
    assert p.model_size.currentText() == "256 px (guessed)"
    assert "Size" in p.model_state.text()
    w.grab().save(str(tmp_path / "size_row.png"))

    p.model_size.activated.emit(p.model_size.findData(64))  # the user picks 64 px
    qtbot.waitUntil(lambda: w.controller.model is not None and w.controller.model.resolution == 64, timeout=30000)
    assert p.model_size.currentData() == 64 and "?" not in p.model.currentText()

    # Model > Image Size (and "Other..."): a size typed in the dialog.
    answers = iter(["100 px", "33", "lots"])
    monkeypatch.setattr(dialogs, "ask_image_size", lambda *a: next(answers))
    w.act_image_size.trigger()
    qtbot.waitUntil(lambda: w.controller.model is not None and w.controller.model.resolution == 100, timeout=30000)
    assert p.model_size.currentData() == 100  # a size typed joins the row
    for _ in range(2):  # an odd size, then no number at all: a message each, nothing changes
        p.model_size.activated.emit(p.model_size.findData(0))
    assert [t for t, _ in dialog_log.errors] == ["Cannot use that image size"] * 2
    assert "multiples of 2 px" in dialog_log.errors[0][1] and "'lots' is not an image size" in dialog_log.errors[1][1]
    assert w.controller.model.resolution == 100 and p.model_size.currentData() == 100
    # Cancelling the dialog leaves the row on the model's size, not on "Other...".
    monkeypatch.setattr(dialogs, "ask_image_size", lambda *a: None)
    p.model_size.setCurrentIndex(p.model_size.findData(0))
    p.model_size.activated.emit(p.model_size.findData(0))
    assert p.model_size.currentData() == 100
    assert np.array_equal(np.asarray(w.controller.document.image.shape[:2]), (48, 64))  # the photo is untouched
