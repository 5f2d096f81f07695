"""Reading and writing images and masks with Pillow; every write is atomic.

Atomic = temp file in the same folder, fsync, rename: a crash or a full disk mid-save leaves the
old file intact rather than a truncated one (users save over their originals).
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Extension -> Pillow format. PNG first: it is the lossless default.
SAVE_FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                                ".tif": "TIFF", ".tiff": "TIFF"}
OPEN_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
MAX_PIXELS = 1 << 28  # 16k x 16k; bigger files are refused with a message rather than exhausting memory


class ImageError(Exception):
    """A file that cannot be read or written; the message is meant for the user."""


@dataclass(frozen=True, eq=False)
class LoadedImage:
    rgb: np.ndarray  # (H, W, 3) uint8, EXIF orientation applied
    alpha: np.ndarray | None  # (H, W) uint8, None if the file is opaque
    icc_profile: bytes | None


def _open(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
        if im.width * im.height > MAX_PIXELS:
            raise ImageError(f"{path.name} is {im.width}x{im.height}: larger than this app can edit")
        im.load()
        return im
    except FileNotFoundError:
        raise ImageError(f"{path.name}: no such file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path.name} is not an image this app can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path.name} could not be read: {e}") from None


def from_pil(im: Image.Image) -> LoadedImage:
    icc = im.info.get("icc_profile")
    # Phones store portrait photos sideways plus an orientation tag; apply it once, here.
    im = ImageOps.exif_transpose(im) or im
    if im.mode in ("I;16", "I;16B", "I", "F"):
        a = np.asarray(im, np.float64)
        im = Image.fromarray((a / max(a.max(), 1) * 255).astype(np.uint8))
    alpha = None
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        a = np.asarray(rgba)[..., 3]
        alpha = None if a.min() == 255 else np.ascontiguousarray(a)
        im = rgba
    rgb = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    return LoadedImage(rgb, alpha, icc if isinstance(icc, bytes) else None)


def read_image(path: str | Path) -> LoadedImage:
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path.name} is a folder, not an image")
    return from_pil(_open(path))


def atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX only)
        try:
            dfd = os.open(path.parent, os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass


def encode_image(rgb: np.ndarray, fmt: str, *, alpha: np.ndarray | None = None,
                 icc_profile: bytes | None = None, quality: int = 95) -> bytes:
    im = Image.fromarray(np.ascontiguousarray(rgb, np.uint8), "RGB")
    if alpha is not None and fmt in ("PNG", "WEBP", "TIFF") and alpha.shape == rgb.shape[:2]:
        im.putalpha(Image.fromarray(np.ascontiguousarray(alpha, np.uint8), "L"))
    kwargs: dict[str, object] = {}
    if icc_profile:
        kwargs["icc_profile"] = icc_profile
    if fmt == "JPEG":
        kwargs.update(quality=quality, subsampling=0)  # 4:4:4: inpainted edges stay crisp
    elif fmt == "WEBP":
        kwargs.update(lossless=True, quality=80, method=4)  # lossless: untouched pixels must stay untouched
    elif fmt == "TIFF":
        kwargs.update(compression="tiff_deflate")
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def write_image(path: str | Path, rgb: np.ndarray, *, alpha: np.ndarray | None = None,
                icc_profile: bytes | None = None) -> Path:
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"cannot save as {path.suffix or 'a file without extension'}: "
                         f"use {', '.join(sorted({s.lstrip('.') for s in SAVE_FORMATS}))}")
    try:
        atomic_write(path, encode_image(rgb, fmt, alpha=alpha, icc_profile=icc_profile))
    except OSError as e:
        raise ImageError(f"could not save {path.name}: {e.strerror or e}") from None
    return path


def read_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask file as (H, W) uint8: white = fill. Resized (nearest) if its size differs from `shape`."""
    path = Path(path)
    im = _open(path)
    if im.mode in ("RGBA", "LA") and np.asarray(im.convert("RGBA"))[..., :3].max() == 0:
        im = im.getchannel("A")  # a black image whose alpha carries the mask
    m = im.convert("L")
    h, w = shape
    if m.size != (w, h):
        m = m.resize((w, h), Image.NEAREST)
    return np.ascontiguousarray(np.asarray(m))


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    path = Path(path)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask, np.uint8), "L").save(buf, "PNG")
    try:
        atomic_write(path, buf.getvalue())
    except OSError as e:
        raise ImageError(f"could not save {path.name}: {e.strerror or e}") from None
    return path
