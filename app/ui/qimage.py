"""The only place where numpy arrays and QImages are converted."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

# Mask overlay colour: a saturated red reads as "this will change" on photos in light and dark UIs.
OVERLAY_RGB = (255, 40, 60)
OVERLAY_OPACITY = 0.5


def to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 -> a QImage that owns its pixels (safe after `rgb` is gone)."""
    a = np.ascontiguousarray(rgb, np.uint8)
    h, w = a.shape[:2]
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def to_qimage_alpha(rgb: np.ndarray, alpha: np.ndarray) -> QImage:
    """(H, W, 3) uint8 colour and (H, W) uint8 alpha -> a QImage with straight (unpremultiplied) alpha
    that owns its pixels: the colour is kept as the document keeps it, what `from_qimage_alpha` reads."""
    h, w = rgb.shape[:2]
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = rgb
    rgba[..., 3] = alpha
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def from_qimage(image: QImage) -> np.ndarray:
    """Any QImage -> (H, W, 3) uint8 (alpha is dropped; transparent pixels become their colour)."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=h * bpl).reshape(h, bpl)
    return np.ascontiguousarray(buf[:, : 3 * w].reshape(h, w, 3))


def from_qimage_alpha(image: QImage) -> tuple[np.ndarray, np.ndarray | None]:
    """Any QImage -> ((H, W, 3) uint8 colour, (H, W) uint8 alpha or None when every pixel is opaque).

    The colour is not premultiplied, as a document keeps it (what `load_picture` gives for a PNG):
    a half-transparent red stays (255, 0, 0) with alpha 128. A fully transparent pixel has no colour
    left in a premultiplied image (Qt's clipboard format): it comes back black, with alpha 0.
    An alpha channel with nothing transparent in it (most copied photos) is no transparency.
    """
    if not image.hasAlphaChannel():
        return from_qimage(image), None
    img = image.convertToFormat(QImage.Format.Format_RGBA8888)  # straight (unpremultiplied) alpha
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    rgba = np.frombuffer(img.constBits(), np.uint8, count=h * bpl).reshape(h, bpl)[:, : 4 * w].reshape(h, w, 4)
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[..., :3]), None
    return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(alpha)


class SharedImage:
    """A numpy buffer and a QImage over the same memory, for cheap partial updates while painting.

    Qt only reads the buffer when painting, so writing a rectangle of the array and repainting
    that rectangle costs O(rect), not O(image) as a fresh QImage per mouse move would.
    """

    def __init__(self, w: int, h: int, channels: int) -> None:
        fmt = QImage.Format.Format_RGB888 if channels == 3 else QImage.Format.Format_ARGB32_Premultiplied
        self.array = np.zeros((h, w, 3 if channels == 3 else 4), np.uint8)
        bpl = self.array.shape[1] * self.array.shape[2]
        self.qimage = QImage(self.array.data, w, h, bpl, fmt)

    @property
    def size(self) -> tuple[int, int]:
        return self.array.shape[1], self.array.shape[0]


def _overlay_table() -> np.ndarray:
    """BGRA of the overlay for each of the 256 mask values, one uint32 each (see `overlay_pixels`)."""
    a = np.arange(256, dtype=np.uint16) * int(OVERLAY_OPACITY * 256) >> 8
    table = np.empty((256, 4), np.uint8)
    r, g, b = OVERLAY_RGB
    table[:, 0] = (a * b + 127) // 255
    table[:, 1] = (a * g + 127) // 255
    table[:, 2] = (a * r + 127) // 255
    table[:, 3] = a
    return table.view(np.uint32).reshape(256)


# A mask byte decides its overlay pixel alone: one table lookup per pixel instead of a dozen
# uint16 passes, which took 0.3-2 s (the UI frozen) for each full overlay of a 96 Mpx photo.
_OVERLAY_TABLE = _overlay_table()


def overlay_pixels(mask: np.ndarray) -> np.ndarray:
    """(H, W) mask -> (H, W, 4) premultiplied BGRA (Qt's ARGB32 in little-endian memory order)."""
    return _OVERLAY_TABLE[mask].view(np.uint8).reshape(mask.shape + (4,))
