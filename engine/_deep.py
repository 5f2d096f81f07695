"""16-bit RGB(A) PNG and TIFF codecs (Pillow reduces these to 8 bits), and the PNG writer for every
depth (`encode_png`: Pillow's runs on one core; ours filters and deflates bands of rows on all of them).

Memory: every reader and writer works through the image in bands of rows (about `BAND_BYTES`
each), so a call needs the output plus a few MB, never a full-size temporary: photos are large
(a 48 Mpx 16-bit RGBA image is 384 MB of pixels) and the old whole-image temporaries took 6-8x that.

PNG decoding handles all five scanline filters (PNG spec §9), in place in the output arrays' own
bytes: None/Sub/Up row by row as the data inflates, and from the first Average/Paeth row on
(adaptive filtering: GIMP, ImageMagick, libpng) by anti-diagonals of pixels. TIFF: uncompressed
strips and tiles are read directly; our writer emits uncompressed baseline TIFF.
"""

from __future__ import annotations

import io
import math
import os
import struct
import sys
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Pixels are read, decoded and encoded this many bytes of rows at a time (at least one row): big
# enough that numpy and zlib calls amortise their overhead, small next to any photo.
BAND_BYTES = 4 << 20
# Compressed PNG data is read from the file, and written into IDAT chunks, in pieces this size.
PIECE_BYTES = 1 << 20


def _band_rows(row_bytes: int) -> int:
    return max(1, BAND_BYTES // max(row_bytes, 1))


def _png_layout(f: BinaryIO) -> tuple[tuple | None, bytes | None, list[tuple[int, int]]]:
    """(IHDR fields, tRNS body, [(offset, length) of each IDAT body]) of the PNG open in `f`, past
    its signature. Seeks over the chunk bodies, so the image data is read only once, while it inflates."""
    ihdr, trns, idat, pos = None, None, [], 8
    while True:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            break
        n, typ = struct.unpack(">I4s", head)
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", f.read(13))
        elif typ == b"tRNS":
            trns = f.read(n)
        elif typ == b"IDAT":
            idat.append((pos + 8, n))
        elif typ == b"IEND":
            break
        pos += 12 + n
    return ihdr, trns, idat


def _file_pieces(f: BinaryIO, spans: list[tuple[int, int]]) -> Iterator[bytes]:
    """The bytes of `spans` of `f`, in order, at most PIECE_BYTES at a time; stops where the file does."""
    for offset, n in spans:
        f.seek(offset)
        while n > 0:
            piece = f.read(min(n, PIECE_BYTES))
            if not piece:
                return
            yield piece
            n -= len(piece)


class _Inflater:
    """A zlib stream, inflated on demand into caller-owned buffers. It never inflates more than is
    asked for: a few KB of stream can inflate to gigabytes, and the pixel limit, checked on the
    header, does not see what lies past the last row."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._z = zlib.decompressobj()
        self._pieces = pieces
        self._tail = b""  # compressed bytes zlib has not taken yet
        self._drained = False  # no compressed bytes left to feed
        self.total = 0  # bytes inflated so far

    def read_into(self, out: np.ndarray) -> int:
        """Fill the contiguous uint8 array `out` as far as the stream goes; how many bytes that was."""
        want, got = out.size, 0
        while got < want and not self._z.eof:
            if not self._tail and not self._drained:
                self._tail = next(self._pieces, b"")
                self._drained = not self._tail
            try:
                # With the input drained this still runs, with b"": zlib may hold output it could
                # not hand over under the length limit of the call before.
                piece = self._z.decompress(self._tail, want - got)
            except zlib.error as e:
                raise ValueError(f"PNG image data does not decompress ({e})") from None
            self._tail = self._z.unconsumed_tail
            if not piece:
                # No output and no input left means the stream is over; and zlib, given input,
                # only returns nothing once it has taken all of it: a tail here would be a stall.
                if self._drained or self._tail:
                    break
                continue
            out[got:got + len(piece)] = np.frombuffer(piece, np.uint8)
            got += len(piece)
        self.total += got
        return got


def _unfilter_rows(planes: list[np.ndarray], filters: list[int], y0: int) -> None:
    """Undo None/Sub/Up on rows y0, y0 + 1, ... (one per item of `filters`), in place.

    `planes` hold the image's bytes split by byte lanes ((h, w, lanes) uint8 each): a filter
    predicts a byte from the same byte of the pixel to the left and above, so lanes decode apart.
    uint8 arithmetic wraps, which is the modulo 256 the spec asks for."""
    for y, f in enumerate(filters, y0):
        for p in planes:
            if f == 1:  # Raw(x) = Sub(x) + Raw(x - bpp): a running sum along each lane
                np.cumsum(p[y], axis=0, dtype=np.uint8, out=p[y])
            elif f == 2 and y:  # Up on the first row adds zeros
                np.add(p[y], p[y - 1], out=p[y])


def _average(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """floor((a + b) / 2) of uint8 arrays, without leaving uint8."""
    return (a >> 1) + (b >> 1) + (a & b & 1)


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The Paeth predictor (PNG spec §9.4) of uint8 arrays: with p = a + b - c, whichever of a, b, c
    is nearest p, ties in that order. The picks blend arithmetically (uint8 wraps), which numpy
    runs several times faster than nested np.where."""
    a16, b16, c16 = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
    bc, ac = b16 - c16, a16 - c16
    pc = np.abs(bc + ac)
    pa, pb = np.abs(bc), np.abs(ac)
    pick_a = pa <= np.minimum(pb, pc)
    pick_b = (pb <= pc) > pick_a  # b beats c on a tie, but only where a did not win
    return c + (a - c) * pick_a.view(np.uint8) + (b - c) * pick_b.view(np.uint8)


def _unfilter_wavefront(planes: list[np.ndarray], filters: np.ndarray, top: int) -> None:
    """Any mix of the five filters on rows top..h-1 (rows above `top` already decoded), in place.

    Average and Paeth predict a pixel from its left, upper and upper-left neighbours (already
    decoded), so within a row they are sequential. Pixel (y, x) depends only on pixels with a
    smaller y + x, so all pixels of one anti-diagonal y + x = t decode together: h + w numpy steps
    instead of h * w Python ones. In the row-major flat pixel array an anti-diagonal is a slice
    with step w - 1.

    Strided slices are slow in numpy (its inner loop would run over one pixel's few bytes), so
    each step reads its filtered pixels out of the planes once, into a small row-indexed buffer,
    and writes them back decoded once. The neighbours need no reading at all: the left and upper
    ones lie on the previous anti-diagonal (at the same row and the row above) and the upper-left
    one on the one before, so three such buffers, rotated, hold every neighbour, contiguous.
    Column 0 and the row above `top` have no neighbours of their own kind: they are decoded
    first and copied into the buffers as the anti-diagonals reach them.
    """
    h, w = planes[0].shape[:2]
    fs = filters.tolist()
    if top == 0:
        f = fs[0]  # no row above: Up adds nothing, Paeth picks the left pixel (Sub)
        for p in planes:
            if f in (1, 4):
                np.cumsum(p[0], axis=0, dtype=np.uint8, out=p[0])
            elif f == 3:  # Average of the left pixel and 0: sequential, one row only
                row = p[0]
                for x in range(1, w):
                    row[x] += row[x - 1] >> 1
        top = 1
    for y in range(top, h):  # column 0: no left pixel, so Paeth picks the upper one (Up)
        f = fs[y]
        if f >= 2:
            for p in planes:
                p[y, 0] += p[y - 1, 0] >> 1 if f == 3 else p[y - 1, 0]
    if w < 2 or top >= h:
        return
    # Each plane's pixels as single items (V6: the 6 colour bytes, V2: the 2 alpha bytes), so that
    # copying an anti-diagonal copies whole pixels.
    lanes = [p.shape[2] for p in planes]
    items = [p.reshape(h * w, n).view(f"V{n}").reshape(h * w) for p, n in zip(planes, lanes)]
    offs = np.cumsum([0] + lanes).tolist()
    width = offs[-1]
    # Three anti-diagonal buffers, row-indexed, every plane's lanes side by side.
    bufs = [np.zeros((h, width), np.uint8) for _ in range(3)]
    as_items = [[b[:, o:o + n].view(f"V{n}")[:, 0] for o, n in zip(offs, lanes)] for b in bufs]
    # Per row: the last row of its run of equal filters, running counts of Average and Paeth rows
    # (each step then knows in O(1) whether its rows share a filter and which predictors it
    # needs), and for mixed steps a 0/255 mask per filter, one byte per lane.
    ends = np.append(np.flatnonzero(filters[1:] != filters[:-1]), h - 1)
    run_end = ends[np.searchsorted(ends, np.arange(h))].tolist()
    n_avg = np.concatenate([[0], np.cumsum(filters == 3)]).tolist()
    n_paeth = np.concatenate([[0], np.cumsum(filters == 4)]).tolist()
    masks = [np.repeat(np.where(filters == k, 255, 0).astype(np.uint8)[:, None], width, axis=1) for k in range(5)]
    step = w - 1
    d2, d1, d0 = 0, 1, 2  # buffers holding anti-diagonals t - 2, t - 1 and t
    for v, it in zip(as_items[d2], items):
        v[top - 1] = it[(top - 1) * w]  # (top - 1, 0): the upper-left of (top, 1)
    for t in range(top + 1, h + w - 1):
        lo, hi = max(top, t - step), min(h - 1, t - 1)  # rows of this anti-diagonal, x >= 1
        i = t + lo * step  # flat index of (lo, t - lo)
        j = i + (hi - lo) * step + 1
        for v, it in zip(as_items[d1], items):  # anti-diagonal t - 1 outside the region
            if t - 1 < h:
                v[t - 1] = it[(t - 1) * w]  # (t - 1, 0), left of (t - 1, 1)
            if t - top < w:
                v[top - 1] = it[(top - 1) * w + t - top]  # above (top, t - top)
        for v, it in zip(as_items[d0], items):
            v[lo:hi + 1] = it[i:j:step]
        cur = bufs[d0][lo:hi + 1]
        a, b, c = bufs[d1][lo:hi + 1], bufs[d1][lo - 1:hi], bufs[d2][lo - 1:hi]
        kind = fs[lo] if run_end[lo] >= hi else -1
        if kind == 1:
            cur += a
        elif kind == 2:
            cur += b
        elif kind == 3:
            cur += _average(a, b)
        elif kind == 4:
            cur += _paeth(a, b, c)
        elif kind == -1:
            pred = (a & masks[1][lo:hi + 1]) | (b & masks[2][lo:hi + 1])
            if n_avg[hi + 1] > n_avg[lo]:
                pred |= _average(a, b) & masks[3][lo:hi + 1]
            if n_paeth[hi + 1] > n_paeth[lo]:
                pred |= _paeth(a, b, c) & masks[4][lo:hi + 1]
            cur += pred
        if kind:
            for v, it in zip(as_items[d0], items):
                it[i:j:step] = v[lo:hi + 1]
        d2, d1, d0 = d1, d0, d2


def read_png16(path: Path) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(rgb, alpha) uint16 for a non-interlaced 16-bit RGB/RGBA PNG; None for any other PNG.
    Raises ValueError for a damaged one.

    The rows inflate a band at a time straight into the output arrays' bytes and are decoded there
    (big-endian samples, swapped in place at the end), so the call needs the output plus a few MB."""
    with open(path, "rb") as f:
        if f.read(8) != PNG_MAGIC:
            return None
        ihdr, trns, spans = _png_layout(f)
        if ihdr is None or ihdr[2] != 16 or ihdr[3] not in (2, 6) or ihdr[6]:
            return None
        w, h, ch = ihdr[0], ihdr[1], 3 if ihdr[3] == 2 else 4
        stride = w * ch * 2
        rgb = np.empty((h, w, 3), np.uint16)
        alpha = np.empty((h, w), np.uint16) if ch == 4 else None
        # Byte lanes 0-5 of each pixel (colour) live in rgb, 6-7 (alpha) in alpha.
        planes = [rgb.view(np.uint8).reshape(h, w, 6)]
        if alpha is not None:
            planes.append(alpha.view(np.uint8).reshape(h, w, 2))
        filters = np.empty(h, np.uint8)
        src = _Inflater(_file_pieces(f, spans))
        rows = _band_rows(stride + 1)
        band = np.empty(rows * (stride + 1), np.uint8)
        wave_top = h  # the first Average/Paeth row: from there on rows wait for _unfilter_wavefront
        for y0 in range(0, h, rows):
            y1 = min(h, y0 + rows)
            n = (y1 - y0) * (stride + 1)
            if src.read_into(band[:n]) < n:
                raise ValueError(f"PNG image data ends after {src.total // (stride + 1)} of {h} rows")
            raw = band[:n].reshape(y1 - y0, stride + 1)
            fs = filters[y0:y1]
            fs[:] = raw[:, 0]
            if fs.max() > 4:
                raise ValueError(f"PNG row filter {int(fs.max())} does not exist")
            lines = raw[:, 1:].reshape(y1 - y0, w, 2 * ch)
            planes[0][y0:y1] = lines[..., :6]
            if alpha is not None:
                planes[1][y0:y1] = lines[..., 6:]
            if wave_top == h:
                late = np.flatnonzero(fs >= 3)
                stop = y0 + int(late[0]) if late.size else y1
                _unfilter_rows(planes, fs[:stop - y0].tolist(), y0)
                if late.size:
                    wave_top = stop
    if wave_top < h:
        _unfilter_wavefront(planes, filters, wave_top)
    if sys.byteorder == "little":
        rgb.byteswap(inplace=True)
        if alpha is not None:
            alpha.byteswap(inplace=True)
    if alpha is not None and alpha.min(initial=65535) == 65535:
        alpha = None
    if ch == 3 and trns is not None and len(trns) == 6:
        # An RGB PNG's tRNS names one colour that is fully transparent (PNG spec §11.3.2.1);
        # compared a band at a time, and alpha made only once some pixel has that colour.
        key = np.frombuffer(trns, ">u2").astype(np.uint16)
        step = _band_rows(w * 6)
        for y0 in range(0, h, step):
            clear = (rgb[y0:y0 + step] == key).all(axis=2)
            if clear.any():
                if alpha is None:
                    alpha = np.full((h, w), 65535, np.uint16)
                alpha[y0:y0 + step][clear] = 0
    return rgb, alpha


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
    width (Pillow's args give that row stride in bytes) and is cut to the image here. Each strip
    or tile is read a band of rows at a time into one reused buffer (our own writer makes the whole
    image a single strip) and converted straight into the output arrays."""
    parts = [_tile(t) for t in tiles]
    if not parts or any(c != "raw" or a[0] not in ("RGB;16L", "RGB;16B", "RGBA;16L", "RGBA;16B") for c, _, _, a in parts):
        return None
    ch = 4 if parts[0][3][0].startswith("RGBA") else 3
    w, h = size
    rgb = np.empty((h, w, 3), np.uint16)
    alpha = np.empty((h, w), np.uint16) if ch == 4 else None
    buf = np.empty(0, np.uint8)
    with open(path, "rb") as f:
        for _, (x0, y0, x1, y1), offset, args in parts:
            rows, row_bytes = y1 - y0, (x1 - x0) * ch * 2
            stride = int(args[1]) if len(args) > 1 and args[1] else row_bytes
            if stride < row_bytes:
                raise ValueError(f"TIFF rows of {row_bytes} bytes stored {stride} bytes apart at ({x0}, {y0})")
            dt = "<u2" if args[0].endswith("L") else ">u2"
            band = _band_rows(stride)
            if buf.size < band * stride:
                buf = np.empty(band * stride, np.uint8)
            for r0 in range(0, rows, band):
                r1 = min(rows, r0 + band)
                need = stride * (r1 - r0 - 1) + row_bytes  # the last row has no padding after it
                f.seek(offset + r0 * stride)
                if f.readinto(memoryview(buf)[:need]) < need:
                    raise OSError(f"TIFF data ends inside the tile at ({x0}, {y0})")
                lines = buf[:stride * (r1 - r0)].reshape(r1 - r0, stride)[:, :row_bytes]
                px = lines.view(dt).reshape(r1 - r0, x1 - x0, ch)
                rgb[y0 + r0:y0 + r1, x0:x1] = px[..., :3]
                if alpha is not None:
                    alpha[y0 + r0:y0 + r1, x0:x1] = px[..., 3]
    if alpha is not None and alpha.min(initial=65535) == 65535:
        alpha = None
    return rgb, alpha


def _chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body) & 0xFFFFFFFF)


def _write_chunk(out: io.BytesIO, typ: bytes, body: bytes) -> None:
    """`_chunk` for big bodies: written in place, without a concatenated copy."""
    out.write(struct.pack(">I", len(body)) + typ)
    out.write(body)
    out.write(struct.pack(">I", zlib.crc32(body, zlib.crc32(typ)) & 0xFFFFFFFF))


def usable_dpi(dpi: object) -> bool:
    """A resolution worth writing: two finite positive numbers (Pillow reads a TIFF's 0/0 as nan)."""
    try:
        x, y = (float(d) for d in tuple(dpi)[:2])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0


def _interleaved_bands(rgb: np.ndarray, alpha: np.ndarray | None, dtype: str) -> Iterator[np.ndarray]:
    """The pixels as (rows, w * ch * 2) uint8 bands of `dtype` samples, RGB(A) interleaved, in one
    reused buffer: a band is valid until the next one is asked for."""
    h, w = rgb.shape[:2]
    ch = 3 if alpha is None else 4
    rows = _band_rows(w * ch * 2)
    px = np.empty((rows, w, ch), dtype)
    for y0 in range(0, h, rows):
        n = min(h, y0 + rows) - y0
        px[:n, :, :3] = rgb[y0:y0 + n]
        if alpha is not None:
            px[:n, :, 3] = alpha[y0:y0 + n]
        yield px[:n].view(np.uint8).reshape(n, w * ch * 2)


def _png_rows(rgb: np.ndarray, alpha: np.ndarray | None, y0: int, y1: int) -> np.ndarray:
    """Rows y0..y1-1 as a PNG stores them: (n, stride) uint8, RGB(A) interleaved, 16-bit big-endian."""
    ch = 3 if alpha is None else 4
    dtype = ">u2" if rgb.dtype == np.uint16 else np.uint8
    px = np.empty((y1 - y0, rgb.shape[1], ch), dtype)
    px[..., :3] = rgb[y0:y1]
    if alpha is not None:
        px[..., 3] = alpha[y0:y1]
    return px.view(np.uint8).reshape(y1 - y0, -1)


# Encoding: the rows go in bands of about this many bytes, each filtered and deflated on its own
# thread. Small because filtering one takes about 25 times its size in numpy temporaries (per
# worker); big enough that the per-band costs (a 32 KB dictionary, a 5-byte flush marker, the
# threads' hand-overs) stay near nothing: +0.14 % of file size against 1 MB bands on a 13 Mpx photo.
ENCODE_BAND_BYTES = 256 << 10
DEFLATE_WINDOW = 32 << 10  # how far back a deflate match may reach (RFC 1951)
PNG_LEVEL = 6  # zlib's default, what Pillow and libpng write
# Deflate's strategy for filtered scanlines (libpng's and Pillow's choice too): fewer, longer matches
# and more Huffman coding of the small residuals; 3-4 % smaller files on photos than the default.
FILTER_UP, FILTER_PAETH = 2, 4


def _paeth_residual(rows: np.ndarray, up: np.ndarray, bpp: int) -> np.ndarray:
    """rows - Paeth(left, up, up-left), bytewise with uint8 wrap-around (PNG spec §9.4)."""
    left = np.zeros_like(rows)
    left[:, bpp:] = rows[:, :-bpp]
    upleft = np.zeros_like(up)
    upleft[:, bpp:] = up[:, :-bpp]
    return rows - _paeth(left, up, upleft)


def _filtered_band(rows: np.ndarray, above: np.ndarray, bpp: int) -> bytes:
    """One band of PNG scanlines, each led by its filter-type byte, filtered Up or Paeth (PNG spec §9).

    Which of the two deflates smaller depends on the picture (Paeth on most camera photos, Up on
    screenshots, drawings and many JPEG-decoded photos, by up to 8 % either way; the usual
    per-row heuristic, the least sum of absolute residuals, picks Paeth even where Up wins), so
    each band takes the one whose first quarter deflates smaller at zlib level 1: a trial that
    costs a few % of the encode. `above` is the row over the band (zeros over the first row).
    """
    n, stride = rows.shape
    up = np.empty_like(rows)
    up[0] = above
    up[1:] = rows[:-1]
    out = np.empty((n, stride + 1), np.uint8)
    residual = {FILTER_UP: rows - up, FILTER_PAETH: _paeth_residual(rows, up, bpp)}
    quarter = max(1, n // 4)
    best = min(residual, key=lambda f: _deflated_size(residual[f][:quarter].tobytes(), 1))
    out[:, 0] = best
    out[:, 1:] = residual[best]
    return out.tobytes()


def _deflated_size(data: bytes, level: int) -> int:
    z = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_FILTERED)
    return len(z.compress(data)) + len(z.flush())


def _deflate_band(data: bytes, history: bytes, last: bool) -> tuple[bytes, int]:
    """Raw deflate of one band, its matches reaching into `history` (the bytes before it), ended by
    a sync flush (or the final block): such pieces concatenate into one valid stream, as pigz does.
    Returns (compressed, adler32 of `data`)."""
    z = zlib.compressobj(PNG_LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_FILTERED, *((history,) if history else ()))
    return z.compress(data) + z.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH), zlib.adler32(data)


def _adler32_combine(a: int, b: int, len_b: int) -> int:
    """The Adler-32 of two byte strings joined, from each one's and the second's length (RFC 1950
    §8.2; zlib's adler32_combine, which Python does not expose)."""
    base = 65521
    rem = len_b % base
    s1 = ((a & 0xFFFF) + (b & 0xFFFF) - 1) % base
    s2 = ((a >> 16) + (b >> 16) + rem * (a & 0xFFFF) - rem) % base
    return (s2 << 16) | s1


def _encode_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def encode_png(rgb: np.ndarray, alpha: np.ndarray | None, info: dict, *, workers: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> bytes:
    """8- or 16-bit RGB(A) PNG (by `rgb`'s dtype) with ICC profile, text, resolution and EXIF chunks.

    As small as Pillow's writer makes them (bench/png_encode.py: camera photos +0.3 %, upscaled
    photos -10 %, flat synthetic graphics +4 %) and 1.2-1.3x faster on one core, about 2.5x on two,
    more on more: bands of rows are filtered (`_filtered_band`) and deflated at zlib's level 6 on `workers` threads
    (zlib and numpy let go of the GIL), each band's deflate primed with the 32 KB before it, so
    the joined stream compresses as one would. The output does not depend on `workers`. At most
    three bands per worker are in flight, so the call needs the file plus about 7 MB per worker.
    `progress(rows, h)` is called as rows are written (a 96 Mpx photo takes seconds).
    """
    h, w = rgb.shape[:2]
    ch = 3 if alpha is None else 4
    depth = 16 if rgb.dtype == np.uint16 else 8
    bpp = ch * depth // 8
    out = io.BytesIO()
    out.write(PNG_MAGIC + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 2 if ch == 3 else 6, 0, 0, 0)))
    if "icc_profile" in info:
        out.write(_chunk(b"iCCP", b"icc\0\0" + zlib.compress(info["icc_profile"])))
    for k, v in info.get("text", {}).items():
        if not k:
            continue  # a PNG keyword has 1-79 characters: an empty one makes an invalid chunk
        out.write(_chunk(b"iTXt", k.encode("latin-1", "replace")[:79] + b"\0\0\0\0\0" + v.encode("utf-8")))
    if usable_dpi(info.get("dpi")):
        # pHYs counts pixels per metre (unit 1); 300 dpi is 11811.
        ppm = [max(1, round(float(d) / 0.0254)) for d in tuple(info["dpi"])[:2]]
        out.write(_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if "exif" in info:
        exif = info["exif"]
        out.write(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    stride = w * bpp
    rows = max(1, ENCODE_BAND_BYTES // stride)
    starts = range(0, h, rows)
    workers = workers or _encode_workers()

    def filtered(y0: int) -> bytes:
        y1 = min(h, y0 + rows)
        above = _png_rows(rgb, alpha, y0 - 1, y0)[0] if y0 else np.zeros(stride, np.uint8)
        return _filtered_band(_png_rows(rgb, alpha, y0, y1), above, bpp)

    adler, written = 1, 0
    pending = [b"\x78\x9c"]  # zlib header: deflate, 32 KB window, default level, no dictionary
    size = 2
    with ThreadPoolExecutor(workers) as pool:
        filters = deque(pool.submit(filtered, y0) for y0 in starts[:2 * workers])
        deflates: deque = deque()
        history = b""
        for i, y0 in enumerate(starts):
            data = filters.popleft().result()
            if i + 2 * workers < len(starts):
                filters.append(pool.submit(filtered, starts[i + 2 * workers]))
            deflates.append((pool.submit(_deflate_band, data, history, i == len(starts) - 1), len(data)))
            history = (history + data)[-DEFLATE_WINDOW:] if len(data) < DEFLATE_WINDOW else data[-DEFLATE_WINDOW:]
            while deflates and (len(deflates) > workers or i == len(starts) - 1):
                future, n = deflates.popleft()
                piece, band_adler = future.result()
                written += n // (stride + 1)
                if progress is not None:
                    progress(written, h)
                adler = _adler32_combine(adler, band_adler, n)
                pending.append(piece)
                size += len(piece)
                if size >= PIECE_BYTES:
                    _write_chunk(out, b"IDAT", b"".join(pending))
                    pending, size = [], 0
    pending.append(struct.pack(">I", adler))
    _write_chunk(out, b"IDAT", b"".join(pending))
    out.write(_chunk(b"IEND", b""))
    return out.getvalue()  # BytesIO hands over its buffer without a copy


def encode_tiff16(rgb: np.ndarray, alpha: np.ndarray | None, icc_profile: bytes | None = None,
                  dpi: tuple[float, float] | None = None) -> bytes:
    """Uncompressed little-endian baseline TIFF, 16 bits per sample, RGB or RGBA (unassociated alpha),
    with `icc_profile` (an RGB one: the caller checks) in the ICC tag and `dpi` in the resolution tags.
    The pixels go in a band of rows at a time, so the call needs the file plus a few MB."""
    h, w = rgb.shape[:2]
    ch = 3 if alpha is None else 4
    data_len = h * w * ch * 2
    icc = icc_profile or b""
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, ch, 0), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, 0), (277, 3, 1, ch), (278, 3, 1, h), (279, 4, 1, data_len), (284, 3, 1, 1)]
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
    buf.write(struct.pack("<I", 0) + struct.pack("<" + "H" * ch, *([16] * ch)) + res + icc + b"\0" * (len(icc) % 2))
    for band in _interleaved_bands(rgb, alpha, "<u2"):
        buf.write(band)
    return buf.getvalue()  # BytesIO hands over its buffer without a copy
