"""Image files: orientation, depth, alpha, metadata, and clear errors for broken or hostile input."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from engine.imageio import ImageError, Picture, load_picture, read_mask, save_picture

RNG = np.random.default_rng(0)


def rgb8(h=12, w=16):
    return (RNG.random((h, w, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_16bit_round_trip_is_exact(tmp_path, ext, with_alpha):
    rgb = (RNG.random((9, 13, 3)) * 65535).astype(np.uint16)
    alpha = (RNG.random((9, 13)) * 65535).astype(np.uint16) if with_alpha else None
    p = save_picture(tmp_path / f"x.{ext}", Picture(rgb, alpha))
    back = load_picture(p)
    assert back.rgb.dtype == np.uint16 and np.array_equal(back.rgb, rgb)
    assert (back.alpha is None) == (alpha is None)
    if alpha is not None:
        assert np.array_equal(back.alpha, alpha)


def test_16bit_png_written_by_other_encoders(tmp_path):
    """Files from other software use Sub/Average/Paeth filters; decode a hand-built one per filter."""
    rgb = (RNG.random((4, 5, 3)) * 65535).astype(np.uint16)
    rows = rgb.astype(">u2").reshape(4, -1).view(np.uint8).astype(np.int32)
    bpp = 6
    raw = b""
    prev = np.zeros(rows.shape[1], np.int32)
    for y, f in enumerate([1, 3, 4, 2]):
        cur = rows[y]
        enc = np.zeros_like(cur)
        for i in range(cur.size):
            a = cur[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pred = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else (b if abs(p - b) <= abs(p - c) else c)
            enc[i] = (cur[i] - pred) & 255
        raw += bytes([f]) + enc.astype(np.uint8).tobytes()
        prev = cur

    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 5, 4, 16, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    (tmp_path / "f.png").write_bytes(data)
    assert np.array_equal(load_picture(tmp_path / "f.png").rgb, rgb)


def png16_filtered(px, filters):
    """A 16-bit RGB(A) PNG of `px` with the given filter per row (one IDAT)."""
    from .test_deep_memory import png16

    return png16(px, filters)


@pytest.mark.parametrize("h,w,ch", [(37, 23, 3), (23, 37, 4), (1, 9, 3), (9, 1, 4), (1, 1, 3)])
@pytest.mark.parametrize("rows", ["mixed", "paeth", "average"])
def test_16bit_png_with_average_and_paeth_rows(tmp_path, h, w, ch, rows):
    """Adaptive filtering (GIMP, ImageMagick, libpng) mixes all five filters row by row."""
    px = (RNG.random((h, w, ch)) * 65535).astype(np.uint16)
    px[h // 2:, : w // 2] = 1234  # flat areas take other Paeth branches than noise
    filters = {"mixed": RNG.integers(0, 5, h), "paeth": np.full(h, 4), "average": np.full(h, 3)}[rows]
    (tmp_path / "f.png").write_bytes(png16_filtered(px, filters))
    pic = load_picture(tmp_path / "f.png")
    assert np.array_equal(pic.rgb, px[..., :3])
    if ch == 4:
        assert np.array_equal(pic.alpha, px[..., 3])


def test_damaged_16bit_png_data_is_reported(tmp_path):
    px = (RNG.random((8, 8, 3)) * 65535).astype(np.uint16)
    data = png16_filtered(px, np.full(8, 4))
    i = data.index(b"IDAT") + 4
    (tmp_path / "z.png").write_bytes(data[:i + 10] + bytes(20) + data[i + 30:])  # garbage in the zlib stream
    with pytest.raises(ImageError, match="damaged"):
        load_picture(tmp_path / "z.png")
    bad = png16_filtered(px, [4, 4, 4, 7, 4, 4, 4, 4])  # no filter type 7
    (tmp_path / "f.png").write_bytes(bad)
    with pytest.raises(ImageError, match="damaged"):
        load_picture(tmp_path / "f.png")


def test_exif_orientation_applied_and_reset(tmp_path):
    img = rgb8(10, 20)
    im = Image.fromarray(img)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    exif[0x010F] = "TestCam"
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    pic = load_picture(tmp_path / "r.jpg")
    assert pic.rgb.shape == (20, 10, 3)
    out = save_picture(tmp_path / "o.jpg", pic)
    with Image.open(out) as im2:
        ex = im2.getexif()
    assert ex.get(0x0112) == 1 and ex.get(0x010F) == "TestCam"


def test_icc_profile_and_png_text_carried(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "seed 7")
    Image.fromarray(rgb8()).save(tmp_path / "m.png", icc_profile=icc, pnginfo=info, dpi=(300, 300))
    pic = load_picture(tmp_path / "m.png")
    for ext in ("png", "tif", "jpg", "webp"):
        with Image.open(save_picture(tmp_path / f"o.{ext}", pic)) as out:
            assert out.info.get("icc_profile") == icc, ext
    with Image.open(tmp_path / "o.png") as out:
        assert out.info["parameters"] == "seed 7" and round(out.info["dpi"][0]) == 300


def test_alpha_palette_grey_cmyk(tmp_path):
    rgba = np.dstack([rgb8(), np.tile(np.arange(16, dtype=np.uint8) * 16, (12, 1))])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    pic = load_picture(tmp_path / "a.png")
    assert np.array_equal(pic.alpha, rgba[..., 3]) and np.array_equal(pic.rgb, rgba[..., :3])
    pal = Image.fromarray(rgb8()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    assert load_picture(tmp_path / "p.png").alpha is not None
    Image.fromarray(rgb8()[..., 0]).save(tmp_path / "g.png")
    g = load_picture(tmp_path / "g.png").rgb
    assert np.array_equal(g[..., 0], g[..., 1])
    Image.fromarray(rgb8()).convert("CMYK").save(tmp_path / "c.jpg")
    assert load_picture(tmp_path / "c.jpg").rgb.shape == (12, 16, 3)
    frames = [Image.fromarray(rgb8()) for _ in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert "first of 3 frames" in load_picture(tmp_path / "anim.gif").notes[0]


def _png_header_only(w, h):
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("name,data,match", [
    ("empty.png", b"", "empty"),
    ("garbage.jpg", b"hello, not an image" * 20, "not a supported image"),
    ("bomb.png", _png_header_only(100_000, 100_000), "Mpx"),
    ("trunc.png", None, "damaged or truncated"),
])
def test_broken_files_give_clear_errors(tmp_path, name, data, match):
    p = tmp_path / name
    if data is None:
        Image.fromarray(rgb8(64, 64)).save(tmp_path / "ok.png")
        data = (tmp_path / "ok.png").read_bytes()[:200]
    p.write_bytes(data)
    with pytest.raises(ImageError, match=match):
        load_picture(p)


def test_folder_missing_and_mask_size(tmp_path):
    with pytest.raises(ImageError, match="is a folder"):
        load_picture(tmp_path)
    with pytest.raises(ImageError, match="no such file"):
        load_picture(tmp_path / "nope.png")
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(ImageError, match="mask is 6x5 but the image is 16x12"):
        read_mask(tmp_path / "m.png", (16, 12))


def test_16bit_grey_mask_is_scaled_not_clipped(tmp_path):
    """Pillow's convert("L") clips 16-bit grey at 255: a "black" of 300 read as fill everywhere."""
    m = np.full((6, 8), 300, np.uint16)  # black, as some editors write it in 16 bits
    m[1:3, 2:6] = 65535  # white: fill
    m[4, :4] = 40000  # soft edge above half range: fill
    m[4, 4:] = 30000  # soft edge below half range: keep
    Image.fromarray(m).save(tmp_path / "m16.png")
    assert (tmp_path / "m16.png").read_bytes()[24] == 16  # IHDR bit depth: really a 16-bit PNG
    got = read_mask(tmp_path / "m16.png", (8, 6))
    want = np.zeros((6, 8), bool)
    want[1:3, 2:6] = True
    want[4, :4] = True
    assert np.array_equal(got, want)


def test_saves_are_atomic_and_never_clobber(tmp_path):
    p = save_picture(tmp_path / "x.png", Picture(rgb8()))
    before = p.read_bytes()
    with pytest.raises(ImageError, match="already exists"):
        save_picture(p, Picture(rgb8()))
    assert p.read_bytes() == before
    with pytest.raises(ImageError, match="unknown output format"):
        save_picture(tmp_path / "x.xyz", Picture(rgb8()))
    save_picture(p, Picture(rgb8()), overwrite=True)
    assert not list(tmp_path.glob(".*part"))


def test_saved_files_follow_umask_or_keep_the_replaced_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        p = save_picture(tmp_path / "m.png", Picture(rgb8()))
        assert p.stat().st_mode & 0o777 == 0o644
        os.chmod(p, 0o640)
        save_picture(p, Picture(rgb8()), overwrite=True)
        assert p.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_saving_works_without_os_fchmod(tmp_path, monkeypatch):
    """Windows has os.fchmod only from Python 3.13: image saves and model conversion must not need it."""
    import os

    monkeypatch.delattr(os, "fchmod", raising=False)
    p = save_picture(tmp_path / "w.png", Picture(rgb8()))
    assert np.array_equal(load_picture(p).rgb.shape, (12, 16, 3))
    save_picture(p, Picture(rgb8()), overwrite=True)
    assert not list(tmp_path.glob(".*part"))


def _icc(space: bytes, pcs: bytes, tags: dict[bytes, bytes], cls: bytes = b"mntr") -> bytes:
    """A minimal ICC v2 profile: the 128-byte header, a tag table and the tags' data."""
    table, body = b"", b""
    off = 128 + 4 + 12 * len(tags)
    for sig, data in tags.items():
        data += b"\0" * (-len(data) % 4)
        table += struct.pack(">4sII", sig, off + len(body), len(data))
        body += data
    size = off + len(body)
    d50 = struct.pack(">iii", 63190, 65536, 54061)  # 0.9642, 1.0, 0.8249 in s15Fixed16
    header = struct.pack(">I4sI4s4s4s12s4s4sI4s4s8sI", size, b"none", 0x02100000, cls, space, pcs, bytes(12),
                         b"acsp", b"APPL", 0, b"none", b"none", bytes(8), 0) + d50 + b"none" + bytes(44)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def _desc(text: str) -> bytes:
    return b"desc" + bytes(4) + struct.pack(">I", len(text) + 1) + text.encode() + b"\0" + bytes(8) + bytes(67)


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + struct.pack(">iii", *(round(v * 65536) for v in (x, y, z)))


def gray_profile() -> bytes:
    """A grey profile with gamma 2.2 (like Photoshop's 'Gray Gamma 2.2')."""
    return _icc(b"GRAY", b"XYZ ", {b"desc": _desc("Gray Gamma 2.2"), b"wtpt": _xyz(0.9642, 1.0, 0.8249),
                                   b"kTRC": b"curv" + bytes(4) + struct.pack(">IH", 1, 563)})


def cmyk_profile_cyan_only() -> bytes:
    """A CMYK printer profile whose A2B0 table (lut16, a 2-point grid) sees only the cyan ink, as
    neutral grey: Lab (100 (1 - C), 0, 0). Through it any CMYK image becomes grey, dark where it
    has cyan; Pillow's plain conversion keeps the colours."""
    lut = struct.pack(">4sI4B", b"mft2", 0, 4, 3, 2, 0) + struct.pack(">9i", 65536, 0, 0, 0, 65536, 0, 0, 0, 65536)
    lut += struct.pack(">HH", 2, 2) + struct.pack(">8H", *([0, 65535] * 4))
    for c in (0, 1):  # grid order: C slowest, then M, Y, K
        lut += struct.pack(">3H", 0xFF00 * (1 - c), 0x8080, 0x8080) * 8  # v2 Lab: L 100 = 0xFF00, a = b = 0 at 0x8080
    lut += struct.pack(">6H", *([0, 65535] * 3))
    return _icc(b"CMYK", b"Lab ", {b"desc": _desc("Cyan-only grey"), b"wtpt": _xyz(0.9642, 1.0, 0.8249),
                                   b"A2B0": lut}, cls=b"prtr")


def test_icc_profile_of_another_colour_space_is_not_put_on_rgb_pixels(tmp_path):
    """A grey photo's Gray profile (e.g. before colorizing) must not tag an RGB file: viewers
    would reject or misread it. RGB profiles are kept, in 8- and 16-bit files alike."""
    from engine.imageio import icc_colour_space

    gray, srgb = gray_profile(), ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert (icc_colour_space(gray), icc_colour_space(srgb), icc_colour_space(b"junk")) == ("GRAY", "RGB", None)
    Image.fromarray(rgb8()[..., 0]).save(tmp_path / "g.jpg", icc_profile=gray)
    pic = load_picture(tmp_path / "g.jpg")
    assert pic.rgb.shape == (12, 16, 3) and "icc_profile" not in pic.info
    # Even a Picture that carries one (made elsewhere) is written without it.
    tagged = Picture(rgb8(), info={"icc_profile": gray})
    deep = Picture((RNG.random((5, 6, 3)) * 65535).astype(np.uint16), info={"icc_profile": gray})
    for name, p in (("o.jpg", tagged), ("o.png", tagged), ("o.tif", tagged), ("d.png", deep), ("d.tif", deep)):
        with Image.open(save_picture(tmp_path / name, p)) as out:
            assert "icc_profile" not in out.info, name
    # A 16-bit TIFF keeps an RGB profile (it used to drop every profile).
    d = save_picture(tmp_path / "s.tif", Picture(deep.rgb, info={"icc_profile": srgb}))
    with Image.open(d) as out:
        assert out.info.get("icc_profile") == srgb
    back = load_picture(d)
    assert np.array_equal(back.rgb, deep.rgb) and back.info["icc_profile"] == srgb


@pytest.mark.parametrize("ext", ["jpg", "tif"])
def test_cmyk_is_converted_through_its_profile_and_the_profile_dropped(tmp_path, ext):
    src = rgb8(8, 8)
    Image.fromarray(src).convert("CMYK").save(tmp_path / f"c.{ext}", icc_profile=cmyk_profile_cyan_only(),
                                              quality=100)  # C = 255 - R
    pic = load_picture(tmp_path / f"c.{ext}")
    assert "icc_profile" not in pic.info
    rgb = pic.rgb.astype(np.int32)
    assert np.abs(rgb - rgb[..., :1]).max() <= 4  # neutral: the profile's colours, not Pillow's
    assert np.corrcoef(rgb[..., 0].ravel(), src[..., 0].ravel())[0, 1] > 0.95  # bright where there is no cyan
    with Image.open(save_picture(tmp_path / "o.png", pic)) as out:
        assert "icc_profile" not in out.info
    # A profile LittleCMS cannot use: Pillow's plain conversion, still untagged.
    Image.fromarray(rgb8(8, 8)).convert("CMYK").save(tmp_path / "b.jpg", icc_profile=_icc(b"CMYK", b"Lab ", {}))
    plain = load_picture(tmp_path / "b.jpg")
    assert np.ptp(plain.rgb) > 100 and "icc_profile" not in plain.info


def tiff16(rgb, *, tile=None, rows_per_strip=None, compression=1, big_endian=False):
    """A 16-bit RGB TIFF made by hand: tiled (`tile` px square, edge tiles padded with junk past
    the image as the spec stores them) or in strips; `compression` only sets the tag."""
    h, w, ch = rgb.shape
    e = ">" if big_endian else "<"
    blocks = []
    if tile:
        for ty in range(0, h, tile):
            for tx in range(0, w, tile):
                block = np.full((tile, tile, ch), 0xBEEF, np.uint16)  # padding: must never show
                part = rgb[ty:ty + tile, tx:tx + tile]
                block[:part.shape[0], :part.shape[1]] = part
                blocks.append(block.astype(e + "u2").tobytes())
        layout = [(322, 3, 1, tile), (323, 3, 1, tile)]
        offs_tag, counts_tag = 324, 325
    else:
        n = rows_per_strip or h
        blocks = [rgb[y:y + n].astype(e + "u2").tobytes() for y in range(0, h, n)]
        layout = [(278, 3, 1, n)]
        offs_tag, counts_tag = 273, 279
    entries = sorted([(256, 3, 1, w), (257, 3, 1, h), (258, 3, ch, None), (259, 3, 1, compression),
                      (262, 3, 1, 2), (277, 3, 1, ch), (284, 3, 1, 1), (offs_tag, 4, len(blocks), None),
                      (counts_tag, 4, len(blocks), None)] + layout)
    ifd_size = 2 + 12 * len(entries) + 4
    extra_off = 8 + ifd_size
    bits = struct.pack(e + "3H", 16, 16, 16)
    offs_at, counts_at = extra_off + len(bits), extra_off + len(bits) + 4 * len(blocks)
    data_at = counts_at + 4 * len(blocks)
    offsets, pos = [], data_at
    for b in blocks:
        offsets.append(pos)
        pos += len(b)
    out = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "IH", 8, len(entries))
    for tag, typ, count, val in entries:
        if tag == 258:
            val = extra_off
        elif tag == offs_tag:
            val = offs_at if count > 1 else offsets[0]
        elif tag == counts_tag:
            val = counts_at if count > 1 else len(blocks[0])
        out += struct.pack(e + "HHI", tag, typ, count) + (struct.pack(e + "HH", val, 0) if typ == 3 and count == 1
                                                          else struct.pack(e + "I", val))
    out += struct.pack(e + "I", 0) + bits + struct.pack(e + f"{len(blocks)}I", *offsets)
    out += struct.pack(e + f"{len(blocks)}I", *(len(b) for b in blocks)) + b"".join(blocks)
    return out


@pytest.mark.parametrize("layout", [{"tile": 16}, {"tile": 16, "big_endian": True}, {"rows_per_strip": 7}])
def test_16bit_tiff_tiles_and_strips_that_overhang_the_image(tmp_path, layout):
    """Right-edge tiles are stored at full tile width: their rows must be read at that stride."""
    rgb = (RNG.random((21, 37, 3)) * 65535).astype(np.uint16)  # 3 x 2 tiles of 16, overhanging both ways
    (tmp_path / "t.tif").write_bytes(tiff16(rgb, **layout))
    pic = load_picture(tmp_path / "t.tif")
    assert pic.rgb.dtype == np.uint16 and np.array_equal(pic.rgb, rgb) and not pic.notes


def test_16bit_tiff_reader_takes_pillow_10_plain_tuple_tiles(tmp_path):
    """Pillow 10 hands out tiles as plain (codec, extents, offset, args) tuples, without field names."""
    from engine._deep import read_tiff16

    rgb = (RNG.random((21, 37, 3)) * 65535).astype(np.uint16)
    p = tmp_path / "t.tif"
    p.write_bytes(tiff16(rgb, tile=16))
    with Image.open(p) as im:
        tiles = [tuple(t) for t in im.tile]
    assert np.array_equal(read_tiff16(tiles, (37, 21), p)[0], rgb)


def test_a_16bit_file_read_with_8_bits_says_so(tmp_path):
    """Compressed 16-bit TIFFs go through libtiff, which Pillow reduces to 8 bits: tell the user."""
    rgb = (RNG.random((6, 8, 3)) * 65535).astype(np.uint16)
    (tmp_path / "z.tif").write_bytes(tiff16(rgb, compression=1))
    assert not load_picture(tmp_path / "z.tif").notes
    Image.fromarray(rgb8(6, 8)).save(tmp_path / "c.tif", compression="tiff_deflate")
    assert not load_picture(tmp_path / "c.tif").notes  # an 8-bit file loses nothing
    import zlib as _z

    # The same pixels deflate-compressed (compression 8): same layout, one zlib stream per strip.
    raw = tiff16(rgb)
    data = rgb.astype("<u2").tobytes()
    body = _z.compress(data)
    head = raw[:len(raw) - len(data)]
    fixed = bytearray(head.replace(struct.pack("<HHIHH", 259, 3, 1, 1, 0), struct.pack("<HHIHH", 259, 3, 1, 8, 0)))
    i = fixed.find(struct.pack("<HHI", 279, 4, 1))
    fixed[i + 8:i + 12] = struct.pack("<I", len(body))
    (tmp_path / "d.tif").write_bytes(bytes(fixed) + body)
    pic = load_picture(tmp_path / "d.tif")
    assert pic.rgb.dtype == np.uint8 and np.abs(pic.rgb.astype(int) - (rgb >> 8)).max() <= 1
    assert any("16-bit TIFF read with 8 bits" in n for n in pic.notes), pic.notes


def test_dark_16bit_grey_stays_16bit(tmp_path):
    """Pillow opens some 16-bit grey files as mode "I" (16-bit PGM; 16-bit PNG on Pillow 10.0): one
    whose values all sit below 256 is still 16-bit, not an 8-bit image 257 times brighter."""
    dark = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 12)  # max 228 of 65535
    (tmp_path / "d.pgm").write_bytes(b"P5 5 4 65535\n" + dark.astype(">u2").tobytes())
    Image.fromarray(dark).save(tmp_path / "d.png")
    for name in ("d.pgm", "d.png"):
        pic = load_picture(tmp_path / name)
        assert pic.rgb.dtype == np.uint16 and np.array_equal(pic.rgb[..., 0], dark), name


def test_tiff_layout_tags_are_not_copied_as_exif(tmp_path):
    """A TIFF's first IFD is what Pillow calls its EXIF: its strip offsets and sizes describe that
    file only (and Pillow 10 cannot re-encode several strips' offsets at all)."""
    rgb = (RNG.random((21, 37, 3)) * 65535).astype(np.uint16)
    (tmp_path / "s.tif").write_bytes(tiff16(rgb, rows_per_strip=4))
    im = Image.fromarray(rgb8(20, 30))
    exif = im.getexif()
    exif[0x010F] = "TestCam"
    im.save(tmp_path / "e.tif", exif=exif)
    for name in ("s.tif", "e.tif"):
        pic = load_picture(tmp_path / name)
        with Image.open(save_picture(tmp_path / f"{name}.jpg", pic)) as out:
            tags = out.getexif()
        assert not {256, 257, 258, 273, 279} & set(tags), (name, dict(tags))
    assert tags.get(0x010F) == "TestCam"


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_files_keep_their_resolution(tmp_path, ext):
    rgb = (RNG.random((6, 7, 3)) * 65535).astype(np.uint16)
    p = save_picture(tmp_path / f"x.{ext}", Picture(rgb, None, info={"dpi": (300, 150)}))
    with Image.open(p) as im:  # another reader sees it too
        assert tuple(round(float(d)) for d in im.info["dpi"]) == (300, 150)
    back = load_picture(p)
    assert back.rgb.dtype == np.uint16 and np.array_equal(back.rgb, rgb)
    assert tuple(round(float(d)) for d in back.info["dpi"]) == (300, 150)


def test_bmp_with_transparency_is_flattened_onto_white_as_other_readers_would_see_it(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)  # black under the transparent half
    alpha = np.full((4, 6), 255, np.uint8)
    alpha[:, :3] = 0
    p = save_picture(tmp_path / "x.bmp", Picture(rgb, alpha))
    with Image.open(p) as im:
        px = np.asarray(im.convert("RGB"))
    assert (px[:, :3] == 255).all() and (px[:, 3:] == 0).all()


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("dpi", [(float("nan"), float("nan")), (0, 0), ("x", 1), (300,)])
def test_16bit_files_with_a_meaningless_resolution_still_save(tmp_path, ext, dpi):
    rgb = (RNG.random((4, 5, 3)) * 65535).astype(np.uint16)
    p = save_picture(tmp_path / f"x.{ext}", Picture(rgb, None, info={"dpi": dpi}))
    assert np.array_equal(load_picture(p).rgb, rgb)
