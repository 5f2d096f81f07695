"""Image-quality measures on uint8 RGB arrays: PSNR, Lab ab error, chroma, high-frequency energy.

Each takes (H, W, 3) uint8 images and an optional (H, W) bool `region` (e.g. an inpainting hole)
to which it is restricted.
"""

from __future__ import annotations

import math

import numpy as np

from .color import chroma, colourfulness, rgb_to_lab

PSNR_CAP = 100.0  # dB reported for identical images (keeps averages finite)


def _pixels(image: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    a = np.asarray(image, np.float64)
    return a.reshape(-1, 3) if region is None else a[np.asarray(region, bool)]


def psnr(pred: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None, peak: float = 255.0) -> float:
    """10 log10(peak^2 / MSE) over RGB (and `region`), capped at PSNR_CAP."""
    mse = float(np.mean((_pixels(pred, region) - _pixels(truth, region)) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(peak**2 / mse))


def ab_measures(pred: np.ndarray, truth: np.ndarray,
                region: np.ndarray | None = None) -> tuple[float, tuple[float, float, float, int]]:
    """`ab_error` and `ab_products` from one Lab conversion of each image (the slow part on whole photos)."""
    p = rgb_to_lab(_pixels(pred, region).astype(np.uint8))[:, 1:]
    t = rgb_to_lab(_pixels(truth, region).astype(np.uint8))[:, 1:]
    error = float(np.mean(np.hypot(p[:, 0] - t[:, 0], p[:, 1] - t[:, 1])))
    return error, (float((p * t).sum()), float((p * p).sum()), float((t * t).sum()), len(p))


def ab_error(pred: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean Euclidean distance in the a*b* plane (CIE 1976 Lab, D65): colour error with lightness ignored."""
    return ab_measures(pred, truth, region)[0]


def ab_products(pred: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> tuple[float, float, float, int]:
    """Sums of p.t, |p|^2 and |t|^2 over the pixels' a*b* vectors (CIE 1976 Lab, D65), and the
    pixel count: summed over images, they give `hue_agreement`."""
    return ab_measures(pred, truth, region)[1]


def hue_agreement(dot: float, pp: float, tt: float, n: int) -> float | None:
    """Chroma-weighted cosine between predicted and true a*b* vectors, from summed `ab_products`.

    1: every colour points the truth's way; 0: hues unrelated to the truth (or no colour at all:
    None). It does not depend on how saturated the prediction is, so it tells "knows the hue" apart
    from "how much colour". In the a*b* plane the squared error of a prediction with this agreement
    c and an RMS chroma ratio r to the truth is (1 - 2 c r + r^2) times the grey input's, so it
    beats grey exactly when c > r / 2: at half the truth's chroma it needs c > 0.25.
    """
    # Grey pixels carry a*b* of ~1e-5 from the sRGB matrix's rounding: an RMS chroma under 0.01
    # is no colour, and a cosine of that would be noise.
    if n == 0 or min(pp, tt) / n < 1e-4:
        return None
    return dot / math.sqrt(pp * tt)


def mean_chroma(image: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean C*ab over the pixels."""
    return float(np.mean(chroma(_pixels(image, region).astype(np.uint8))))


def region_colourfulness(image: np.ndarray, region: np.ndarray | None = None) -> float:
    return colourfulness(_pixels(image, region))


def bbox(region: np.ndarray | None, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """Bounding box of `region` (the whole image if None or empty)."""
    if region is None or not np.any(region):
        return slice(0, shape[0]), slice(0, shape[1])
    ys, xs = np.nonzero(region)
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def hf_energy(image: np.ndarray, region: np.ndarray | None = None) -> float:
    """Luma power above half the Nyquist frequency (|f| > 0.25 cycles/px), per pixel, in the region's bounding box.

    The mean is removed and a Hann window applied so the crop's edges do not add false high frequencies.
    """
    sy, sx = bbox(region, image.shape)
    a = np.asarray(image, np.float64)[sy, sx]
    y = a @ np.array([0.299, 0.587, 0.114])
    h, w = y.shape
    if h < 4 or w < 4:
        return 0.0
    y = (y - y.mean()) * np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(y)) ** 2
    r = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    return float(power[r > 0.25].sum() / (h * w))
