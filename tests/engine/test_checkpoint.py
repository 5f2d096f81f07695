"""Native files, official .pt import, diffusers mapping, and refusal of bad or hostile files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from engine import CheckpointError, Model, load_model, save_model
from engine.checkpoint import (diffusers_config, diffusers_to_official, infer_unet_config, official_to_diffusers,
                               unet_from_diffusers_config)
from engine.config import PRESETS
from engine.unet import UNet
from tests.conftest import FIXTURES

SMALL_PT = FIXTURES / "refcheck" / "small" / "state_dict.pt"
LSUN_PT = FIXTURES / "refcheck" / "small_lsun" / "state_dict.pt"


def official_sd(path=SMALL_PT):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_native_round_trip_and_fp16(tmp_path, tiny_model):
    sd = tiny_model.denoiser.net.state_dict()
    p = save_model(tmp_path / "m.safetensors", tiny_model.spec, sd, metadata={"note": "hi"})
    spec, sd2, meta = load_model(p)
    assert spec == tiny_model.spec and meta["note"] == "hi"
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    p16 = save_model(tmp_path / "h.safetensors", spec, sd, dtype=torch.float16)
    _, sd16, _ = load_model(p16)
    assert sd16["out.2.weight"].dtype == torch.float16
    assert p16.stat().st_size < p.stat().st_size * 0.6
    assert not list(tmp_path.glob("*.part"))  # atomic write leaves no temporary behind


def test_save_model_works_without_os_fchmod(tmp_path, tiny_model, monkeypatch):
    """`cstudio convert` on Windows Python < 3.13, which has no os.fchmod."""
    import os

    monkeypatch.delattr(os, "fchmod", raising=False)
    p = save_model(tmp_path / "w.safetensors", tiny_model.spec, tiny_model.denoiser.net.state_dict())
    assert load_model(p)[0] == tiny_model.spec
    assert not list(tmp_path.glob(".*part"))


@pytest.mark.parametrize("path", [SMALL_PT, LSUN_PT])
def test_official_pt_import_infers_config(path):
    spec, sd, meta = load_model(path)
    assert meta["source"] == "official"
    net = UNet(spec.unet)
    net.load_state_dict(sd, strict=True)
    ref = json.loads((FIXTURES / "refcheck" / "meta.json").read_text())["configs"][path.parent.name]["create_model_kwargs"]
    assert spec.unet.model_channels == ref["num_channels"]
    assert spec.unet.num_res_blocks == ref["num_res_blocks"]
    assert ",".join(map(str, spec.unet.channel_mult)) == ref["channel_mult"]
    assert spec.unet.use_scale_shift_norm == ref["use_scale_shift_norm"]
    assert (spec.unet.num_classes is not None) == ref["class_cond"]


@pytest.mark.parametrize("name", ["cd_imagenet64_l2", "ct_bedroom256"])
def test_infer_config_of_released_layouts(name):
    with torch.device("meta"):
        sd = UNet(PRESETS[name].unet).state_dict()
    assert infer_unet_config(sd) == PRESETS[name].unet


def test_official_to_diffusers_and_back(tmp_path):
    sd = official_sd()
    cfg = infer_unet_config(sd, image_size=32, num_head_channels=32)
    d = official_to_diffusers(sd, cfg)
    assert "down_blocks.1.attentions.0.to_q.weight" in d and d["down_blocks.1.attentions.0.to_q.weight"].ndim == 2
    assert "up_blocks.0.upsamplers.0.conv1.weight" in d and "mid_block.attentions.0.group_norm.weight" in d
    assert "class_embedding.weight" in d and "time_embedding.linear_1.weight" in d
    torch.testing.assert_close(torch.cat([d["mid_block.attentions.0.to_q.bias"], d["mid_block.attentions.0.to_k.bias"],
                                          d["mid_block.attentions.0.to_v.bias"]]), sd["middle_block.1.qkv.bias"])
    back = diffusers_to_official(d, cfg)
    assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) for k in sd)
    # Through a native file and a diffusers folder, as a user would.
    p = save_model(tmp_path / "a.safetensors", load_model(SMALL_PT)[0], sd)
    spec, native, _ = load_model(p)
    folder = tmp_path / "diffusers-small" / "unet"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(diffusers_config(cfg)))
    save_file({k: v.contiguous() for k, v in official_to_diffusers(native, cfg).items()}, str(folder / "diffusion_pytorch_model.safetensors"))
    sched = tmp_path / "diffusers-small" / "scheduler"
    sched.mkdir()
    (sched / "scheduler_config.json").write_text(json.dumps({"num_train_timesteps": 201}))
    spec2, sd2, meta = load_model(tmp_path / "diffusers-small")
    assert meta["source"] == "diffusers" and spec2.sampler.ts == (0, 106, 200)
    assert unet_from_diffusers_config(diffusers_config(cfg)) == cfg
    assert all(torch.equal(sd2[k], sd[k]) for k in sd)


def test_diffusers_config_of_imagenet_matches_hub_fields():
    c = diffusers_config(PRESETS["cd_imagenet64_l2"].unet)
    assert c["block_out_channels"] == [192, 384, 576, 768] and c["layers_per_block"] == 3
    assert c["down_block_types"] == ["ResnetDownsampleBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"]
    assert c["up_block_types"] == ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "ResnetUpsampleBlock2D"]
    assert c["resnet_time_scale_shift"] == "scale_shift" and c["num_class_embeds"] == 1000


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "marker"
    bad = tmp_path / "evil.pt"
    torch.save({"input_blocks.0.0.weight": _Evil(marker)}, bad)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_model(bad)
    assert not marker.exists()


def test_bad_files_give_specific_errors(tmp_path, tiny_model):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_model(empty)
    good = save_model(tmp_path / "good.safetensors", tiny_model.spec, tiny_model.denoiser.net.state_dict())
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(trunc)
    with pytest.raises(CheckpointError, match="no such file"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="config.json"):
        load_model(tmp_path)  # a folder that is not a diffusers model
    sd = dict(tiny_model.denoiser.net.state_dict())
    sd["out.2.weight"] = torch.zeros(3, 32, 5, 5)
    with pytest.raises(CheckpointError, match=r"'out.2.weight' has shape \(3, 32, 5, 5\)"):
        load_model(save_model(tmp_path / "shape.safetensors", tiny_model.spec, sd))
    sd = dict(tiny_model.denoiser.net.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="unknown key.*extra.weight"):
        load_model(save_model(tmp_path / "extra.safetensors", tiny_model.spec, sd))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    # Said as what it is: not a checkpoint, rather than a pickle that would run code.
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as e:
        load_model(garbage)
    assert "run code" not in str(e.value)


def test_model_from_official_file_runs(tmp_path):
    m = Model.load(SMALL_PT, device="cpu", precision="fp32")
    out = m.generate(1, seed=0)
    assert out.shape == (1, 64, 64, 3)
