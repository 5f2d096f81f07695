"""Degradations and classical baselines for evaluation: area downsampling, Pillow upscalers, grey
conversion, fixed masks, mean fill, and OpenCV's Telea / Navier-Stokes inpainting when cv2 is there.

Images are (H, W, 3) uint8; masks are (H, W) bool with True = hole (to be filled).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

UPSCALERS = {"nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC,
             "lanczos": Image.Resampling.LANCZOS}


def area_downsample(image: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k blocks, rounded to uint8 (what a camera at 1/k resolution would record)."""
    h, w = image.shape[:2]
    blocks = image[: h - h % k, : w - w % k].astype(np.float64).reshape(h // k, k, w // k, k, 3)
    return np.clip(blocks.mean(axis=(1, 3)) + 0.5, 0, 255).astype(np.uint8)


def upscale(low: np.ndarray, k: int, method: str) -> np.ndarray:
    h, w = low.shape[:2]
    return np.asarray(Image.fromarray(low).resize((w * k, h * k), UPSCALERS[method]))


def grey(image: np.ndarray) -> np.ndarray:
    """BT.601 luma replicated to three channels: the 'grey input' colorization baseline."""
    y = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(np.clip(y + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def box_mask(size: int) -> np.ndarray:
    """A centred square hole covering a quarter of the image."""
    m = np.zeros((size, size), bool)
    a, b = size // 4, size - size // 4
    m[a:b, a:b] = True
    return m


def stroke_mask(size: int, seed: int = 0, strokes: int = 3) -> np.ndarray:
    """A few thick random polylines (a brush stroke over an unwanted object), fixed by `seed`."""
    rng = np.random.default_rng(seed)
    im = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(im)
    width = max(2, size // 10)
    for _ in range(strokes):
        pts = [tuple(float(v) for v in rng.uniform(0.1 * size, 0.9 * size, 2)) for _ in range(4)]
        draw.line(pts, fill=255, width=width, joint="curve")
    return np.asarray(im) > 0


def smooth_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The hole filled by the engine's membrane (pull-push) interpolation: the start of our loop."""
    import torch

    from ..inpaint import smooth_fill as membrane
    from ..tensors import to_tensor, to_uint8

    return to_uint8(membrane(to_tensor(image), torch.from_numpy(~hole)[None, None]))[0]


def mean_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The hole painted with the mean colour of the known pixels."""
    out = image.copy()
    out[hole] = np.clip(image[~hole].astype(np.float64).mean(axis=0) + 0.5, 0, 255).astype(np.uint8)
    return out


def opencv_inpainters() -> dict[str, object]:
    """{'Telea': fn, 'Navier-Stokes': fn} when OpenCV imports (a dev-only baseline), else {}."""
    try:
        import cv2  # type: ignore[import-not-found]
    except ImportError:
        return {}

    def make(flag: int) -> object:
        def fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
            # Both methods treat channels alike, so RGB order needs no swap.
            return cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255, 3, flag)
        return fill

    return {"Telea": make(cv2.INPAINT_TELEA), "Navier-Stokes": make(cv2.INPAINT_NS)}
