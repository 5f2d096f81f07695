"""Reading and writing image files: orientation, bit depth, alpha and metadata kept; atomic writes.

A `Picture` carries RGB pixels as uint8 or uint16 (16-bit PNG/TIFF stay 16-bit), an optional alpha
plane of the same dtype, and the metadata to copy into outputs (EXIF with orientation reset,
ICC profile, PNG text, DPI). Errors are `ImageError`s that say what is wrong with which file.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._deep import encode_png, encode_tiff16, read_png16, read_tiff16, sixteen_bit_tiles, usable_dpi
from .checkpoint import atomic_write_bytes

# Refuse decompression bombs with our own message; 200 Mpx is a 16k x 12k photo.
MAX_PIXELS = 200_000_000
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                ".bmp": "BMP"}
SIXTEEN_BIT_FORMATS = {"PNG", "TIFF"}
FLATTENED_FORMATS = {"JPEG", "BMP"}  # saved without alpha, onto white (`encode_picture`)


class ImageError(Exception):
    """An image file that cannot be read or written, with the reason."""


@dataclass(frozen=True, eq=False)
class Picture:
    """Pixels plus what must survive a round trip through the editor."""

    rgb: np.ndarray  # (H, W, 3) uint8 or uint16
    alpha: np.ndarray | None = None  # (H, W), same dtype as rgb, None when fully opaque
    info: dict = field(default_factory=dict)  # exif (bytes), icc_profile (bytes), text (dict), dpi (tuple)
    notes: tuple[str, ...] = ()  # things the user should be told (e.g. "first frame of 12")
    # The EXIF orientation (1-8) the stored pixels were turned upright by: a mask drawn on the
    # stored pixels (what some tools show) is then the wrong way round, and `read_mask` says why.
    orientation: int = 1

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def bits(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8

    def with_pixels(self, rgb: np.ndarray, alpha: np.ndarray | None = None) -> Picture:
        return replace(self, rgb=rgb, alpha=alpha)


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, expected an image file")
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty")


def icc_colour_space(profile: object) -> str | None:
    """The colour space an ICC profile describes ("RGB", "GRAY", "CMYK", "Lab", ...: header bytes
    16-20, trailing blanks dropped); None when `profile` is not an ICC profile."""
    if not isinstance(profile, bytes) or len(profile) < 128 or profile[36:40] != b"acsp":
        return None
    return profile[16:20].decode("latin-1").rstrip(" \0")


def rgb_icc_profile(info: dict) -> bytes | None:
    """info's ICC profile unless it is one for other pixels than RGB, the only kind `Picture` holds
    (a grey or CMYK file's profile copied onto RGB pixels makes viewers mis-render them, or refuse
    the file); None then or without a profile. Bytes without an ICC header travel on untouched."""
    icc = info.get("icc_profile")
    if not isinstance(icc, bytes) or icc_colour_space(icc) not in (None, "RGB"):
        return None
    return icc


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> np.ndarray:
    """CMYK pixels as sRGB through the file's CMYK profile (LittleCMS via ImageCms); Pillow's plain
    conversion, which ignores the inks' real colours, when there is no usable profile."""
    if icc_colour_space(icc) == "CMYK":
        try:
            from PIL import ImageCms
        except ImportError:  # a Pillow built without LittleCMS
            ImageCms = None
        if ImageCms is not None:
            try:
                src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                return np.asarray(ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"))
            except (ImageCms.PyCMSError, OSError, ValueError, TypeError):  # a profile LittleCMS cannot use
                pass
    return np.asarray(im.convert("RGB"))


def _float_white(a: np.ndarray) -> float:
    """The value a float image's white is taken at: 1, or its largest finite value where that is more."""
    finite = a[np.isfinite(a)]
    return max(float(finite.max()) if finite.size else 0.0, 1.0)


def _to_rgb_arrays(im: Image.Image, icc: bytes | None = None, sixteen: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels as (rgb, alpha) in uint8, or uint16 for 16-bit sources; CMYK/palette/grey converted
    (CMYK through its ICC profile `icc` where there is one). `sixteen`: the file stores 16-bit
    samples (Pillow opens some of those as mode "I": 16-bit PGM, and 16-bit grey PNG on Pillow 10.0)."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.int64)
        # A dark 16-bit file may have no value above 255: its depth comes from the file, not the values.
        if mode == "I" and not sixteen and a.max() <= 255:
            g = a.astype(np.uint8)
        else:
            g = np.clip(a, 0, 65535).astype(np.uint16)
        # A grey PNG's tRNS names one grey value that is fully transparent.
        key = im.info.get("transparency")
        clear = a == key if isinstance(key, int) else np.zeros(a.shape, bool)
        opaque = np.iinfo(g.dtype).max
        alpha = np.where(clear, 0, opaque).astype(g.dtype) if clear.any() else None
        return np.repeat(g[..., None], 3, axis=2), alpha
    if mode == "F":
        # Float files hold 0..1 (1 = white), so a dark one stays dark; values beyond 1 have no
        # known white and are scaled by their maximum (`load_picture` says so).
        a = np.asarray(im, dtype=np.float64)
        white = _float_white(a)
        # +inf is brighter than anything: white (it turned black); NaN and -inf: black.
        a = np.nan_to_num(a, nan=0.0, posinf=white, neginf=0.0)
        g = np.clip(a / white * 65535 + 0.5, 0, 65535).astype(np.uint16)
        return np.repeat(g[..., None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info) \
        or (mode in ("L", "RGB") and "transparency" in im.info)
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        alpha = rgba[..., 3]
        return np.ascontiguousarray(rgba[..., :3]), (None if alpha.min() == 255 else np.ascontiguousarray(alpha))
    if mode == "CMYK":
        return _cmyk_to_rgb(im, icc), None
    return np.asarray(im.convert("RGB")), None


# TIFF tags about how the pixels are stored, not about the photo: size, samples, compression,
# strips and tiles, colour map, sample format, JPEG tables, YCbCr coding, ICC profile (kept apart).
_LAYOUT_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281, 284,
                          317, 318, 319, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 513, 514, 529, 530,
                          531, 532, 34675})
# TIFF tags that hold other metadata blocks, not EXIF: XMP (700), IPTC (33723), Photoshop's image
# resources (34377: its own thumbnail and settings) and layers (37724: the unedited picture again,
# often megabytes). Copied as EXIF they bloat every output with stale data (XMP's orientation, the
# old thumbnail) and push a JPEG output past the 64 KB its EXIF may take, failing the save.
_FOREIGN_BLOCK_TAGS = frozenset({700, 33723, 34377, 37724})
# Tags that alone make no EXIF worth writing: the orientation (reset to 1 once the pixels are
# upright) and the resolution (XResolution, YResolution, ResolutionUnit: carried as "dpi").
_STUB_EXIF_TAGS = frozenset({0x0112, 0x011A, 0x011B, 0x0128})
# The Exif sub-IFD and its PixelXDimension/PixelYDimension: the size of the picture the EXIF
# came with, rewritten to the output's (`_exif_for_size`).
_EXIF_IFD, _PIXEL_X, _PIXEL_Y = 0x8769, 0xA002, 0xA003
# The most EXIF a JPEG holds (one APP1 segment, "Exif\0\0" included); Pillow refuses more.
JPEG_MAX_EXIF = 65533


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an (H, W[, C]) array, as ImageOps.exif_transpose does."""
    ops = {2: lambda x: x[:, ::-1], 3: lambda x: x[::-1, ::-1], 4: lambda x: x[::-1],
           5: lambda x: np.swapaxes(x, 0, 1), 6: lambda x: np.swapaxes(x, 0, 1)[:, ::-1],
           7: lambda x: np.swapaxes(x, 0, 1)[::-1, ::-1], 8: lambda x: np.swapaxes(x, 0, 1)[::-1]}
    return np.ascontiguousarray(ops[orientation](a)) if orientation in ops else a


def load_picture(path: str | Path) -> Picture:
    """Read any Pillow-supported file; EXIF orientation applied; 16-bit kept; the first frame of animations."""
    path = Path(path)
    _check_path(path)
    notes: list[str] = []
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow warns at this size and refuses at twice it
    try:
        with warnings.catch_warnings():
            # Pillow's warning (over MAX_PIXELS) does not say the size: the header is read (no
            # pixels decoded) and refused just below with it. Over twice the limit Pillow refuses.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                tiles = list(getattr(im, "tile", None) or [])  # loading clears them; 16-bit TIFF needs them
                sixteen = sixteen_bit_tiles(tiles)
                if w * h > MAX_PIXELS:
                    raise ImageError(_too_large(path, (w, h)))
                frames = getattr(im, "n_frames", 1)
                if frames > 1 and im.format == "TIFF":  # scans and documents, not animations
                    notes.append(f"multi-page TIFF: using the first of {frames} pages")
                elif frames > 1:
                    notes.append(f"animated image: using the first of {frames} frames")
                info = {k: im.info[k] for k in ("icc_profile", "dpi") if k in im.info}
                exif = im.getexif()
                if "dpi" in info:
                    dpi = _stated_dpi(im, exif)  # not Pillow's stand-in for a missing resolution
                    if dpi is None:
                        del info["dpi"]
                    else:
                        info["dpi"] = dpi
                orientation = exif.get(0x0112, 1) if exif else 1
                deep = None
                if im.mode in ("RGB", "RGBA"):
                    # Pillow reduces 16-bit RGB to 8 bits: read those files ourselves.
                    if im.format == "PNG" and im.info.get("interlace", 0) == 0:
                        deep = read_png16(path)
                    elif im.format == "TIFF":
                        deep = read_tiff16(tiles, im.size, path)
                # exif_transpose decodes the whole picture in 8 bits: only where those pixels are
                # used, or where it must take the orientation out of the XMP text (a 96 Mpx 16-bit PNG
                # held two such copies beside its own pixels). In place: otherwise an upright photo
                # (orientation 1, most of them) is copied whole for nothing (0.3 s at 96 Mpx).
                if deep is None or orientation != 1:
                    ImageOps.exif_transpose(im, in_place=True)
                oriented = im
                if im.format == "WEBP" and "dpi" not in info and (dpi := _exif_dpi(exif)) is not None:
                    info["dpi"] = dpi  # WebP's only resolution is its EXIF's (as `encode_picture` writes it)
                if exif:
                    exif[0x0112] = 1  # pixels are now upright
                    # A TIFF's "EXIF" is its whole first IFD: drop the tags that describe its pixel
                    # layout (they would be wrong in any output, and Pillow 10 cannot even write
                    # multi-strip offsets back: NotImplementedError on most TIFFs from other software).
                    for tag in (_LAYOUT_TAGS | _FOREIGN_BLOCK_TAGS).intersection(exif):
                        del exif[tag]
                    # What is left may be nothing but the orientation just reset and the resolution
                    # (kept as "dpi"): every TIFF without EXIF, or a JPEG's orientation-only EXIF.
                    # Kept, it put an EXIF block holding Orientation=1 into every output and a note
                    # that a BMP or 16-bit TIFF "keeps no EXIF (camera data, date)" that was never there.
                    if not set(exif).issubset(_STUB_EXIF_TAGS):
                        info["exif"] = exif.tobytes()
                if im.format == "PNG":
                    # From the upright copy: exif_transpose takes the orientation out of the XMP text
                    # too, which otherwise would tell viewers to turn the upright output again.
                    text = {k: v for k, v in oriented.info.items() if isinstance(v, str) and k not in ("icc_profile",)}
                    if text:
                        info["text"] = text
                if not isinstance(orientation, int) or not 1 <= orientation <= 8:
                    orientation = 1  # a damaged tag: exif_transpose ignores it too
                if deep is not None:
                    o = orientation
                    rgb, alpha = _orient(deep[0], o), None if deep[1] is None else _orient(deep[1], o)
                else:
                    oriented.load()
                    rgb, alpha = _to_rgb_arrays(oriented, info.get("icc_profile"), sixteen)
                    if oriented.mode == "F" and (white := _float_white(np.asarray(oriented))) > 1:
                        notes.append(f"32-bit float image with values up to {white:g}: "
                                     f"scaled so that {white:g} is white")
                    if sixteen and rgb.dtype == np.uint8:
                        notes.append(f"16-bit {im.format} read with 8 bits per channel: only 16-bit grey, uncompressed "
                                     "16-bit RGB(A) TIFF and non-interlaced 16-bit RGB(A) PNG keep their depth here")
                # Pixels are RGB from here on: a grey or CMYK profile no longer describes them.
                if "icc_profile" in info and rgb_icc_profile(info) is None:
                    del info["icc_profile"]
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(_too_large(path, _bomb_pixels(e))) from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a supported image (unknown format or not an image at all)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{path}: the image is damaged or truncated ({e})") from None
    return Picture(rgb=rgb, alpha=alpha, info=info, notes=tuple(notes), orientation=orientation)


def _stated_dpi(im: Image.Image, exif: Image.Exif | None) -> tuple[float, float] | None:
    """The resolution `im`'s file states, from the dpi Pillow reports; None where the file states
    none. Pillow makes one up then: (1, 1) for a TIFF without XResolution/YResolution (OpenCV
    writes none), and (72, 72) for a JPEG with EXIF but neither a JFIF density in real units nor
    an EXIF resolution. Copied, the TIFF's made-up 1 dpi printed a 96 x 64 photo 96 inches wide."""
    dpi = tuple(im.info["dpi"])
    if im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        has_x, has_y = 0x011A in tags, 0x011B in tags
        if not (has_x or has_y):
            return None
        if has_x != has_y:  # the missing one read as Pillow's 1: the one given holds for both
            return (dpi[0], dpi[0]) if has_x else (dpi[1], dpi[1])
        return dpi
    if im.format in ("JPEG", "MPO") and im.info.get("jfif_unit") not in (1, 2):
        # Not from JFIF: Pillow's reading of the EXIF resolution, or its 72 where there is none.
        return _exif_dpi(exif)
    return dpi


def _exif_dpi(exif: Image.Exif | None) -> tuple[float, float] | None:
    """The resolution in EXIF's XResolution/YResolution (per inch, or per cm: unit 3) as dpi; None
    where it is missing, not in a real unit (unit 1) or not usable."""
    unit = exif.get(0x0128, 2) if exif and 0x011A in exif else None  # 2 (inches) is EXIF's default
    if unit not in (2, 3):
        return None
    try:
        x, y = float(exif[0x011A]), float(exif.get(0x011B, exif[0x011A]))
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    dpi = (x * 2.54, y * 2.54) if unit == 3 else (x, y)
    return dpi if usable_dpi(dpi) else None


def _with_exif_dpi(exif: bytes | None, dpi: tuple[float, float]) -> bytes:
    """`exif` (or a new EXIF) with its resolution tags set to `dpi`, per inch."""
    ex = Image.Exif()
    if exif:
        ex.load(exif)
    ex[0x011A], ex[0x011B], ex[0x0128] = float(dpi[0]), float(dpi[1]), 2
    return ex.tobytes()


def _exif_for_size(exif: bytes, size: tuple[int, int]) -> bytes:
    """`exif` with the Exif sub-IFD's PixelXDimension/PixelYDimension, where it has them, saying
    size = (width, height): they describe the picture the EXIF is stored with (catalogues and
    uploaders read them), and an upscaled or turned picture is another size. Unchanged bytes
    where there is nothing to correct, or where the EXIF cannot be read (it is copied as it is)."""
    ex = Image.Exif()
    try:
        ex.load(exif)
        sub = ex.get_ifd(_EXIF_IFD)
        want = {tag: n for tag, n in ((_PIXEL_X, size[0]), (_PIXEL_Y, size[1])) if tag in sub}
        if all(sub[tag] == n for tag, n in want.items()):
            return exif
        sub.update(want)  # the dict `tobytes` writes the sub-IFD from
        return ex.tobytes()
    except (struct.error, SyntaxError, ValueError, TypeError, KeyError, IndexError, OSError):
        return exif  # EXIF Pillow cannot take apart is written as it came, as before


def _too_large(path: Path, size: tuple[int, int] | int | None) -> str:
    """The refusal of a picture over MAX_PIXELS, with its size (width, height) or pixel count where known."""
    if isinstance(size, tuple):
        what = f"{size[0]}x{size[1]} is {size[0] * size[1] / 1e6:.0f} Mpx, "
    else:
        what = "" if size is None else f"it has {size / 1e6:.0f} Mpx, "
    return (f"{path}: image too large: {what}over the {MAX_PIXELS / 1e6:.0f} Mpx limit "
            "(a decompression bomb, or a photo bigger than this editor handles)")


def _bomb_pixels(error: BaseException) -> int | None:
    """The pixel count Pillow names when it refuses a decompression bomb (over twice MAX_PIXELS):
    "Image size (N pixels) exceeds limit ..."; None if its wording ever changes."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    return int(found.group(1)) if found else None


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any supported file (alpha composited on white, 16-bit reduced)."""
    pic = load_picture(path)
    return to_uint8(pic.rgb) if pic.alpha is None else flatten_on_white(pic.rgb, pic.alpha)


# Pixels flattened at once by `flatten_on_white` (its float temporaries are about 30 MB).
STRIP_PX = 1 << 20


def flatten_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """8-bit RGB of `rgb` composited over white by its straight `alpha` (either may be uint16),
    rounded: rgb * a + 255 * (1 - a).

    A band of rows at a time: the whole picture's float temporaries (alpha, rgb * a, the white
    part, their sum) were about 10 bytes a pixel, 1 GB for a 96 Mpx picture saved as JPEG."""
    out = np.empty(rgb.shape, np.uint8)
    rows = max(1, STRIP_PX // max(1, rgb.shape[1]))
    for r0 in range(0, rgb.shape[0], rows):
        a = to_uint8(alpha[r0:r0 + rows])[..., None].astype(np.float32) / 255
        out[r0:r0 + rows] = to_uint8(rgb[r0:r0 + rows]) * a + 255 * (1 - a) + 0.5
    return out


def to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


# Orientations that swap an image's sides (EXIF 5-8), as what they do to the stored pixels to show them upright.
_SIDE_SWAPS = {5: "mirrors them and turns them a quarter turn", 6: "turns them a quarter turn clockwise",
               7: "mirrors them and turns them a quarter turn", 8: "turns them a quarter turn counter-clockwise"}


def brightest_channel(rgb: np.ndarray) -> np.ndarray:
    """(H, W) maximum over the channels of (H, W, 3) pixels (a grey (H, W) plane as it is).

    Two element-wise maxima: numpy's reduction over a last axis of three is about 4x slower
    (0.5 s for 24 Mpx), which a mask import on the UI thread felt."""
    if rgb.ndim == 2:
        return rgb
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def mask_from_pixels(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """(H, W) bool fill mask of 8-bit (rgb, alpha), by the rule `read_mask` states; `rgb` may be
    (H, W, 3) or one grey (H, W) plane.

    The brightest channel, not luma: a pure red stroke (luma 76) would otherwise select nothing
    while a green one fills. Alpha alone must not decide when the colour carries a mask too: an
    opaque white-on-black mask with a single pixel below full alpha filled all its black."""
    bright = brightest_channel(rgb) > 127
    if alpha is None:
        return bright
    visible = alpha > 127
    if colour_is_mask(bright, visible):
        return bright & visible
    return visible  # one colour (or none) where visible: the alpha is the mask


def colour_is_mask(bright: np.ndarray, visible: np.ndarray) -> bool:
    """Whether a mask with transparency says what to fill by its colour: its visible pixels are
    partly bright, partly dark. Otherwise (strokes of one colour on a transparent layer) its alpha is
    the mask. The rule `read_mask` and the app's mask import share."""
    seen = bright[visible]
    return bool(seen.any() and not seen.all())


def read_mask(path: str | Path, size: tuple[int, int] | None, *, orientation: int = 1) -> np.ndarray:
    """Read an inpainting mask, check it matches size = (width, height) (None: any size, the mask's
    own; a batch checks what a mask holds once, before its photos), and return it as (H, W) bool.

    Which pixels are filled: white, or any bright colour (its brightest channel above
    half range), marks what to fill; black keeps. A mask with transparency whose visible pixels are
    partly bright, partly dark is filled where bright and visible (alpha above half); one whose
    visible pixels carry no such difference (strokes of one colour on a transparent layer, any
    colour) is filled wherever visible. 1-bit, grey, 16-bit grey, palette and RGB(A) files all work.

    Refused (`ImageError`, naming the file): another size than the image's (`orientation`, the
    image's EXIF orientation, lets the message say when the mask fits its stored, unturned pixels);
    a mask that selects no pixel; one that covers every pixel (nothing known to fill from).
    """
    path = Path(path)
    _check_path(path)

    def wrong_size(w: int, h: int) -> ImageError:
        msg = f"{path}: mask is {w}x{h} but the image is {size[0]}x{size[1]}"
        if orientation in _SIDE_SWAPS and (w, h) == (size[1], size[0]):
            # A mask drawn over the photo as stored: many tools (and scripts) ignore the EXIF turn.
            msg += (f": the photo's pixels are stored as {w}x{h} and its EXIF orientation ({orientation}) "
                    f"{_SIDE_SWAPS[orientation]} to show it upright, so this mask fits the unturned pixels; "
                    "turn the mask the same way (or draw it over the photo as shown upright)")
        return ImageError(msg)

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # No image this editor opens is that large, so the mask cannot match it.
        image = "" if size is None else f" but the image is {size[0]}x{size[1]}"
        raise ImageError(f"{path}: mask is over {MAX_PIXELS / 1e6:.0f} Mpx{image}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a supported mask image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{path}: not a readable mask image ({e})") from None
    try:
        with im:
            # Said from the header: decoding a wrong mask first can take seconds and gigabytes. Its
            # EXIF orientation may swap the sides, but reading it decodes a PNG, so either way fits.
            w, h = im.size
            if size is not None and tuple(size) not in ((w, h), (h, w)):
                raise wrong_size(w, h)
            sixteen = sixteen_bit_tiles(list(getattr(im, "tile", None) or []))  # loading clears the tiles
            im = ImageOps.exif_transpose(im)
            if im.mode in ("1", "L") and "transparency" not in im.info:
                # The common grey mask as one plane: RGB would take three times the memory (a
                # 96 Mpx photo's mask), to find the same brightness.
                rgb, alpha = np.asarray(im.convert("L")), None
            else:
                # As `load_picture` reads pixels: 16-bit grey scaled to 8 bits (Pillow's convert("L")
                # clips it, so a "black" of 300 read as fill), palette and tRNS transparency as
                # alpha, an alpha that is opaque everywhere as none.
                rgb, alpha = _to_rgb_arrays(im, None, sixteen)
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{path}: not a readable mask image ({e})") from None
    if size is not None and (rgb.shape[1], rgb.shape[0]) != tuple(size):
        raise wrong_size(rgb.shape[1], rgb.shape[0])
    mask = mask_from_pixels(to_uint8(rgb), None if alpha is None else to_uint8(alpha))
    # Said before any compute: an empty mask wrote an unchanged copy, a full one a flat grey image.
    if not mask.any():
        raise ImageError(f"{path}: the mask selects no pixel: white (or any bright colour) marks what to fill")
    if mask.all():
        raise ImageError(f"{path}: the mask covers the whole image: inpainting needs some known pixels; "
                         "to make a new image use `cstudio generate`")
    return mask


def _exif_too_long(exif: bytes, fmt: str) -> bool:
    """EXIF (as written: after `_exif_for_size`, which may change its length) larger than `fmt`
    holds (a PNG's or WebP's may exceed JPEG's 64 KB): left out rather than failing the save."""
    return fmt == "JPEG" and len(exif) > JPEG_MAX_EXIF


def format_losses(pic: Picture, fmt: str) -> list[str]:
    """What `encode_picture` leaves out of `pic` in `fmt`, in words for the user (the same tests it makes)."""
    name = FORMAT_NAMES.get(fmt, fmt)
    notes = []
    if pic.rgb.dtype == np.uint16 and fmt not in SIXTEEN_BIT_FORMATS:
        notes.append(f"{name} keeps 8 bits per channel, so it was saved at 8 bits.")
    # Flattening an alpha that is opaque everywhere changes nothing anyone could see: not worth a word.
    if fmt in FLATTENED_FORMATS and pic.alpha is not None and int(pic.alpha.min()) < np.iinfo(pic.alpha.dtype).max:
        notes.append(f"{name} keeps no transparency: the transparent parts were flattened onto white.")
    # Metadata `encode_picture` cannot put in this format: BMP holds no ICC profile (without it a
    # Display P3 or Adobe RGB picture is shown as sRGB: duller or shifted colours) and no EXIF, our
    # 16-bit TIFF writer writes no EXIF, and only PNG holds PNG text (e.g. generation parameters).
    left = []
    if fmt == "BMP" and rgb_icc_profile(pic.info) is not None:
        left.append("colour profile (its colours will look different)")
    if "exif" in pic.info and (fmt == "BMP" or (fmt == "TIFF" and pic.rgb.dtype == np.uint16)):
        left.append("EXIF (camera data, date)")
    if fmt == "JPEG" and "exif" in pic.info and _exif_too_long(_exif_for_size(pic.info["exif"], pic.size), fmt):
        left.append("EXIF (camera data, date: more than the 64 KB a JPEG holds)")
    if fmt != "PNG" and pic.info.get("text"):
        left.append(f"PNG text ({', '.join(sorted(pic.info['text']))})")
    if left:
        notes.append(f"{name} keeps no {'; no '.join(left)}: left out.")
    return notes


def encode_picture(pic: Picture, fmt: str, *, quality: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> bytes:
    """Encode with metadata; 16-bit kept for PNG/TIFF (else reduced to 8-bit); alpha kept where the format has it.

    `quality` None: lossless WebP (lossy WebP would change the known pixels an edit promises to
    keep, e.g. outside an inpaint mask), JPEG at 95. `progress(rows, height)`: as a PNG's rows are
    written (the other formats encode in one call of Pillow's).
    """
    if quality is None:
        quality = 100 if fmt == "WEBP" else 95
    rgb, alpha = pic.rgb, pic.alpha
    if rgb.dtype == np.uint16 and fmt not in SIXTEEN_BIT_FORMATS:
        rgb, alpha = to_uint8(rgb), None if alpha is None else to_uint8(alpha)
    # JPEG has no alpha, and a 32-bit BMP's is ignored by most readers (Pillow's too), which would
    # show whatever colour lies under the transparent parts: both are flattened onto white.
    if fmt in FLATTENED_FORMATS and alpha is not None:
        rgb, alpha = flatten_on_white(rgb, alpha), None
    kw: dict = {}
    info = dict(pic.info)
    icc = rgb_icc_profile(info)  # outputs are RGB(A): only an RGB profile describes them
    if icc is None:
        info.pop("icc_profile", None)
    else:
        kw["icc_profile"] = icc
    dpi = pic.info.get("dpi") if usable_dpi(pic.info.get("dpi")) else None  # a TIFF's 0/0 reads as nan
    if dpi is not None and fmt in ("PNG", "JPEG", "TIFF", "BMP"):
        kw["dpi"] = tuple(dpi)[:2]
    if "exif" in info:
        # Here, where every output's EXIF is written (CLI, app, batches): an upscale's EXIF still
        # gave the source's size.
        info["exif"] = _exif_for_size(info["exif"], pic.size)
    if "exif" in info and fmt in ("PNG", "JPEG", "WEBP", "TIFF") and not _exif_too_long(info["exif"], fmt):
        kw["exif"] = info["exif"]
    if dpi is not None and fmt == "WEBP":
        # WebP has no resolution field: its EXIF's XResolution/YResolution is where readers (and
        # `load_picture`) find it. Without this a 300 dpi print scan came back at 72 or 96.
        kw["exif"] = _with_exif_dpi(kw.get("exif"), dpi)
    if fmt in ("JPEG", "WEBP"):
        kw["quality"] = quality
    if fmt == "JPEG" and quality >= 90:
        kw["subsampling"] = 0  # 4:4:4: at high quality, halving chroma resolution is the biggest loss
    if fmt == "WEBP" and quality >= 100:
        # `exact`: libwebp otherwise rewrites the colour under fully transparent pixels, which
        # a later edit of the alpha (or a texture that keeps data there) would bring back to light.
        kw["lossless"] = kw["exact"] = True
    if fmt == "PNG":
        # Our writer, not Pillow's: about the same size, on every core (bench/png_encode.py: a 20 Mpx
        # photo 6.2 s with Pillow, 2.7 s on two cores); Pillow's runs on one.
        return encode_png(rgb, alpha, info, progress=progress)
    if rgb.dtype == np.uint16:
        return encode_tiff16(rgb, alpha, icc, dpi=pic.info.get("dpi"))
    im = Image.fromarray(rgb) if alpha is None else Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


# Largest side each format can store (libwebp: 16383; libjpeg: 65500); the others have no limit
# this editor can reach.
MAX_SIDE = {"WEBP": 16383, "JPEG": 65500}
FORMAT_NAMES = {"WEBP": "WebP", "JPEG": "JPEG"}


def check_output_path(path: str | Path, *, overwrite: bool = False, size: tuple[int, int] | None = None) -> str:
    """The checks `save_picture` makes before it encodes, for a caller to make before any compute:
    a known extension, no existing file unless `overwrite`, an existing writable folder, and (given the
    output's `size` = (width, height)) a size the format can store. Creates nothing; returns the
    format's name (SAVE_FORMATS)."""
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown output format {path.suffix!r}; use one of {', '.join(sorted(SAVE_FORMATS))}")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, expected an output file name")
    if path.exists() and not overwrite:
        raise ImageError(f"{path}: already exists (pass --overwrite to replace it)")
    if not path.parent.is_dir():
        raise ImageError(f"{path.parent}: output folder does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):  # said before the compute, not after it
        raise ImageError(f"{path.parent}: output folder is not writable; nothing was changed")
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        # An upscale of a large photo (x4 of 96 Mpx: 1536 Mpx, hours of compute and 4.6 GB of
        # pixels) would make a file this editor refuses to open: said before any compute.
        raise ImageError(f"{path}: the result would be {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} Mpx), over "
                         f"the {MAX_PIXELS / 1e6:.0f} Mpx this editor opens; use a smaller factor or cut the "
                         "image into parts")
    if size is not None and fmt in MAX_SIDE and max(size) > MAX_SIDE[fmt]:
        raise ImageError(f"{path}: {size[0]}x{size[1]} is over {FORMAT_NAMES[fmt]}'s limit of {MAX_SIDE[fmt]} px a side; "
                         "save as .png or .tif instead")
    return fmt


def save_picture(path: str | Path, pic: Picture, *, overwrite: bool = False, quality: int | None = None) -> Path:
    """Encode by extension and write atomically; an existing file is only replaced with overwrite=True.
    `quality` None: lossless WebP (as the app saves it), JPEG at 95.
    Every failure (`check_output_path`'s, the encoder's, the disk's) is an `ImageError`."""
    path = Path(path)
    fmt = check_output_path(path, overwrite=overwrite, size=pic.size)
    w, h = pic.size
    try:
        data = encode_picture(pic, fmt, quality=quality)
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to encode a {w}x{h} image; nothing was written") from None
    except (OSError, ValueError, SyntaxError, OverflowError) as e:
        raise ImageError(f"{path}: could not encode a {w}x{h} image as {fmt} ({e}); nothing was written") from None
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        raise ImageError(f"{path}: could not write ({os.strerror(e.errno) if e.errno else e}); nothing was changed") from None
    return path


def write_image(path: str | Path, image: np.ndarray, *, overwrite: bool = False, quality: int | None = None) -> Path:
    """Save a bare (H, W, 3) array."""
    return save_picture(path, Picture(rgb=np.asarray(image)), overwrite=overwrite, quality=quality)
