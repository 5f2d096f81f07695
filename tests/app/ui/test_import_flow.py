"""Exploratory testing of checkpoint import as a user who downloads OpenAI-style files: each test pins a
bug that round found. The checkpoints are fabricated here from tiny random networks in the official and
diffusers layouts (engine.checkpoint's own key mapping and config export)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from app.model.catalog import read_model_info
from app.ui.control_panel import ControlPanel
from engine import Model, preset
from engine.checkpoint import diffusers_config, official_to_diffusers
from engine.classes import class_names
from tests.app.fakes import make_controller

CLASSES = 10


def _weights(unet) -> dict[str, torch.Tensor]:
    spec = dataclasses.replace(preset("tiny"), unet=unet)
    net = Model.random(spec, seed=0, device="cpu", precision="fp32").denoiser.net
    return {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}


def official_pt(path: Path, num_classes: int | None = CLASSES) -> Path:
    """An OpenAI-style .pt (a bare state_dict: no resolution stored) of a layout no released model has."""
    torch.save(_weights(dataclasses.replace(preset("tiny").unet, num_classes=num_classes)), path)
    return path


def diffusers_folder(folder: Path, image_size: int = 64) -> Path:
    """config.json + diffusion_pytorch_model.safetensors, no scheduler/ (a UNet2DModel as on the Hub)."""
    unet = dataclasses.replace(preset("tiny").unet, image_size=image_size, num_classes=CLASSES)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(diffusers_config(unet)))
    save_file({k: v.contiguous() for k, v in official_to_diffusers(_weights(unet), unet).items()},
              folder / "diffusion_pytorch_model.safetensors")
    return folder


def _errors(view) -> list[tuple[str, str]]:
    return [c.args for c in view.show_error.call_args_list]


def test_an_import_started_while_another_runs_loses_neither(tmp_path: Path) -> None:
    """Only the latest import was tracked: the Model menu stays usable while one runs, and an earlier
    import's failure then showed nothing at all, and its success never reached the picker."""
    good = diffusers_folder(tmp_path / "good_cm64")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 200)
    c, view, engine = make_controller(tmp_path)

    c.import_checkpoint(broken)
    c.import_checkpoint(good)
    assert c.importing
    engine.process()
    assert [e[0] for e in _errors(view)] == ["Could not import the checkpoint"]
    assert "broken.pt" in _errors(view)[0][1]
    assert not c.importing

    view.reset_mock()
    c.import_checkpoint(good)  # a second copy, then a broken file behind it
    c.import_checkpoint(broken)
    engine.process()
    assert [e[0] for e in _errors(view)] == ["Could not import the checkpoint"]
    listed = {m.path.name for m in c.models if m.path is not None}
    assert listed == {"good_cm64.safetensors", "good_cm64-2.safetensors"}
    assert c.model is not None and c.model.path.name == "good_cm64-2.safetensors"  # the import just made
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(listed)  # nothing half-written


def test_a_guessed_resolution_is_kept_and_said_not_shown_as_a_fact(tmp_path: Path) -> None:
    """Official files do not store their resolution; for a layout no released model has, the engine
    guesses one (256 px here) and says so in its metadata, which `cstudio convert` keeps. The app's
    import dropped it: the picker showed the guess as the model's size with no word of doubt."""
    c, view, engine = make_controller(tmp_path)
    c.import_checkpoint(official_pt(tmp_path / "cd_cond10_64.pt"))
    engine.process()
    assert _errors(view) == []
    info = c.model
    assert info is not None and info.resolution == 256 and info.num_classes == CLASSES
    assert "resolution 256 px" in info.guessed
    assert "256 px?" in info.label
    state = view.set_model_state.call_args
    assert state.kwargs == {"ready": True, "warning": True}
    assert "Guessed on import: resolution 256 px" in state.args[0] and "--image-size" in state.args[0]
    # The note is in the file, so it survives a restart (the catalog reads it from the header).
    assert "resolution 256 px" in read_model_info(info.path).guessed
    # A diffusers folder states its size: nothing is guessed, nothing is said.
    c.import_checkpoint(diffusers_folder(tmp_path / "stated64"))
    engine.process()
    assert c.model.resolution == 64 and c.model.guessed == "" and "?" not in c.model.label
    state = view.set_model_state.call_args
    assert state.args == (f"Model: {c.model.label}",) and state.kwargs == {"ready": True, "warning": False}


def test_the_guess_is_in_the_picker_tooltip(qtbot, tmp_path: Path) -> None:
    c, view, engine = make_controller(tmp_path)
    c.import_checkpoint(official_pt(tmp_path / "cd_cond10_64.pt"))
    engine.process()
    panel = ControlPanel()
    qtbot.addWidget(panel)
    panel.set_models(c.models, c.models.index(c.model))
    assert "resolution 256 px" in panel.model.toolTip()


def test_the_class_tip_names_imagenet_classes_only_for_imagenet_models(qtbot) -> None:
    """A 10-class model's Class box (0 to 9) said 'e.g. 207 golden retriever, 281 tabby cat'."""
    panel = ControlPanel()
    qtbot.addWidget(panel)
    panel._show_class(CLASSES)
    for tip in (panel.class_label.toolTip(), panel.class_title.toolTip()):
        assert "golden retriever" not in tip and "ImageNet" not in tip and "0 to 9" in tip
    panel._show_class(1000, class_names(1000))
    for tip in (panel.class_label.toolTip(), panel.class_title.toolTip()):
        assert "ImageNet class the model conditions on" in tip and "207, golden retriever" in tip


def test_esc_cancels_an_import_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """A 2 GB checkpoint takes a while to import; Esc (Cancel) stopped only tasks."""
    good = diffusers_folder(tmp_path / "good_cm64")
    c, view, engine = make_controller(tmp_path)
    c.import_checkpoint(good)
    view.set_importing.assert_called_with(True)  # the view enables Cancel for it
    c.cancel()
    engine.process()
    assert not c.importing and _errors(view) == []
    assert "cancelled; nothing was added" in view.set_status.call_args.args[0]
    view.set_importing.assert_called_with(False)
    assert not c.models_dir.exists() or not list(c.models_dir.glob("*.safetensors"))


def test_a_cancel_that_arrives_while_the_file_is_written_takes_it_back(tmp_path: Path) -> None:
    import pytest

    from app import tasks
    from engine import Cancelled

    good = diffusers_folder(tmp_path / "good_cm64")
    dest = tmp_path / "models"

    def stage(done: int, total: int, text: str = "") -> None:
        if text == "Done":
            raise Cancelled()

    with pytest.raises(Cancelled):
        tasks.import_checkpoint(good, dest, stage)
    assert not list(dest.glob("*.safetensors"))


def test_cancel_is_available_while_an_import_runs(window) -> None:
    w = window
    assert not w.act_cancel.isEnabled()
    w.set_importing(True)
    assert w.act_cancel.isEnabled()
    w.set_busy(False)  # a task ending does not take Cancel from the import
    assert w.act_cancel.isEnabled()
    w.set_importing(False)
    assert not w.act_cancel.isEnabled()
