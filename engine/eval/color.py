"""sRGB <-> CIELAB (D65) and colourfulness measures, in numpy.

sRGB transfer function and matrix: IEC 61966-2-1; Lab: CIE 1976 L*a*b* with the D65 white point;
colourfulness: Hasler & Suesstrunk, "Measuring colourfulness in natural images", SPIE 2003.
"""

from __future__ import annotations

import numpy as np

# Linear sRGB -> XYZ (D65), IEC 61966-2-1.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_DELTA = 6 / 29


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """Undo the sRGB transfer curve; c in [0, 1]."""
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Apply the sRGB transfer curve; result in [0, 1] for c in [0, 1]."""
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(np.maximum(c, 0), 1 / 2.4) - 0.055)


def _f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _DELTA**3, np.cbrt(t), t / (3 * _DELTA**2) + 4 / 29)


def _f_inv(f: np.ndarray) -> np.ndarray:
    return np.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4 / 29))


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB (uint8, or float in [0, 1]) -> (..., 3) float64 L* in [0, 100], a*, b*."""
    rgb = np.asarray(rgb)
    c = rgb / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    xyz = srgb_to_linear(c) @ _RGB_TO_XYZ.T / _WHITE_D65
    fx, fy, fz = (_f(xyz[..., i]) for i in range(3))
    return np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) L*a*b* -> (..., 3) sRGB float in [0, 1] (unclipped: out-of-gamut colours exceed it)."""
    lab = np.asarray(lab, np.float64)
    fy = (lab[..., 0] + 16) / 116
    fx, fz = fy + lab[..., 1] / 500, fy - lab[..., 2] / 200
    xyz = np.stack([_f_inv(fx), _f_inv(fy), _f_inv(fz)], axis=-1) * _WHITE_D65
    return linear_to_srgb(xyz @ _XYZ_TO_RGB.T)


def chroma(rgb: np.ndarray) -> np.ndarray:
    """C*ab = sqrt(a*^2 + b*^2) per pixel."""
    lab = rgb_to_lab(rgb)
    return np.hypot(lab[..., 1], lab[..., 2])


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk's M = sigma_rgyb + 0.3 mu_rgyb over (..., 3) pixels in 0..255 (uint8 or float)."""
    p = np.asarray(rgb, np.float64).reshape(-1, 3)
    rg = p[:, 0] - p[:, 1]
    yb = 0.5 * (p[:, 0] + p[:, 1]) - p[:, 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
