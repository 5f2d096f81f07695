"""What a user who downloads OpenAI's released files (or their diffusers conversions) runs into:
renamed and mislabelled files, hostile pickles, odd diffusers configs and folders, and `convert`
into places it cannot write. Every case here was a bug found by exploratory testing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine import CheckpointError, Model, load_model, save_model
from engine.checkpoint import diffusers_config, infer_unet_config, official_to_diffusers
from engine.config import PRESETS, DenoiserConfig, ModelSpec, SamplerConfig
from engine.cli import main as cli_main
from tests.conftest import FIXTURES

SMALL_PT = FIXTURES / "refcheck" / "small" / "state_dict.pt"


@pytest.fixture(scope="module")
def small_sd():
    return torch.load(SMALL_PT, map_location="cpu", weights_only=True)


def diffusers_folder(root, sd, *, config_changes=None, drop=(), scheduler=None, sub=True):
    """A diffusers model folder (unet/config.json + safetensors weights, optional scheduler) of `sd`."""
    cfg = infer_unet_config(sd, image_size=32, num_head_channels=32)
    unet_dir = root / "unet" if sub else root
    unet_dir.mkdir(parents=True)
    config = diffusers_config(cfg)
    config.update(config_changes or {})
    for k in drop:
        config.pop(k)
    (unet_dir / "config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in official_to_diffusers(sd, cfg).items()},
              str(unet_dir / "diffusion_pytorch_model.safetensors"))
    if scheduler is not None:
        (root / "scheduler").mkdir()
        (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler))
    return root


# ----------------------------------------------------------------------------------------------
# Writing.


def test_save_model_where_it_cannot_write_is_a_checkpoint_error(tmp_path, tiny_model):
    """`cstudio convert in.pt no/such/folder/out.safetensors` printed a FileNotFoundError traceback."""
    sd = tiny_model.denoiser.net.state_dict()
    with pytest.raises(CheckpointError, match="cannot write"):
        save_model(tmp_path / "no such folder" / "m.safetensors", tiny_model.spec, sd)
    (tmp_path / "d.safetensors").mkdir()
    with pytest.raises(CheckpointError, match="cannot write"):
        save_model(tmp_path / "d.safetensors", tiny_model.spec, sd)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_convert_into_a_missing_folder_fails_cleanly(tmp_path, capsys):
    rc = cli_main(["convert", str(SMALL_PT), str(tmp_path / "missing" / "out.safetensors")])
    assert rc == 2  # the command line must change, as for the image commands' --out
    err = capsys.readouterr().err
    assert "output folder does not exist" in err and "Traceback" not in err


def test_convert_round_trip_gives_the_same_outputs(tmp_path):
    """official .pt -> `cstudio convert` -> load: the same network, output for output, in fp32."""
    out = tmp_path / "ü dir" / "small converted.safetensors"
    out.parent.mkdir()
    assert cli_main(["convert", str(SMALL_PT), str(out)]) == 0
    a = Model.load(SMALL_PT, device="cpu", precision="fp32")
    b = Model.load(out, device="cpu", precision="fp32")
    assert a.spec == b.spec
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for sigma in (80.0, 1.38, 0.01):
        torch.testing.assert_close(a.denoise(x, sigma), b.denoise(x, sigma), atol=1e-6, rtol=0)
    # An existing output is left alone (exit 2, no --overwrite), byte for byte.
    before = out.read_bytes()
    assert cli_main(["convert", str(SMALL_PT), str(out)]) == 2
    assert out.read_bytes() == before


# ----------------------------------------------------------------------------------------------
# Reading official and renamed files.


def test_refused_pickle_names_what_it_asked_for(tmp_path):
    """The refusal quoted PyTorch's advice to re-run with weights_only=False (and, for some files,
    terminal colour codes) instead of what the file wanted to construct."""
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    bad = tmp_path / "cd_imagenet64_l2.pt"
    torch.save({"input_blocks.0.0.weight": Evil()}, bad)
    with pytest.raises(CheckpointError, match="refused to load") as e:
        load_model(bad)
    msg = str(e.value)
    assert "system" in msg and "weights_only" not in msg and "\x1b" not in msg
    assert not (tmp_path / "pwned").exists()


def test_dict_of_non_tensors_names_the_key(tmp_path, small_sd):
    """{"model": state_dict} was reported as 'expected a mapping of names to tensors, got dict'."""
    p = tmp_path / "wrapped.pt"
    torch.save({"model": small_sd, "step": torch.tensor(3)}, p)
    with pytest.raises(CheckpointError, match=r"'model' holds a dict"):
        load_model(p)


def test_unrecognised_keys_name_the_file_and_their_prefix(tmp_path, small_sd):
    """A DataParallel-style file: the error named neither the file nor what the keys look like."""
    p = tmp_path / "prefixed.pt"
    torch.save({"module." + k: v for k, v in small_sd.items()}, p)
    with pytest.raises(CheckpointError) as e:
        load_model(p)
    assert "prefixed.pt" in str(e.value) and "'module." in str(e.value)


@pytest.mark.parametrize("size", [33, 0, -64])
def test_bad_image_size_is_refused_by_name(size):
    """--image-size 33 raised a ValueError traceback; 0 was silently replaced by the default."""
    from engine.checkpoint import ImageSizeError

    with pytest.raises(ImageSizeError, match=f"image size {size}"):  # the CLI exits 2: the option must change
        load_model(SMALL_PT, image_size=size)
    assert cli_main(["info", str(SMALL_PT), "--image-size", str(size)]) == 2


def test_guessed_settings_of_official_files_are_said(tmp_path, small_sd):
    """`cstudio info` showed a guessed resolution (and head width, which changes every output) of a
    non-released layout as a fact."""
    _, _, meta = load_model(SMALL_PT)
    assert "resolution 64 px" in meta["guessed"] and "64 channels per attention head" in meta["guessed"]
    _, _, meta = load_model(SMALL_PT, image_size=32, num_head_channels=32)
    assert "guessed" not in meta
    st = tmp_path / "small.safetensors"  # official keys re-saved as safetensors, no spec
    save_file({k: v.contiguous() for k, v in small_sd.items()}, str(st))
    assert "resolution 64 px" in load_model(st)[2]["guessed"]


def test_files_are_read_by_content_not_by_extension(tmp_path, small_sd):
    """A safetensors file named .pt (or a .pt named .safetensors) was called corrupt."""
    st = tmp_path / "model.pt"
    save_file({k: v.contiguous() for k, v in small_sd.items()}, str(st))
    pt = tmp_path / "model.safetensors"
    pt.write_bytes(SMALL_PT.read_bytes())
    for p in (st, pt):
        spec, sd, _ = load_model(p)
        assert sd.keys() == small_sd.keys() and spec.unet.model_channels == 32


# ----------------------------------------------------------------------------------------------
# diffusers folders.


@pytest.mark.parametrize("field,value", [
    ("flip_sin_to_cos", False), ("freq_shift", 1), ("time_embedding_type", "fourier"), ("act_fn", "gelu"),
    ("norm_num_groups", 16), ("norm_eps", 1e-6), ("center_input_sample", True), ("mid_block_scale_factor", 2),
    ("resnet_time_scale_shift", "ada_group"), ("class_embed_type", "timestep"), ("_class_name", "UNet2DConditionModel"),
    ("block_out_channels", [32, 48]),
])
def test_diffusers_config_that_changes_the_network_is_refused(tmp_path, small_sd, field, value):
    """These fields were ignored: the folder loaded and silently computed something else."""
    folder = diffusers_folder(tmp_path / "m", small_sd, config_changes={field: value})
    with pytest.raises(CheckpointError, match=field):
        load_model(folder)


@pytest.mark.parametrize("changes,message", [
    ({"down_block_types": [1, 2, 3]}, "down_block_types"),
    ({"down_block_types": ["ResnetDownsampleBlock2D"] * 9}, "one block type"),
    ({"block_out_channels": []}, "block_out_channels is empty"),
])
def test_malformed_diffusers_block_lists_are_named(tmp_path, small_sd, changes, message):
    """Block type lists of the wrong type or length gave an AttributeError traceback or a spec
    error that blamed "the metadata"."""
    folder = diffusers_folder(tmp_path / "m", small_sd, config_changes=changes)
    with pytest.raises(CheckpointError, match=message):
        load_model(folder)


def test_diffusers_config_with_unknown_or_default_fields_loads(tmp_path, small_sd):
    # Every UNet2DModel argument at the value the Hub conversions have, as diffusers writes them out.
    folder = diffusers_folder(tmp_path / "m", small_sd, config_changes={
        "_class_name": "UNet2DModel", "_diffusers_version": "0.21.0", "some_future_field": [1, 2],
        "center_input_sample": False, "time_embedding_type": "positional", "freq_shift": 0, "flip_sin_to_cos": True,
        "mid_block_scale_factor": 1, "downsample_padding": 1, "dropout": 0.0, "act_fn": "silu",
        "norm_num_groups": 32, "attn_norm_num_groups": 32, "norm_eps": 1e-05, "add_attention": True,
        "class_embed_type": None, "num_train_timesteps": None})
    spec, sd, _ = load_model(folder)
    assert all(torch.equal(sd[k], small_sd[k]) for k in small_sd)


def test_diffusers_defaults_follow_diffusers(tmp_path, small_sd):
    """Absent fields mean what UNet2DModel makes of them: conv resampling (refused, not guessed as
    resnet), 8 channels per head; null head width means one head per block."""
    with pytest.raises(CheckpointError, match="resnet"):
        load_model(diffusers_folder(tmp_path / "a", small_sd, drop=("downsample_type",)))
    spec, _, _ = load_model(diffusers_folder(tmp_path / "b", small_sd, drop=("attention_head_dim",)))
    assert spec.unet.num_head_channels == 8
    spec, _, _ = load_model(diffusers_folder(tmp_path / "c", small_sd, config_changes={"attention_head_dim": None}))
    assert spec.unet.num_head_channels == 64  # every attention block of this model is 64 wide


def test_diffusers_scheduler_sigmas_are_used(tmp_path, small_sd):
    folder = diffusers_folder(tmp_path / "m", small_sd, scheduler={
        "_class_name": "CMStochasticIterativeScheduler", "num_train_timesteps": 40, "sigma_min": 0.01,
        "sigma_max": 40.0, "sigma_data": 0.5, "rho": 7.0})
    spec, _, _ = load_model(folder)
    assert (spec.denoiser.sigma_min, spec.denoiser.sigma_max) == (0.01, 40.0)


def test_diffusers_bad_scheduler_config_is_refused(tmp_path, small_sd):
    folder = diffusers_folder(tmp_path / "m", small_sd, scheduler={})
    (folder / "scheduler" / "scheduler_config.json").write_text("{oops")
    with pytest.raises(CheckpointError, match="scheduler_config.json"):
        load_model(folder)


def test_diffusers_folder_name_picks_the_published_defaults(tmp_path, small_sd, monkeypatch):
    """cd_bedroom256_lpips and _l2 (and ct_cat256 and ct_bedroom256) share a grid size, so the grid
    alone gave them the wrong two-step split; the Hub repo's name (also as a huggingface_hub cache
    folder) says which model it is."""
    toy = ModelSpec(unet=infer_unet_config(small_sd, image_size=32, num_head_channels=32),
                    denoiser=DenoiserConfig(kind="edm"), sampler=SamplerConfig(steps=40, ts=(0, 17, 39)), name="cd_toy")
    monkeypatch.setitem(PRESETS, "cd_toy", toy)
    sched = {"num_train_timesteps": 40}
    for folder in (tmp_path / "diffusers-cd_toy",
                   tmp_path / "models--openai--diffusers-cd_toy" / "snapshots" / "0123abc"):
        spec, _, _ = load_model(diffusers_folder(folder, small_sd, scheduler=sched))
        assert spec.sampler.ts == (0, 17, 39) and spec.denoiser.kind == "edm"


def test_diffusers_unet_subfolder_reads_the_pipeline_scheduler(tmp_path, small_sd):
    """Pointing at <repo>/unet ignored <repo>/scheduler: a CT model got the 40-point grid."""
    root = diffusers_folder(tmp_path / "my-ct-model", small_sd, scheduler={"num_train_timesteps": 201})
    spec, _, _ = load_model(root / "unet")
    assert spec.sampler.steps == 201 and spec.sampler.ts == (0, 106, 200) and spec.name == "my-ct-model"


def test_diffusers_weight_errors_name_the_folder(tmp_path, small_sd):
    folder = diffusers_folder(tmp_path / "broken-model", small_sd, config_changes={"layers_per_block": 1})
    with pytest.raises(CheckpointError, match="broken-model"):
        load_model(folder)


def test_preset_names_match_as_whole_words():
    """'tiny' inside 'edm_tiny32' made a teacher a consistency model (and 16 px); whole words only,
    longest first, and an edm_ file is a teacher whatever else its name holds."""
    from engine.checkpoint import presets_named_in, spec_for_official
    from engine.config import PRESETS

    assert presets_named_in(["edm_tiny32"]) == []
    assert [n for n, _ in presets_named_in(["openai--diffusers-cd_imagenet64_lpips"])] == ["cd_imagenet64_lpips"]
    assert [n for n, _ in presets_named_in(["studio32w"])] == ["studio32w"]
    unet = PRESETS["tiny"].unet
    assert spec_for_official(Path("edm_tiny32.pt"), unet).denoiser.kind == "edm"
    assert spec_for_official(Path("edm_tiny.pt"), unet).denoiser.kind == "edm"
    assert spec_for_official(Path("my tiny.pt"), unet).denoiser.kind == PRESETS["tiny"].denoiser.kind
