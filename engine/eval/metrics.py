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


def ab_error(pred: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean Euclidean distance in the a*b* plane (CIE 1976 Lab, D65): colour error with lightness ignored."""
    p, t = rgb_to_lab(_pixels(pred, region).astype(np.uint8)), rgb_to_lab(_pixels(truth, region).astype(np.uint8))
    return float(np.mean(np.hypot(p[:, 1] - t[:, 1], p[:, 2] - t[:, 2])))


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
