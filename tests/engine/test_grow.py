"""Growing a trained UNet wider (Net2WiderNet): same function, copies free to diverge, clear refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_model, save_model
from engine.config import ModelSpec, UNetConfig, preset
from engine.grow import grow_state_dict, growth_factors, head_map, level_map
from engine.unet import UNet

from .test_training import make_photoset

REPO = Path(__file__).resolve().parents[2]


def small(mult: tuple[int, ...], **kw: object) -> UNetConfig:
    fields = dict(image_size=16, model_channels=32, channel_mult=mult, num_res_blocks=1, attention_resolutions=(16,),
                  num_head_channels=32, num_classes=None)
    return UNetConfig(**{**fields, **kw})  # type: ignore[arg-type]


def trained_like(cfg: UNetConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with every residual branch switched on (a fresh ADM net outputs exactly 0)."""
    g = torch.Generator().manual_seed(seed)
    sd = UNet(cfg).state_dict()
    out = {}
    for k, v in sd.items():
        w = torch.randn(v.shape, generator=g) * 0.2
        if k.endswith(("norm.weight", "in_layers.0.weight", "out_layers.0.weight", "out.0.weight")):
            w = 1 + w  # GroupNorm gains
        out[k] = w
    return out


def outputs(cfg: UNetConfig, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    net = UNet(cfg).eval()
    net.load_state_dict(sd)
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return torch.cat([net(x, torch.full((3,), c)) for c in (-1.0, 0.5, 2.0)])


def test_maps_keep_groups_and_heads() -> None:
    m = level_map(128, 256)  # 4 channels per group -> 8
    for g in range(32):
        assert sorted(m[8 * g: 8 * g + 8].tolist()) == sorted(list(range(4 * g, 4 * g + 4)) * 2)
    h = head_map(128, 256, 64)  # 2 heads of 64 -> 4 heads, each a whole copy of an old head
    assert h[:64].tolist() == list(range(64)) and h[128:192].tolist() == list(range(64))
    assert h[64:128].tolist() == h[192:].tolist() == list(range(64, 128))


def test_widening_one_level_keeps_the_function_exactly() -> None:
    """A one-level net has no level boundary, so the growth is exact (up to float rounding)."""
    old, new = small((1,)), small((2,))
    sd = trained_like(old)
    grown, worst = grow_state_dict(sd, old, new)
    ref = outputs(old, sd)
    assert ref.abs().mean() > 0.1  # the branches are really on
    assert torch.allclose(outputs(new, grown), ref, atol=1e-4 * float(ref.abs().max()))
    assert worst < 1e-5
    # The copies split their weights unevenly (symmetry broken), yet sum to the old weight.
    w_old, w_new = sd["out.2.weight"], grown["out.2.weight"]
    pairs = w_new.view(3, 32, 2, 3, 3)  # level_map(32, 64): old channel c -> new 2c and 2c + 1
    assert not torch.allclose(pairs[:, :, 0], pairs[:, :, 1])
    assert torch.allclose(pairs[:, :, 0] + pairs[:, :, 1], w_old, atol=1e-6)


def test_widening_a_deeper_level_stays_close_and_reports_the_change() -> None:
    """Level boundaries mix grown and ungrown channels in one GroupNorm group: close, not exact."""
    old, new = small((1, 2), attention_resolutions=(8,)), small((1, 4), attention_resolutions=(8,))
    sd = trained_like(old, seed=1)
    grown, worst = grow_state_dict(sd, old, new)
    a, b = outputs(old, sd), outputs(new, grown)
    rel = float((a - b).abs().max() / a.pow(2).mean().sqrt())
    assert 0 < worst < 0.5 and 0 < rel < 0.5
    fresh = UNet(new).state_dict()
    assert all(grown[k].shape == fresh[k].shape for k in fresh)


def test_growth_refuses_what_it_cannot_do() -> None:
    base = small((1, 2))
    with pytest.raises(ValueError, match="num_res_blocks"):
        growth_factors(base, dataclasses.replace(base, num_res_blocks=2))
    with pytest.raises(ValueError, match="whole factor"):
        growth_factors(small((2, 2)), small((3, 4)))
    with pytest.raises(ValueError, match="whole factor"):
        growth_factors(small((2, 2)), small((1, 2)))
    with pytest.raises(ValueError, match="number of levels"):
        growth_factors(base, small((1, 2, 2)))
    # Level 0 grown to level 1's width: the 1x1 skip between them would have to become the identity.
    with pytest.raises(ValueError, match="cannot widen"):
        grow_state_dict(trained_like(base), base, small((2, 2)))


def test_studio32w_is_studio32_with_a_wider_8px_level() -> None:
    assert growth_factors(preset("studio32").unet, preset("studio32w").unet) == (1, 1, 2)


def test_train_init_grows_a_narrower_model_file(tmp_path: Path) -> None:
    """`cstudio train CONFIG --init narrow.safetensors` grows the file into the config's wider net."""
    from engine.training.config import TrainConfig
    from engine.training.trainer import train

    photos = make_photoset(tmp_path / "photos")
    base = json.loads((REPO / "configs" / "tiny-test.json").read_text())
    base.update({"name": "tiny-wide", "data": {"path": str(photos)}, "log_every": 1000, "sample_every": 1000})
    cfg = TrainConfig.from_dict(base)
    narrow = cfg.unet_config()
    wide_mult = tuple(m * (2 if i == len(narrow.channel_mult) - 1 else 1) for i, m in enumerate(narrow.channel_mult))
    sd = trained_like(dataclasses.replace(narrow, dropout=0.0), seed=3)
    spec = dataclasses.replace(cfg.model_spec(), unet=dataclasses.replace(narrow, dropout=0.0))
    save_model(tmp_path / "narrow.safetensors", spec, sd)
    logs: list[str] = []
    wide = TrainConfig.from_dict({**base, "unet": {"channel_mult": list(wide_mult)}})
    t = train(wide, out=tmp_path / "run", init=tmp_path / "narrow.safetensors", steps=2, device="cpu", threads=1,
              log=logs.append)
    assert any("grew" in m and "at most" in m for m in logs), logs
    assert t.step == 2  # a grown model starts its own step count
    spec_out, sd_out, _ = load_model(tmp_path / "run" / "model.safetensors")
    assert spec_out.unet.channel_mult == wide_mult
    assert isinstance(spec_out, ModelSpec)
    # An unrelated network is refused with the reason.
    other = TrainConfig.from_dict({**base, "name": "tiny-other", "unet": {"num_res_blocks": 2}})
    with pytest.raises(ValueError, match="cannot be grown"):
        train(other, out=tmp_path / "run2", init=tmp_path / "narrow.safetensors", steps=1, device="cpu", threads=1,
              log=lambda _m: None)
