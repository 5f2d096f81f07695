"""Image files in and out (`engine.imageio`): the resolution kept in every output format, and the
size said when a picture is over the pixel limit."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from engine.imageio import ImageError, format_losses, load_picture, save_picture


def _photo() -> np.ndarray:
    return (np.random.default_rng(0).random((12, 16, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("ext", ["bmp", "webp", "png", "jpg", "tif"])
def test_a_300_dpi_scan_stays_300_dpi_in_every_output_format(tmp_path, ext):
    """BMP got Pillow's default 96 dpi and WebP none at all, with no word of it."""
    Image.fromarray(_photo()).save(tmp_path / "scan.jpg", dpi=(300, 300), quality=95)
    pic = load_picture(tmp_path / "scan.jpg")
    out = save_picture(tmp_path / f"out.{ext}", pic)
    assert load_picture(out).info["dpi"] == pytest.approx((300, 300), abs=0.01)
    assert not format_losses(pic, {"jpg": "JPEG", "tif": "TIFF"}.get(ext, ext.upper()))


def test_a_webp_keeps_its_resolution_in_its_exif_for_other_readers(tmp_path):
    """WebP has no resolution field: EXIF's XResolution is the one readers take, and a camera's
    72 there (its JFIF says 300) must not be what the output claims."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x011A] = exif[0x011B] = 72.0
    Image.fromarray(_photo()).save(tmp_path / "scan.jpg", dpi=(300, 300), exif=exif.tobytes(), quality=95)
    save_picture(tmp_path / "out.webp", load_picture(tmp_path / "scan.jpg"))
    with Image.open(tmp_path / "out.webp") as im:
        got = im.getexif()
    assert (float(got[0x011A]), float(got[0x011B]), got[0x0128]) == (300.0, 300.0, 2)
    assert got[0x010F] == "TestCam"  # the rest of the EXIF kept


def test_a_webp_whose_exif_gives_its_resolution_in_centimetres_is_read_in_dpi(tmp_path):
    exif = Image.Exif()
    exif[0x011A] = exif[0x011B] = 100.0
    exif[0x0128] = 3  # per cm: 254 dpi
    Image.fromarray(_photo()).save(tmp_path / "cm.webp", exif=exif.tobytes(), lossless=True)
    assert load_picture(tmp_path / "cm.webp").info["dpi"] == pytest.approx((254, 254))


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header says w x h (8-bit grey) and whose data is one row: opened, never decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * (w + 1)))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("w, h, said", [(15000, 15000, "15000x15000 is 225 Mpx"),
                                        # over twice the limit Pillow refuses it itself, naming only the count
                                        (100_000, 100_000, "it has 10000 Mpx")])
def test_a_picture_over_the_limit_is_refused_with_its_size(tmp_path, w, h, said):
    """'over the 200 Mpx limit' said neither how large the picture was nor its sides."""
    (tmp_path / "big.png").write_bytes(_png_header(w, h))
    with pytest.raises(ImageError, match=rf"big\.png: image too large: {said}, over the 200 Mpx limit"):
        load_picture(tmp_path / "big.png")
