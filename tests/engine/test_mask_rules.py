"""Which pixels an inpainting mask file fills (`engine.imageio.read_mask`), and the masks
that select nothing or everything, refused by the command line and by `Model.inpaint` before any compute."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.imageio import ImageError, read_mask

H, W = 24, 30  # the `images` fixture's in.png


def _box() -> np.ndarray:
    box = np.zeros((H, W), bool)
    box[5:15, 5:20] = True
    return box


def _rgb(colour, background=(0, 0, 0)) -> np.ndarray:
    a = np.zeros((H, W, 3), np.uint8)
    a[:] = background
    a[_box()] = colour
    return a


def test_an_opaque_mask_with_one_translucent_pixel_fills_only_its_white(images, tiny_model_file):
    """Any alpha below 255 let alpha alone decide: the opaque black counted as fill and the whole
    photo came back flat grey."""
    rgba = np.dstack([_rgb((255, 255, 255)), np.full((H, W), 255, np.uint8)])
    rgba[0, 0, 3] = 200  # one pixel an editor left slightly transparent, in the black
    Image.fromarray(rgba, "RGBA").save(images / "m.png")
    assert np.array_equal(read_mask(images / "m.png", (W, H)), _box())
    assert main(["inpaint", str(images / "in.png"), "--mask", str(images / "m.png"), "--model", str(tiny_model_file),
                 "--quiet", "--grow", "0", "--feather", "0", "--steps", "2", "--out", str(images / "o.png")]) == 0
    src, out = (np.asarray(Image.open(images / n).convert("RGB")) for n in ("in.png", "o.png"))
    assert np.array_equal(out[~_box()], src[~_box()])  # the black kept, bit for bit
    assert (out[_box()] != src[_box()]).any()


@pytest.mark.parametrize("colour", [(255, 0, 0), (0, 0, 255), (0, 255, 0), (200, 0, 160), (255, 255, 0)])
def test_a_coloured_stroke_on_black_is_filled(tmp_path, colour):
    """By luma, pure red (76) and blue (29) selected nothing while green filled."""
    Image.fromarray(_rgb(colour)).save(tmp_path / "m.png")
    assert np.array_equal(read_mask(tmp_path / "m.png", (W, H)), _box())


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 0, 0), (255, 255, 255), (40, 40, 40)])
def test_strokes_of_one_colour_on_a_transparent_layer_fill_where_visible(tmp_path, colour):
    """Strokes exported from a layer: the colour carries nothing (black strokes too), the alpha is the mask."""
    alpha = np.where(_box(), 255, 0).astype(np.uint8)
    alpha[5, 5:20] = 100  # a soft edge below half: not visible enough to fill
    want = _box().copy()
    want[5, 5:20] = False
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[alpha > 0] = colour  # editors store black (or anything) under fully transparent pixels
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "m.png")
    assert np.array_equal(read_mask(tmp_path / "m.png", (W, H)), want)


def test_black_strokes_of_a_palette_file_with_a_transparent_entry_fill_where_visible(tmp_path):
    """The palette's transparency was ignored (read as grey): black strokes selected nothing."""
    pal = Image.fromarray(np.where(_box(), 1, 0).astype(np.uint8), "P")
    pal.putpalette([255, 255, 255, 0, 0, 0])  # entry 0 (transparent) white, entry 1 black strokes
    pal.save(tmp_path / "m.png", transparency=0)
    assert np.array_equal(read_mask(tmp_path / "m.png", (W, H)), _box())


def test_where_colour_and_alpha_both_carry_a_mask_a_pixel_must_be_bright_and_visible(tmp_path):
    rgba = np.dstack([_rgb((255, 255, 255)), np.full((H, W), 255, np.uint8)])
    rgba[5:15, 5:10, 3] = 0  # part of the white box erased to transparency
    rgba[20:, :, 3] = 0  # and some of the black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "m.png")
    want = _box().copy()
    want[5:15, 5:10] = False
    assert np.array_equal(read_mask(tmp_path / "m.png", (W, H)), want)


def _files():
    """The kinds of mask file that already read right, each marking `_box()`."""
    box = _box()
    grey = np.where(box, 255, 0).astype(np.uint8)
    soft = grey.copy()
    soft[~box] = 127  # half range and below keeps; above fills
    soft[5:15, 5:20] = 128
    yield "grey", Image.fromarray(grey)
    yield "soft", Image.fromarray(soft)
    yield "rgb", Image.fromarray(_rgb((255, 255, 255)))
    yield "onebit", Image.fromarray(grey).convert("1")
    yield "la_alpha", Image.fromarray(np.dstack([np.zeros_like(grey), grey]), "LA")
    yield "la_grey", Image.fromarray(np.dstack([grey, np.full_like(grey, 255)]), "LA")
    pal = Image.fromarray(np.where(box, 1, 0).astype(np.uint8), "P")
    pal.putpalette([0, 0, 0, 255, 255, 255])
    yield "palette", pal
    pal_t = Image.fromarray(np.where(box, 1, 0).astype(np.uint8), "P")
    pal_t.putpalette([0, 0, 0, 255, 255, 255])
    pal_t.info["transparency"] = 0  # entry 0 transparent, entry 1 white
    yield "palette_t", pal_t
    yield "rgba_alpha", Image.fromarray(np.dstack([np.zeros((H, W, 3), np.uint8), grey]), "RGBA")


def test_the_masks_that_read_right_before_still_do(tmp_path):
    for name, im in _files():
        path = tmp_path / f"{name}.png"
        im.save(path, **({"transparency": im.info["transparency"]} if "transparency" in im.info else {}))
        assert np.array_equal(read_mask(path, (W, H)), _box()), name


@pytest.mark.parametrize("fill, message", [
    (0, r"m\.png: the mask selects no pixel: white \(or any bright colour\) marks what to fill"),
    (255, r"m\.png: the mask covers the whole image: inpainting needs some known pixels; "
          r"to make a new image use `cstudio generate`"),
])
def test_a_mask_that_selects_nothing_or_everything_is_refused_before_the_model_loads(
        images, no_compute, capsys, fill, message):
    """An all-black mask wrote an unchanged copy (exit 0), an all-white one a flat grey image."""
    Image.fromarray(np.full((H, W), fill, np.uint8)).save(images / "m.png")
    with pytest.raises(ImageError, match=message):
        read_mask(images / "m.png", (W, H))
    assert main(["inpaint", str(images / "in.png"), "--mask", str(images / "m.png"), "--model", "x",
                 "--out", str(images / "o.png")]) == 1
    assert any(re.search(message, line) for line in capsys.readouterr().err.splitlines())
    assert not (images / "o.png").exists()


def test_a_transparent_mask_selects_nothing(tmp_path):
    Image.fromarray(np.zeros((H, W, 4), np.uint8), "RGBA").save(tmp_path / "m.png")
    with pytest.raises(ImageError, match="selects no pixel"):
        read_mask(tmp_path / "m.png", (W, H))


def test_the_engine_refuses_an_empty_or_full_mask_before_any_compute(tiny_model, monkeypatch):
    """Callers other than the command line (the app, scripts) reach `Model.inpaint` directly."""
    import engine.pipeline

    img = (np.random.default_rng(0).random((H, W, 3)) * 255).astype(np.uint8)

    def parts(*a, **k):
        raise AssertionError("the fill was computed")

    monkeypatch.setattr(engine.pipeline, "inpaint_parts", parts)
    with pytest.raises(ValueError, match="the mask selects no pixel"):
        tiny_model.inpaint(img, np.zeros((H, W), bool))
    with pytest.raises(ValueError, match="the mask covers the whole image: inpainting needs some known pixels"):
        tiny_model.inpaint(img, np.full((H, W), 255, np.uint8))


@pytest.mark.parametrize("orientation, turn", [(6, "a quarter turn clockwise"), (8, "a quarter turn counter-clockwise")])
def test_a_mask_of_the_unturned_photo_is_told_about_the_exif_orientation(images, no_compute, capsys, orientation, turn):
    """The photo is stored 30x24 and shown 24x30: a mask drawn on the stored pixels was refused as
    '30x24 but the image is 24x30' with no word of why."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.open(images / "in.png").save(images / "turned.jpg", exif=exif.tobytes(), quality=95)
    assert main(["inpaint", str(images / "turned.jpg"), "--mask", str(images / "mask.png"), "--model", "x"]) == 1
    err = capsys.readouterr().err
    assert "mask is 30x24 but the image is 24x30: the photo's pixels are stored as 30x24 and its EXIF " \
           f"orientation ({orientation}) turns them {turn}" in err
    assert "turn the mask the same way" in err


def test_a_mask_of_another_size_says_nothing_of_exif(images, no_compute, capsys):
    Image.fromarray(np.zeros((30, 24), np.uint8)).save(images / "m.png")  # turned, but the photo is not
    assert main(["inpaint", str(images / "in.png"), "--mask", str(images / "m.png"), "--model", "x"]) == 1
    err = capsys.readouterr().err
    assert "mask is 24x30 but the image is 30x24" in err and "EXIF" not in err
