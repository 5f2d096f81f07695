"""Windows too large to hold as floats (`engine.inpaint.fill_large_window`): a stroke across a whole
96 Mpx photo made one window of the whole photo, whose full-size float steps took 115 s and 15 GB.

The large path is forced on small images by lowering `LARGE_WINDOW` / `MID_PIXELS`, so it can be
compared with `fill_window` (the exact path) on the same data.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import engine.inpaint as inpaint
from engine import Model
from engine.eval.metrics import psnr
from engine.inpaint import InpaintOptions, block_means, fill_large_window, fill_window, smooth_fill
from engine.paths import resources_dir
from engine.tensors import resize_float


def _photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    a = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 9) * np.cos(yy / 13)], -1)
    return np.clip(a + rng.normal(0, 0.03, a.shape), 0, 1).astype(np.float32)


def _cast_fill(y, start, known, s_start, n_steps, seed, on_step):
    """No network: the start plus a cast and seeded noise in the hole (a fill with its own content,
    which the cloning must fit to the border)."""
    g = torch.Generator().manual_seed(seed)
    return y * known + (start + 0.15 + 0.2 * torch.randn(start.shape, generator=g)).clamp(-1, 1) * (1 - known)


def _assemble(crop: np.ndarray, parts) -> np.ndarray:
    out = crop.copy()
    seen = np.zeros(crop.shape[:2], np.int32)
    for rows, cols, tile in parts:
        out[rows, cols] = tile
        seen[rows, cols] += 1
    assert seen.max() <= 1, "tiles overlap"
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_block_means_average_only_the_known_pixels_of_each_block(k):
    rng = np.random.default_rng(k)
    h, w = 37, 50  # not multiples of k: the edge blocks are partial
    src = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    hole = rng.random((h, w)) < 0.4
    hole[:k * 2, :k * 2] = True  # whole blocks with no known pixel read 0
    seen = []
    means, cover = block_means(src, hole, k, lambda a: seen.append(a.shape[0]) or a.astype(np.float32) / 255,
                               strip_px=k * k * 11)
    assert len(seen) > 2 and sum(seen) == h, seen  # a strip at a time, every row once
    assert means.shape == (-(-h // k), -(-w // k), 3) and cover.shape == means.shape[:2]
    for by in range(means.shape[0]):
        for bx in range(means.shape[1]):
            block = np.s_[by * k:(by + 1) * k, bx * k:(bx + 1) * k]
            known = ~hole[block]
            assert cover[by, bx] == pytest.approx(known.mean())
            want = src[block][known].astype(np.float64).mean(0) / 255 if known.any() else np.zeros(3)
            np.testing.assert_allclose(means[by, bx], want, atol=1e-5)


def test_parts_of_the_upsampling_and_resizing_equal_the_whole():
    rng = np.random.default_rng(0)
    small = rng.random((20, 30, 3)).astype(np.float32)
    k = 3
    whole = inpaint._hwc(torch.nn.functional.interpolate(inpaint._nchw(small), scale_factor=k, mode="bicubic",
                                                         align_corners=False))
    size = (57, 88)
    whole_l = resize_float(small, (size[1], size[0]), Image.Resampling.LANCZOS)
    for rows, cols in ((slice(0, 20), slice(0, 88)), (slice(17, 44), slice(31, 70)), (slice(40, 57), slice(60, 88))):
        np.testing.assert_allclose(inpaint._upsample_part(small, k, rows, cols), whole[rows, cols], atol=1e-5)
        np.testing.assert_allclose(inpaint._resize_part(small, size, rows, cols), whole_l[rows, cols], atol=2e-4)


def test_with_no_averaging_the_large_path_is_the_exact_one():
    """k = 1 (the mid level is the window): the same fill, cloning and thin-hole rule, tile by tile."""
    crop = _photo_like(300, 420)
    hole = np.zeros((300, 420), bool)
    hole[60:160, 90:260] = True  # a box: cloned, its rim kept to the membrane
    hole[230:236, 20:400] = True  # a stroke: the membrane
    opts = InpaintOptions(grow=0, feather=0)
    want = fill_window(crop, hole, _cast_fill, 32, 4, opts, seed=0)
    got = _assemble(crop, fill_large_window(crop, hole, _cast_fill, 32, 4, opts, 0, mid_pixels=crop.shape[0] * crop.shape[1]))
    # Equal but for the clipping to [0, 1], which the exact path does before the thin-hole rule.
    assert np.abs(got - want).max() < 0.02 and np.abs(got - want).mean() < 1e-4
    assert np.array_equal(got[~hole], crop[~hole])


def test_a_mid_level_fill_stays_close_to_the_exact_one_and_seamless():
    crop = _photo_like(384, 512, seed=1)
    hole = np.zeros((384, 512), bool)
    hole[100:230, 150:330] = True
    opts = InpaintOptions(grow=0, feather=0, max_scale=1)  # 16 photo px per pixel, as in a large window
    want = fill_window(crop, hole, _cast_fill, 32, 4, opts, seed=0)
    parts = list(fill_large_window(crop, hole, _cast_fill, 32, 4, opts, 0, mid_pixels=crop.shape[0] * crop.shape[1] // 9))
    got = _assemble(crop, parts)
    assert all(t[~hole[r, c]].tolist() == crop[r, c][~hole[r, c]].tolist() for r, c, t in parts)
    assert psnr(got * 255, want * 255, hole) > 35
    # The cast the fill added is gone at the border, as the cloning does at full size: the ring
    # just inside the hole matches the ring just outside it.
    ring_in = hole & ~inpaint.dilate(~hole, 2)
    ring_out = ~hole & inpaint.dilate(hole, 2)
    assert abs(got[ring_in].mean() - crop[ring_out].mean()) < 0.02
    assert abs(want[ring_in].mean() - crop[ring_out].mean()) < 0.02


def test_a_thin_stroke_in_a_large_window_is_the_full_size_membrane():
    crop = _photo_like(256, 640, seed=2)
    hole = np.zeros((256, 640), bool)
    hole[128:131, 10:630] = True
    opts = InpaintOptions(grow=0, feather=0)
    got = _assemble(crop, fill_large_window(crop, hole, _cast_fill, 32, 4, opts, 0, mid_pixels=256 * 640 // 4))
    membrane = smooth_fill(torch.from_numpy(crop).permute(2, 0, 1)[None], torch.from_numpy(~hole)[None, None])
    np.testing.assert_allclose(got, membrane[0].permute(1, 2, 0).numpy(), atol=0.02)


def test_inpaint_parts_takes_large_windows_tile_by_tile(monkeypatch):
    """Only tiles the hole touches come back, never a whole-window float; progress reaches its total;
    pixels outside the grown, feathered mask are kept."""
    monkeypatch.setattr(inpaint, "LARGE_WINDOW", 100_000)
    monkeypatch.setattr(inpaint, "MID_PIXELS", 40_000)
    img = (_photo_like(600, 900, seed=3) * 255).astype(np.uint8)
    mask = np.zeros((600, 900), bool)
    im = Image.new("L", (900, 600), 0)
    ImageDraw.Draw(im).line([(40, 300), (450, 200), (860, 400)], fill=255, width=8)
    mask = np.asarray(im) > 0
    converted, steps = [], []
    opts = InpaintOptions(grow=1, feather=3)

    def fill(y, start, known, s_start, n_steps, seed, on_step):
        for _ in range(4 if s_start is None else n_steps):  # one call per network evaluation
            on_step()
        return _cast_fill(y, start, known, s_start, n_steps, seed, on_step)

    out = img.astype(np.float32) / 255
    covered = np.zeros(mask.shape, bool)
    for rows, cols, blended, alpha in inpaint.inpaint_parts(
            img, mask, fill, 32, 4, opts=opts, progress=lambda d, t: steps.append((d, t)),
            to_float=lambda a: converted.append(a.shape[:2]) or a.astype(np.float32) / 255):
        assert blended.shape[:2] == alpha.shape and alpha.shape[0] <= 256 and alpha.shape[1] <= 256
        assert not covered[rows, cols].any()
        covered[rows, cols] = True
        out[rows, cols] = np.where(alpha[..., None] > 0, blended, out[rows, cols])
    # One pass of full-width strips for the mid level (at most 2 Mpx each), then tiles with margins.
    strips = [h for h, w in converted if w == 900]
    assert sum(strips) == 600, converted
    assert max(h * w for h, w in converted if w < 900) <= (256 + 2 * 64) ** 2, converted
    assert steps and steps[-1][0] == steps[-1][1]
    reach = inpaint.dilate(mask, opts.grow + opts.feather)
    assert covered[reach].all()
    assert np.array_equal((out[~reach] * 255).round().astype(np.uint8), img[~reach])
    assert np.abs(out[mask] - img[mask] / 255).mean() < 0.1  # filled from its surroundings


# -- the shipped model on a real photo -------------------------------------------------------------


def test_the_shipped_model_fills_a_large_window_as_well_as_the_exact_path(shipped_model: Model, monkeypatch):
    """The sample photo (CC0), a box and a stroke in one window, through `Model.inpaint`: the large
    path (mid level k = 2) against the exact one, both scored against the photo itself."""
    with Image.open(resources_dir() / "samples" / "italy.png") as im:
        photo = np.asarray(im.convert("RGB"))
    h, w = photo.shape[:2]
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    draw.line([(40, 350), (400, 300), (730, 420)], fill=255, width=10)
    draw.rectangle([300, 120, 380, 180], fill=255)
    mask = np.asarray(canvas) > 0
    opts = InpaintOptions(max_scale=1)  # the finest level 32 px: 24 photo px per pixel, as in a large window
    exact = shipped_model.inpaint(photo, mask, seed=0, options=opts)
    monkeypatch.setattr(inpaint, "LARGE_WINDOW", 10_000)
    monkeypatch.setattr(inpaint, "MID_PIXELS", h * w // 4)
    large = shipped_model.inpaint(photo, mask, seed=0, options=opts)
    grown = inpaint.dilate(mask, 1)
    assert np.array_equal(large[~grown], photo[~grown])
    assert psnr(large, exact, grown) > 30
    assert psnr(large, photo, grown) > psnr(exact, photo, grown) - 0.5


@pytest.mark.parametrize("px", [1, 2, 5, 8, 9, 12, 40])
def test_dilate_grows_by_a_square(px):
    """Against the definition (the max over a square), not Pillow's filter, which larger radii use."""
    rng = np.random.default_rng(px)
    mask = rng.random((41, 29)) < 0.03
    mask[0, 5] = mask[40, 28] = mask[17, 0] = True  # at the edges
    ys, xs = np.nonzero(mask)
    yy, xx = np.mgrid[:41, :29]
    want = ((np.abs(yy[..., None] - ys) <= px) & (np.abs(xx[..., None] - xs) <= px)).any(-1)
    assert np.array_equal(inpaint.dilate(mask, px), want)
    one = np.zeros((3, 2), bool)
    one[1, 1] = True
    assert inpaint.dilate(one, px).all() and not inpaint.dilate(np.zeros((3, 2), bool), px).any()
