"""16-bit RGB(A) PNG and TIFF codecs. Pillow reduces these to 8 bits, so we decode and encode them here.

PNG decoding handles all five scanline filters (PNG spec §9); None/Sub/Up are vectorised with
numpy, Average/Paeth run per pixel (slow on large files, which most encoders avoid for 16-bit
photos). TIFF: uncompressed strips are read directly; our writer emits uncompressed baseline TIFF.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _unfilter_row(f: int, line: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    if f == 0:
        return line
    if f == 2:
        return (line + prev) & 255
    if f == 1:  # Raw(x) = Sub(x) + Raw(x - bpp): a running sum along each byte lane
        lanes = line.reshape(-1, bpp)
        return (np.cumsum(lanes, axis=0) & 255).reshape(-1)
    cur = np.zeros_like(line)
    for i in range(line.size):
        a = int(cur[i - bpp]) if i >= bpp else 0
        b = int(prev[i])
        if f == 3:
            pred = (a + b) >> 1
        else:
            c = int(prev[i - bpp]) if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
        cur[i] = (int(line[i]) + pred) & 255
    return cur


def read_png16(path: Path) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(rgb, alpha) uint16 for a non-interlaced 16-bit RGB/RGBA PNG; None for any other PNG."""
    data = path.read_bytes()
    if data[:8] != PNG_MAGIC:
        return None
    pos, ihdr, idat = 8, None, []
    while pos + 8 <= len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", data[pos + 8:pos + 21])
        elif typ == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + n])
        elif typ == b"IEND":
            break
        pos += 12 + n
    if ihdr is None or ihdr[2] != 16 or ihdr[3] not in (2, 6) or ihdr[6]:
        return None
    w, h, ch = ihdr[0], ihdr[1], 3 if ihdr[3] == 2 else 4
    stride, bpp = w * ch * 2, ch * 2
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, stride + 1)
    out = np.empty((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        prev = out[y] = _unfilter_row(int(raw[y, 0]), raw[y, 1:].astype(np.int32), prev, bpp)
    px = out.astype(np.uint8).view(">u2").reshape(h, w, ch).astype(np.uint16)
    alpha = px[..., 3] if ch == 4 and px[..., 3].min() < 65535 else None
    return np.ascontiguousarray(px[..., :3]), None if alpha is None else np.ascontiguousarray(alpha)


def read_tiff16(tiles: list, size: tuple[int, int], path: Path) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(rgb, alpha) uint16 for an uncompressed 16-bit RGB(A) TIFF, from the tiles Pillow found; None otherwise."""
    if not tiles or any(t.codec_name != "raw" or t.args[0] not in ("RGB;16L", "RGB;16B", "RGBA;16L", "RGBA;16B") for t in tiles):
        return None
    ch = 4 if tiles[0].args[0].startswith("RGBA") else 3
    w, h = size
    out = np.empty((h, w, ch), np.uint16)
    with open(path, "rb") as f:
        for t in tiles:
            x0, y0, x1, y1 = t.extents
            f.seek(t.offset)
            n = (x1 - x0) * (y1 - y0) * ch
            dt = "<u2" if t.args[0].endswith("L") else ">u2"
            out[y0:y1, x0:x1] = np.frombuffer(f.read(n * 2), dt).reshape(y1 - y0, x1 - x0, ch)
    alpha = out[..., 3] if ch == 4 and out[..., 3].min() < 65535 else None
    return np.ascontiguousarray(out[..., :3]), None if alpha is None else np.ascontiguousarray(alpha)


def _chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body) & 0xFFFFFFFF)


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
    if "exif" in info:
        exif = info["exif"]
        out.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    out.append(_chunk(b"IDAT", zlib.compress(raw, 6)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def encode_tiff16(rgb: np.ndarray, alpha: np.ndarray | None) -> bytes:
    """Uncompressed little-endian baseline TIFF, 16 bits per sample, RGB or RGBA (unassociated alpha)."""
    px = rgb if alpha is None else np.dstack([rgb, alpha])
    h, w, ch = px.shape
    data = px.astype("<u2").tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, ch, 0), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, 0), (277, 3, 1, ch), (278, 3, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    if ch == 4:
        entries.append((338, 3, 1, 2))
    n = len(entries)
    bits_off = 8 + 2 + n * 12 + 4
    data_off = bits_off + 2 * ch
    buf = io.BytesIO()
    buf.write(b"II*\0" + struct.pack("<IH", 8, n))
    for tag, typ, count, val in entries:
        val = bits_off if tag == 258 else data_off if tag == 273 else val
        if typ == 3 and count == 1:
            buf.write(struct.pack("<HHIHH", tag, typ, count, val, 0))
        else:
            buf.write(struct.pack("<HHII", tag, typ, count, val))
    buf.write(struct.pack("<I", 0) + struct.pack("<" + "H" * ch, *([16] * ch)) + data)
    return buf.getvalue()
