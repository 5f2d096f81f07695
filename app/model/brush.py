"""Brush strokes and mask operations rasterised in numpy (no Qt), so they are tested without a display.

A stroke accumulates its own coverage (H, W) uint8 with `max`, never `+`: crossing your own stroke
does not darken it, and the result of a stroke is the same however fast the mouse moved.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np
from PIL import Image, ImageFilter

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 with x1/y1 exclusive

MIN_SIZE, MAX_SIZE = 1.0, 1000.0


class BrushTool(str, Enum):
    mask = "mask"  # add to the mask (what gets regenerated)
    erase = "erase"  # remove from the mask
    colour = "colour"  # paint colour into the image (guides for stroke edit)


@dataclass(frozen=True)
class BrushSettings:
    size: float = 48.0  # diameter in image pixels
    hardness: float = 0.6  # 1 = hard edge; 0 = soft all the way from the centre
    tool: BrushTool = BrushTool.mask
    colour: tuple[int, int, int] = (200, 60, 40)

    def __post_init__(self) -> None:
        # min/max let NaN through (every comparison is False): a non-finite value means the default.
        size = float(self.size) if math.isfinite(self.size) else BrushSettings.size
        hardness = float(self.hardness) if math.isfinite(self.hardness) else BrushSettings.hardness
        object.__setattr__(self, "size", float(min(max(size, MIN_SIZE), MAX_SIZE)))
        object.__setattr__(self, "hardness", float(min(max(hardness, 0.0), 1.0)))
        object.__setattr__(self, "tool", BrushTool(self.tool))
        object.__setattr__(self, "colour", tuple(int(c) & 255 for c in self.colour))

    def replace(self, **changes: object) -> BrushSettings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def bigger(self) -> BrushSettings:
        # Multiplicative steps feel even from 2 px to 500 px (what `[`/`]` do in most editors).
        return self.replace(size=max(self.size + 1, round(self.size * 1.25)))

    def smaller(self) -> BrushSettings:
        return self.replace(size=min(self.size - 1, round(self.size / 1.25)))


def union(a: Rect | None, b: Rect | None) -> Rect | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def stamp(coverage: np.ndarray, x: float, y: float, radius: float, hardness: float) -> Rect | None:
    """Max one round dab centred at (x, y) (pixel units, 0.5 = a pixel centre) into `coverage`."""
    h, w = coverage.shape
    x0, y0 = max(0, math.floor(x - radius)), max(0, math.floor(y - radius))
    x1, y1 = min(w, math.ceil(x + radius) + 1), min(h, math.ceil(y + radius) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    d = np.hypot(xx + 0.5 - x, yy + 0.5 - y)
    inner = radius * hardness
    # At least one pixel of ramp: a hard brush is still anti-aliased.
    ramp = max(radius - inner, 1.0)
    a = np.clip((radius - d) / ramp, 0.0, 1.0)
    a = a * a * (3 - 2 * a)  # smoothstep: no visible ring where the ramp starts
    region = coverage[y0:y1, x0:x1]
    np.maximum(region, (a * 255 + 0.5).astype(np.uint8), out=region)
    return x0, y0, x1, y1


class Stroke:
    """One press-drag-release; `add(x, y)` returns the rectangle that changed."""

    def __init__(self, shape: tuple[int, int], settings: BrushSettings) -> None:
        self.settings = settings
        self.coverage = np.zeros(shape, np.uint8)
        self.bounds: Rect | None = None
        self._last: tuple[float, float] | None = None

    @property
    def radius(self) -> float:
        return self.settings.size / 2

    def add(self, x: float, y: float) -> Rect | None:
        r = self.radius
        if self._last is None:
            lx, ly, n, first, last = x, y, 1, 0, 0  # the press: one dab (number 0) where it landed
        else:
            lx, ly = self._last
            # Dabs every fifth of a radius: closer would be slower, wider shows beads on soft brushes.
            n = max(1, math.ceil(math.hypot(x - lx, y - ly) / max(0.5, r * 0.2)))
            first, last = 1, n
        self._last = (x, y)
        lo, hi = _dabs_in_view(lx, ly, x, y, n, first, last, r, self.coverage.shape)
        if lo > hi:
            return None
        i = np.arange(lo, hi + 1, dtype=np.float64)
        # The same float64 operations, in the same order, as one dab at a time: the same centres.
        px, py = lx + (x - lx) * i / n, ly + (y - ly) * i / n
        dirty = _stamp_many(self.coverage, px, py, r, self.settings.hardness)
        self.bounds = union(self.bounds, dirty)
        return dirty


# Pixels (dabs x window) worked on at once: bounds the temporary arrays (~30 MB) for a huge brush.
_CHUNK_PIXELS = 1 << 20


def _dabs_in_view(lx: float, ly: float, x: float, y: float, n: int, first: int, last: int, r: float,
                  shape: tuple[int, int]) -> tuple[int, int]:
    """The dab numbers [lo, hi] within first..last (dab i is centred at l + (p - l) * i / n) near the image.

    A move can be tens of thousands of pixels long (or mostly off the canvas) with a 1 px brush:
    only the part of the segment within a radius (and a pixel of slack) of the image is dabbed.
    Dabs just outside the range would touch nothing; `_stamp_many` drops those at its edges exactly.
    """
    h, w = shape
    t0, t1 = 0.0, 1.0
    margin = r + 2.0
    for p, d, size in ((lx, x - lx, w), (ly, y - ly, h)):
        # Keep t where -margin <= p + d t <= size + margin (Liang-Barsky clipping, one axis at a time).
        if d == 0:
            if not -margin <= p <= size + margin:
                return 1, 0
            continue
        a, b = (-margin - p) / d, (size + margin - p) / d
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
    if not (math.isfinite(t0) and math.isfinite(t1)) or t0 > t1:
        return 1, 0
    return max(first, math.floor(t0 * n) - 1), min(last, math.ceil(t1 * n) + 1)


def _stamp_many(coverage: np.ndarray, px: np.ndarray, py: np.ndarray, radius: float, hardness: float) -> Rect | None:
    """`stamp` at every (px[k], py[k]), computed together; the coverage and rectangle are exactly stamp's.

    Each dab gets a window of the same size (the widest any dab needs) from its own top-left corner.
    Its pixel values are computed with stamp's float32 operations, and the max of dabs does not depend
    on their order, so the result is the same bytes. Pixels of the wider window beyond a dab's own are
    more than a radius away (value 0), and those outside the image are dropped.
    """
    h, w = coverage.shape
    fx0, fy0 = np.floor(px - radius), np.floor(py - radius)
    x0, y0 = np.maximum(fx0, 0), np.maximum(fy0, 0)
    x1, y1 = np.minimum(np.ceil(px + radius) + 1, w), np.minimum(np.ceil(py + radius) + 1, h)
    hit = (x0 < x1) & (y0 < y1)
    if not hit.any():
        return None
    px, py, fx0, fy0 = px[hit], py[hit], fx0[hit].astype(np.int64), fy0[hit].astype(np.int64)
    rect = (int(x0[hit].min()), int(y0[hit].min()), int(x1[hit].max()), int(y1[hit].max()))
    k = math.ceil(2 * radius) + 2
    inner = radius * hardness
    ramp = max(radius - inner, 1.0)  # at least one pixel of ramp: a hard brush is still anti-aliased
    flat = coverage.reshape(-1)  # a view: the stroke's own C-contiguous array
    offsets = np.arange(k)
    step = max(1, _CHUNK_PIXELS // (k * k))
    for s in range(0, len(px), step):
        cols = fx0[s:s + step, None] + offsets  # (dabs, k) pixel columns
        rows = fy0[s:s + step, None] + offsets
        # As stamp: float32 pixel centres, minus the centre (cast to float32 as numpy does for a scalar).
        dx = (cols.astype(np.float32) + np.float32(0.5)) - px[s:s + step, None].astype(np.float32)
        dy = (rows.astype(np.float32) + np.float32(0.5)) - py[s:s + step, None].astype(np.float32)
        d = np.hypot(dx[:, None, :], dy[:, :, None])  # (dabs, rows, cols)
        a = np.clip((np.float32(radius) - d) / np.float32(ramp), 0.0, 1.0)
        a = a * a * (3 - 2 * a)  # smoothstep: no visible ring where the ramp starts
        value = (a * 255 + 0.5).astype(np.uint8)
        inside = (value > 0) & ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        index = rows[:, :, None] * w + cols[:, None, :]
        np.maximum.at(flat, index[inside], value[inside])
    return rect


def apply_to_mask(mask: np.ndarray, base: np.ndarray, coverage: np.ndarray, rect: Rect, erase: bool) -> None:
    """Write base+stroke into `mask` inside `rect` (recomputed from `base`, so it is idempotent)."""
    x0, y0, x1, y1 = rect
    b, c = base[y0:y1, x0:x1], coverage[y0:y1, x0:x1]
    mask[y0:y1, x0:x1] = np.minimum(b, 255 - c) if erase else np.maximum(b, c)


def apply_to_image(base: np.ndarray, coverage: np.ndarray, colour: tuple[int, int, int], rect: Rect) -> np.ndarray:
    """`base` with the stroke painted in `colour` (8-bit RGB) over `rect`; a new array, base's dtype."""
    x0, y0, x1, y1 = rect
    out = base.copy()
    peak = 65535.0 if base.dtype == np.uint16 else 255.0
    a = coverage[y0:y1, x0:x1, None].astype(np.float32) / 255
    region = base[y0:y1, x0:x1].astype(np.float32)
    paint = np.asarray(colour, np.float32) * (peak / 255)
    out[y0:y1, x0:x1] = np.clip(region * (1 - a) + paint * a + 0.5, 0, peak).astype(base.dtype)
    return out


def repaint(image: np.ndarray, stroke: Stroke) -> np.ndarray:
    """A colour stroke painted again onto another image (a result that arrived while it was drawn).

    The stroke's coverage is scaled (nearest) when the image has another size (an upscale), so it
    lands where it was drawn. Returns a new array in the image's dtype; only the stroke's bounds are touched.
    """
    if stroke.bounds is None:
        return image
    h, w = image.shape[:2]
    ch, cw = stroke.coverage.shape
    x0, y0, x1, y1 = stroke.bounds
    # Target pixels whose nearest source pixel lies inside the bounds: ceil(v * new / old).
    nx0, nx1 = -(-x0 * w // cw), -(-x1 * w // cw)
    ny0, ny1 = -(-y0 * h // ch), -(-y1 * h // ch)
    ys = (np.arange(ny0, ny1) * ch // h).clip(0, ch - 1)
    xs = (np.arange(nx0, nx1) * cw // w).clip(0, cw - 1)
    coverage = stroke.coverage[ys][:, xs]
    out = image.copy()
    out[ny0:ny1, nx0:nx1] = apply_to_image(image[ny0:ny1, nx0:nx1], coverage, stroke.settings.colour,
                                           (0, 0, nx1 - nx0, ny1 - ny0))
    return out


# -- whole-mask operations ----------------------------------------------------------------------


def invert(mask: np.ndarray) -> np.ndarray:
    return 255 - mask


def _max_filter(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    """The maximum over a[i - r : i + r + 1] along `axis` (the window clipped at the ends).

    By doubling (van Herk / Gil-Werman style): maxima over windows of 1, 2, 4, ... p samples, then
    two windows of p overlapping to cover 2r + 1: log2(r) + 1 passes instead of 2r (a 12000 px
    photo's grow of 120 px: 241 -> 9)."""
    n = a.shape[axis]
    r = min(r, n - 1)
    if r <= 0:
        return a.copy()
    b = np.moveaxis(a, axis, 0)
    # Zeros outside: the neutral value of a max over uint8, so the window never needs clipping.
    padded = np.zeros((n + 2 * r,) + b.shape[1:], a.dtype)
    padded[r:r + n] = b
    width = 2 * r + 1
    span, runs = 1, padded  # runs[j] = max(padded[j : j + span])
    while 2 * span <= width:
        runs = np.maximum(runs[:-span], runs[span:])
        span *= 2
    out = np.maximum(runs[:n], runs[width - span:width - span + n])
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))


def _near_edges(mask: np.ndarray, reach: int, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`mask` with `fn` applied to the crop that holds every pixel within `reach` of an edge.

    A filter reaching `reach` px changes nothing farther than that from an edge, so a few strokes
    on a 100 Mpx photo filter a crop, not the photo (`bench/mask_ops.py`). No margin of input is
    needed either: beyond the crop the mask is constant along every line out of it, so a filter
    that clips its windows or replicates the crop's border sees what lies beyond."""
    edges = _edge_box(mask)
    out = mask.copy()
    if edges is None:
        return out  # uniform: nothing to filter
    h, w = mask.shape
    x0, y0 = max(0, edges[0] - reach), max(0, edges[1] - reach)
    x1, y1 = min(w, edges[2] + reach), min(h, edges[3] + reach)
    out[y0:y1, x0:x1] = fn(mask[y0:y1, x0:x1])
    return out


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate by `pixels` (square structuring element, separable)."""
    if pixels <= 0:
        return mask.copy()
    return _near_edges(mask, pixels, lambda a: _max_filter(_max_filter(a, pixels, 0), pixels, 1))


def shrink(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Erode by `pixels`: the dilation of the inverse, inverted (on the crop only)."""
    if pixels <= 0:
        return mask.copy()
    return _near_edges(mask, pixels, lambda a: 255 - _max_filter(_max_filter(255 - a, pixels, 0), pixels, 1))


def _edge_box(mask: np.ndarray) -> Rect | None:
    """A box holding every pixel that differs from a 4-neighbour (None for a uniform mask).

    Found from the pixels that differ from the top-left one, grown by one pixel: every differing
    pair has such a pixel in it. Row and column minima and maxima read the mask without the full
    size boolean temporaries comparing neighbours takes (0.3-0.4 s on a 96 Mpx mask); the box may
    be a pixel larger than the tightest, which only costs a little filtering."""
    h, w = mask.shape
    c = mask[0, 0]
    rows = np.flatnonzero((mask.min(axis=1) != c) | (mask.max(axis=1) != c))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((mask.min(axis=0) != c) | (mask.max(axis=0) != c))
    return (max(0, int(cols[0]) - 1), max(0, int(rows[0]) - 1),
            min(w, int(cols[-1]) + 2), min(h, int(rows[-1]) + 2))


def _box_blurs(a: np.ndarray, r: int) -> np.ndarray:
    # Pillow's box blur (C, 8-bit between passes: within 1 level of blurring in float, and about 10x
    # faster on a 100 Mpx mask) replicates the edge pixels, as a float blur with edge padding does.
    img = Image.fromarray(np.ascontiguousarray(a))
    for _ in range(3):
        img = img.filter(ImageFilter.BoxBlur(r))
    return np.asarray(img)


def feather(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Soften the edge over about `pixels`: three box blurs approximate a Gaussian (sigma ~ pixels/2)."""
    if pixels <= 0:
        return mask.copy()
    r = max(1, round(pixels / 3))
    return _near_edges(mask, 3 * r, lambda a: _box_blurs(a, r))  # three blurs reach 3 radii


def bounds(mask: np.ndarray) -> Rect | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
