"""The app's file I/O on top of `engine.imageio`: documents in and out, mask files, safe replacement.

Decoding and encoding (EXIF orientation, 16-bit, alpha, EXIF/ICC/PNG text, the pixel limit, clear
errors) belong to the engine, so the CLI and the app treat files alike. What is app-specific lives
here: a `Picture` becomes a `Document` and back, masks are soft 8-bit planes, and every write goes
through `safe_write` (temp file, fsync, rename; a backup when the user agreed to replace a file).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from engine.batch import IMAGE_SUFFIXES
from engine.imageio import (SAVE_FORMATS, ImageError, Picture, brightest_channel, colour_is_mask, encode_picture,
                            format_losses, load_picture)

from .model.document import Document, convert_depth, to_uint8
from .model.safe_write import atomic_write, backup_path

OPEN_SUFFIXES: tuple[str, ...] = tuple(sorted(IMAGE_SUFFIXES))
SAVE_SUFFIXES: tuple[str, ...] = tuple(SAVE_FORMATS)
# The formats `save_picture_safely` writes and their extensions, in SAVE_FORMATS's order (PNG first):
# the Save As dialog's file types come from here, so a format the engine learns to save is offered too.
SAVE_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (fmt, tuple(s for s in SAVE_FORMATS if SAVE_FORMATS[s] == fmt)) for fmt in dict.fromkeys(SAVE_FORMATS.values()))
ASPECT_TOLERANCE = 0.01  # a mask this close to the image's shape is a scaled export: resize it

__all__ = ["ImageError", "OPEN_SUFFIXES", "SAVE_SUFFIXES", "SAVE_TYPES", "backup_path", "open_document", "read_mask",
           "document_picture", "save_as_path", "save_document", "save_picture_safely", "write_mask"]


def _cannot_save(path: Path) -> ImageError:
    return ImageError(f"{path.name}: cannot save as {path.suffix or 'a file without extension'}; "
                      f"use {', '.join(sorted({s.lstrip('.') for s in SAVE_FORMATS}))}")


def _image_suffixes() -> set[str]:
    """Extensions that name an image format (whether or not this editor writes it)."""
    Image.init()  # registers every plugin's extensions
    # Pillow lacks some (HEIC, AVIF, SVG, JPEG XL without plugins) that still plainly name an image type.
    return {s.lower() for s in Image.registered_extensions()} | set(OPEN_SUFFIXES) | {
        ".heic", ".heif", ".avif", ".svg", ".jxl"}


def save_as_path(typed: Path, picked_suffix: str) -> Path:
    """The file Save As writes for the name the user typed and the file type picked in the dialog.

    A name ending in an extension we save is kept ("photo.jpg" is JPEG whatever type is picked); any
    other name gets the picked type's extension ("photo" -> "photo.webp", "v1.2" -> "v1.2.png").
    A name ending in an image format we cannot write ("anim.gif") raises ImageError naming the
    formats we can: adding ours would silently write "anim.gif.png", a name that lies about the type.
    """
    typed = Path(typed)
    suffix = typed.suffix.lower()
    if suffix in SAVE_FORMATS:
        return typed
    if suffix in _image_suffixes():
        raise _cannot_save(typed)
    return typed.with_name(typed.name + (picked_suffix if picked_suffix in SAVE_FORMATS else ".png"))


def _reason(e: OSError) -> str:
    return os.strerror(e.errno) if e.errno else str(e)


def _source_notes(path: Path) -> tuple[list[str], str]:
    """(What was converted on the way in, worth a word to the user; what saving over the file would
    lose, "" if nothing). The header only: nothing is decoded twice."""
    notes: list[str] = []
    try:
        with Image.open(path) as im:
            mode, palette_alpha = im.mode, im.mode == "P" and "transparency" in im.info
            orientation = im.getexif().get(0x0112, 1)
            frames, fmt = getattr(im, "n_frames", 1), im.format
    except (OSError, ValueError):
        return notes, ""
    loses = ""
    if frames > 1:
        # The editor opens the first page of a scan, the first frame of an animation, and writes one.
        kind = "pages" if fmt == "TIFF" else "frames"
        loses = f"It holds {frames} {kind}: the saved file will hold only the first, the one you edited."
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
    if orientation not in (0, 1):
        notes.append(f"rotated upright (EXIF orientation {orientation})")
    if palette_alpha:
        notes.append("palette image with transparency: converted to RGB, transparency kept")
    return notes, loses


def open_document(path: Path) -> Document:
    """A document with the file's own depth, alpha and metadata; ImageError says what is wrong."""
    path = Path(path)
    pic = load_picture(path)
    notes, loses = _source_notes(path)
    return Document(pic.rgb, path, alpha=pic.alpha, info=pic.info, notes=tuple(pic.notes) + tuple(notes),
                    save_loses=loses)


def document_picture(doc: Document) -> Picture:
    alpha = None if doc.alpha is None else convert_depth(doc.alpha, doc.image.dtype)
    return Picture(rgb=doc.image, alpha=alpha, info=dict(doc.info))


def save_picture_safely(path: Path, pic: Picture, *, backup: bool | Path = False,
                        progress: Callable[[int, int], None] | None = None) -> Path | None:
    """Encode by extension and replace `path` atomically; `backup` keeps the old file, at that path,
    or if True at `backup_path(path)` (`name.bak.ext`, or the first free `name.bak-N.ext`).
    Returns the backup made (another name if that one was taken meanwhile), None if none.

    Raises ImageError; the file on disk is then unchanged and no temporary file is left.
    """
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise _cannot_save(path)
    if not path.parent.is_dir():
        raise ImageError(f"{path.parent}: the folder does not exist")
    try:
        data = encode_picture(pic, fmt, progress=progress)  # WebP lossless: pixels the user never touched stay untouched
    except (OSError, ValueError) as e:
        raise ImageError(f"{path.name}: cannot encode the image as {fmt} ({e})") from None
    try:
        keep = backup if isinstance(backup, Path) else backup_path(path) if backup else None
        return atomic_write(path, data, backup=keep)
    except OSError as e:
        raise ImageError(f"{path.name}: could not save ({_reason(e)}); the file on disk was not changed") from None


def save_document(doc: Document, path: Path, *, backup: bool | Path = False) -> list[str]:
    """Save through `save_picture_safely`; returns what the format left out (`format_losses`).
    (The app's Save takes the picture first and calls `save_picture_safely` on the file step's thread.)"""
    pic = document_picture(doc)
    save_picture_safely(path, pic, backup=backup)
    return format_losses(pic, SAVE_FORMATS[Path(path).suffix.lower()])


def read_mask(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """A mask file as ((H, W) uint8 with 255 = fill, a note for the user or "").

    The rule of `cstudio inpaint --mask` (`engine.imageio.mask_from_pixels`), with soft edges kept:
    a pixel's level is its brightest channel (a pure red stroke counts as much as a white one);
    where the visible pixels of a mask with transparency are partly bright and partly dark, the
    colour is the mask, weighed by alpha; where they are all one (strokes of one colour on a
    transparent layer, what many editors export), the alpha is the mask. A mask of another size
    but the image's shape (a scaled export) is resized; any other size is refused, since it
    belongs to another image.
    """
    path = Path(path)
    pic = load_picture(path)
    rgb = to_uint8(pic.rgb)
    level = brightest_channel(rgb)
    alpha = None if pic.alpha is None else to_uint8(pic.alpha)
    if alpha is None:
        m = level
    else:
        if colour_is_mask(level > 127, alpha > 127):
            m = (level.astype(np.uint16) * alpha // 255).astype(np.uint8)  # transparent = not painted
        else:
            m = alpha
    h, w = shape
    mh, mw = m.shape
    if (mh, mw) == (h, w):
        return np.ascontiguousarray(m), ""
    if abs(mw / mh - w / h) > ASPECT_TOLERANCE * (w / h):
        raise ImageError(f"{path.name}: the mask is {mw}x{mh} but the image is {w}x{h}; "
                         "a mask must have the image's size (or its shape, to be scaled)")
    m = np.asarray(Image.fromarray(m).resize((w, h), Image.Resampling.NEAREST))
    return np.ascontiguousarray(m), f"The mask was {mw}x{mh}: scaled to the image's {w}x{h}."


def write_mask(path: Path, mask: np.ndarray) -> None:
    path = Path(path)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask, np.uint8), "L").save(buf, "PNG")
    try:
        atomic_write(path, buf.getvalue())
    except OSError as e:
        raise ImageError(f"{path.name}: could not save ({_reason(e)}); the file on disk was not changed") from None
