"""engine/_deep.py: 16-bit PNG/TIFF codecs work in bands of rows (memory about the output's size)
and decode every PNG filter bit-exactly."""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from engine import _deep
from engine._deep import encode_png, encode_tiff16, read_png16, read_tiff16
from engine.imageio import load_picture

RNG = np.random.default_rng(7)
MB = 1 << 20


def chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))


def png16(px: np.ndarray, filters, *, idat_size: int | None = None, colour: int | None = None,
          interlace: int = 0, extra: bytes = b"") -> bytes:
    """A 16-bit PNG of `px` ((h, w, ch) uint16, ch 1-4) with the given filter per row, filtered in
    numpy from the original bytes (an encoder predicts from those, so no loop is needed) and split
    into IDAT chunks of `idat_size` bytes."""
    h, w, ch = px.shape
    bpp = 2 * ch
    rows = px.astype(">u2").reshape(h, -1).view(np.uint8).astype(np.int32)
    b = np.vstack([np.zeros((1, rows.shape[1]), np.int32), rows[:-1]])
    a = np.hstack([np.zeros((h, bpp), np.int32), rows[:, :-bpp]])
    c = np.hstack([np.zeros((h, bpp), np.int32), b[:, :-bpp]])
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    f = np.broadcast_to(np.asarray(filters), (h,))[:, None]
    pred = np.select([f == 1, f == 2, f == 3, f == 4], [a, b, (a + b) >> 1, paeth], 0)
    body = zlib.compress(np.hstack([f.astype(np.uint8), ((rows - pred) & 255).astype(np.uint8)]).tobytes())
    step = idat_size or len(body) or 1
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[ch] if colour is None else colour
    return (_deep.PNG_MAGIC + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, interlace)) + extra
            + b"".join(chunk(b"IDAT", body[k:k + step]) for k in range(0, max(len(body), 1), step))
            + chunk(b"IEND", b""))


def reference_decode(data: bytes) -> np.ndarray:
    """A plain, byte-at-a-time PNG decoder (16-bit, non-interlaced): checks every CRC, joins the IDATs."""
    assert data[:8] == _deep.PNG_MAGIC
    pos, idat = 8, b""
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(typ + body), typ
        if typ == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 16 and interlace == 0
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    ch = {0: 1, 4: 2, 2: 3, 6: 4}[colour]
    bpp, stride = 2 * ch, w * ch * 2
    raw = zlib.decompress(idat)
    assert len(raw) == h * (stride + 1)
    out = bytearray(h * stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]
        for i in range(stride):
            a = out[y * stride + i - bpp] if i >= bpp else 0
            b = out[(y - 1) * stride + i] if y else 0
            c = out[(y - 1) * stride + i - bpp] if y and i >= bpp else 0
            p = a + b - c
            pred = [0, a, b, (a + b) // 2,
                    a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c][f]
            out[y * stride + i] = (line[i] + pred) & 255
    return np.frombuffer(bytes(out), ">u2").reshape(h, w, ch).astype(np.uint16)


def photo(h: int, w: int, ch: int) -> np.ndarray:
    """Noise over gradients with flat patches: flat areas take other Paeth branches than noise."""
    y, x = np.mgrid[0:h, 0:w]
    px = (np.stack([x * 97 + y * 13 + k * 5000 for k in range(ch)], axis=2) % 65536).astype(np.int64)
    px += RNG.integers(-700, 700, px.shape)
    px = np.clip(px, 0, 65535).astype(np.uint16)
    px[h // 3:h // 2, w // 4:w // 2] = 1234
    if ch == 4:
        px[: h // 5, :, 3] = 65535
    return px


def peak_of(fn):
    """(result, tracemalloc peak of fn() over what was allocated before it)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.fixture
def small_bands(monkeypatch):
    """Bands of 256 KB, so that a test-sized image spans many bands, and the bound on memory
    (output + a few bands) is tight enough to catch any full-size temporary."""
    monkeypatch.setattr(_deep, "BAND_BYTES", 256 << 10, raising=False)
    monkeypatch.setattr(_deep, "PIECE_BYTES", 64 << 10, raising=False)
    monkeypatch.setattr(_deep, "ENCODE_BAND_BYTES", 64 << 10, raising=False)


# -- memory -----------------------------------------------------------------------------------

@pytest.mark.parametrize("ch", [3, 4])
@pytest.mark.parametrize("filters", ["up", "adaptive"])
def test_reading_a_16bit_png_takes_about_the_output_in_memory(tmp_path, small_bands, ch, filters):
    px = photo(600, 800, ch)
    f = np.full(600, 2) if filters == "up" else RNG.integers(0, 5, 600)
    p = tmp_path / "x.png"
    p.write_bytes(png16(px, f, idat_size=8192))  # libpng's chunk size: thousands of IDATs
    (rgb, alpha), peak = peak_of(lambda: read_png16(p))
    assert np.array_equal(rgb, px[..., :3]) and (ch == 3 or np.array_equal(alpha, px[..., 3]))
    out = px.nbytes  # rgb + alpha
    assert peak < out + MB, f"peak {peak / MB:.1f} MB for {out / MB:.1f} MB of pixels"


@pytest.mark.parametrize("ch", [3, 4])
def test_reading_a_16bit_tiff_takes_about_the_output_in_memory(tmp_path, small_bands, ch):
    px = photo(600, 800, ch)
    p = tmp_path / "x.tif"
    p.write_bytes(encode_tiff16(px[..., :3], px[..., 3] if ch == 4 else None))  # one strip: the whole image
    with Image.open(p) as im:
        tiles, size = list(im.tile), im.size
    (rgb, alpha), peak = peak_of(lambda: read_tiff16(tiles, size, p))
    assert np.array_equal(rgb, px[..., :3]) and (ch == 3 or np.array_equal(alpha, px[..., 3]))
    assert peak < px.nbytes + MB, f"peak {peak / MB:.1f} MB for {px.nbytes / MB:.1f} MB of pixels"


@pytest.mark.parametrize("ch", [3, 4])
@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_writing_a_16bit_file_takes_about_the_file_in_memory(small_bands, ch, fmt):
    px = photo(1200, 1000, ch)
    rgb, alpha = np.ascontiguousarray(px[..., :3]), px[..., 3].copy() if ch == 4 else None
    workers = 2
    enc = (lambda: encode_png(rgb, alpha, {}, workers=workers)) if fmt == "png" else (lambda: encode_tiff16(rgb, alpha))
    data, peak = peak_of(enc)
    # The file itself, BytesIO's growth margin (1/8), and a bounded rest: zlib's state (~0.3 MB a
    # worker), and for PNG the bands each worker filters (about 25 times a band in temporaries) and
    # the filtered bands waiting for their turn. A full-size temporary (9.6 MB at 4 channels) would not fit.
    rest = 2 * MB + (workers * 32 * _deep.ENCODE_BAND_BYTES if fmt == "png" else 0)
    assert peak < 1.2 * len(data) + rest, f"peak {peak / MB:.1f} MB for a {len(data) / MB:.1f} MB file"
    if fmt == "png":
        assert np.array_equal(read_png16_bytes(data), px)


def read_png16_bytes(data: bytes) -> np.ndarray:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.png"
        p.write_bytes(data)
        rgb, alpha = read_png16(p)
    return rgb if alpha is None else np.dstack([rgb, alpha])


# -- bit-exact decoding -----------------------------------------------------------------------

SHAPES = [(37, 23), (23, 37), (1, 9), (9, 1), (1, 1), (2, 2), (5, 2)]


@pytest.mark.parametrize("ch", [3, 4])
@pytest.mark.parametrize("filters", [0, 1, 2, 3, 4, "mixed", "late"])
@pytest.mark.parametrize("shape", SHAPES)
def test_every_png_filter_decodes_bit_exactly(tmp_path, monkeypatch, ch, filters, shape):
    # Bands of a few rows: row-wise decoding, the switch to anti-diagonals and the IDAT pieces all
    # cross band boundaries.
    monkeypatch.setattr(_deep, "BAND_BYTES", 3 * (shape[1] * ch * 2 + 1), raising=False)
    monkeypatch.setattr(_deep, "PIECE_BYTES", 7, raising=False)
    h, w = shape
    px = photo(h, w, ch)
    if filters == "mixed":
        f = RNG.integers(0, 5, h)
    elif filters == "late":  # None/Sub/Up rows, then Average/Paeth from some row on
        f = RNG.integers(0, 3, h)
        f[h // 2:] = RNG.integers(0, 5, h - h // 2)
        f[h // 2] = 4
    else:
        f = np.full(h, filters)
    data = png16(px, f, idat_size=5)
    (tmp_path / "f.png").write_bytes(data)
    assert np.array_equal(reference_decode(data), px)  # the test's encoder is right
    rgb, alpha = read_png16(tmp_path / "f.png")
    assert rgb.dtype == np.uint16 and rgb.flags.c_contiguous and np.array_equal(rgb, px[..., :3])
    if ch == 4:
        assert alpha.flags.c_contiguous and np.array_equal(alpha, px[..., 3])
    else:
        assert alpha is None


@pytest.mark.parametrize("filters", [0, 1, 2, 3, 4, "mixed"])
def test_grey_16bit_png_is_left_to_pillow_and_decodes_bit_exactly(tmp_path, filters):
    px = photo(19, 31, 1)
    f = RNG.integers(0, 5, 19) if filters == "mixed" else np.full(19, filters)
    (tmp_path / "g.png").write_bytes(png16(px, f))
    assert read_png16(tmp_path / "g.png") is None
    pic = load_picture(tmp_path / "g.png")
    assert pic.rgb.dtype == np.uint16 and all(np.array_equal(pic.rgb[..., k], px[..., 0]) for k in range(3))


def test_opaque_alpha_is_dropped_and_rgb_transparent_colour_becomes_alpha(tmp_path, monkeypatch):
    monkeypatch.setattr(_deep, "BAND_BYTES", 1000, raising=False)
    px = photo(30, 20, 4)
    px[..., 3] = 65535
    (tmp_path / "o.png").write_bytes(png16(px, 4))
    assert read_png16(tmp_path / "o.png")[1] is None
    rgb = photo(30, 20, 3)
    key = np.array([1, 2, 3], np.uint16)
    rgb[25, 7] = rgb[2, 19] = key  # in two different bands
    trns = chunk(b"tRNS", key.astype(">u2").tobytes())
    (tmp_path / "t.png").write_bytes(png16(rgb, 1, extra=trns))
    got, alpha = read_png16(tmp_path / "t.png")
    expect = np.full((30, 20), 65535, np.uint16)
    expect[25, 7] = expect[2, 19] = 0
    assert np.array_equal(got, rgb) and np.array_equal(alpha, expect)
    (tmp_path / "n.png").write_bytes(png16(photo(30, 20, 3) | 8, 1, extra=trns))  # no pixel has it
    assert read_png16(tmp_path / "n.png")[1] is None


def test_interlaced_and_8bit_pngs_are_still_left_to_pillow(tmp_path):
    px = photo(8, 8, 3)
    (tmp_path / "i.png").write_bytes(png16(px, 0, interlace=1))
    assert read_png16(tmp_path / "i.png") is None
    Image.fromarray((px >> 8).astype(np.uint8)).save(tmp_path / "e.png")
    assert read_png16(tmp_path / "e.png") is None
    (tmp_path / "j.jpg").write_bytes(b"\xff\xd8\xff")
    assert read_png16(tmp_path / "j.jpg") is None


def test_damaged_16bit_png_data(tmp_path, monkeypatch):
    monkeypatch.setattr(_deep, "BAND_BYTES", 500, raising=False)  # 8 rows a band
    px = photo(20, 10, 3)
    data = png16(px, 2)
    i = data.index(b"IDAT") + 4
    n = struct.unpack(">I", data[i - 8:i - 4])[0]
    # The file ends halfway through its one IDAT: some rows, not all.
    (tmp_path / "cut.png").write_bytes(data[:i + n // 2])
    with pytest.raises(ValueError, match=r"ends after (\d+) of 20 rows") as e:
        read_png16(tmp_path / "cut.png")
    assert 0 < int(e.value.args[0].split()[-4]) < 20
    (tmp_path / "bad.png").write_bytes(data[:i + 10] + bytes(20) + data[i + 30:])
    with pytest.raises(ValueError):
        read_png16(tmp_path / "bad.png")
    (tmp_path / "f7.png").write_bytes(png16(px, [2] * 15 + [7] + [2] * 4))
    with pytest.raises(ValueError, match="filter 7 does not exist"):
        read_png16(tmp_path / "f7.png")


# -- writing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ch", [3, 4])
@pytest.mark.parametrize("shape", [(23, 17), (1, 1), (1, 40), (40, 1)])
def test_written_16bit_png_decodes_to_the_same_values_with_any_reader(tmp_path, monkeypatch, ch, shape):
    monkeypatch.setattr(_deep, "BAND_BYTES", 200, raising=False)  # many bands...
    monkeypatch.setattr(_deep, "PIECE_BYTES", 50, raising=False)  # ...and many IDAT chunks
    px = photo(*shape, ch)
    data = encode_png(np.ascontiguousarray(px[..., :3]), px[..., 3].copy() if ch == 4 else None,
                        {"text": {"Title": "t"}, "dpi": (300, 300)})
    assert np.array_equal(reference_decode(data), px)
    (tmp_path / "w.png").write_bytes(data)
    assert np.array_equal(read_png16_bytes(data), px)
    with Image.open(tmp_path / "w.png") as im:  # Pillow reads 16-bit RGB(A) as its high bytes
        assert im.info["Title"] == "t"
        assert np.array_equal(np.asarray(im.convert("RGBA" if ch == 4 else "RGB")), (px >> 8).astype(np.uint8))


@pytest.mark.parametrize("ch", [3, 4])
def test_written_16bit_tiff_is_the_same_bytes_as_one_block(monkeypatch, ch):
    monkeypatch.setattr(_deep, "BAND_BYTES", 300, raising=False)
    px = photo(21, 13, ch)
    data = encode_tiff16(np.ascontiguousarray(px[..., :3]), px[..., 3].copy() if ch == 4 else None,
                         icc_profile=b"abc", dpi=(72.5, 300))
    assert data.endswith(px.astype("<u2").tobytes())
