"""Promised invariants of the engine checked on edge cases with the tiny random model: exact block
means of upscales, untouched pixels of inpainting, kept luma of colorization, and model files
that are refused by name rather than loaded into NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from engine import CheckpointError, Model, load_model, save_model
from engine.inpaint import InpaintOptions, blend_alpha
from engine.tensors import rgb_to_ycbcr


def noise_image(h, w, dtype=np.uint8, seed=0):
    """Uniform random pixels: many blocks near 0 and 255, where a clamped tile loses its means."""
    peak = 65535 if dtype == np.uint16 else 255
    return (np.random.default_rng(seed).random((h, w, 3)) * peak).astype(dtype)


def block_mean_error(out, image, k):
    """Largest |block mean of out - input pixel|, in the input's integer levels."""
    h, w = image.shape[:2]
    return np.abs(out.reshape(h, k, w, k, 3).astype(np.float64).mean(axis=(1, 3)) - image).max()


@pytest.mark.parametrize("k, h, w, dtype", [(2, 13, 21, np.uint8), (4, 9, 10, np.uint8), (2, 2, 3, np.uint8),
                                            (4, 1, 1, np.uint8), (2, 11, 6, np.uint16)])
def test_upscale_block_means_equal_the_input_within_rounding(tiny_model, k, h, w, dtype):
    """README: each input pixel is the exact mean of its output block. Clamping tiles to [0, 1]
    and blending overlapping tiles moved means by up to 25 levels (uint8) on noisy input."""
    img = noise_image(h, w, dtype)
    out = tiny_model.upscale(img, k, seed=0, num_steps=2)
    assert out.shape == (h * k, w * k, 3) and out.dtype == dtype
    assert block_mean_error(out, img, k) <= 0.5 + 1e-9  # each pixel rounds by at most half a level


def test_upscale_block_means_hold_under_alpha(tiny_model):
    """Where alpha is visible the colour is the input's, so its blocks keep the input's means."""
    from engine.upscale import BLEED_BELOW

    img = noise_image(12, 10, seed=1)
    alpha = (np.random.default_rng(2).random((12, 10)) * 255).astype(np.uint8)
    out, a2 = tiny_model.upscale(img, 2, seed=0, num_steps=1, alpha=alpha)
    assert out.shape == (24, 20, 3) and a2.shape == (24, 20) and a2.dtype == np.uint8
    err = np.abs(out.reshape(12, 2, 10, 2, 3).astype(np.float64).mean(axis=(1, 3)) - img)
    assert err[alpha >= BLEED_BELOW * 255].max() <= 0.5 + 1e-9


def test_fit_block_means_is_the_box_constrained_projection():
    from engine.upscale import fit_block_means

    rng = np.random.default_rng(0)
    k = 4
    x = rng.normal(0.5, 0.6, (3 * k, 5 * k, 3)).astype(np.float32)  # well outside [0, 1] in places
    target = rng.random((3, 5, 3)).astype(np.float32)
    target[0, 0] = 0.0  # only all-zero blocks have mean 0
    target[1, 1] = 1.0
    y = fit_block_means(x, target, k)
    assert y.min() >= 0 and y.max() <= 1
    np.testing.assert_allclose(y.reshape(3, k, 5, k, 3).mean(axis=(1, 3)), target, atol=1e-6)
    assert y[:k, :k].max() < 1e-6 and y[k:2 * k, k:2 * k].min() > 1 - 1e-6  # the only such blocks
    np.testing.assert_allclose(fit_block_means(y, target, k), y, atol=1e-6)  # idempotent
    # Where the plain shift stays inside [0, 1] it is the answer (the SuperRes projection's).
    inside = np.full((k, k, 3), 0.5, np.float32) + rng.normal(0, 0.05, (k, k, 3)).astype(np.float32)
    t = np.full((1, 1, 3), 0.45, np.float32)
    np.testing.assert_allclose(fit_block_means(inside, t, k), inside - inside.mean(axis=(0, 1)) + 0.45, atol=1e-6)


def test_upscale_same_seed_same_output_and_batch_independent(tiny_model):
    img = noise_image(19, 20, seed=3)
    outs = [tiny_model.upscale(img, 2, seed=1, batch=b, num_steps=1) for b in (64, 5, 1)]
    for out in outs[1:]:
        assert np.abs(out.astype(np.int32) - outs[0]).max() <= 1
    assert np.array_equal(outs[0], tiny_model.upscale(img, 2, seed=1, batch=64, num_steps=1))


def _masks(h, w):
    rng = np.random.default_rng(0)
    corner = np.zeros((h, w), bool)
    corner[:3, :3] = True
    edges = np.zeros((h, w), bool)
    edges[:, 0] = edges[-1, :] = True
    spots = rng.random((h, w)) < 0.05
    return {"corner": corner, "edges": edges, "spots": spots, "all": np.ones((h, w), bool),
            "empty": np.zeros((h, w), bool)}


@pytest.mark.parametrize("shape", [(20, 30), (5, 7), (20, 1), (1, 20), (150, 40)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_inpaint_leaves_pixels_outside_its_alpha_bit_identical(tiny_model, shape, dtype):
    h, w = shape
    img = noise_image(h, w, dtype)
    opts = InpaintOptions(feather=2)
    masks = _masks(h, w)
    if h == 150:  # a region taller than the context window and the finest working size
        masks = {"long": np.zeros((h, w), bool)}
        masks["long"][5:145, 18:22] = True
    for name, mask in masks.items():
        if not mask.any() or mask.all():  # nothing to fill, or nothing known to fill from
            with pytest.raises(ValueError, match="selects no pixel|covers the whole image"):
                tiny_model.inpaint(img, mask, seed=0, num_steps=1, options=opts)
            continue
        out = tiny_model.inpaint(img, mask, seed=0, num_steps=1, options=opts)
        assert out.shape == img.shape and out.dtype == img.dtype, name
        outside = blend_alpha(mask, opts.grow, opts.feather) == 0
        assert np.array_equal(out[outside], img[outside]), name


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 3), (33, 47)])
def test_colorize_keeps_luma_on_any_size(tiny_model, shape):
    grey = np.repeat(noise_image(*shape)[..., :1], 3, axis=-1)
    for img in (grey, noise_image(*shape, seed=1)):  # a grey photo and a colour one
        out = tiny_model.colorize(img, seed=0, num_steps=1)
        assert out.shape == img.shape and out.dtype == img.dtype
        luma_in, luma_out = (rgb_to_ycbcr(a.astype(np.float64))[..., 0] for a in (img, out))
        assert np.abs(luma_out - luma_in).max() <= 0.5 + 1e-3  # each channel rounds by half a level


def test_a_nan_start_sigma_or_strength_is_refused(tiny_model):
    """min/max clamping passed NaN through to the loop, which returned an all-black image."""
    img = noise_image(12, 14)
    mask = np.zeros((12, 14), bool)
    mask[4:8, 4:8] = True
    nan = float("nan")
    with pytest.raises(ValueError, match="nan"):
        tiny_model.inpaint(img, mask, sigma_start=nan)
    with pytest.raises(ValueError, match="nan"):
        tiny_model.upscale(img, 2, sigma_start=nan)
    with pytest.raises(ValueError, match="nan"):
        tiny_model.colorize(img, sigma_start=nan)
    with pytest.raises(ValueError, match="nan"):
        tiny_model.stroke_edit(img, strength=nan)


def _save_with_spec(path, spec_dict, state_dict):
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path),
              metadata={"format": "consistency-studio", "format_version": "1", "spec": json.dumps(spec_dict)})
    return path


@pytest.mark.parametrize("field, value", [
    (("unet", "num_head_channels"), 0), (("unet", "num_head_channels"), "32"), (("unet", "num_head_channels"), -32),
    (("unet", "attention_resolutions"), [0]), (("unet", "num_res_blocks"), "1"), (("unet", "num_classes"), "x"),
    (("unet", "dropout"), "x"), (("denoiser", "sigma_data"), "0.5"), (("denoiser", "sigma_data"), 0),
    (("denoiser", "rho"), 0), (("denoiser", "sigma_max"), float("inf")), (("sampler", "edm_sampler"), "rk4"),
    (("sampler", "edm_steps"), 0), (("unet", "model_channels"), "32"), (("unet", "image_size"), 16.0),
    (("unet", "channel_mult"), ["1", 2]),
])
def test_malformed_spec_metadata_is_refused_by_name(tmp_path, tiny_model, field, value):
    """These loaded (and failed or made NaN at the first step) or raised ZeroDivisionError/TypeError."""
    spec = json.loads(tiny_model.spec.to_json())
    spec[field[0]][field[1]] = value
    path = _save_with_spec(tmp_path / "bad.safetensors", spec, tiny_model.denoiser.net.state_dict())
    with pytest.raises(CheckpointError, match=rf"bad.safetensors.*\b{field[1]}\b"):
        load_model(path)


def test_spec_that_builds_no_network_is_a_checkpoint_error(tmp_path, tiny_model):
    spec = json.loads(tiny_model.spec.to_json())
    spec["unet"]["num_head_channels"] = 33  # divides no attention width
    path = _save_with_spec(tmp_path / "heads.safetensors", spec, tiny_model.denoiser.net.state_dict())
    with pytest.raises(CheckpointError, match="heads.safetensors.*num_head_channels 33"):
        load_model(path)


def test_weights_with_nan_are_refused_by_key(tmp_path, tiny_model):
    sd = dict(tiny_model.denoiser.net.state_dict())
    sd["out.2.weight"] = sd["out.2.weight"].clone()
    sd["out.2.weight"][0, 0, 0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="'out.2.weight' holds NaN"):
        load_model(save_model(tmp_path / "nan.safetensors", tiny_model.spec, sd))


def test_fp16_export_runs_close_to_fp32_and_refuses_overflow(tmp_path, tiny_model):
    sd = tiny_model.denoiser.net.state_dict()
    spec, sd16, _ = load_model(save_model(tmp_path / "h.safetensors", tiny_model.spec, sd, dtype=torch.float16))
    m16 = Model(spec, sd16, device="cpu", precision="fp32")
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(m16.denoise(x, 1.0), tiny_model.denoise(x, 1.0), atol=2e-2, rtol=0)
    big = dict(sd)
    big["out.2.weight"] = sd["out.2.weight"] * 0 + 1e5  # beyond fp16's 65504: would be stored as inf
    with pytest.raises(CheckpointError, match="'out.2.weight'.*float16"):
        save_model(tmp_path / "big.safetensors", tiny_model.spec, big, dtype=torch.float16)
    assert not (tmp_path / "big.safetensors").exists()


def test_fit_block_means_spreads_a_smooth_error_without_block_steps():
    from engine.upscale import fit_block_means

    k, h, w = 4, 6, 8
    rng = np.random.default_rng(1)
    x = (0.5 + rng.normal(0, 0.01, (h * k, w * k, 3))).astype(np.float32)
    ramp = 0.02 * np.arange(w, dtype=np.float32)[None, :, None]  # the means are off by a smooth ramp
    target = x.reshape(h, k, w, k, 3).mean(axis=(1, 3)) + ramp
    y = fit_block_means(x, target, k)
    np.testing.assert_allclose(y.reshape(h, k, w, k, 3).mean(axis=(1, 3)), target, atol=1e-5)
    # A constant shift per block would step by 0.02 at every block border; the smooth correction
    # climbs about 0.02 / k a pixel.
    steps = np.abs(np.diff(y - x, axis=1))
    assert steps.max() < 0.5 * 0.02


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_grey_photo_stays_grey_through_upscale_and_inpaint(tiny_model, dtype):
    from engine.tensors import is_grey

    g = noise_image(13, 17, seed=5)[..., :1]
    grey = np.repeat(g, 3, axis=2).astype(dtype) * (257 if dtype == np.uint16 else 1)
    assert is_grey(grey) and not is_grey(noise_image(13, 17, seed=5))
    up = tiny_model.upscale(grey, 2, num_steps=1)
    assert np.array_equal(up[..., 0], up[..., 1]) and np.array_equal(up[..., 0], up[..., 2])
    mask = np.zeros(grey.shape[:2], bool)
    mask[3:9, 4:12] = True
    filled = tiny_model.inpaint(grey, mask, num_steps=1)
    assert np.array_equal(filled[..., 0], filled[..., 1]) and np.array_equal(filled[..., 0], filled[..., 2])
    assert not np.array_equal(filled[mask], grey[mask])


def test_a_nearly_grey_jpeg_keeps_its_block_means_and_loses_the_invented_colour(tiny_model):
    rng = np.random.default_rng(2)
    g = noise_image(12, 16, seed=6)[..., :1].astype(np.int16)
    img = np.clip(g + rng.integers(-1, 2, (12, 16, 3)), 0, 255).astype(np.uint8)  # JPEG-like chroma noise
    up = tiny_model.upscale(img, 2, num_steps=1).astype(np.float64)
    means = up.reshape(12, 2, 16, 2, 3).mean(axis=(1, 3))
    # Within a level: rounding, and a channel offset that would reach below 0 next to black is clipped.
    assert np.abs(means - img).max() <= 1.0
    # Chroma within a block is the input pixel's own (at most 2 levels), not the model's.
    assert (up.max(axis=2) - up.min(axis=2)).max() <= 3


def test_colorize_never_renders_above_the_photos_own_size(tiny_model):
    img = noise_image(48, 64, seed=7)
    small = tiny_model.colorize(img, render_size=48)
    assert np.array_equal(tiny_model.colorize(img, render_size=4096), small)
    assert np.array_equal(tiny_model.colorize(img, render_size=50), tiny_model.colorize(img, render_size=52))
    # Below the model's own resolution a tiny photo is still rendered at that resolution.
    tiny = noise_image(5, 7, seed=8)
    assert np.array_equal(tiny_model.colorize(tiny, render_size=4096), tiny_model.colorize(tiny))
