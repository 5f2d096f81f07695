from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model import brush
from app.model.brush import BrushSettings, BrushTool, Stroke


def test_a_stroke_covers_its_path_and_nothing_far_away() -> None:
    s = Stroke((100, 100), BrushSettings(size=10, hardness=1.0))
    s.add(20.5, 50.5)
    rect = s.add(80.5, 50.5)
    assert rect is not None
    assert s.coverage[50, 20:81].min() == 255  # continuous along the path
    assert s.coverage[50 + 8, 50] == 0 and s.coverage[10, 50] == 0
    assert s.bounds == (15, 45, 87, 57)


def test_hardness_controls_the_edge() -> None:
    hard, soft = np.zeros((41, 41), np.uint8), np.zeros((41, 41), np.uint8)
    brush.stamp(hard, 20.5, 20.5, 15, 1.0)
    brush.stamp(soft, 20.5, 20.5, 15, 0.0)
    assert hard[20, 20] == soft[20, 20] == 255
    # Halfway out, a hard brush is still full and a soft one has faded.
    assert hard[20, 28] == 255 and 0 < soft[20, 28] < 200
    assert hard[20, 36] == 0 and soft[20, 36] == 0


def test_crossing_a_stroke_does_not_accumulate() -> None:
    s = Stroke((50, 50), BrushSettings(size=20, hardness=0.0))
    s.add(10, 25)
    once = s.coverage.copy()
    s.add(40, 25)
    s.add(10, 25)
    assert s.coverage[25, 10] == once[25, 10]


def test_apply_to_mask_paints_and_erases_from_the_base() -> None:
    base = np.zeros((20, 20), np.uint8)
    base[:, :10] = 255
    cov = np.zeros_like(base)
    cov[5:15, 5:15] = 255
    mask = base.copy()
    brush.apply_to_mask(mask, base, cov, (0, 0, 20, 20), erase=False)
    assert mask[10, 12] == 255 and mask[0, 15] == 0
    mask = base.copy()
    brush.apply_to_mask(mask, base, cov, (0, 0, 20, 20), erase=True)
    assert mask[10, 7] == 0 and mask[0, 7] == 255


def test_colour_strokes_blend_into_the_image() -> None:
    img = np.zeros((10, 10, 3), np.uint8)
    cov = np.zeros((10, 10), np.uint8)
    cov[2:4, 2:4] = 255
    cov[5, 5] = 128
    out = brush.apply_to_image(img, cov, (200, 100, 50), (0, 0, 10, 10))
    assert tuple(out[3, 3]) == (200, 100, 50)
    assert tuple(out[5, 5]) == (100, 50, 25)
    assert out[0, 0].sum() == 0 and img.sum() == 0  # base untouched


def test_mask_operations() -> None:
    m = np.zeros((30, 30), np.uint8)
    m[10:20, 10:20] = 255
    assert (brush.invert(m) == 255 - m).all()
    g = brush.grow(m, 3)
    assert g[7, 7] == 255 and g[6, 6] == 0 and (g >= m).all()
    s = brush.shrink(m, 3)
    assert s[13, 13] == 255 and s[12, 12] == 0 and (s <= m).all()
    big = np.zeros((60, 60), np.uint8)
    big[20:40, 20:40] = 255
    f = brush.feather(big, 6)
    assert f[30, 30] == 255 and 0 < f[20, 20] < 255 and f[0, 0] == 0
    assert brush.bounds(m) == (10, 10, 20, 20) and brush.bounds(np.zeros_like(m)) is None


def test_brush_size_steps_are_multiplicative_and_clamped() -> None:
    b = BrushSettings(size=40)
    assert b.bigger().size == 50 and b.smaller().size == 32
    assert BrushSettings(size=1).smaller().size == 1
    assert BrushSettings(size=5000).size == 1000
    assert BrushSettings(tool="erase").tool is BrushTool.erase


@settings(max_examples=40, deadline=None)
@given(st.floats(-20, 80), st.floats(-20, 80), st.floats(0.5, 30), st.floats(0, 1))
def test_stamp_stays_inside_its_rect(x: float, y: float, r: float, hardness: float) -> None:
    cov = np.zeros((60, 60), np.uint8)
    rect = brush.stamp(cov, x, y, r, hardness)
    if rect is None:
        assert not cov.any()
        return
    x0, y0, x1, y1 = rect
    inside = cov[y0:y1, x0:x1].astype(int).sum()
    assert inside == cov.astype(int).sum()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 6), st.integers(0, 2**16))
def test_grow_then_shrink_never_loses_the_original(px: int, seed: int) -> None:
    m = (np.random.default_rng(seed).random((24, 24)) > 0.7).astype(np.uint8) * 255
    assert (brush.shrink(brush.grow(m, px), px) >= m).all()  # closing is extensive


def test_brush_settings_that_are_not_numbers_fall_back_to_the_defaults() -> None:
    nan, inf = float("nan"), float("inf")
    b = BrushSettings(size=nan, hardness=nan)
    assert (b.size, b.hardness) == (BrushSettings().size, BrushSettings().hardness)
    b = BrushSettings(size=inf, hardness=-inf).replace(size=nan)
    assert (b.size, b.hardness) == (BrushSettings().size, BrushSettings().hardness)
    assert round(b.size) == 48  # what the control panel does with it


# -- dabs computed together (Stroke.add) paint exactly what one stamp per dab painted -----------


class _DabByDab(Stroke):
    """Stroke.add as it was: one `stamp` per dab along the whole move, in Python (the reference)."""

    def add(self, x: float, y: float) -> brush.Rect | None:
        r, hard = self.radius, self.settings.hardness
        if self._last is None:
            points = [(x, y)]
        else:
            lx, ly = self._last
            n = max(1, math.ceil(math.hypot(x - lx, y - ly) / max(0.5, r * 0.2)))
            points = [(lx + (x - lx) * i / n, ly + (y - ly) * i / n) for i in range(1, n + 1)]
        self._last = (x, y)
        dirty: brush.Rect | None = None
        for px, py in points:
            dirty = brush.union(dirty, brush.stamp(self.coverage, px, py, r, hard))
        self.bounds = brush.union(self.bounds, dirty)
        return dirty


def _random_stroke(rng: np.random.Generator, shape: tuple[int, int]) -> list[tuple[float, float]]:
    """Points inside, on the edges and well outside the image, with long and very short moves."""
    h, w = shape
    points = []
    for _ in range(int(rng.integers(1, 12))):
        kind = rng.integers(0, 4)
        if kind == 0:  # anywhere around the image, often outside it
            points.append((float(rng.uniform(-0.5 * w, 1.5 * w)), float(rng.uniform(-0.5 * h, 1.5 * h))))
        elif kind == 1:  # on an edge (pixel borders and centres)
            points.append((float(rng.choice([0.0, 0.5, w - 0.5, w, w + 0.25])), float(rng.uniform(0, h))))
        elif kind == 2 and points:  # a tiny move
            px, py = points[-1]
            points.append((px + float(rng.normal(0, 0.3)), py + float(rng.normal(0, 0.3))))
        else:  # far away: a move that crosses the whole image or misses it
            points.append((float(rng.uniform(-30 * w, 30 * w)), float(rng.uniform(-30 * h, 30 * h))))
    return points


@pytest.mark.parametrize("seed", range(12))
def test_a_stroke_paints_the_same_pixels_as_one_stamp_per_dab(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 90)), int(rng.integers(1, 90)))
    size = float(rng.choice([1.0, 2.0, 3.7, 9.0, 48.0, 250.0]))
    settings = BrushSettings(size=size, hardness=float(rng.choice([0.0, 0.6, 1.0, rng.uniform()])))
    fast, slow = Stroke(shape, settings), _DabByDab(shape, settings)
    for x, y in _random_stroke(rng, shape):
        assert fast.add(x, y) == slow.add(x, y)
        assert np.array_equal(fast.coverage, slow.coverage)
    assert fast.bounds == slow.bounds


def test_a_long_move_with_a_tiny_brush_is_quick(capsys: pytest.CaptureFixture[str]) -> None:
    """The artist's case: a 1 px brush across a 20000 px tall image (40000 dabs, most off the image).

    Timed for the record (`pytest -s` shows it), not asserted: machines differ. The pixels must be
    those of the dab-by-dab reference.
    """
    shape = (20000, 300)
    settings = BrushSettings(size=1.0, hardness=0.6)
    fast, slow = Stroke(shape, settings), _DabByDab(shape, settings)
    times = []
    for s in (fast, slow):
        start = time.perf_counter()
        s.add(150.5, -10.0)
        s.add(151.5, 20010.0)
        times.append(time.perf_counter() - start)
    assert np.array_equal(fast.coverage, slow.coverage) and fast.bounds == slow.bounds
    with capsys.disabled():
        print(f"\n1 px brush over 20000 px: {times[0] * 1000:.1f} ms together, {times[1] * 1000:.1f} ms dab by dab")


def _feather_reference(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Three separable box blurs of radius round(pixels / 3) in float64 over the whole mask, edges replicated."""
    r = max(1, round(pixels / 3))
    a = mask.astype(np.float64)
    for _ in range(3):
        for axis in (0, 1):
            pad = [(0, 0), (0, 0)]
            pad[axis] = (r, r)
            p = np.pad(a, pad, mode="edge")
            a = sum(np.take(p, np.arange(k, k + a.shape[axis]), axis=axis) for k in range(2 * r + 1)) / (2 * r + 1)
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def _grow_reference(mask: np.ndarray, pixels: int) -> np.ndarray:
    h, w = mask.shape
    out = np.empty_like(mask)
    for y in range(h):
        for x in range(w):
            out[y, x] = mask[max(0, y - pixels):y + pixels + 1, max(0, x - pixels):x + pixels + 1].max()
    return out


def _random_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(1, 4)):
        y, x = rng.integers(0, h), rng.integers(0, w)
        m[y:y + rng.integers(1, 12), x:x + rng.integers(1, 12)] = rng.integers(1, 256)
    return 255 - m if rng.random() < 0.3 else m


def test_feather_and_grow_of_a_local_mask_match_the_whole_mask_filters() -> None:
    # feather and grow only filter the crop an edge can reach (plus the margin that feeds it): on
    # masks whose strokes sit anywhere, near the borders too, they must give what filtering the
    # whole mask gives (feather: within one level, Pillow's blur rounds to 8 bits between passes).
    rng = np.random.default_rng(3)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(3, 48, 2))
        m = _random_mask(rng, h, w)
        px = int(rng.integers(1, 20))
        f = brush.feather(m, px)
        assert np.abs(f.astype(int) - _feather_reference(m, px)).max() <= 1
        g = brush.grow(m, px)
        assert np.array_equal(g, _grow_reference(m, px))
        assert np.array_equal(brush.shrink(m, px), 255 - _grow_reference(255 - m, px))
    flat = np.full((20, 30), 77, np.uint8)  # no edge: nothing to filter
    assert np.array_equal(brush.feather(flat, 9), flat) and np.array_equal(brush.grow(flat, 9), flat)


def test_feather_leaves_pixels_beyond_its_reach_alone() -> None:
    m = np.zeros((400, 500), np.uint8)
    m[100:110, 200:260] = 255
    f = brush.feather(m, 12)  # radius 4, three blurs: reaches 12 px
    changed = np.argwhere(f != m)
    assert changed[:, 0].min() >= 100 - 12 and changed[:, 0].max() < 110 + 12
    assert changed[:, 1].min() >= 200 - 12 and changed[:, 1].max() < 260 + 12
    assert 0 < f[100, 200] < 255 and f[105, 230] > 150  # a 10 px band keeps most of its middle
