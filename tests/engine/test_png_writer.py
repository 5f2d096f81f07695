"""engine._deep.encode_png: the PNG writer every PNG output goes through (8- and 16-bit), filtered
and deflated in bands on several threads. It must decode exactly with any reader, keep its metadata,
be the same bytes whatever the thread count, and compress as well as Pillow's writer."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import _deep
from engine._deep import _adler32_combine, encode_png
from engine.imageio import Picture, encode_picture, load_picture

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(11)


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """[(type, body)] of a PNG, every CRC checked."""
    assert data[:8] == _deep.PNG_MAGIC
    out, pos = [], 8
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(typ + body), typ
        out.append((typ, body))
        pos += 12 + n
    return out


def scanlines(data: bytes) -> bytes:
    """The inflated image data; zlib.decompress checks the stream's Adler-32 and its end."""
    return zlib.decompress(b"".join(body for typ, body in chunks(data) if typ == b"IDAT"))


def row_filters(data: bytes, h: int) -> np.ndarray:
    raw = np.frombuffer(scanlines(data), np.uint8)
    return raw.reshape(h, -1)[:, 0]


@pytest.fixture
def many_bands(monkeypatch):
    monkeypatch.setattr(_deep, "ENCODE_BAND_BYTES", 700)  # a few rows a band: dozens of bands
    monkeypatch.setattr(_deep, "PIECE_BYTES", 300)  # and many IDAT chunks


def smooth(h: int, w: int, ch: int) -> np.ndarray:
    """A photo-like 8-bit image: low-frequency colour plus a little grain."""
    y, x = np.mgrid[0:h, 0:w]
    base = [127 + 100 * np.sin(x / (7 + 3 * c) + y / (11 + c)) for c in range(ch)]
    return np.clip(np.stack(base, -1) + RNG.normal(0, 3, (h, w, ch)), 0, 255).astype(np.uint8)


def test_adler32_of_joined_bands_is_the_adler32_of_the_whole():
    for a, b in [(b"", b"x"), (b"abc", b""), (RNG.bytes(70_000), RNG.bytes(123_457)), (b"\xff" * 6000, b"\xff" * 65521)]:
        assert _adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


@pytest.mark.parametrize("ch", [3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (1, 500), (97, 1), (61, 45)])
def test_8bit_png_decodes_to_the_same_pixels_across_many_bands(many_bands, shape, ch):
    px = smooth(*shape, ch)
    rgb, alpha = np.ascontiguousarray(px[..., :3]), px[..., 3].copy() if ch == 4 else None
    data = encode_png(rgb, alpha, {}, workers=3)
    assert len(scanlines(data)) == shape[0] * (shape[1] * ch + 1)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == ("RGBA" if ch == 4 else "RGB")
        assert np.array_equal(np.asarray(im), px)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_the_file_is_the_same_bytes_whatever_the_thread_count(many_bands, dtype):
    px = smooth(80, 33, 4).astype(dtype) * (257 if dtype == np.uint16 else 1)
    files = {w: encode_png(np.ascontiguousarray(px[..., :3]), px[..., 3].copy(), {}, workers=w) for w in (1, 2, 5)}
    assert files[1] == files[2] == files[5]


def test_metadata_chunks_come_before_the_image_data_and_read_back():
    icc = b"\0" * 128 + b"fake profile"
    info = {"icc_profile": icc, "text": {"Title": "Lake", "Comment": "caf\u00e9"}, "dpi": (300, 300),
            "exif": b"Exif\0\0II*\0\x08\0\0\0\0\0"}
    data = encode_png(smooth(10, 12, 3), None, info)
    order = [typ for typ, _ in chunks(data)]
    assert order[0] == b"IHDR" and order[-1] == b"IEND"
    assert max(order.index(t) for t in (b"iCCP", b"iTXt", b"pHYs", b"eXIf")) < order.index(b"IDAT")
    with Image.open(io.BytesIO(data)) as im:
        assert im.info["icc_profile"] == icc
        assert im.text == {"Title": "Lake", "Comment": "caf\u00e9"}
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        assert im.info["exif"].endswith(b"II*\0\x08\0\0\0\0\0")


def test_each_band_takes_the_filter_that_deflates_smaller(monkeypatch):
    w = 40
    monkeypatch.setattr(_deep, "ENCODE_BAND_BYTES", 20 * w * 3)  # bands of 20 rows
    # Top half: rows of one noise plus columns of another. The row above predicts every pixel up to
    # one number per row (Up deflates to nearly nothing), while Paeth's choice among left, above
    # and upper-left changes from pixel to pixel (noise).
    rows = RNG.integers(0, 100, (40, 1, 1))
    cols = RNG.integers(0, 100, (1, w, 3))
    separable = (rows + cols).astype(np.uint8)
    # Bottom half: a smooth picture with grain, where left, above and upper-left all help: Paeth.
    picture = np.concatenate([separable, smooth(40, w, 3)])
    filters = row_filters(encode_png(picture, None, {}), 80)
    assert set(filters[:40]) == {_deep.FILTER_UP}
    assert set(filters[40:]) == {_deep.FILTER_PAETH}


def test_a_real_photo_is_no_bigger_than_pillows_png():
    pic = load_picture(ROOT / "resources" / "samples" / "italy.png")
    ours = encode_picture(pic, "PNG")
    buf = io.BytesIO()
    Image.fromarray(pic.rgb).save(buf, "PNG")  # Pillow's writer at its default level, adaptive filters
    assert len(ours) <= 1.02 * len(buf.getvalue()), (len(ours), len(buf.getvalue()))
    with Image.open(io.BytesIO(ours)) as im:
        assert np.array_equal(np.asarray(im), pic.rgb)


def test_encode_picture_writes_8bit_png_with_alpha_and_16bit_png_through_the_same_writer(tmp_path):
    px = smooth(20, 30, 4)
    data = encode_picture(Picture(rgb=px[..., :3].copy(), alpha=px[..., 3].copy(), info={}), "PNG")
    (tmp_path / "a.png").write_bytes(data)
    back = load_picture(tmp_path / "a.png")
    assert np.array_equal(back.rgb, px[..., :3]) and np.array_equal(back.alpha, px[..., 3])
    deep = px.astype(np.uint16) * 257 + 3
    data = encode_picture(Picture(rgb=deep[..., :3].copy(), alpha=None, info={}), "PNG")
    (tmp_path / "d.png").write_bytes(data)
    assert np.array_equal(load_picture(tmp_path / "d.png").rgb, deep[..., :3])
