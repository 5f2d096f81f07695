"""What a photographer's file keeps through the editor: no made-up resolution or EXIF, EXIF that
describes the pixels written, no colour invented in a black-and-white scan, and transparency that
upscales without ringing (the fidelity audit's D3, D5, D6, D7, D8)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.imageio import encode_picture, format_losses, load_picture
from engine.tensors import is_grey, near_grey, rgb_to_ycbcr
from engine.upscale import upscale_alpha

EXIF_IFD, PIXEL_X, PIXEL_Y = 0x8769, 0xA002, 0xA003


@pytest.fixture(scope="module")
def scene(sample_photo):
    """A 32 x 48 crop of the sample photo (a real scene: sky, walls, shadows)."""
    h, w = sample_photo.shape[:2]
    return np.ascontiguousarray(sample_photo[h // 3:h // 3 + 32, w // 3:w // 3 + 48])


@pytest.fixture(scope="module")
def bw_scan(scene):
    """The scene as an RGB scan of a black-and-white print: its luma plus independent noise of up
    to 2 levels per channel (the auditor's bw_scan_noisy: spread up to 4, mean chroma about 0)."""
    luma = np.round(rgb_to_ycbcr(scene)[..., :1]).astype(np.int16)
    noise = np.random.default_rng(3).integers(-2, 3, scene.shape)
    return np.clip(luma + noise, 0, 255).astype(np.uint8)


def spread(a):
    """Each pixel's channel spread (max - min), a plain measure of its chroma."""
    a = np.asarray(a, np.int32)
    return a.max(axis=-1) - a.min(axis=-1)


def decoded(data):
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


# D3 --------------------------------------------------------------------------------------------

def test_a_tiff_without_resolution_tags_gives_outputs_no_resolution(tmp_path, scene):
    """OpenCV and Pillow (without dpi=) write TIFFs with no XResolution/YResolution, which Pillow
    reads as (1, 1): copied, every output claimed 1 dpi (a 48 px photo 48 inches wide in print)."""
    Image.fromarray(scene).save(tmp_path / "plain.tif")
    Image.fromarray(scene).save(tmp_path / "scan.tif", dpi=(300, 300))
    pic = load_picture(tmp_path / "plain.tif")
    assert "dpi" not in pic.info
    assert decoded(encode_picture(pic, "PNG")).info.get("dpi") is None  # no pHYs
    assert decoded(encode_picture(pic, "JPEG")).info.get("jfif_unit") == 0  # density without a unit
    assert 282 not in decoded(encode_picture(pic, "TIFF")).tag_v2
    # A resolution the file states stays.
    scan = load_picture(tmp_path / "scan.tif")
    assert tuple(scan.info["dpi"]) == (300, 300)
    assert decoded(encode_picture(scan, "PNG")).info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_a_jpeg_without_a_resolution_does_not_get_pillows_72(tmp_path, scene):
    """Pillow reports 72 dpi for a JPEG with EXIF but no resolution anywhere; one in EXIF alone counts."""
    ex = Image.Exif()
    ex[0x010F] = "Camera"
    Image.fromarray(scene).save(tmp_path / "none.jpg", exif=ex.tobytes())
    ex[0x011A], ex[0x011B], ex[0x0128] = 240.0, 240.0, 2
    Image.fromarray(scene).save(tmp_path / "exif240.jpg", exif=ex.tobytes())
    assert "dpi" not in load_picture(tmp_path / "none.jpg").info
    assert tuple(load_picture(tmp_path / "exif240.jpg").info["dpi"]) == (240, 240)


# D8 --------------------------------------------------------------------------------------------

def test_a_file_without_exif_gets_no_stub_exif_and_no_note(tmp_path, scene):
    """A TIFF's first IFD reads as EXIF; with its layout tags gone only the reset Orientation=1
    was left, written into every output, and a BMP or 16-bit TIFF output said it kept "no EXIF
    (camera data, date)" that the file never had."""
    Image.fromarray(scene).save(tmp_path / "plain.tif")
    Image.fromarray(scene).save(tmp_path / "res.tif", dpi=(300, 300))
    for name in ("plain.tif", "res.tif"):
        pic = load_picture(tmp_path / name)
        assert "exif" not in pic.info
        assert not any("EXIF" in n for n in format_losses(pic, "BMP"))
        deep = pic.with_pixels(pic.rgb.astype(np.uint16) * 257)
        assert not any("EXIF" in n for n in format_losses(deep, "TIFF"))
        for fmt in ("PNG", "JPEG", "WEBP"):
            assert 0x0112 not in decoded(encode_picture(pic, fmt)).getexif(), fmt
    # An EXIF with nothing but the orientation: the pixels are turned, the tag has nothing left to say.
    ex = Image.Exif()
    ex[0x0112] = 6
    Image.fromarray(scene).save(tmp_path / "turned.jpg", exif=ex.tobytes())
    pic = load_picture(tmp_path / "turned.jpg")
    assert pic.size == (32, 48) and "exif" not in pic.info


def test_real_exif_is_kept(tmp_path, scene):
    ex = Image.Exif()
    ex[0x0112], ex[0x010F], ex[0x0110] = 6, "Camera", "Model X"
    ex.get_ifd(EXIF_IFD)[0x9003] = "2024:05:01 10:00:00"  # DateTimeOriginal
    Image.fromarray(scene).save(tmp_path / "cam.jpg", exif=ex.tobytes())
    Image.fromarray(scene).save(tmp_path / "cam.tif", exif=ex.tobytes())
    for name in ("cam.jpg", "cam.tif"):
        pic = load_picture(tmp_path / name)
        assert "EXIF" in " ".join(format_losses(pic, "BMP"))
        out = decoded(encode_picture(pic, "PNG")).getexif()
        assert out[0x010F] == "Camera" and out[0x0112] == 1
        assert out.get_ifd(EXIF_IFD)[0x9003] == "2024:05:01 10:00:00"


# D7 --------------------------------------------------------------------------------------------

def test_exif_pixel_dimensions_describe_the_pixels_written(tmp_path, scene):
    """An x2 upscale kept EXIF PixelXDimension/PixelYDimension of the source (48 x 32)."""
    ex = Image.Exif()
    ex[0x010F] = "Camera"
    sub = ex.get_ifd(EXIF_IFD)
    sub[PIXEL_X], sub[PIXEL_Y], sub[0x829A] = 48, 32, 1 / 125  # and an exposure time
    Image.fromarray(scene).save(tmp_path / "dims.jpg", exif=ex.tobytes())
    pic = load_picture(tmp_path / "dims.jpg")
    up = pic.with_pixels(np.repeat(np.repeat(pic.rgb, 2, axis=0), 2, axis=1))
    for fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        im = decoded(encode_picture(up, fmt))
        out = im.getexif()
        assert im.size == (96, 64)
        assert (out.get_ifd(EXIF_IFD)[PIXEL_X], out.get_ifd(EXIF_IFD)[PIXEL_Y]) == (96, 64), fmt
        assert out[0x010F] == "Camera" and float(out.get_ifd(EXIF_IFD)[0x829A]) == pytest.approx(1 / 125)
    # The same size: the EXIF goes out as it came in.
    assert decoded(encode_picture(pic, "PNG")).info["exif"].endswith(pic.info["exif"][6:])


# D5 --------------------------------------------------------------------------------------------

def test_near_grey_tells_a_noisy_scan_from_colour(scene, bw_scan):
    assert spread(bw_scan).max() == 4 and not is_grey(bw_scan) and near_grey(bw_scan)
    assert not near_grey(scene)
    assert near_grey(bw_scan.astype(np.uint16) * 257)
    # A faint cast (3 levels of blue everywhere, within the spread allowed) is colour.
    tinted = np.clip(bw_scan.astype(np.int16) + [0, 0, 3], 0, 255).astype(np.uint8)
    assert not near_grey(tinted)
    # Every grey photo is near grey, a tint of is_grey's 2 levels included.
    grey = np.repeat(bw_scan[..., :1], 3, axis=2)
    assert near_grey(grey) and near_grey(np.clip(grey.astype(np.int16) + [0, 0, 2], 0, 255).astype(np.uint8))
    # Noise with colour in a few pixels is still the scan; colour in more than a few is not.
    specks = bw_scan.copy()
    specks[0, :1] = (200, 40, 40)
    assert near_grey(specks)
    specks[:4] = (200, 40, 40)
    assert not near_grey(specks)
    # Gaussian channel noise of 1.5 levels (1-2 % of the pixels spread over 6 levels: the normal
    # tails a bounded noise never reaches) is still a scan ...
    rng = np.random.default_rng(3)
    base = np.repeat(rng.integers(30, 220, (64, 96, 1)), 3, axis=2)
    noisy = np.clip(base + rng.normal(0, 1.5, base.shape), 0, 255).astype(np.uint8)
    assert 0.005 < np.mean(spread(noisy) > 6) < 0.03 and near_grey(noisy)
    # ... but a small red object on a grey photo (1 % of it, too little to move the mean chroma
    # a level) is colour.
    red = base.astype(np.uint8)
    red[0, :61] = (200, 40, 40)
    assert not near_grey(red)


def test_upscaling_a_black_and_white_scan_invents_no_colour(tiny_model, bw_scan):
    """README: a black-and-white photo stays grey through upscaling. With a spread of 4 levels it
    was taken for colour, and the model added specks of chroma (up to 20 levels with the shipped
    model). Each output pixel now carries its input pixel's own chroma offsets, and each block's
    mean is the input pixel."""
    k, scan = 2, bw_scan[8:24, 8:32]  # dark shadows included: offsets that reach below 0
    out = tiny_model.upscale(scan, k, seed=1, num_steps=1)
    own = np.repeat(np.repeat(scan.astype(np.float64), k, axis=0), k, axis=1)
    chroma = out - out.mean(axis=2, keepdims=True)
    own_chroma = own - own.mean(axis=2, keepdims=True)
    assert np.abs(chroma - own_chroma).max() <= 1.0  # rounding: no chroma of the model's
    assert (spread(out) <= spread(own)).all()
    h, w = scan.shape[:2]
    means = out.reshape(h, k, w, k, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(means - scan).max() <= 0.5 + 1e-9  # each channel's block mean is the input's


def test_inpainting_a_black_and_white_scan_fills_grey_and_keeps_the_known_noise(tiny_model, bw_scan):
    scan = bw_scan[:16, :24]
    mask = np.zeros(scan.shape[:2], bool)
    mask[5:11, 6:16] = True
    out = tiny_model.inpaint(scan, mask, seed=1, num_steps=1)
    assert spread(out[mask]).max() == 0
    far = np.ones_like(mask)
    far[2:14, 3:19] = False
    assert np.array_equal(out[far], scan[far])
    assert spread(out).max() <= spread(scan).max()


def test_a_colour_photo_still_upscales_as_colour(tiny_model, scene, monkeypatch):
    """The near-grey path is for black-and-white photos only: a colour photo gets what it got."""
    import engine.pipeline

    small = scene[:12, :16]
    out = tiny_model.upscale(small, 2, seed=1, num_steps=1)
    monkeypatch.setattr(engine.pipeline, "near_grey", lambda image, where=None: False)
    assert np.array_equal(out, tiny_model.upscale(small, 2, seed=1, num_steps=1))


# D6 --------------------------------------------------------------------------------------------

def cutout_alpha(h=24, w=32):
    """A cut-out's alpha: a hard-edged disc, an antialiased one, a half-transparent band, and
    isolated transparent pixels (holes in a palette image's tRNS) in the opaque part."""
    y, x = np.mgrid[:h, :w] + 0.5
    hard = ((y - 12) ** 2 + (x - 8) ** 2 < 36).astype(np.float64)
    soft = np.clip(6.5 - np.hypot(y - 12, x - 23), 0, 1)
    a = np.maximum(hard, soft)
    a[:, 15:17] = 128 / 255
    a[2:5, 20:26] = 1.0
    a[3, 21] = a[3, 24] = 0.0
    return np.round(a * 255).astype(np.uint8)


@pytest.mark.parametrize("k", [2, 4])
def test_upscaled_alpha_does_not_ring(k):
    """Lanczos alone: transparent areas took alpha 4, opaque ones 251, a 128 band overshot to 141,
    and an isolated transparent pixel came out 80-110."""
    a8 = cutout_alpha()
    out = np.round(upscale_alpha(a8.astype(np.float32) / 255, k) * 255).astype(np.int32)
    block = np.repeat(np.repeat(a8.astype(np.int32), k, axis=0), k, axis=1)
    assert out[block == 255].min() == 255 and out[block == 0].max() == 0
    # No overshoot: every output pixel within its input pixel's 3 x 3 neighbourhood.
    pad = np.pad(a8.astype(np.int32), 1, mode="edge")
    win = np.stack([pad[dy:dy + a8.shape[0], dx:dx + a8.shape[1]] for dy in range(3) for dx in range(3)])
    lo = np.repeat(np.repeat(win.min(axis=0), k, axis=0), k, axis=1)
    hi = np.repeat(np.repeat(win.max(axis=0), k, axis=0), k, axis=1)
    assert ((out >= lo) & (out <= hi)).all()
    # Each block's mean is its input pixel (as the colour's), to rounding.
    h, w = a8.shape
    assert np.abs(out.reshape(h, k, w, k).mean(axis=(1, 3)) - a8).max() <= 0.5
    # The antialiased edge stays soft: levels between 0 and 255 where the input had them.
    soft_edge = (block > 0) & (block < 255) & (np.abs(block - 128) > 2)
    assert len(np.unique(out[soft_edge])) > len(np.unique(a8[(a8 > 0) & (a8 < 255) & (np.abs(a8.astype(int) - 128) > 2)]))


def test_upscale_with_alpha_returns_clean_transparency(tiny_model):
    a8 = cutout_alpha()
    rgb = np.full(a8.shape + (3,), (200, 120, 40), np.uint8)
    out, alpha = tiny_model.upscale(rgb, 2, seed=1, num_steps=1, alpha=a8)
    block = np.repeat(np.repeat(a8, 2, axis=0), 2, axis=1)
    assert alpha.dtype == np.uint8 and alpha.shape == block.shape
    assert alpha[block == 255].min() == 255 and alpha[block == 0].max() == 0
    a16 = a8.astype(np.uint16) * 257
    _, alpha16 = tiny_model.upscale(rgb.astype(np.uint16) * 257, 2, seed=1, num_steps=1, alpha=a16)
    block16 = np.repeat(np.repeat(a16, 2, axis=0), 2, axis=1)
    assert alpha16[block16 == 65535].min() == 65535 and alpha16[block16 == 0].max() == 0


def test_upscaled_alpha_does_not_depend_on_the_band():
    a = cutout_alpha().astype(np.float32) / 255
    whole = upscale_alpha(a, 4)
    assert np.abs(upscale_alpha(a, 4, strip_px=64) - whole).max() < 1e-5
