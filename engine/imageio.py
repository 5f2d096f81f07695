"""Reading and writing image files for the headless commands: clear errors, atomic writes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .checkpoint import atomic_write_bytes

# Refuse decompression bombs with a message instead of Pillow's warning/exception text.
MAX_PIXELS = 200_000_000
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                ".bmp": "BMP"}


class ImageError(Exception):
    """An image file that cannot be read or written, with the reason."""


def read_image(path: str | Path) -> np.ndarray:
    """Read any Pillow-supported file as (H, W, 3) uint8 RGB, EXIF orientation applied."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, expected an image file")
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{path}: {w}x{h} is {w * h / 1e6:.0f} Mpx, over the {MAX_PIXELS / 1e6:.0f} Mpx limit")
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I", "F"):
                a = np.asarray(im, dtype=np.float64)
                peak = 65535.0 if a.max() > 255 else 255.0
                grey = np.clip(a / peak * 255 + 0.5, 0, 255).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=2)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            return np.asarray(im.convert("RGB"))
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path}: not a supported image ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: the image is damaged or truncated ({e})") from None


def read_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """Read a mask (white/opaque = fill) and check it matches size = (width, height)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA"):
                a = np.asarray(im.getchannel("A"))
                if a.min() == 255:  # opaque mask image: use its brightness
                    a = np.asarray(im.convert("L"))
            else:
                a = np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: not a readable mask image ({e})") from None
    if (a.shape[1], a.shape[0]) != tuple(size):
        raise ImageError(f"{path}: mask is {a.shape[1]}x{a.shape[0]} but the image is {size[0]}x{size[1]}")
    return a > 127


def write_image(path: str | Path, image: np.ndarray, *, overwrite: bool = False, quality: int = 95) -> Path:
    """Encode by extension (lossless PNG unless asked otherwise) and write atomically."""
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown output format {path.suffix!r}; use one of {', '.join(sorted(SAVE_FORMATS))}")
    if path.exists() and not overwrite:
        raise ImageError(f"{path}: already exists (pass --overwrite to replace it)")
    if not path.parent.exists():
        raise ImageError(f"{path.parent}: output folder does not exist")
    buf = io.BytesIO()
    kw = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format=fmt, **kw)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:
        raise ImageError(f"{path}: could not write ({os.strerror(e.errno) if e.errno else e})") from None
    return path
