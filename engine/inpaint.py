"""Inpainting of any size: a context window per mask region, coarse-to-fine fill, feathered paste.

For each connected region of the mask, a window with context around it (max(128 px, 0.3 x the
region's side) by default, shifted inward at image edges) is filled at the model's resolution
first, then refined at doubling scales, with the known pixels projected back at every step
(Song et al., 2023, Algorithm 4). Coarse levels average only known pixels, so a thin stroke stays
thin there. When the finest level is smaller than the window, the upsampled fill is seamlessly
cloned into the hole (its border error interpolated away), so it meets its surroundings exactly.
Where the hole is too thin for the finest working level to hold anything of its own (`model_share`),
the full-resolution membrane is kept instead of the upsampled fill. A window over `LARGE_WINDOW`
px (a stroke across a whole 96 Mpx photo) is filled from a mid level of block means and finished
tile by tile (`fill_large_window`), so memory follows the hole, not the window. The result is
pasted only inside the grown (optionally feathered) mask: pixels outside stay bit-identical.
Where the fill is smoother than the photo around it, the photo's own grain is added (`add_grain`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from .sampling import sub_seed
from .tensors import resize_float

# (y, x_start, known_mask, sigma_start or None for the coarse pass, num_steps, seed, on_step) -> (1, 3, h, w) in [-1, 1]
Fill = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float | None, int, int, Callable[[], None] | None], torch.Tensor]


@dataclass(frozen=True)
class InpaintOptions:
    """User-facing knobs for large-image inpainting."""

    context: float = 0.3  # context margin as a fraction of the region's side
    min_context: int = 128  # ... but at least this many pixels
    # px the painted mask is dilated by before filling: a mask that misses an object's soft edge
    # leaves a halo, while each px more is filled from farther away. 1 px was best on held-out
    # photos with an antialiased wire under a tight mask (24.63 dB; 0 px 22.15, 4 px 21.08).
    grow: int = 1
    feather: int = 0  # px of soft blend outside the grown mask (regenerated too: wider bands come out softer)
    colour_match: bool = True  # seamless-clone a fill made at a coarser scale into its surroundings
    max_scale: int = 4  # finest working size = this x the model resolution
    refine_sigma: float = 1.0  # start noise of the finer passes (low: keep the coarse fill's layout)
    refine_steps: int = 2
    # Give the fill the photo's grain where it is smoother than its surroundings (`add_grain`).
    grain: bool = True


@dataclass(frozen=True)
class Window:
    top: int
    left: int
    height: int
    width: int

    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


def regions(mask: np.ndarray, max_cells: int = 256) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (top, left, bottom, right) of the mask's connected regions.

    Labelling runs on a coarse grid (block max, at most `max_cells` per side) so huge masks stay fast;
    regions closer than one cell merge, which is what a shared context window wants anyway.
    """
    h, w = mask.shape
    f = max(1, -(-max(h, w) // max_cells))
    gh, gw = -(-h // f), -(-w // f)
    padded = np.zeros((gh * f, gw * f), bool)
    padded[:h, :w] = mask
    grid = padded.reshape(gh, f, gw, f).any(axis=(1, 3))
    seen = np.zeros_like(grid)
    boxes = []
    for sy, sx in zip(*np.nonzero(grid)):
        if seen[sy, sx]:
            continue
        seen[sy, sx] = True
        q = deque([(sy, sx)])
        t, l, b, r = sy, sx, sy, sx
        while q:
            y, x = q.popleft()
            t, l, b, r = min(t, y), min(l, x), max(b, y), max(r, x)
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    if 0 <= ny < gh and 0 <= nx < gw and grid[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        q.append((ny, nx))
        # Tighten to the real mask pixels inside the coarse box.
        sub = mask[t * f:(b + 1) * f, l * f:(r + 1) * f]
        ys, xs = np.nonzero(sub.any(axis=1))[0], np.nonzero(sub.any(axis=0))[0]
        boxes.append((t * f + int(ys[0]), l * f + int(xs[0]), t * f + int(ys[-1]) + 1, l * f + int(xs[-1]) + 1))
    return boxes


def context_window(box: tuple[int, int, int, int], shape: tuple[int, int], opts: InpaintOptions) -> Window:
    """A square window around `box` with context, shifted (not shrunk) to stay inside the image."""
    t, l, b, r = box
    h, w = shape
    side = max(b - t, r - l)
    side = side + 2 * max(opts.min_context, int(opts.context * side))
    wh, ww = min(side, h), min(side, w)
    cy, cx = (t + b) // 2, (l + r) // 2
    top = min(max(cy - wh // 2, 0), h - wh)
    left = min(max(cx - ww // 2, 0), w - ww)
    return Window(top, left, wh, ww)


def merge_windows(windows: list[Window]) -> list[Window]:
    """Union overlapping windows into their bounding window until none overlap."""
    ws = list(windows)
    changed = True
    while changed:
        changed = False
        for i in range(len(ws)):
            for j in range(i + 1, len(ws)):
                a, b = ws[i], ws[j]
                if a.top < b.top + b.height and b.top < a.top + a.height and a.left < b.left + b.width and b.left < a.left + a.width:
                    top, left = min(a.top, b.top), min(a.left, b.left)
                    ws[i] = Window(top, left, max(a.top + a.height, b.top + b.height) - top, max(a.left + a.width, b.left + b.width) - left)
                    del ws[j]
                    changed = True
                    break
            if changed:
                break
    return ws


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """`mask` grown by `px` px: the max over a (2 px + 1) square around each pixel."""
    mask = np.asarray(mask, bool)
    if px <= 0:
        return mask.copy()
    # The square is separable: a window along the rows, then along the columns.
    return _window_any(_window_any(mask, px, 1), px, 0)


def _window_any(mask: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Whether any pixel within r along `axis` is set, for a bool array.

    By doubling, a log-step running maximum (van Herk 1992 and Gil & Werman 1993 reach O(1) per pixel
    with prefix and suffix maxima): after step k each pixel holds the OR of the 2^k pixels from it on,
    and a window of 2r + 1 is two of those, one from each end. log2(2r) + 1 passes, where Pillow's square
    filter cost grew with r^2 (a 9 px feather on a 96 Mpx mask: 31 s) and shifting one pixel at a
    time with r."""
    n, span = mask.shape[axis], 2 * r + 1

    def sl(a: int | None, b: int | None) -> tuple[slice, ...]:
        return (slice(None),) * axis + (slice(a, b),)

    shape = list(mask.shape)
    shape[axis] = n + 2 * r
    padded = np.zeros(shape, bool)  # r empty pixels each side: windows never leave the array
    padded[sl(r, r + n)] = mask
    width = 1
    while 2 * width <= span:
        padded[sl(None, -width)] |= padded[sl(width, None)]
        width *= 2
    # Pixel i's window is padded[i : i + span]: its first `width` and its last `width`.
    return padded[sl(0, n)] | padded[sl(span - width, span - width + n)]


def blend_alpha(hole: np.ndarray, grow: int, feather: int) -> np.ndarray:
    """1 inside the grown hole, a smooth ramp over `feather` px outside it, exactly 0 beyond."""
    grown = dilate(hole, grow)
    if feather <= 0:
        return grown.astype(np.float32)
    outer = dilate(grown, feather)
    soft = np.asarray(Image.fromarray(grown.astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(feather / 2)), np.float32) / 255
    a = np.where(grown, 1.0, np.clip(soft * 2, 0, 1)).astype(np.float32)
    a[~outer] = 0.0
    return a


def _nchw(a: np.ndarray) -> torch.Tensor:
    """A float (h, w, 3) array as a (1, 3, h, w) float32 tensor, same values."""
    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None]


def _hwc(x: torch.Tensor) -> np.ndarray:
    """The first image of a (B, 3, h, w) tensor as a float (h, w, 3) array, same values."""
    return x[0].float().cpu().permute(1, 2, 0).numpy()


def round_to_multiple(v: float, m: int) -> int:
    """The nearest multiple of `m` to `v`, at least `m` (sizes the UNet can halve evenly)."""
    return max(m, round(v / m) * m)


def work_sizes(h: int, w: int, resolution: int, multiple: int, max_scale: int) -> list[tuple[int, int]]:
    """Coarse-to-fine (height, width) pairs: model size first, doubling up to the window or max_scale x."""
    def fit(s: int) -> tuple[int, int]:
        scale = s / max(h, w)
        return round_to_multiple(h * scale, multiple), round_to_multiple(w * scale, multiple)

    sizes, s = [], resolution
    while True:
        sizes.append(fit(s))
        if s >= max(h, w) or s * 2 > resolution * max_scale:
            break
        s *= 2
    return sizes


def coarse_to_fine(crop: np.ndarray, hole: np.ndarray, fill: Fill, resolution: int, multiple: int,
                   opts: InpaintOptions, seed: int, on_step: Callable[[], None] | None = None,
                   weight: np.ndarray | None = None) -> np.ndarray:
    """The fill of `hole` in a float (h, w, 3) crop in [0, 1] at its finest working level
    (`work_sizes`), coarse to fine: (fh, fw, 3) in [0, 1], known pixels projected at every level.

    `weight` (h, w), if given, is how much of each pixel is known (the crop being means of the
    known parts of larger blocks, `fill_large_window`): the coarse levels weigh pixels by it, so
    they average the same known pixels as they would from the blocks themselves.
    """
    h, w = hole.shape
    known_full = (~hole).astype(np.float32) if weight is None else weight.astype(np.float32)
    prev = None
    for level, (sh, sw) in enumerate(work_sizes(h, w, resolution, multiple, opts.max_scale)):
        if (sh, sw) == (h, w):
            y, known = crop, ~hole
        else:
            # Normalised box averages over the known source pixels only (the painted-out object never
            # leaks into a coarse level); a coarse pixel counts as known when most of it is. The
            # all-known rule instead widens a thin stroke to several coarse pixels, whose fill then
            # comes back as a broad band of one average colour.
            cover = resize_float(known_full, (sw, sh), Image.Resampling.BOX)
            y = resize_float(crop * known_full[..., None], (sw, sh), Image.Resampling.BOX) / np.maximum(cover, 1e-6)[..., None]
            known = cover >= 0.5
        y_t = _nchw(y).clamp(0, 1) * 2 - 1
        m_t = torch.from_numpy(known.astype(np.float32))[None, None]
        if prev is None:
            # Coarsest pass: the hole starts from a smooth membrane through its border (a mid noise
            # level then keeps that layout) and the loop runs from sigma_start.
            start = smooth_fill(y_t, m_t) if m_t.any() else y_t * 0
            out = fill(y_t, start, m_t, None, 0, seed, on_step)
        else:
            up = _nchw(resize_float(prev, (sw, sh), Image.Resampling.BICUBIC)).clamp(0, 1) * 2 - 1
            # The same rule as at the end (`model_share`): where this level's hole is too thin for
            # the coarser one to have held it, start from this level's own membrane instead.
            share = model_share(~known, max(sh / prev.shape[0], sw / prev.shape[1]))
            if (share < 1).any():
                membrane = smooth_fill(y_t, m_t)
                up = membrane + torch.from_numpy(share)[None, None] * (up - membrane)
            start = y_t * m_t + up * (1 - m_t)
            out = fill(y_t, start, m_t, opts.refine_sigma, opts.refine_steps, sub_seed(seed, level), on_step)
        prev = (_hwc(out).clip(-1, 1) + 1) / 2
    return prev


def fill_window(crop: np.ndarray, hole: np.ndarray, fill: Fill, resolution: int, multiple: int, opts: InpaintOptions,
                seed: int, on_step: Callable[[], None] | None = None) -> np.ndarray:
    """Fill `hole` in a float (h, w, 3) crop in [0, 1], coarse to fine; returns the filled crop at full size.

    Known pixels of the result equal the crop's exactly.
    """
    h, w = hole.shape
    prev = coarse_to_fine(crop, hole, fill, resolution, multiple, opts, seed, on_step)
    if prev.shape[:2] != (h, w):
        scale = max(h / prev.shape[0], w / prev.shape[1])
        prev = np.clip(resize_float(prev, (w, h), Image.Resampling.LANCZOS), 0, 1)
        if opts.colour_match:
            prev = clone_into(prev, crop, hole)
        # The finest level worked `scale` photo px per pixel: where the hole is narrower than that,
        # the fill holds nothing the membrane through the photo's own pixels does not hold better.
        prev = keep_membrane_where_thin(prev, crop, hole, scale)
    return np.where(hole[..., None], prev, crop)


# Grain matching (`add_grain`): the known ring around the hole whose fine texture is measured and
# copied, the side of the copied patches, and the least grain worth adding (1/4 of an 8-bit level).
GRAIN_RING = 16
GRAIN_PATCH = 8
GRAIN_MIN = 0.25 / 255
# ... and the most: sensor noise and film grain of a photo at its own size are 0.5-3 levels. More is
# texture (fur, grass, foliage: 7.6 levels around 48 px holes in the held-out photos at 256 px), which
# copied in random patches made a patchwork; filling texture is the model's part.
GRAIN_MAX = 3 / 255
MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation over its median absolute deviation


@dataclass(frozen=True)
class Grain:
    """What `add_grain` learnt of a photo's grain near a hole: the high-pass residual of the known
    pixels' luma there (clipped at 3 sigma, so edges do not pass for grain), the top-left corners of
    its patches that lie wholly in known pixels, and its robust sigma."""

    residual: np.ndarray  # (h, w, 1) float
    corners: np.ndarray  # (n, 2) int: (y, x) of GRAIN_PATCH-square patches of known pixels
    sigma: np.ndarray  # (1,) float


def _high_pass(x: np.ndarray) -> np.ndarray:
    """x minus its 5x5 box mean (edges replicated): the texture finer than a few pixels."""
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).permute(2, 0, 1)[None]
    mean = F.avg_pool2d(F.pad(t, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    return (t - mean)[0].permute(1, 2, 0).numpy()


def _robust_sigma(values: np.ndarray) -> np.ndarray:
    """Per-channel noise sigma of (n, 3) high-pass values from their median absolute deviation, which
    a few edges among them hardly move (Donoho & Johnstone 1994 estimate noise the same way)."""
    med = np.median(values, axis=0)
    return MAD_TO_SIGMA * np.median(np.abs(values - med), axis=0)


def _luma(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=2, keepdims=True)


def learn_grain(crop: np.ndarray, hole: np.ndarray) -> Grain | None:
    """The grain of the known pixels within GRAIN_RING px of `hole` in a float (h, w, 3) crop;
    None when too few of them are known to say. The luma's only: a photo's chroma residual near a
    hole is mostly the colour of neighbouring things (green flecks of grass in a koala's fur)."""
    ring = dilate(hole, GRAIN_RING) & ~hole
    if ring.sum() < 4 * GRAIN_PATCH * GRAIN_PATCH:
        return None
    residual = _high_pass(_luma(crop))
    sigma = _robust_sigma(residual[ring])
    residual = np.clip(residual, -3 * sigma - 1e-6, 3 * sigma + 1e-6)
    # Patches wholly of known pixels whose corner lies within the ring's reach of the hole.
    p = GRAIN_PATCH
    h, w = hole.shape
    if h < p or w < p:
        return None
    filled = np.pad(np.cumsum(np.cumsum(hole, 0, dtype=np.int32), 1), ((1, 0), (1, 0)))
    holes_in = filled[p:, p:] - filled[:-p, p:] - filled[p:, :-p] + filled[:-p, :-p]
    near = dilate(hole, GRAIN_RING + p)[: h - p + 1, : w - p + 1]
    corners = np.argwhere((holes_in == 0) & near)
    if len(corners) < 4:
        return None
    return Grain(residual, corners, sigma)


def add_grain(fill: np.ndarray, hole: np.ndarray, grain: Grain, seed: int) -> np.ndarray:
    """`fill` (float (h, w, 3), filled where `hole`) with the photo's grain added inside the hole,
    as much as it lacks: sigma^2 = the surroundings' minus the fill's own (of the luma, the same on
    every channel), at most GRAIN_MAX.

    A fill made at a coarser working level and scaled up is smooth, so on a grainy sky it showed as
    a clean patch once the contrast was raised (the fill's high-pass sigma 0.16 levels against 0.79
    around it). The grain is not invented: it is the photo's own high-pass texture, copied in
    patches of GRAIN_PATCH px taken at random around the hole (so its size and any JPEG blockiness
    match), scaled to the missing sigma. Patch-based texture synthesis (Efros &
    Freeman 2001) without the seam search: the residual is noise-like, so patch edges do not show.
    """
    inside = hole.astype(bool)
    if not inside.any():
        return fill
    own = _robust_sigma(_high_pass(_luma(fill))[inside])
    need = np.minimum(np.sqrt(np.maximum(grain.sigma ** 2 - own ** 2, 0)), GRAIN_MAX)
    if (need < GRAIN_MIN).all():
        return fill
    ys, xs = np.nonzero(inside)
    y0, x0 = ys.min(), xs.min()
    p = GRAIN_PATCH
    ny, nx = (ys.max() - y0) // p + 1, (xs.max() - x0) // p + 1
    rng = np.random.default_rng(seed)
    pick = grain.corners[rng.integers(0, len(grain.corners), ny * nx)].reshape(ny, nx, 2)
    d = np.arange(p)
    rows = pick[..., 0][:, :, None, None] + d[None, None, :, None]
    cols = pick[..., 1][:, :, None, None] + d[None, None, None, :]
    patches = grain.residual[rows, cols]  # (ny, nx, p, p, 1)
    noise = patches.transpose(0, 2, 1, 3, 4).reshape(ny * p, nx * p, 1)
    noise = noise * (need / np.maximum(grain.sigma, 1e-9))
    out = fill.copy()
    region = out[y0:y0 + ny * p, x0:x0 + nx * p]
    sub = inside[y0:y0 + ny * p, x0:x0 + nx * p]
    region[sub] = np.clip(region[sub] + noise[: sub.shape[0], : sub.shape[1]][sub], 0, 1)  # (n, 1) onto (n, 3)
    return out


# Full-size tiles of `keep_membrane_where_thin` and `fill_large_window`: a thin stroke across a
# 12 Mpx photo touches a few dozen.
_TILE = 256


def _hole_tiles(hole: np.ndarray, margin: int) -> Iterator[tuple[slice, slice, slice, slice]]:
    """(rows, cols, padded rows, padded cols) of each `_TILE` tile of `hole` that holds hole pixels,
    the padding `margin` px (cut at the edges)."""
    h, w = hole.shape
    for y0 in range(0, h, _TILE):
        for x0 in range(0, w, _TILE):
            y1, x1 = min(h, y0 + _TILE), min(w, x0 + _TILE)
            if hole[y0:y1, x0:x1].any():
                yield (slice(y0, y1), slice(x0, x1),
                       slice(max(0, y0 - margin), min(h, y1 + margin)), slice(max(0, x0 - margin), min(w, x1 + margin)))


def keep_membrane_where_thin(fill: np.ndarray, image: np.ndarray, hole: np.ndarray, scale: float) -> np.ndarray:
    """`fill` (h, w, 3) moved toward the full-resolution membrane by `model_share(hole, scale)`.

    Worked out tile by tile, only on tiles that hold hole pixels, each with a margin: a thin stroke
    across a whole photo lies in a small part of its window, and the membrane and the distances of
    the whole window cost more than the network did (12 Mpx: 5 s). The share is the whole window's
    exactly: it looks for known pixels at most `scale` px away, well inside the margin of at least
    2 * scale + 8 px. The membrane,
    a pull-push pyramid, is approximately the whole window's (within 0.02 on a 0..1 scale in the
    tests): each padded tile starts at a multiple of 64 px of the window, so its pyramid's blocks
    up to 64 px are the whole window's; only coarser levels differ.
    """
    if scale <= 1 or not hole.any():
        return fill
    margin = 64 * math.ceil((2 * scale + 8) / 64)
    out = fill.copy()
    for ty, tx, py, px in _hole_tiles(hole, margin):
        sub = hole[py, px]
        if sub.all():  # deep inside a wide hole: no known pixel within the margin, the share is 1
            continue
        share = _tile_share(hole, ty, tx, scale)
        if (share == 1).all():
            continue
        inner = (slice(ty.start - py.start, ty.stop - py.start), slice(tx.start - px.start, tx.stop - px.start))
        membrane = _hwc(smooth_fill(_nchw(image[py, px]), torch.from_numpy(~sub)[None, None]))[inner]
        out[ty, tx] = membrane + share[..., None] * (fill[ty, tx] - membrane)
    return out


def _tile_share(hole: np.ndarray, rows: slice, cols: slice, scale: float) -> np.ndarray:
    """`model_share(hole, scale)[rows, cols]`, worked out on those pixels and the `scale` px around
    them only (the distances it looks for reach no farther): a tile's membrane needs a wider margin,
    and the distances on it cost 3x more."""
    m = math.ceil(scale) + 1
    y0, x0 = max(0, rows.start - m), max(0, cols.start - m)
    sub = hole[y0:min(hole.shape[0], rows.stop + m), x0:min(hole.shape[1], cols.stop + m)]
    return model_share(sub, scale)[rows.start - y0:rows.stop - y0, cols.start - x0:cols.stop - x0]


def distance_to_known(hole: np.ndarray, cap: float) -> np.ndarray:
    """Euclidean distance (px, centre to centre) from each hole pixel to the nearest known pixel, at most `cap`.

    Exact up to `cap`: the squared distance separates into a row pass and a column pass
    (Felzenszwalb & Huttenlocher, 2012, "Distance transforms of sampled functions", sec. 2.2:
    d^2(y, x) = min over dy of [g(y + dy, x) + dy^2], g the squared distance along the row), and a
    known pixel within `cap` lies within `cap` rows and columns. Each pass is 2 * ceil(cap) + 1
    shifted minima, cheap next to a network evaluation for the caps `model_share` asks for. Known
    pixels are 0; a hole with no known pixel within `cap` reads `cap`.
    """
    hole = np.asarray(hole, bool)
    # Small caps first: each pass costs its cap, and a thin hole is settled by the first (a 12 px
    # stroke on a 96 Mpx photo asked for a cap of 94 px and spent 2.9 s on it).
    c = min(float(cap), max(8.0, cap / 4))  # at most 1.25x one pass at the cap when the hole is wide
    while True:
        d = _distance_capped(hole, c)
        if c >= cap or not (d[hole] >= c).any():
            return np.minimum(d, np.float32(cap))
        c = min(float(cap), 4 * c)


def _distance_capped(hole: np.ndarray, cap: float) -> np.ndarray:
    r = max(0, int(np.ceil(cap)))
    big = np.float32(2 * (r + 1) ** 2)
    h, w = hole.shape
    g = np.where(hole, big, np.float32(0))
    row = g.copy()
    for dx in range(1, min(r, w - 1) + 1):
        d2 = np.float32(dx * dx)
        np.minimum(row[:, dx:], g[:, :-dx] + d2, out=row[:, dx:])
        np.minimum(row[:, :-dx], g[:, dx:] + d2, out=row[:, :-dx])
    out = row.copy()
    for dy in range(1, min(r, h - 1) + 1):
        d2 = np.float32(dy * dy)
        np.minimum(out[dy:], row[:-dy] + d2, out=out[dy:])
        np.minimum(out[:-dy], row[dy:] + d2, out=out[:-dy])
    return np.minimum(np.sqrt(out), np.float32(cap)).astype(np.float32)


def model_share(hole: np.ndarray, scale: float) -> np.ndarray:
    """How much of a fill made `scale` photo px per working pixel to keep at each pixel, over the
    full-resolution membrane (`smooth_fill`): 0 where the nearest known pixel is at most scale / 2
    px away, 1 from `scale` px on, linear between; 1 on known pixels (they are projected anyway).

    Why. In a hole of width w the membrane (the harmonic fill through its border) is wrong only by
    the image's non-harmonic part, e = truth - membrane, which is 0 on the border: it is made of the
    hole's own Dirichlet modes, the longest of which spans the hole across (sin(pi x / w), a
    wavelength of 2 w). A working grid of `scale` px per pixel holds no wavelength under 2 * scale
    (its Nyquist limit), so where w < scale it cannot say anything about e, and what comes back
    from it (coarse pixels that were mostly known, resampled up and cloned in) only adds its own
    blur to the membrane. A pixel d px from the nearest known one lies in a part of the hole at
    least about 2 d wide, so the fill is given no weight up to d = scale / 2 (w = scale) and all of
    it from d = scale (w = 2 * scale, the wavelength at half the grid's Nyquist frequency). For
    images whose spectrum falls as 1/f^2 (natural images: Field, 1987; Ruderman & Bialek, 1994),
    the membrane is close to the best guess such a hole has: it is the conditional mean of a
    Gaussian free field given its values outside the hole (Sheffield, 2007, "Gaussian free fields
    for mathematicians", sec. 2.4), which a sample only moves away from.

    The distance to the border is a lower bound of the local width, so the rim of a wide hole
    (up to `scale` px in) is blended toward the membrane too. There the coarse fill, resampled up
    and cloned in, holds no detail of its own either, and the rim hides the seam: on the held-out
    photos it scores a little better (a 64 px box: -0.62 -> -0.58 dB against the membrane) and
    looks more seamless on the contact sheet. The width itself (a morphological opening by discs
    of radius scale/2 .. scale, leaving a wide hole's rim to the model) was tried: on 12 photos,
    3 / 12 px strokes -0.12 / -0.33 dB against -0.04 / -0.12 with the distance, boxes -1.41
    against -1.34, the box's edge visible, and the openings cost more than the distances.

    At the model's own scale (scale <= 1) every hole pixel (d >= 1) keeps the fill: there the
    network draws each pixel, and the fill's texture is the trade the default loop makes.
    The same rule starts each finer working level (scale 2 against the coarser one), so a thin part
    of the hole is not refined from the coarser level's blur either.

    Measured on the 37 held-out photos at their own size (mostly 910x512, scale ~7), masked exactly
    (grow 0), mean PSNR inside the hole against the membrane alone (`bench/thin_strokes.py`):
    strokes 3 / 6 / 12 / 24 px -0.65 / -0.55 / -0.67 / -0.66 dB without this rule, -0.01 / -0.13 /
    -0.26 / -0.45 dB with it; a 64 px box -0.62 / -0.58 dB. In thin holes the fill had hardly
    more high-frequency energy than the membrane to lose (18 % against 16 % of the truth's at 3 px).
    """
    hole = np.asarray(hole, bool)
    s = float(scale)
    if s <= 1:
        return np.ones(hole.shape, np.float32)
    d = distance_to_known(hole, s)
    share = np.clip(2 * d / s - 1, 0, 1).astype(np.float32)
    share[~hole] = 1.0
    return share


def clone_into(fill: np.ndarray, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Seamless cloning of the hole part of a (h, w, 3) fill into `image` (Perez et al., 2003, "Poisson image editing").

    The fill was made at a coarser scale, so along the hole's border its content can be off by a
    slowly varying error (a colour cast, a blur of the edge). Poisson cloning keeps the fill's
    gradients inside the hole and takes its border values from the image: f = g + h with h
    harmonic in the hole and h = image - g on its border. Here g is the hole's content extended
    outward by a membrane (so the border error is measured against the fill's own hole values,
    not its projected known pixels), and h is the membrane (`smooth_fill`) of that error.
    """
    inside = torch.from_numpy(hole)[None, None].float()
    g = smooth_fill(_nchw(fill), inside)  # the hole's content, continued smoothly over the known pixels
    h = smooth_fill(_nchw(image) - g, 1 - inside)  # the border error, interpolated into the hole
    return np.clip(_hwc(g + h), 0, 1)


def smooth_fill(x: torch.Tensor, known: torch.Tensor, relax: int = 8) -> torch.Tensor:
    """Fill the unknown pixels of x (B, C, H, W) with a smooth membrane through the known ones.

    Pull-push interpolation (Gortler et al., 1996, "The Lumigraph", sec. 3.2.2): known pixels are
    averaged down a pyramid with their coverage, then each level fills its gaps from the upsampled
    coarser one; a few Jacobi sweeps of the Laplace equation per level (a multigrid-style
    smoother) remove the pyramid's blockiness, so the hole gets the harmonic fill that OpenCV's
    Navier-Stokes/Telea methods approximate. Known pixels are returned unchanged. It is the start
    of the projected loop: from a smooth guess, a mid noise level already keeps the layout.
    """
    x, m = x.float(), known.float().expand(x.shape[0], 1, *x.shape[2:])
    levels = [(x * m, m)]
    while min(levels[-1][1].shape[2:]) > 1:
        sx, sw = levels[-1]
        # Sums over 2x2 blocks; coverage saturates at 1 (a fully known coarse pixel is known).
        sx2 = F.avg_pool2d(sx, 2, ceil_mode=True) * 4
        sw2 = F.avg_pool2d(sw, 2, ceil_mode=True) * 4
        colour = sx2 / sw2.clamp(min=1e-8)
        w2 = sw2.clamp(max=1.0)
        levels.append((colour * w2, w2))
    sx, sw = levels[-1]
    est = sx / sw.clamp(min=1e-8)
    kernel = torch.tensor([[0.0, 0.25, 0.0], [0.25, 0.0, 0.25], [0.0, 0.25, 0.0]]).expand(x.shape[1], 1, 3, 3)
    for sx, sw in reversed(levels[:-1]):
        up = F.interpolate(est, size=sx.shape[2:], mode="bilinear", align_corners=False)
        colour = sx / sw.clamp(min=1e-8)
        est = sw * colour + (1 - sw) * up
        hard = sw >= 1.0  # exactly known at this level: stays fixed during relaxation
        for _ in range(relax if min(est.shape[2:]) > 2 else 0):
            nb = F.conv2d(F.pad(est, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])
            est = torch.where(hard, est, nb)
    return torch.where(m > 0.5, x, est)


# Windows above this many pixels are filled through a mid level (`fill_large_window`): a stroke
# across a 96 Mpx photo made its window the whole photo, and the full-size float steps of
# `fill_window` (its crop, the upsampled fill, two full-size membranes for the cloning) took 115 s
# and 15 GB for a 12 px stroke.
LARGE_WINDOW = 1 << 22
MID_PIXELS = 1 << 21  # ... the size of that mid level


def block_means(src: np.ndarray, hole: np.ndarray, k: int, to_float: Callable[[np.ndarray], np.ndarray],
                strip_px: int = 1 << 21) -> tuple[np.ndarray, np.ndarray]:
    """Means over k x k blocks of the known pixels of `src` (h, w, 3), and each block's known
    fraction: ((ceil(h / k), ceil(w / k), 3) float32, (ceil(h / k), ceil(w / k)) float32).

    The source goes through `to_float` a strip of rows at a time, so a whole photo never exists as
    floats. A block with no known pixel reads 0; edge blocks count only their pixels inside.
    """
    h, w = hole.shape
    mh, mw = -(-h // k), -(-w // k)
    sums = np.zeros((mh, mw, 3), np.float32)
    count = np.zeros((mh, mw), np.float32)
    rows = k * max(1, strip_px // (k * k * mw))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        nb = -(-(r1 - r0) // k)
        known = np.zeros((nb * k, mw * k), np.float32)
        known[:r1 - r0, :w] = ~hole[r0:r1]
        x = np.zeros((nb * k, mw * k, 3), np.float32)
        x[:r1 - r0, :w] = to_float(src[r0:r1])
        x *= known[..., None]
        b0 = r0 // k
        # Rows first (contiguous), then columns: a strided sum over both axes at once was 4x slower.
        sums[b0:b0 + nb] = x.reshape(nb, k, -1).sum(axis=1).reshape(nb, mw, k, 3).sum(axis=2)
        count[b0:b0 + nb] = known.reshape(nb, k, -1).sum(axis=1).reshape(nb, mw, k).sum(axis=2)
    inside = np.minimum(k, h - np.arange(mh) * k)[:, None] * np.minimum(k, w - np.arange(mw) * k)[None, :]
    return sums / np.maximum(count, 1)[..., None], count / inside


def _upsample_part(small: np.ndarray, k: int, rows: slice, cols: slice) -> np.ndarray:
    """Rows and columns of the bicubic k x upsampling of `small` (mh, mw, 3), made from the pixels
    around them only: the same values as upsampling all of it (output pixel y reads position
    (y + 0.5) / k - 0.5, and the 2 pixels of bicubic support on each side are included; at the
    image's own edges the part's edge clamping is the whole image's)."""
    mh, mw = small.shape[:2]
    a0, b0 = max(0, rows.start // k - 2), max(0, cols.start // k - 2)
    a1, b1 = min(mh, -(-rows.stop // k) + 2), min(mw, -(-cols.stop // k) + 2)
    part = F.interpolate(_nchw(small[a0:a1, b0:b1]), scale_factor=k, mode="bicubic", align_corners=False)
    return _hwc(part)[rows.start - a0 * k:rows.stop - a0 * k, cols.start - b0 * k:cols.stop - b0 * k]


def _resize_part(small: np.ndarray, size: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    """Rows and columns of `small` (fh, fw, 3) resized (Lanczos) to `size` (height, width), made
    without the rest: Pillow's `box` maps them back, and its filter reads the pixels around it."""
    fh, fw = small.shape[:2]
    sy, sx = fh / size[0], fw / size[1]
    box = (cols.start * sx, rows.start * sy, cols.stop * sx, rows.stop * sy)
    out = (cols.stop - cols.start, rows.stop - rows.start)
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(small[..., c]), mode="F").resize(
        out, Image.Resampling.LANCZOS, box=box)) for c in range(small.shape[2])], axis=-1)


def fill_large_window(src: np.ndarray, hole: np.ndarray, fill: Fill, resolution: int, multiple: int,
                      opts: InpaintOptions, seed: int, on_step: Callable[[], None] | None = None,
                      to_float: Callable[[np.ndarray], np.ndarray] = lambda a: a,
                      mid_pixels: int | None = None) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """`fill_window` for a window too large to hold as floats: yields (rows, cols, filled float
    crop) for each full-size tile that holds hole pixels, known pixels unchanged.

    The window is averaged down by an integer k to a mid level of about `mid_pixels` (means of the
    known pixels only, `block_means`), from which the coarse levels are made (`coarse_to_fine`,
    weighing each mid pixel by its known part, so they average the same pixels as from the window).
    The finest level's fill is resampled to each full-size tile directly, as `fill_window` does.
    The seamless cloning (`clone_into`: the fill plus the membrane of its border error, Perez et
    al. 2003) is done at the mid level and its correction upsampled: a membrane is smooth, and the
    border's full-size detail it would miss lies within the band next to the border where the rule
    of `model_share` (at the finest level's scale, at least 4 k px here) keeps the full-size
    membrane anyway, as `fill_window` does. Everything at full size is done on tiles with a margin,
    so memory follows the hole's neighbourhood, not the window.

    With k = 1 this is `fill_window`. On the 37 held-out photos (box holes, the finest level 32 px
    so that it is 6-13 photo px per pixel as in a large window, mid level k = 2), the hole's PSNR
    against the truth moved by a median of 0.0 dB from `fill_window`'s; the mean, -0.4 dB, comes
    from two flat photos whose fills drop from 59 and 47 dB to 50 and 44 dB.
    """
    h, w = hole.shape
    k = _mid_factor(h, w, mid_pixels)
    mid_y, cover = block_means(src, hole, k, to_float)
    mh, mw = mid_y.shape[:2]
    mid_hole = cover < 0.5  # the rule of the coarse levels: a block is known when most of it is
    prev = coarse_to_fine(mid_y, mid_hole, fill, resolution, multiple, opts, seed, on_step, weight=cover)
    size = (mh * k, mw * k)  # the extent the levels were made for (edge blocks may reach past the window)
    scale = max(size[0] / prev.shape[0], size[1] / prev.shape[1])
    error_mid = None
    if opts.colour_match and mid_hole.any():
        # `clone_into` at the mid level, and its border error's membrane continued smoothly
        # outward: upsampled, the raw errors of the known blocks next to the hole would otherwise
        # leak their texture into its rim.
        inside = torch.from_numpy(mid_hole)[None, None].float()
        g = smooth_fill(_nchw(np.clip(resize_float(prev, (mw, mh), Image.Resampling.LANCZOS), 0, 1)), inside)
        error_mid = _hwc(smooth_fill(smooth_fill(_nchw(mid_y) - g, 1 - inside), inside))
    # Tiles need the known pixels `model_share` looks for (up to `scale` px away) and the
    # membrane's pyramid blocks up to 64 px aligned with the window's (`keep_membrane_where_thin`).
    margin = 64 * math.ceil((2 * scale + 8) / 64)
    def fill_of(rows: slice, cols: slice) -> np.ndarray:
        """The finest level's fill resampled to these full-size pixels, plus the mid level's cloning."""
        out = np.clip(_resize_part(prev, size, rows, cols), 0, 1)
        return out if error_mid is None else out + _upsample_part(error_mid, k, rows, cols)

    for ty, tx, py, px in _hole_tiles(hole, margin):
        sub = hole[py, px]
        if sub.all():
            # Deep inside a wide hole: no known pixel within the margin, so nothing at full size
            # to fit or keep; the tile itself only (the margin was 8x its work).
            yield ty, tx, np.clip(fill_of(ty, tx), 0, 1)
            continue
        inner = (slice(ty.start - py.start, ty.stop - py.start), slice(tx.start - px.start, tx.stop - px.start))
        out = fill_of(ty, tx)
        crop = to_float(src[py, px])
        share = _tile_share(hole, ty, tx, scale)
        if (share < 1).any():
            membrane = _hwc(smooth_fill(_nchw(crop), torch.from_numpy(~sub)[None, None]))[inner]
            out = membrane + share[..., None] * (out - membrane)
        yield ty, tx, np.where(sub[inner][..., None], np.clip(out, 0, 1), crop[inner])


def fill_size(h: int, w: int) -> tuple[int, int]:
    """The size `fill_window` works on for a window of h x w (the mid level's for a large one)."""
    if h * w <= LARGE_WINDOW:
        return h, w
    k = _mid_factor(h, w)
    return -(-h // k), -(-w // k)


def _mid_factor(h: int, w: int, mid_pixels: int | None = None) -> int:
    """The integer k a large window is averaged down by to make its mid level of about `mid_pixels`."""
    return max(1, math.ceil(math.sqrt(h * w / (mid_pixels or MID_PIXELS))))


def plan_windows(mask: np.ndarray, opts: InpaintOptions = InpaintOptions()) -> list[Window]:
    """Non-overlapping context windows covering the mask's separate parts (one part, one window,
    unless their windows overlap)."""
    return merge_windows([context_window(b, mask.shape, opts) for b in regions(mask)])


def inpaint_parts(image: np.ndarray, mask: np.ndarray, fill: Fill, resolution: int, multiple: int, *,
                  seed: int = 0, coarse_evals: int = 4, opts: InpaintOptions = InpaintOptions(),
                  progress: Callable[[int, int], None] | None = None,
                  to_float: Callable[[np.ndarray], np.ndarray] = lambda crop: crop,
                  ) -> Iterator[tuple[slice, slice, np.ndarray, np.ndarray]]:
    """Fill where `mask` is True, window by window: yields (rows, cols, blended float crop, alpha crop)
    for each context window (for a window over `LARGE_WINDOW` px, for each of its tiles that the
    hole touches); the parts do not overlap, and outside them nothing changes.

    `image` is converted to float in [0, 1] one window at a time (`to_float`), so a 96 Mpx photo
    with a small hole never exists as a full-size float copy (4-12 bytes a pixel each). The model
    regenerates the mask grown by grow + feather px; the paste is opaque over the mask grown by
    `grow` and fades out over the next `feather` px; where alpha == 0 the caller keeps its pixels.
    """
    generated = dilate(mask, opts.grow + opts.feather)
    windows = plan_windows(generated, opts)
    # Network evaluations in total, for a progress bar that moves at every step.
    total = sum(coarse_evals + (len(work_sizes(*fill_size(w.height, w.width), resolution, multiple, opts.max_scale)) - 1)
                * opts.refine_steps for w in windows)
    done = [0]

    def on_step() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    for i, win in enumerate(windows):
        sy, sx = win.slices()
        grain_seed = sub_seed(seed, 1_000_003 + i)  # apart from the fill's own seeds
        if win.height * win.width > LARGE_WINDOW:
            learnt: Grain | None = None  # a tile deep inside a wide hole has no known pixels: the last one's
            # Tile by tile; each tile's alpha from the mask around it (the blend reaches grow +
            # feather px out, well inside the tiles' margin of the mask).
            pad = opts.grow + 2 * opts.feather + 2  # the feather's blur reaches ~1.5x its width
            for ty, tx, gen in fill_large_window(image[sy, sx], generated[sy, sx], fill, resolution, multiple, opts,
                                                 sub_seed(seed, i), on_step, to_float):
                ry = slice(sy.start + ty.start, sy.start + ty.stop)
                rx = slice(sx.start + tx.start, sx.start + tx.stop)
                if opts.feather <= 0:  # `blend_alpha` is then the grown mask, made already
                    a = generated[ry, rx].astype(np.float32)
                else:
                    py0, px0 = max(0, ry.start - pad), max(0, rx.start - pad)
                    a = blend_alpha(mask[py0:ry.stop + pad, px0:rx.stop + pad], opts.grow, opts.feather)
                    a = a[ry.start - py0:ry.stop - py0, rx.start - px0:rx.stop - px0]
                crop = to_float(image[ry, rx])
                if opts.grain:
                    tile_hole = generated[ry, rx]
                    learnt = learn_grain(crop, tile_hole) or learnt
                    if learnt is not None:
                        gen = add_grain(gen, tile_hole, learnt, sub_seed(grain_seed, ry.start * 65_537 + rx.start))
                yield ry, rx, crop * (1 - a[..., None]) + gen * a[..., None], a
            continue
        crop = to_float(image[sy, sx])
        gen = fill_window(crop, generated[sy, sx], fill, resolution, multiple, opts, sub_seed(seed, i), on_step)
        if opts.grain:
            learnt = learn_grain(crop, generated[sy, sx])
            if learnt is not None:
                gen = add_grain(gen, generated[sy, sx], learnt, grain_seed)
        a = blend_alpha(mask[sy, sx], opts.grow, opts.feather)
        yield sy, sx, crop * (1 - a[..., None]) + gen * a[..., None], a


def inpaint_any(image: np.ndarray, mask: np.ndarray, fill: Fill, resolution: int, multiple: int, *, seed: int = 0,
                coarse_evals: int = 4, opts: InpaintOptions = InpaintOptions(),
                progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`inpaint_parts` of a float (H, W, 3) image in [0, 1], assembled: (blended float image, alpha)."""
    alpha_full = np.zeros(mask.shape, np.float32)
    result = image.copy()
    for sy, sx, blended, a in inpaint_parts(image, mask, fill, resolution, multiple, seed=seed,
                                            coarse_evals=coarse_evals, opts=opts, progress=progress):
        result[sy, sx] = blended
        alpha_full[sy, sx] = np.maximum(alpha_full[sy, sx], a)
    return result, alpha_full
