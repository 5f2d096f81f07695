"""UNet structure, preconditioning identities and attention layout."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from engine import PRESETS, Denoiser, DenoiserConfig, UNet, UNetConfig, preset
from engine.denoiser import scalings
from engine.unet import AttentionBlock, count_parameters

OFFICIAL = {  # parameters and state_dict tensors of the released checkpoints
    "cd_imagenet64_l2": (295_899_267, 541), "ct_imagenet64": (295_899_267, 541), "edm_imagenet64_ema": (295_899_267, 541),
    "cd_bedroom256_lpips": (526_304_771, 566), "ct_cat256": (526_304_771, 566), "edm_bedroom256_ema": (526_304_771, 566),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_released_presets_match_official_sizes(name):
    with torch.device("meta"):
        net = UNet(PRESETS[name].unet)
    assert (count_parameters(net), len(net.state_dict())) == OFFICIAL[name]


def test_imagenet_key_names_and_shapes():
    with torch.device("meta"):
        sd = UNet(PRESETS["cd_imagenet64_l2"].unet).state_dict()
    assert sd["input_blocks.5.1.qkv.weight"].shape == (3 * 384, 384, 1, 1)
    assert sd["input_blocks.4.0.in_layers.2.weight"].shape == (192, 192, 3, 3)  # down ResBlock, identity skip
    assert "input_blocks.4.0.skip_connection.weight" not in sd
    assert sd["output_blocks.3.2.in_layers.2.weight"].shape == (768, 768, 3, 3)  # up ResBlock at .2
    assert sd["label_emb.weight"].shape == (1000, 768)
    assert sd["input_blocks.1.0.emb_layers.1.weight"].shape == (2 * 192, 768)  # scale-shift doubles it
    with torch.device("meta"):
        lsun = UNet(PRESETS["cd_bedroom256_l2"].unet).state_dict()
    assert "output_blocks.11.1.in_layers.0.weight" in lsun and "output_blocks.2.2.in_layers.0.weight" in lsun
    assert "label_emb.weight" not in lsun


def test_fresh_network_outputs_zero():
    net = UNet(preset("tiny").unet)
    out = net(torch.randn(2, 3, 16, 16), torch.tensor([1.0, -3.0]))
    assert torch.equal(out, torch.zeros_like(out))


def test_config_validation_messages():
    with pytest.raises(ValueError, match="multiple of 32"):
        UNetConfig(model_channels=48)
    with pytest.raises(ValueError, match="not divisible"):
        UNetConfig(image_size=20, channel_mult=(1, 2, 3, 4))
    with pytest.raises(KeyError, match="choose one of"):
        preset("nope")


def test_attention_uses_q_k_v_blocks_with_contiguous_heads():
    """qkv channel = part*C + head*d + j: build the same attention by hand and compare."""
    torch.manual_seed(0)
    blk = AttentionBlock(64, 32)
    for p in blk.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 64, 4, 4)
    with torch.no_grad():
        qkv = F.conv2d(blk.norm(x), blk.qkv.weight, blk.qkv.bias).flatten(2)  # (B, 3C, T)
        q, k, v = qkv.chunk(3, dim=1)
        heads = []
        for h in range(2):
            sl = slice(32 * h, 32 * (h + 1))
            w = torch.softmax(torch.einsum("bct,bcs->bts", q[:, sl], k[:, sl]) / 32**0.5, dim=-1)
            heads.append(torch.einsum("bts,bcs->bct", w, v[:, sl]))
        a = torch.cat(heads, dim=1)
        want = x + F.conv2d(a.view(2, 64, 4, 4), blk.proj_out.weight, blk.proj_out.bias)
        torch.testing.assert_close(blk(x), want, atol=1e-5, rtol=1e-5)


def test_boundary_condition_is_exact():
    net = UNet(preset("tiny").unet)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    den = Denoiser(net, DenoiserConfig())
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(den(x, 0.002), x)


@pytest.mark.parametrize("kind", ["cm", "edm"])
def test_scalings_identities(kind):
    cfg = DenoiserConfig(kind=kind)
    s = torch.tensor([0.01, 0.5, 1.0, 80.0], dtype=torch.float64)
    c_skip, c_out, c_in = scalings(s, cfg)
    torch.testing.assert_close(c_in, 1 / (s**2 + 0.25).sqrt())
    shift = s - cfg.sigma_min if kind == "cm" else s
    torch.testing.assert_close(c_skip, 0.25 / (shift**2 + 0.25))
    torch.testing.assert_close(c_out, shift * 0.5 / (s**2 + 0.25).sqrt())
    if kind == "edm":  # unit-variance training target (Karras et al., 2022, Eq. 7): c_skip^2 sd^2 + c_out^2 ... = sd^2
        torch.testing.assert_close(c_skip**2 * (s**2 + 0.25) - 2 * c_skip * 0.25 + 0.25, c_out**2)


@pytest.mark.parametrize("shape", [(8, 32, 16, 16), (4, 64, 8, 8), (2, 64, 32, 32), (1, 64, 8, 8)])
def test_group_norm_bf16_channels_last_matches_fp32(shape):
    """Both CPU paths (the direct kernel and the layout-copy one for batches of small maps)
    give the fp32 result to bf16 rounding, and keep the channels_last layout for the next conv."""
    from engine.unet import GroupNorm32

    g = torch.Generator().manual_seed(0)
    norm = GroupNorm32(shape[1])
    with torch.no_grad():
        norm.weight.copy_(torch.randn(shape[1], generator=g))
        norm.bias.copy_(torch.randn(shape[1], generator=g))
    x = (torch.randn(shape, generator=g) * 3 + 1).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    ref = torch.nn.functional.group_norm(x.float(), 32, norm.weight, norm.bias, 1e-5)
    with torch.no_grad():
        out = norm(x)
    assert out.dtype == torch.bfloat16
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert (out.float() - ref).abs().max() < 0.05


def test_a_network_at_another_size_keeps_its_attention_levels():
    """`UNetConfig.at_size`: an official file whose training size was guessed runs at the size the
    user states; its weights fit, attention stays at the same downsampling levels."""
    unet = UNetConfig(image_size=256, channel_mult=(1, 1, 2, 2, 4, 4), attention_resolutions=(32, 16, 8))
    assert unet.size_step == 32 and unet.attention_ds == (8, 16, 32)
    at64 = unet.at_size(64)
    assert at64.image_size == 64 and at64.attention_resolutions == (8, 4, 2) and at64.attention_ds == unet.attention_ds
    assert dataclasses.replace(at64, image_size=256, attention_resolutions=(32, 16, 8)) == unet  # nothing else moved
    with pytest.raises(ValueError, match=r"not divisible by 2\*\*5"):
        unet.at_size(48)
