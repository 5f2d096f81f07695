"""Import Checkpoint and the model catalog with models users bring (audit 20): the source's precision
is kept, non-RGB networks never reach the picker, and the app and `cstudio` run a file at the same
size. The checkpoints are made here by the project's own code from tiny random networks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from app import tasks
from app.model.catalog import CatalogError, ModelInfo, read_model_info, remember_image_size
from engine import CheckpointError, Model, ModelSpec, load_model, preset, save_model
from engine.checkpoint import diffusers_config, official_to_diffusers
from engine.cli import main as cli_main
from tests.conftest import FIXTURES

REF = FIXTURES / "refcheck" / "small"


def _weights(unet) -> dict[str, torch.Tensor]:
    spec = dataclasses.replace(preset("tiny"), unet=unet)
    net = Model.random(spec, seed=0, device="cpu", precision="fp32").denoiser.net
    return {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}


def _stage(done: int, total: int, text: str) -> None:
    pass


def test_import_keeps_fp32_and_matches_the_official_code(tmp_path: Path) -> None:
    """Import stored every model in fp16: 1.3e-3 off the official code, where README promises ~1e-6."""
    sd = torch.load(REF / "state_dict.pt", map_location="cpu", weights_only=True)
    unet = load_model(REF / "state_dict.pt", image_size=32, num_head_channels=32)[0].unet
    folder = tmp_path / "small_diffusers"  # a diffusers folder states size and head width
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(diffusers_config(unet)))
    save_file({k: v.contiguous() for k, v in official_to_diffusers(sd, unet).items()},
              str(folder / "diffusion_pytorch_model.safetensors"))
    dest = tasks.import_checkpoint(folder, tmp_path / "models", _stage)
    _, imported, _ = load_model(dest)
    assert all(imported[k].dtype == torch.float32 and torch.equal(imported[k], sd[k]) for k in sd)
    model = Model.load(dest, device="cpu", precision="fp32")
    sigmas, xs = np.load(REF / "probe_sigmas.npy"), torch.from_numpy(np.load(REF / "probe_x.npy"))
    want = torch.from_numpy(np.load(REF / "probe_denoised_cm.npy"))
    labels = torch.from_numpy(np.load(REF / "labels.npy"))
    with torch.no_grad():
        got = model.denoiser(xs[0], float(sigmas[0]), labels)
    torch.testing.assert_close(got, want[0], atol=1e-4, rtol=0)


def test_weights_beyond_the_fp16_range_import(tmp_path: Path) -> None:
    """A weight of 1e5 (fine in fp32, `cstudio convert` wrote it) could not be imported, and the error
    named the destination file, which was never written."""
    weights = _weights(preset("tiny").unet)
    weights["time_embed.0.bias"][0] = 1e5
    source = tmp_path / "big_values.pt"
    torch.save(weights, source)
    dest = tasks.import_checkpoint(source, tmp_path / "models", _stage)
    assert float(load_model(dest)[1]["time_embed.0.bias"][0]) == 1e5


def test_import_refuses_a_latent_network_and_writes_nothing(tmp_path: Path) -> None:
    """A 4-channel UNet2DModel was imported and listed; every Run then failed with a RuntimeError."""
    unet = dataclasses.replace(preset("tiny").unet, in_channels=4)
    folder = tmp_path / "latent"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(diffusers_config(unet)))
    save_file({k: v.contiguous() for k, v in official_to_diffusers(_weights(unet), unet).items()},
              str(folder / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(CheckpointError, match="latent"):
        tasks.import_checkpoint(folder, tmp_path / "models", _stage)
    assert not (tmp_path / "models").exists()  # refused when read, before anything is written


def test_a_non_rgb_model_file_is_listed_as_unreadable(tmp_path: Path) -> None:
    unet = dataclasses.replace(preset("tiny").unet, out_channels=6)
    path = save_model(tmp_path / "adm.safetensors", ModelSpec(unet=unet, name="adm"), _weights(unet))
    with pytest.raises(CatalogError, match="6 out"):
        read_model_info(path)


def test_the_cli_runs_a_file_at_the_size_chosen_in_the_app(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The app kept its Size choice in image-sizes.json, which the CLI ignored: the same file ran at
    32 px in the app and at the guessed 64 px on the command line."""
    dest = tasks.import_checkpoint(REF / "state_dict.pt", tmp_path / "models", _stage)
    info = read_model_info(dest)
    assert info.resolution == 64 and "resolution 64 px" in info.guessed
    remember_image_size(info, 32)
    info = read_model_info(dest)
    assert info.resolution == 32 and info.size_chosen
    spec, _, meta = load_model(dest)
    assert spec.unet.image_size == 32 and "resolution" not in meta.get("guessed", "")
    model, described = tasks.load(info, device="cpu")
    assert model.resolution == described.resolution == 32
    out = tmp_path / "g.png"
    rc = cli_main(["generate", "--model", str(dest), "--out", str(out), "--ts", "0,39", "--quiet",
                   "--device", "cpu", "--precision", "fp32"])
    err = capsys.readouterr().err
    assert rc == 0 and "runs at 32 px, the size chosen for this file in the app" in err
    from PIL import Image

    assert Image.open(out).size == (32, 32)
    # A stated size beats the app's choice; converting keeps it in the new file, not as a note.
    assert load_model(dest, image_size=64)[0].unet.image_size == 64
    assert cli_main(["convert", str(dest), str(tmp_path / "c.safetensors")]) == 0
    spec, _, meta = load_model(tmp_path / "c.safetensors")
    assert spec.unet.image_size == 32 and "image_size_chosen" not in meta and "resolution" not in meta["guessed"]


def test_the_picker_marks_a_guessed_kind() -> None:
    info = ModelInfo(path=Path("m.safetensors"), name="m", resolution=64, kind="cm",
                     guessed="kind cm, a consistency model sampled on a 40-point grid (why)")
    assert "64 px, consistency?" in info.label
    sure = dataclasses.replace(info, guessed="")
    assert "consistency?" not in sure.label and "64 px?" not in sure.label
