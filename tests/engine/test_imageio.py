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
