"""Conversions between uint8 image arrays and model tensors, and resampling helpers (Pillow-based)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 or (N, H, W, 3) -> (N, 3, H, W) float32 in [-1, 1]."""
    a = np.asarray(image)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"expected an RGB image array (H, W, 3), got shape {np.asarray(image).shape}")
    t = torch.from_numpy(np.array(a, dtype=np.uint8)).permute(0, 3, 1, 2).float()
    return t / 127.5 - 1


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8, rounded (the reference truncates; rounding is unbiased)."""
    a = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return a.permute(0, 2, 3, 1).numpy()


def resize(image: np.ndarray, size: tuple[int, int], resample: int = Image.Resampling.LANCZOS) -> np.ndarray:
    """Resize an (H, W[, C]) uint8 array to size = (width, height) with Pillow."""
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    return np.asarray(Image.fromarray(image).resize(size, resample))


def resize_float(image: np.ndarray, size: tuple[int, int], resample: int = Image.Resampling.BICUBIC,
                 rows: tuple[int, int] | None = None) -> np.ndarray:
    """Resize a float32 (H, W[, C]) array channel by channel without quantising (Pillow mode 'F').

    `rows` (r0, r1): only those rows of the resized array, from the same source (Pillow's `box`
    maps them back, and its filter still reads the rows around them), so a full-size result can be
    made a strip at a time."""
    if image.ndim == 2:
        im = Image.fromarray(image.astype(np.float32), mode="F")
        if rows is None:
            return np.asarray(im.resize(size, resample))
        (w, h), (r0, r1) = size, rows
        scale = image.shape[0] / h
        return np.asarray(im.resize((w, r1 - r0), resample, box=(0, r0 * scale, image.shape[1], r1 * scale)))
    return np.stack([resize_float(image[..., c], size, resample, rows) for c in range(image.shape[-1])], axis=-1)


# How far each Pillow filter reaches, in output pixels, when it shrinks (Pillow's own supports).
_SUPPORT = {Image.Resampling.NEAREST: 0.5, Image.Resampling.BOX: 0.5, Image.Resampling.BILINEAR: 1.0,
            Image.Resampling.HAMMING: 1.0, Image.Resampling.BICUBIC: 2.0, Image.Resampling.LANCZOS: 3.0}


def shrink_float(image: np.ndarray, size: tuple[int, int], resample: int, to_float: Callable[[np.ndarray], np.ndarray],
                 strip_px: int = 1 << 21) -> np.ndarray:
    """`resize_float(to_float(image), size, resample)` (size = (width, height)) without the whole
    of `to_float(image)` (which may drop or add channels) as floats: a 96 Mpx photo is 1.2 GB as float32 RGB, and Pillow copies each channel.

    A band of output rows r0..r1 is made from the source rows it reads only, about `strip_px`
    source pixels at a time: output row i is centred on source row (i + 0.5) * s (s = H / h) and
    its filter reaches support * max(s, 1) rows either side, so the band cuts those rows plus a
    margin and hands Pillow the band's exact position as `box`. The weights are then the whole
    image's (Pillow clips a filter only at the source's edges, which are the band's edges only
    where they are the image's), so the result matches to float rounding. Meant for shrinking; it
    is correct for any size.
    """
    H, W = image.shape[:2]
    w, h = size
    s = H / h
    # Output row i reads source rows (i + 0.5) * s -/+ support * s: beyond the band's own rows
    # [r0 * s, r1 * s), (support - 0.5) * s each side (BOX: none, so a band reads only its rows).
    reach = (_SUPPORT.get(resample, 3.0) - 0.5) * max(s, 1.0) + 2
    band = max(1, int(strip_px / max(W, 1) / max(s, 1.0)))
    out = None  # shaped by what `to_float` makes (a grey luma from an RGB photo, say)
    for r0 in range(0, h, band):
        r1 = min(h, r0 + band)
        a0, a1 = max(0, int(r0 * s - reach)), min(H, int(np.ceil(r1 * s + reach)))
        part = np.asarray(to_float(image[a0:a1]), np.float32)
        box = (0.0, r0 * s - a0, float(W), r1 * s - a0)
        chans = [part] if part.ndim == 2 else [part[..., c] for c in range(part.shape[-1])]
        res = [np.asarray(Image.fromarray(np.ascontiguousarray(c), mode="F").resize((w, r1 - r0), resample, box=box))
               for c in chans]
        if out is None:
            out = np.empty((h, w) + part.shape[2:], np.float32)
        out[r0:r1] = res[0] if part.ndim == 2 else np.stack(res, axis=-1)
    return out


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """Full-range BT.601 YCbCr (JPEG's), float32 in 0..255; used to move chroma onto original luma."""
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([y, cb, cr], axis=-1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_ycbcr`, float32, unclipped."""
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 128, ycc[..., 2] - 128
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return np.stack([r, g, b], axis=-1)


def fit_gamut(rgb: np.ndarray, lo: float = 0.0, hi: float = 255.0) -> np.ndarray:
    """Bring colours into [lo, hi] by moving each pixel toward the grey of its own BT.601 luma.

    rgb: (..., 3) float. Clipping channel by channel changes a saturated pixel's luma and hue;
    shrinking its chroma by the largest factor in [0, 1] that fits keeps both (the luma itself is
    clipped only where it lies outside [lo, hi]). Colorization uses it: the luma is the input's.
    """
    rgb = np.asarray(rgb, np.float32)
    y = np.clip(rgb @ np.array([0.299, 0.587, 0.114], np.float32), lo, hi)[..., None]
    c = rgb - y
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(c > 0, (hi - y) / c, np.where(c < 0, (lo - y) / c, np.inf))
    a = room.min(axis=-1, keepdims=True)
    # In-gamut pixels are returned as they are; the clip only absorbs float rounding.
    return np.where(a >= 1, rgb, np.clip(y + np.clip(a, 0.0, 1.0) * c, lo, hi))


def is_grey(image: np.ndarray, where: np.ndarray | None = None, levels: int = 2) -> bool:
    """True when the (H, W, 3) uint8/uint16 image has R = G = B (within `levels` 8-bit levels, the
    chroma noise a JPEG leaves in a black-and-white photo) at every pixel, or every pixel of `where`.

    A grey photo must come back grey from the editing tasks: the model invents colour wherever
    it is free to (up to 21 levels of chroma in an x4 upscale of a grey test image).
    """
    tol = levels * (257 if image.dtype == np.uint16 else 1)
    rows = max(1, (1 << 20) // max(1, image.shape[1]))  # about a megapixel at a time: no full-size temporaries
    seen = False
    for top in range(0, image.shape[0], rows):
        a = image[top:top + rows]
        if where is not None:
            a = a[where[top:top + rows]]
        if a.size == 0:
            continue
        seen = True
        if (a.max(axis=-1) - a.min(axis=-1)).max() > tol:  # max >= min: unsigned, no wrap-around
            return False
    return seen


# `near_grey`: a pixel may differ from grey by this many 8-bit levels (R, G, B spread; an RGB scan
# of a black-and-white print carries 2-4 of noise) ...
NEAR_GREY_LEVELS = 6
# ... except this share of the pixels: the spread of three normal samples passes 4 sigma for 1 % of
# them, so a scan with chroma noise of sigma 1.4 levels has 0.3 % over 6, 1.2 % at sigma 1.6 ...
NEAR_GREY_OUTLIERS = 0.03
# ... and colour, which noise of that size never reaches (a spread of 12 is 8 sigma at 1.5), only
# on this share (a speck of dust): a grey photo with a small red object (1.5 % of it) is colour.
NEAR_GREY_COLOUR_LEVELS = 12
NEAR_GREY_COLOUR = 0.001
# ... and the whole picture's mean chroma (BT.601 Cb, Cr) stays within this many levels of zero:
# noise averages out; a tint (a faint colour photo, a toned print) does not.
NEAR_GREY_MEAN = 1.0


def near_grey(image: np.ndarray, where: np.ndarray | None = None) -> bool:
    """True when the (H, W, 3) uint8/uint16 image (or its pixels in `where`) is a black-and-white
    photo with channel noise: every pixel's channel spread (max - min) at most NEAR_GREY_LEVELS 8-bit
    levels but for a NEAR_GREY_OUTLIERS share, over NEAR_GREY_COLOUR_LEVELS for no more than a
    NEAR_GREY_COLOUR share, and the mean Cb and Cr within NEAR_GREY_MEAN of neutral.
    Every `is_grey` image is near grey.

    `is_grey`'s tolerance of 2 levels is a JPEG's chroma noise; an RGB scan of a print has spread
    4 where the channels' noise happens to disagree, and the upscaler then treated it as colour
    and invented chroma of up to 20 levels in specks. Callers that take such a picture as grey keep
    its own small chroma offsets (`upscale_tiled`), so nothing of the picture is lost; the test
    only has to tell noise around grey from colour, which has a mean: a colour photo (even a
    faded one) has a cast, and noise has none.
    """
    if is_grey(image, where):
        return True  # a grey tinted by up to `is_grey`'s 2 levels may have a mean of a level
    unit = 257 if image.dtype == np.uint16 else 1
    tol, colour_tol = NEAR_GREY_LEVELS * unit, NEAR_GREY_COLOUR_LEVELS * unit
    total = image.shape[0] * image.shape[1] if where is None else int(np.count_nonzero(where))
    allowed, colour_allowed = NEAR_GREY_OUTLIERS * total, NEAR_GREY_COLOUR * total
    rows = max(1, (1 << 20) // max(1, image.shape[1]))  # about a megapixel at a time, as `is_grey`
    over = coloured = 0
    sums = np.zeros(3, np.float64)
    for top in range(0, image.shape[0], rows):
        a = image[top:top + rows]
        if where is not None:
            a = a[where[top:top + rows]]
        r, g, b = a[..., 0], a[..., 1], a[..., 2]
        # Element-wise maxima: numpy's reduction over a last axis of three is about 4x slower.
        spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)  # unsigned: max >= min
        over += int(np.count_nonzero(spread > tol))
        coloured += int(np.count_nonzero(spread > colour_tol))
        if over > allowed or coloured > colour_allowed:
            return False  # a colour photo is told at its first megapixel
        sums += [c.sum(dtype=np.float64) for c in (r, g, b)]
    if total == 0:
        return False
    # Cb and Cr are linear in R, G, B: the mean chroma is the chroma of the mean colour.
    peak = 65535.0 if image.dtype == np.uint16 else 255.0
    mean_chroma = rgb_to_ycbcr((sums / total * 255 / peak)[None])[0, 1:] - 128
    return bool(np.all(np.abs(mean_chroma) <= NEAR_GREY_MEAN))
