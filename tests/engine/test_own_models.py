"""Bringing your own model files: settings an official file does not store (image size, attention
head width, kind), networks that are not RGB consistency models, `cstudio train` checkpoints,
diffusers' fp16 variant and PyTorch's pickle warning. Each test pins a defect of the audit of
models brought by users (audit 20, D1-D10); the files are made here by the project's own code."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from engine import CheckpointError, Model, load_model, preset, save_model
from engine.checkpoint import SettingError, diffusers_config, official_to_diffusers
from engine.cli import build_parser
from engine.cli import main as cli_main
from engine.config import PRESETS, DenoiserConfig, ModelSpec, SamplerConfig
from tests.conftest import FIXTURES

REF = FIXTURES / "refcheck" / "small"
SMALL_PT = REF / "state_dict.pt"  # the official code's network: 32 px, 32 channels per attention head


def weights(unet) -> dict[str, torch.Tensor]:
    spec = dataclasses.replace(preset("tiny"), unet=unet)
    net = Model.random(spec, seed=0, device="cpu", precision="fp32").denoiser.net
    return {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}


def tiny_unet(**changes):
    return dataclasses.replace(preset("tiny").unet, **changes)


def diffusers_folder(folder: Path, unet, *, weights_name: str = "diffusion_pytorch_model.safetensors",
                     dtype: torch.dtype | None = None) -> Path:
    """A diffusers UNet2DModel folder (unet/config.json + weights) of a random network of `unet`'s layout."""
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "config.json").write_text(json.dumps(diffusers_config(unet)))
    sd = official_to_diffusers(weights(unet), unet)
    save_file({k: (v if dtype is None else v.to(dtype)).contiguous() for k, v in sd.items()},
              str(folder / "unet" / weights_name))
    return folder


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------------------------
# D1: only RGB pixel-space networks.


@pytest.mark.parametrize("channels, why", [((4, 4), "latent"), ((3, 6), "learn_sigma")])
def test_a_latent_or_learn_sigma_diffusers_unet_is_refused_when_read(tmp_path, capsys, channels, why):
    """A 4-channel (latent) or 6-output (ADM learn_sigma) UNet2DModel was described as a model and
    converted; every task then died with a RuntimeError traceback."""
    folder = diffusers_folder(tmp_path / "odd", tiny_unet(in_channels=channels[0], out_channels=channels[1]))
    with pytest.raises(CheckpointError, match=why) as e:
        load_model(folder)
    assert "only RGB pixel-space models" in str(e.value) and str(folder) in str(e.value)
    rc, _, err = run(capsys, "generate", "--model", folder, "--out", tmp_path / "g.png", "--quiet")
    assert rc == 1 and why in err and "Traceback" not in err and not (tmp_path / "g.png").exists()
    rc, _, err = run(capsys, "convert", folder, tmp_path / "c.safetensors")
    assert rc == 1 and why in err and not (tmp_path / "c.safetensors").exists()


def test_a_learn_sigma_official_file_says_what_it_is(tmp_path):
    """Refused before, but as "key 'out.2.weight' has shape (6, ...)", which does not say why."""
    path = tmp_path / "adm.pt"
    torch.save(weights(tiny_unet(out_channels=6)), path)
    with pytest.raises(CheckpointError, match="learn_sigma.*not a consistency model"):
        load_model(path)


def test_a_native_file_of_a_4_channel_network_is_refused(tmp_path):
    unet = tiny_unet(in_channels=4)
    path = save_model(tmp_path / "latent.safetensors", ModelSpec(unet=unet, name="latent"), weights(unet))
    with pytest.raises(CheckpointError, match="4 channels in .*latent"):
        load_model(path)


# ----------------------------------------------------------------------------------------------
# D2, D3, D10: image size and head width of official files, on every command.


def test_every_model_command_takes_the_settings_official_files_do_not_store():
    parser = build_parser()
    for command in ("info", "convert", "generate", "inpaint", "colorize", "upscale"):
        text = parser._subparsers._group_actions[0].choices[command].format_help()
        assert "--image-size" in text and "--head-channels" in text and "--kind" in text, command
    convert = parser._subparsers._group_actions[0].choices["convert"].format_help()
    assert "read from the file" not in convert  # an official file stores no size


def test_a_guessed_setting_is_said_on_stderr_and_can_be_stated(tmp_path, capsys):
    """`generate --model small.pt` ran the 32 px, 32-channel-head network at a guessed 64 px with 64
    channels per head without a word, and refused --image-size."""
    rc, out, err = run(capsys, "generate", "--model", SMALL_PT, "--out", tmp_path / "a.png", "--ts", "0,39", "--quiet",
                       "--precision", "fp32", "--device", "cpu")
    assert rc == 0 and Image.open(tmp_path / "a.png").size == (64, 64)
    assert "guessed: resolution 64 px and 64 channels per attention head" in err
    assert "--image-size N and --head-channels N" in err
    rc, out, err = run(capsys, "generate", "--model", SMALL_PT, "--out", tmp_path / "b.png", "--ts", "0,39",
                       "--quiet", "--precision", "fp32", "--device", "cpu", "--image-size", "32", "--head-channels", "32")
    assert rc == 0 and Image.open(tmp_path / "b.png").size == (32, 32) and "guessed" not in err


def test_a_head_width_that_does_not_fit_is_an_option_error(capsys):
    rc, _, err = run(capsys, "info", SMALL_PT, "--head-channels", "48")
    assert rc == 2 and "attention head width 48 does not fit" in err and "64 channels wide" in err


def test_converted_with_the_stated_head_width_matches_the_official_code(tmp_path, capsys):
    """Only the Python API could state the head width: the CLI's conversion was off by 0.25."""
    out = tmp_path / "small32.safetensors"
    rc, text, _ = run(capsys, "convert", SMALL_PT, out, "--image-size", "32", "--head-channels", "32")
    assert rc == 0 and "; guessed" not in text
    model = Model.load(out, device="cpu", precision="fp32")
    assert "guessed" not in model.metadata
    sigmas, xs = np.load(REF / "probe_sigmas.npy"), torch.from_numpy(np.load(REF / "probe_x.npy"))
    want = torch.from_numpy(np.load(REF / "probe_denoised_cm.npy"))
    labels = torch.from_numpy(np.load(REF / "labels.npy"))
    for i, s in enumerate(sigmas):
        with torch.no_grad():
            got = model.denoiser(xs[i], float(s), labels)
        torch.testing.assert_close(got, want[i], atol=1e-4, rtol=0)


def test_convert_says_what_it_guessed(tmp_path, capsys):
    rc, out, err = run(capsys, "convert", SMALL_PT, tmp_path / "auto.safetensors")
    assert rc == 0 and "64px" in out and "guessed: resolution 64 px and 64 channels per attention head" in out
    assert "--image-size N and --head-channels N" in err


# ----------------------------------------------------------------------------------------------
# D4: a converted file whose settings were guessed can be corrected.


def test_a_guessed_size_and_head_width_of_a_converted_file_can_be_stated(tmp_path, capsys):
    """`--image-size` was refused for a converted file whose metadata called its size a guess, and
    `convert --image-size` could not fix it without the original .pt."""
    auto = tmp_path / "auto.safetensors"
    assert run(capsys, "convert", SMALL_PT, auto)[0] == 0
    spec, _, meta = load_model(auto, image_size=32)
    assert spec.unet.image_size == 32 and "resolution" not in meta["guessed"]
    fixed = tmp_path / "fixed.safetensors"
    rc, out, _ = run(capsys, "convert", auto, fixed, "--image-size", "32", "--head-channels", "32")
    assert rc == 0 and "32px" in out and "; guessed" not in out
    spec, _, meta = load_model(fixed)
    assert (spec.unet.image_size, spec.unet.num_head_channels) == (32, 32) and "guessed" not in meta
    # What the file now states is not overridden: the option has to change (exit 2).
    rc, _, err = run(capsys, "info", fixed, "--image-size", "64")
    assert rc == 2 and "states its own (32 px)" in err
    with pytest.raises(SettingError, match="states its own"):
        load_model(fixed, num_head_channels=64)
    assert load_model(fixed, image_size=32, num_head_channels=32)[0] == spec  # the same values are fine


def test_a_size_the_network_cannot_run_at_is_refused_for_a_converted_file(tmp_path, capsys):
    auto = tmp_path / "auto.safetensors"
    assert run(capsys, "convert", SMALL_PT, auto)[0] == 0
    rc, _, err = run(capsys, "info", auto, "--image-size", "33")
    assert rc == 2 and "image size 33 does not fit" in err


# ----------------------------------------------------------------------------------------------
# D6: the kind (consistency model, CT grid, EDM teacher) of a file whose name does not say it.


@pytest.fixture()
def released_tiny(monkeypatch, tmp_path):
    """The tiny layout as if OpenAI had released it in three kinds, as the ImageNet 64 models (CD,
    CT and EDM teacher share one layout): an official-format file of it, named `model.pt`."""
    unet = preset("tiny").unet
    for name, kind, steps, ts in (("cd_tinyrel16", "cm", 40, (0, 22, 39)), ("ct_tinyrel16", "cm", 201, (0, 106, 200)),
                                  ("edm_tinyrel16", "edm", 40, (0, 22, 39))):
        monkeypatch.setitem(PRESETS, name, ModelSpec(unet=unet, denoiser=DenoiserConfig(kind=kind),
                                                     sampler=SamplerConfig(steps=steps, ts=ts), name=name))
    path = tmp_path / "model.pt"
    torch.save(weights(unet), path)
    return path


def test_a_kind_decided_without_the_name_saying_it_is_called_a_guess(released_tiny, tmp_path, capsys):
    """A renamed CT model or EDM teacher was run as a CD consistency model, with no "guessed" note
    and no way to say otherwise."""
    spec, _, meta = load_model(released_tiny)
    assert spec.denoiser.kind == "cm" and "kind cm" in meta["guessed"] and "differ only by name" in meta["guessed"]
    rc, out, _ = run(capsys, "info", released_tiny)
    assert rc == 0 and "guessed: kind cm" in out and "--kind cm|ct|edm" in out
    # Stated: no guess; ct takes the released CT model's grid and ts.
    spec, _, meta = load_model(released_tiny, kind="ct")
    assert (spec.sampler.steps, spec.sampler.ts) == (201, (0, 106, 200)) and "guessed" not in meta
    rc, out, _ = run(capsys, "info", released_tiny, "--kind", "edm")
    assert rc == 0 and "EDM model" in out and "guessed" not in out
    # A name that says it is not a guess.
    named = tmp_path / "ct_tinyrel16.pt"
    named.write_bytes(released_tiny.read_bytes())
    spec, _, meta = load_model(named)
    assert spec.sampler.steps == 201 and "guessed" not in meta


def test_a_guessed_kind_of_a_converted_file_can_be_stated_once(released_tiny, tmp_path, capsys):
    auto, fixed = tmp_path / "auto.safetensors", tmp_path / "fixed.safetensors"
    assert run(capsys, "convert", released_tiny, auto)[0] == 0
    rc, out, err = run(capsys, "convert", auto, fixed, "--kind", "edm")
    assert rc == 0 and "edm, 16px" in out and "; guessed" not in out
    spec, _, meta = load_model(fixed)
    assert spec.denoiser.kind == "edm" and "guessed" not in meta
    rc, _, err = run(capsys, "info", fixed, "--kind", "cm")
    assert rc == 2 and "states its own (edm" in err
    assert load_model(fixed, kind="edm")[0] == spec


def test_kind_ct_needs_a_released_ct_layout(tmp_path, capsys):
    rc, _, err = run(capsys, "info", SMALL_PT, "--kind", "ct")
    assert rc == 2 and "kind ct" in err and "none has this layout" in err


# ----------------------------------------------------------------------------------------------
# D7, D8, D9.


def test_a_training_checkpoint_points_to_the_exported_model(tmp_path, capsys):
    """`cstudio info runs/X/checkpoints/step-N.safetensors` said "does not look like an ADM UNet"."""
    from engine.training.state import flatten, save_checkpoint

    sd = weights(preset("tiny").unet)
    run_dir = tmp_path / "run"
    tensors = {**flatten("model", sd), **flatten("ema", sd), "optim.0.exp_avg": torch.zeros(3)}
    save_checkpoint(run_dir / "checkpoints", 3, tensors, {"config": {}}, keep=2)
    rc, _, err = run(capsys, "info", run_dir / "checkpoints" / "step-00000003.safetensors")
    assert rc == 1 and "`cstudio train` checkpoint" in err
    assert str(run_dir / "model.safetensors") in err and str(run_dir / "exports") in err


def test_a_diffusers_folder_with_only_the_fp16_variant_loads(tmp_path):
    """diffusers' `variant="fp16"` download (diffusion_pytorch_model.fp16.safetensors) had "no weights"."""
    unet = tiny_unet(num_classes=None)
    folder = diffusers_folder(tmp_path / "fp16", unet, weights_name="diffusion_pytorch_model.fp16.safetensors",
                              dtype=torch.float16)
    spec, sd, _ = load_model(folder)
    assert spec.unet == unet and sd["out.2.weight"].dtype == torch.float16


def test_no_pytorch_pickle_protocol_warning_before_a_refusal(tmp_path):
    """A plain pickle.dump file printed PyTorch's "Detected pickle protocol 4 ... please file an
    issue" UserWarning before the refusal."""
    path = tmp_path / "raw.pt"
    with open(path, "wb") as f:
        pickle.dump({"weight": os.getcwd}, f, protocol=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="refused to load"):
            load_model(path)
    assert not [w for w in caught if "pickle protocol" in str(w.message)]
