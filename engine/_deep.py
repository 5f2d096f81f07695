"""16-bit RGB(A) PNG and TIFF codecs. Pillow reduces these to 8 bits, so we decode and encode them here.

PNG decoding handles all five scanline filters (PNG spec §9), vectorised with numpy: None/Sub/Up
row by row, and files with Average/Paeth rows (adaptive filtering: GIMP, ImageMagick, libpng) by
anti-diagonals of pixels (about 0.1 s per megapixel). TIFF: uncompressed strips and tiles are read
directly; our writer emits uncompressed baseline TIFF.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _unfilter_rows(filters: np.ndarray, lines: np.ndarray, bpp: int) -> np.ndarray:
    """Row by row, for images whose rows use only None/Sub/Up: each row is one numpy expression."""
    out = np.empty(lines.shape, np.int32)
    prev = np.zeros(lines.shape[1], np.int32)
    for y, f in enumerate(filters.tolist()):
        line = lines[y].astype(np.int32)
        if f == 1:  # Raw(x) = Sub(x) + Raw(x - bpp): a running sum along each byte lane
            line = (np.cumsum(line.reshape(-1, bpp), axis=0) & 255).reshape(-1)
        elif f == 2:
            line = (line + prev) & 255
        prev = out[y] = line
    return out


def _unfilter_wavefront(filters: np.ndarray, lines: np.ndarray, bpp: int) -> np.ndarray:
    """Any mix of the five filters, by anti-diagonals of pixels.

    Average and Paeth predict a pixel from its left, upper and upper-left neighbours (already
    decoded), so within a row they are sequential. Pixel (y, x) depends only on pixels with a
    smaller y + x, so all pixels of one anti-diagonal y + x = t decode together: h + w - 1 numpy
    steps instead of h * w * bpp Python ones. In the row-major flat pixel array an anti-diagonal
    is a slice with step w - 1, so every step works on views, without index arrays.
    """
    h, stride = lines.shape
    w = stride // bpp
    src = lines.reshape(h * w, bpp)
    # Decoded pixels, after one zero pixel and one zero row: flat index i of the image lives at
    # i + w + 1, its upper neighbour at i + 1, its upper-left at i, its left at i + w.
    out = np.zeros(((h + 1) * w + 1, bpp), np.int16)
    fs = filters.astype(np.int16)
    step = max(w - 1, 1)
    for t in range(h + w - 1):
        lo, hi = max(0, t - w + 1), min(h - 1, t)
        i = lo * (w - 1) + t  # flat index of (lo, t - lo)
        j = i + (hi - lo) * step + 1
        a, b, c = out[i + w:j + w:step], out[i + 1:j + 1:step], out[i:j:step]
        if hi == t:  # row hi starts here: x = 0 has no left or upper-left neighbour
            a, c = a.copy(), c.copy()
            a[-1] = c[-1] = 0
        f = fs[lo:hi + 1]
        kind = int(f[0]) if (f == f[0]).all() else -1
        if kind in (4, -1):
            pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
            paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        if kind == -1:
            f = f[:, None]
            pred = np.where(f == 4, paeth, np.where(f == 3, (a + b) >> 1, np.where(f == 2, b, np.where(f == 1, a, 0))))
        else:
            pred = (0, a, b, None, None)[kind] if kind < 3 else ((a + b) >> 1 if kind == 3 else paeth)
        out[i + w + 1:j + w + 1:step] = (src[i:j:step] + pred) & 255
    return out[w + 1:].reshape(h, stride)


def read_png16(path: Path) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(rgb, alpha) uint16 for a non-interlaced 16-bit RGB/RGBA PNG; None for any other PNG.
    Raises ValueError for a damaged one."""
    data = path.read_bytes()
    if data[:8] != PNG_MAGIC:
        return None
    pos, ihdr, idat, trns = 8, None, [], None
    while pos + 8 <= len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", data[pos + 8:pos + 21])
        elif typ == b"tRNS":
            trns = data[pos + 8:pos + 8 + n]
        elif typ == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + n])
        elif typ == b"IEND":
            break
        pos += 12 + n
    if ihdr is None or ihdr[2] != 16 or ihdr[3] not in (2, 6) or ihdr[6]:
        return None
    w, h, ch = ihdr[0], ihdr[1], 3 if ihdr[3] == 2 else 4
    stride, bpp = w * ch * 2, ch * 2
    try:
        # Only as much as the header's rows need: a few KB of zlib stream can inflate to gigabytes,
        # and the pixel limit, checked on the header, does not see what lies past the last row.
        body = zlib.decompressobj().decompress(b"".join(idat), h * (stride + 1))
    except zlib.error as e:
        raise ValueError(f"PNG image data does not decompress ({e})") from None
    if len(body) < h * (stride + 1):
        raise ValueError(f"PNG image data ends after {len(body) // (stride + 1)} of {h} rows")
    raw = np.frombuffer(body, np.uint8, h * (stride + 1)).reshape(h, stride + 1)
    filters, lines = raw[:, 0], raw[:, 1:]
    if filters.max(initial=0) > 4:
        raise ValueError(f"PNG row filter {int(filters.max())} does not exist")
    unfilter = _unfilter_wavefront if (filters >= 3).any() else _unfilter_rows
    out = unfilter(filters, lines, bpp)
    px = out.astype(np.uint8).view(">u2").reshape(h, w, ch).astype(np.uint16)
    alpha = px[..., 3] if ch == 4 and px[..., 3].min() < 65535 else None
    if ch == 3 and trns is not None and len(trns) == 6:
        # An RGB PNG's tRNS names one colour that is fully transparent (PNG spec §11.3.2.1).
        clear = (px == np.frombuffer(trns, ">u2").astype(np.uint16)).all(axis=2)
        alpha = np.where(clear, 0, 65535).astype(np.uint16) if clear.any() else None
    return np.ascontiguousarray(px[..., :3]), None if alpha is None else np.ascontiguousarray(alpha)


def _tile(t: tuple) -> tuple[str, tuple[int, int, int, int], int, tuple]:
    """(codec, extents, offset, args) of a Pillow tile: an `ImageFile._Tile` (Pillow >= 11) or the
    plain 4-tuple of Pillow 10, which has no field names."""
    codec, extents, offset, args = tuple(t)[:4]
    return codec, tuple(extents), int(offset or 0), args if isinstance(args, tuple) else (args,)


def sixteen_bit_tiles(tiles: list) -> bool:
    """Whether Pillow's tiles decode 16-bit samples (raw mode "RGB;16B", "I;16N", ...)."""
    return any(";16" in str(_tile(t)[3][0]) for t in tiles)


def read_tiff16(tiles: list, size: tuple[int, int], path: Path) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(rgb, alpha) uint16 for an uncompressed 16-bit RGB(A) TIFF, from the tiles Pillow found; None otherwise.

    Strips and tiles alike: a tile that sticks out past the right edge is stored at its full
    width (Pillow's args give that row stride in bytes) and is cut to the image here."""
    parts = [_tile(t) for t in tiles]
    if not parts or any(c != "raw" or a[0] not in ("RGB;16L", "RGB;16B", "RGBA;16L", "RGBA;16B") for c, _, _, a in parts):
        return None
    ch = 4 if parts[0][3][0].startswith("RGBA") else 3
    w, h = size
    out = np.empty((h, w, ch), np.uint16)
    with open(path, "rb") as f:
        for _, (x0, y0, x1, y1), offset, args in parts:
            rows, row_bytes = y1 - y0, (x1 - x0) * ch * 2
            stride = int(args[1]) if len(args) > 1 and args[1] else row_bytes
            f.seek(offset)
            buf = f.read(stride * (rows - 1) + row_bytes)
            if len(buf) < stride * (rows - 1) + row_bytes:
                raise OSError(f"TIFF data ends inside the tile at ({x0}, {y0})")
            dt = "<u2" if args[0].endswith("L") else ">u2"
            lines = np.frombuffer(buf + bytes(stride - row_bytes), np.uint8).reshape(rows, stride)[:, :row_bytes]
            out[y0:y1, x0:x1] = lines.copy().view(dt).reshape(rows, x1 - x0, ch)
    alpha = out[..., 3] if ch == 4 and out[..., 3].min() < 65535 else None
    return np.ascontiguousarray(out[..., :3]), None if alpha is None else np.ascontiguousarray(alpha)


def _chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body) & 0xFFFFFFFF)


def usable_dpi(dpi: object) -> bool:
    """A resolution worth writing: two finite positive numbers (Pillow reads a TIFF's 0/0 as nan)."""
    try:
        x, y = (float(d) for d in tuple(dpi)[:2])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0


def encode_png16(rgb: np.ndarray, alpha: np.ndarray | None, info: dict) -> bytes:
    """16-bit RGB(A) PNG with ICC profile, text and EXIF chunks; Up filter (vectorised, compresses photos well)."""
    px = rgb if alpha is None else np.dstack([rgb, alpha])
    h, w, ch = px.shape
    rows = px.astype(">u2").reshape(h, w * ch).view(np.uint8).astype(np.int16)
    up = (rows - np.vstack([np.zeros((1, rows.shape[1]), np.int16), rows[:-1]])) & 255
    raw = np.concatenate([np.full((h, 1), 2, np.uint8), up.astype(np.uint8)], axis=1).tobytes()
    out = [PNG_MAGIC, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2 if ch == 3 else 6, 0, 0, 0))]
    if "icc_profile" in info:
        out.append(_chunk(b"iCCP", b"icc\0\0" + zlib.compress(info["icc_profile"])))
    for k, v in info.get("text", {}).items():
        out.append(_chunk(b"iTXt", k.encode("latin-1", "replace")[:79] + b"\0\0\0\0\0" + v.encode("utf-8")))
    if usable_dpi(info.get("dpi")):
        # pHYs counts pixels per metre (unit 1); 300 dpi is 11811.
        ppm = [max(1, round(float(d) / 0.0254)) for d in tuple(info["dpi"])[:2]]
        out.append(_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if "exif" in info:
        exif = info["exif"]
        out.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    out.append(_chunk(b"IDAT", zlib.compress(raw, 6)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def encode_tiff16(rgb: np.ndarray, alpha: np.ndarray | None, icc_profile: bytes | None = None,
                  dpi: tuple[float, float] | None = None) -> bytes:
    """Uncompressed little-endian baseline TIFF, 16 bits per sample, RGB or RGBA (unassociated alpha),
    with `icc_profile` (an RGB one: the caller checks) in the ICC tag and `dpi` in the resolution tags."""
    px = rgb if alpha is None else np.dstack([rgb, alpha])
    h, w, ch = px.shape
    data = px.astype("<u2").tobytes()
    icc = icc_profile or b""
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, ch, 0), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, 0), (277, 3, 1, ch), (278, 3, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    res = b""
    if usable_dpi(dpi):
        # RATIONALs (two LONGs each) in thousandths of a dot, so 300 and 72.5 dpi both survive.
        res = b"".join(struct.pack("<II", max(1, round(float(d) * 1000)), 1000) for d in dpi[:2])
        entries += [(282, 5, 1, 0), (283, 5, 1, 0), (296, 3, 1, 2)]  # ResolutionUnit 2: inch
    if ch == 4:
        entries.append((338, 3, 1, 2))
    if icc:
        entries.append((34675, 7, len(icc), 0))  # InterColorProfile, UNDEFINED bytes
    entries.sort()  # an IFD lists its tags in ascending order
    n = len(entries)
    bits_off = 8 + 2 + n * 12 + 4
    res_off = bits_off + 2 * ch
    icc_off = res_off + len(res)
    data_off = icc_off + len(icc) + len(icc) % 2  # values start on a word boundary
    buf = io.BytesIO()
    buf.write(b"II*\0" + struct.pack("<IH", 8, n))
    for tag, typ, count, val in entries:
        val = {258: bits_off, 273: data_off, 282: res_off, 283: res_off + 8, 34675: icc_off}.get(tag, val)
        if typ == 3 and count == 1:
            buf.write(struct.pack("<HHIHH", tag, typ, count, val, 0))
        else:
            buf.write(struct.pack("<HHII", tag, typ, count, val))
    buf.write(struct.pack("<I", 0) + struct.pack("<" + "H" * ch, *([16] * ch)) + res + icc + b"\0" * (len(icc) % 2) + data)
    return buf.getvalue()
