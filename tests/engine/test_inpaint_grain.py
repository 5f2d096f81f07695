"""Grain matching: a fill smoother than the photo around it gets the photo's own fine texture
(engine.inpaint.add_grain), as much as it lacks, and nothing where the photo has none."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.imageio import load_picture
from engine.inpaint import GRAIN_MAX, InpaintOptions, _high_pass, _robust_sigma, dilate, inpaint_any

ROOT = Path(__file__).resolve().parents[2]


def smooth_fill(y, start, known, s_start, n_steps, seed, on_step):
    """A stand-in for the network that keeps the start (a smooth membrane): no texture of its own."""
    return y * known + start.clamp(-1, 1) * (1 - known)


def grainy_sky(h: int = 160, w: int = 200, sigma: float = 3 / 255, seed: int = 0) -> np.ndarray:
    """A smooth gradient with sensor-like grain: noise blurred over about a pixel, some of it shared by the channels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.45 + 0.2 * y, 0.6 + 0.1 * x, 0.85 - 0.1 * y], -1)
    shared = rng.normal(0, 1, (h + 1, w + 1, 1))
    own = rng.normal(0, 1, (h + 1, w + 1, 3))
    n = 0.7 * shared + 0.7 * own
    n = (n[:-1, :-1] + n[1:, :-1] + n[:-1, 1:] + n[1:, 1:]) / 4  # a little spatial correlation, as after demosaicing
    return np.clip(base + sigma * n / n.std(), 0, 1).astype(np.float32)


def disk(h: int, w: int, r: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return (y - h // 2) ** 2 + (x - w // 2) ** 2 < r * r


def grain_inside_and_around(out: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The robust high-pass sigma of the luma, deep inside the hole and in a ring around it."""
    hp = _high_pass(out.mean(axis=2, keepdims=True))
    inner = ~dilate(~hole, 3)  # away from the hole's rim, where the 5x5 mean mixes both sides
    ring = dilate(hole, 12) & ~dilate(hole, 3)
    return _robust_sigma(hp[inner]), _robust_sigma(hp[ring])


def test_a_smooth_fill_in_a_grainy_sky_gets_the_skys_grain():
    img = grainy_sky()
    hole = disk(*img.shape[:2], 30)
    opts = InpaintOptions(min_context=48)
    plain, _ = inpaint_any(img, hole, smooth_fill, 16, 4, opts=InpaintOptions(min_context=48, grain=False))
    out, alpha = inpaint_any(img, hole, smooth_fill, 16, 4, opts=opts)
    inside, around = grain_inside_and_around(plain, hole)
    assert (inside < 0.3 * around).all(), (inside, around)  # the problem: a clean patch
    inside, around = grain_inside_and_around(out, hole)
    assert np.allclose(inside, around, rtol=0.25), (inside * 255, around * 255)
    # Grain, not a shift: the fill's local mean stays the membrane's.
    assert abs(float((out - plain)[hole].mean())) < 0.2 / 255
    assert np.array_equal(out[alpha == 0], img[alpha == 0])
    # The same seed gives the same grain; another seed other grain.
    again, _ = inpaint_any(img, hole, smooth_fill, 16, 4, opts=opts)
    other, _ = inpaint_any(img, hole, smooth_fill, 16, 4, seed=1, opts=opts)
    assert np.array_equal(out, again) and not np.array_equal(out[hole], other[hole])


def test_a_clean_picture_gets_no_grain():
    img = grainy_sky(sigma=0.0)
    hole = disk(*img.shape[:2], 30)
    with_grain, _ = inpaint_any(img, hole, smooth_fill, 16, 4, opts=InpaintOptions(min_context=48))
    without, _ = inpaint_any(img, hole, smooth_fill, 16, 4, opts=InpaintOptions(min_context=48, grain=False))
    assert np.array_equal(with_grain, without)


def test_edges_near_the_hole_do_not_pass_for_grain():
    # A hard edge beside the hole (a roof line against the sky) is texture the robust sigma ignores:
    # a clean picture with an edge in the ring still gets (almost) no grain.
    img = grainy_sky(sigma=0.0)
    img[:, 120:] *= 0.4
    hole = disk(*img.shape[:2], 30)
    with_grain, _ = inpaint_any(img, hole, smooth_fill, 16, 4, opts=InpaintOptions(min_context=48))
    without, _ = inpaint_any(img, hole, smooth_fill, 16, 4, opts=InpaintOptions(min_context=48, grain=False))
    assert np.abs(with_grain - without).max() < 1 / 255


def test_a_real_photo_fill_gets_grain_of_the_size_around_it():
    photo = load_picture(ROOT / "resources" / "samples" / "italy.png").rgb.astype(np.float32) / 255
    img = np.ascontiguousarray(photo[:200, 300:560])
    hole = disk(*img.shape[:2], 24)
    out, _ = inpaint_any(img, hole, smooth_fill, 16, 4, opts=InpaintOptions(min_context=48))
    inside, around = grain_inside_and_around(out, hole)
    ring = dilate(hole, 16) & ~hole
    learnt = np.minimum(_robust_sigma(_high_pass(img.mean(axis=2, keepdims=True))[ring]), GRAIN_MAX)
    # As grainy as the photo's ring, not more (the membrane adds almost none of its own).
    assert (inside <= 1.3 * learnt + 0.3 / 255).all() and (inside >= 0.6 * learnt).all(), (inside * 255, learnt * 255)


def test_texture_is_not_copied_as_grain():
    # Around a hole in fur or grass the high-pass is texture (7.6 levels at 256 px), not grain:
    # copied in random patches it made a patchwork. At most GRAIN_MAX is added.
    img = grainy_sky(sigma=12 / 255)
    hole = disk(*img.shape[:2], 30)
    out, _ = inpaint_any(img, hole, smooth_fill, 16, 4, opts=InpaintOptions(min_context=48))
    inside, around = grain_inside_and_around(out, hole)
    assert (around > 2 * GRAIN_MAX).all() and (inside < 1.3 * GRAIN_MAX).all(), (inside * 255, around * 255)
