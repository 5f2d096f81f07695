"""Files users drag in as they come: stale orientation in XMP, float TIFFs, zlib bombs in 16-bit PNGs,
hidden folders in recursive batches."""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import numpy as np
from PIL import Image, PngImagePlugin

from engine.batch import collect_inputs
from engine.imageio import Picture, load_picture, save_picture

XMP_ROTATED = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
               '<rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/>'
               '</rdf:RDF></x:xmpmeta>')


def test_png_xmp_orientation_is_dropped_once_the_pixels_are_upright(tmp_path):
    # Lightroom/Photoshop write the orientation into a PNG's XMP too. The pixels come out upright,
    # so an output that still said "rotate 90" in its XMP would be turned again by viewers that read it.
    im = Image.fromarray(np.zeros((6, 10, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    meta = PngImagePlugin.PngInfo()
    meta.add_itxt("XML:com.adobe.xmp", XMP_ROTATED)
    meta.add_text("parameters", "kept")
    im.save(tmp_path / "in.png", exif=exif.tobytes(), pnginfo=meta)

    pic = load_picture(tmp_path / "in.png")
    assert pic.size == (6, 10)
    assert "tiff:Orientation" not in pic.info["text"]["XML:com.adobe.xmp"]
    assert pic.info["text"]["parameters"] == "kept"
    with Image.open(save_picture(tmp_path / "out.png", pic)) as out:
        assert out.size == (6, 10)
        assert "tiff:Orientation" not in out.info["XML:com.adobe.xmp"]
        assert out.getexif().get(0x0112, 1) == 1


def test_a_dark_float_tiff_stays_dark(tmp_path):
    # 32-bit float TIFFs hold 0..1: scaling each file by its own maximum made a dark one white.
    a = np.linspace(0, 0.25, 60, dtype=np.float32).reshape(6, 10)
    Image.fromarray(a, "F").save(tmp_path / "dark.tif")
    pic = load_picture(tmp_path / "dark.tif")
    assert pic.rgb.dtype == np.uint16
    assert abs(int(pic.rgb.max()) - round(0.25 * 65535)) <= 1
    assert pic.notes == ()


def test_float_tiff_infinities_and_nans(tmp_path):
    a = np.full((2, 3), 0.5, np.float32)
    a[0, 0], a[0, 1], a[0, 2] = np.inf, -np.inf, np.nan
    Image.fromarray(a, "F").save(tmp_path / "odd.tif")
    grey = load_picture(tmp_path / "odd.tif").rgb[..., 0]
    assert grey[0, 0] == 65535 and grey[0, 1] == 0 and grey[0, 2] == 0  # +inf white, -inf and NaN black
    assert abs(int(grey[1, 0]) - 32768) <= 1


def test_a_float_tiff_beyond_one_is_scaled_and_says_so(tmp_path):
    a = np.linspace(0, 4.0, 60, dtype=np.float32).reshape(6, 10)
    Image.fromarray(a, "F").save(tmp_path / "hdr.tif")
    pic = load_picture(tmp_path / "hdr.tif")
    assert int(pic.rgb.max()) == 65535
    assert any("4" in n and "white" in n for n in pic.notes)


def _chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body) & 0xFFFFFFFF)


def test_a_16bit_png_whose_data_inflates_far_past_its_size_is_not_inflated_whole(tmp_path):
    # A 2x2 16-bit PNG needs 2 * (1 + 12) bytes of image data; this one's 64 KB of zlib stream
    # inflates to 64 MB. The header's pixel count passes the bomb check, so the reader must stop at
    # what the header needs rather than allocate all of it.
    rows = b"\0" + bytes(12)
    body = zlib.compress(rows * 2 + bytes(64 << 20), 9)
    png = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 16, 2, 0, 0, 0))
           + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))
    (tmp_path / "bomb.png").write_bytes(png)
    tracemalloc.start()
    try:
        pic = load_picture(tmp_path / "bomb.png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pic.bits == 16 and pic.size == (2, 2) and not pic.rgb.any()
    assert peak < 16 << 20


def test_recursive_batches_skip_hidden_folders(tmp_path):
    # .thumbnails/, .git/, .Trash-1000/: nobody drops a photo folder to upscale those.
    for rel in ("a.png", "sub/b.png", ".thumbnails/normal/a.png", "sub/.cache/c.png", ".d.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (2, 2)).save(tmp_path / rel)
    found = [rel.as_posix() for _, rel in collect_inputs([tmp_path], recursive=True)]
    assert found == ["a.png", "sub/b.png"]
    # Named directly, a file in a hidden folder is still taken, as any named file is.
    hidden = tmp_path / ".thumbnails/normal/a.png"
    assert [src for src, _ in collect_inputs([hidden])] == [hidden]


def test_saving_as_bmp_or_jpeg_says_which_metadata_is_left_out(tmp_path):
    # A Display P3 photo saved as BMP loses its profile (Pillow writes none), so its colours change
    # in every viewer; JPEG cannot hold a PNG's text. The user is told, as for alpha and depth.
    from PIL import ImageCms

    from engine.imageio import format_losses

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x010F] = "Camera"
    pic = Picture(np.zeros((4, 4, 3), np.uint8), info={"icc_profile": icc, "exif": exif.tobytes(),
                                                      "text": {"parameters": "a cat"}})
    bmp = " ".join(format_losses(pic, "BMP"))
    assert "colour profile" in bmp and "EXIF" in bmp and "parameters" in bmp
    jpeg = " ".join(format_losses(pic, "JPEG"))
    assert "parameters" in jpeg and "colour profile" not in jpeg and "EXIF" not in jpeg
    assert format_losses(pic, "PNG") == []
    # What the notes say is what the files hold.
    with Image.open(save_picture(tmp_path / "x.bmp", pic)) as im:
        assert "icc_profile" not in im.info and not im.getexif()
    with Image.open(save_picture(tmp_path / "x.jpg", pic)) as im:
        assert im.info["icc_profile"] == icc and im.getexif()[0x010F] == "Camera"


def test_a_multi_page_tiff_is_called_that_not_an_animation(tmp_path):
    pages = [Image.new("RGB", (4, 3), c) for c in ("red", "green")]
    pages[0].save(tmp_path / "scan.tif", save_all=True, append_images=pages[1:])
    pic = load_picture(tmp_path / "scan.tif")
    assert pic.notes == ("multi-page TIFF: using the first of 2 pages",)
    assert pic.rgb[0, 0].tolist() == [255, 0, 0]


def test_photoshop_tiff_blocks_are_not_copied_as_exif_and_a_jpeg_still_saves(tmp_path):
    # Photoshop's TIFFs carry its image resources (34377), layers (37724), XMP (700) and IPTC (33723)
    # in the first IFD, which Pillow hands over as "EXIF": 100 KB of it made every JPEG save fail
    # ("EXIF data is too long") and stuffed stale copies into PNG outputs.
    from PIL import TiffImagePlugin

    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    for tag, typ, value in ((34377, 7, bytes(100_000)), (37724, 7, bytes(10)), (700, 1, b"<x:xmpmeta/>"),
                            (33723, 7, bytes(8)), (0x010F, 2, "Scanner")):
        ifd[tag] = value
        ifd.tagtype[tag] = typ
    Image.new("RGB", (8, 8), "red").save(tmp_path / "ps.tif", tiffinfo=ifd)
    pic = load_picture(tmp_path / "ps.tif")
    kept = Image.Exif()
    kept.load(pic.info["exif"])
    assert kept[0x010F] == "Scanner" and not {34377, 37724, 700, 33723} & set(kept)
    with Image.open(save_picture(tmp_path / "ps.jpg", pic)) as im:
        assert im.getexif()[0x010F] == "Scanner"


def test_exif_too_long_for_jpeg_is_left_out_with_a_note_not_a_failed_save(tmp_path):
    from engine.imageio import format_losses

    exif = Image.Exif()
    exif[0x010F] = "Camera"
    exif[0x9286] = b"ASCII\0\0\0" + b"x" * 70_000  # a UserComment larger than a JPEG's EXIF segment
    pic = Picture(np.zeros((4, 4, 3), np.uint8), info={"exif": exif.tobytes()})
    with Image.open(save_picture(tmp_path / "x.png", pic)) as im:
        assert im.getexif()[0x010F] == "Camera"  # PNG holds it
    with Image.open(save_picture(tmp_path / "x.jpg", pic)) as im:
        assert not im.getexif()
    assert any("EXIF" in n and "64 KB" in n for n in format_losses(pic, "JPEG"))


def test_a_16bit_tiff_save_says_its_exif_is_left_out(tmp_path):
    # Our 16-bit TIFF writer has no EXIF: the camera data went missing without a word.
    from engine.imageio import format_losses

    exif = Image.Exif()
    exif[0x010F] = "Camera"
    pic = Picture(np.zeros((4, 4, 3), np.uint16), info={"exif": exif.tobytes()})
    assert any("EXIF" in n for n in format_losses(pic, "TIFF"))
    assert format_losses(pic, "PNG") == []
    with Image.open(save_picture(tmp_path / "x.png", pic)) as im:
        assert im.getexif()[0x010F] == "Camera"
    assert not any("EXIF" in n for n in format_losses(pic.with_pixels(np.zeros((4, 4, 3), np.uint8)), "TIFF"))


def _png(w: int, h: int, bits: int, colour_type: int, rows: bytes, extra: bytes = b"") -> bytes:
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, colour_type, 0, 0, 0)) + extra
            + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


def test_16bit_pngs_keep_their_transparent_colour(tmp_path):
    # tRNS in a 16-bit RGB or grey PNG makes one colour fully transparent: it came out opaque.
    rgb = np.zeros((2, 2, 3), ">u2")
    rgb[0, 0] = (1000, 2000, 3000)
    rows = b"".join(b"\0" + rgb[y].tobytes() for y in range(2))
    (tmp_path / "rgb.png").write_bytes(_png(2, 2, 16, 2, rows, _chunk(b"tRNS", struct.pack(">HHH", 1000, 2000, 3000))))
    pic = load_picture(tmp_path / "rgb.png")
    assert pic.bits == 16 and pic.alpha is not None and pic.alpha.tolist() == [[0, 65535], [65535, 65535]]

    grey = np.array([[1000, 2000], [3000, 1000]], ">u2")
    rows = b"".join(b"\0" + grey[y].tobytes() for y in range(2))
    (tmp_path / "grey.png").write_bytes(_png(2, 2, 16, 0, rows, _chunk(b"tRNS", struct.pack(">H", 1000))))
    pic = load_picture(tmp_path / "grey.png")
    assert pic.bits == 16 and pic.rgb[0, 1].tolist() == [2000] * 3
    assert pic.alpha is not None and pic.alpha.tolist() == [[0, 65535], [65535, 0]]
    # Without tRNS nothing changes.
    (tmp_path / "plain.png").write_bytes(_png(2, 2, 16, 0, rows))
    assert load_picture(tmp_path / "plain.png").alpha is None


def test_lossless_webp_keeps_the_colour_under_transparent_pixels(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (200, 100, 50)
    alpha = np.full((4, 4), 255, np.uint8)
    alpha[0] = 0
    back = load_picture(save_picture(tmp_path / "x.webp", Picture(rgb, alpha)))
    assert np.array_equal(back.rgb, rgb) and np.array_equal(back.alpha, alpha)
