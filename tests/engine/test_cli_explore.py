"""Odd but legitimate inputs to `cstudio`: lossless WebP results, masks of the wrong size, numbers
outside what the engine takes, and batches whose output folder sits in (or is) their input folder."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from app.__main__ import main
from engine.imageio import ImageError, read_mask


def _png_header_only(path, width, height):
    """A PNG whose header claims width x height 1-bit pixels, with (almost) no pixel data."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0\0")) + chunk(b"IEND", b""))


def test_webp_output_keeps_the_pixels_outside_the_mask(images, tiny_model_file):
    rgba = np.dstack([np.asarray(Image.open(images / "in.png")), np.full((24, 30), 255, np.uint8)])
    rgba[:, :4, 3] = 0
    Image.fromarray(rgba, "RGBA").save(images / "in.webp", lossless=True)
    out = images / "out.webp"
    assert main(["inpaint", str(images / "in.webp"), "--mask", str(images / "mask.png"), "--model", str(tiny_model_file),
                 "--quiet", "--steps", "1", "--grow", "0", "--out", str(out)]) == 0
    with Image.open(out) as im:
        got = np.asarray(im.convert("RGBA"))
    keep = np.ones((24, 30), bool)
    keep[5:15, 5:20] = False
    assert np.array_equal(got[..., 3], rgba[..., 3])
    visible = keep & (rgba[..., 3] > 0)
    assert np.array_equal(got[visible, :3], rgba[visible, :3])


def test_a_mask_header_over_the_pixel_limit_is_a_one_line_error(images, tiny_model_file, no_compute, capsys):
    _png_header_only(images / "huge.png", 30000, 30000)
    assert main(["inpaint", str(images / "in.png"), "--mask", str(images / "huge.png"), "--model", str(tiny_model_file),
                 "--out", str(images / "o.png")]) == 1  # a file that cannot be used, not a usage error
    err = capsys.readouterr().err
    assert "huge.png: mask is over 200 Mpx but the image is 30x24" in err and "Traceback" not in err
    assert not (images / "o.png").exists()


def test_a_mask_of_the_wrong_size_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((20, 40), np.uint8)).save(tmp_path / "m.png")

    def load(self):
        raise AssertionError("the mask's pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    with pytest.raises(ImageError, match="mask is 40x20 but the image is 30x24"):
        read_mask(tmp_path / "m.png", (30, 24))


def test_a_mask_whose_exif_turns_it_upright_still_fits(tmp_path):
    m = np.zeros((20, 30), np.uint8)
    m[2:5, 10:20] = 255
    im = Image.fromarray(m)
    exif = im.getexif()
    exif[0x0112] = 6  # stored 30x20, shown 20x30
    im.save(tmp_path / "m.png", exif=exif.tobytes())
    got = read_mask(tmp_path / "m.png", (20, 30))
    assert got.shape == (30, 20) and got.sum() == m.astype(bool).sum()
    with pytest.raises(ImageError, match="mask is 20x30 but the image is 30x20"):
        read_mask(tmp_path / "m.png", (30, 20))


@pytest.mark.parametrize("argv, message", [
    (["upscale", "IN", "--overlap", "nan"], "--overlap must be at least 0 and below 1, got nan"),
    (["upscale", "IN", "--overlap", "1.5"], "--overlap must be at least 0 and below 1"),
    (["upscale", "IN", "--overlap", "-0.2"], "--overlap must be at least 0 and below 1"),
    (["upscale", "IN", "--average", "0"], "--average must be at least 1, got 0"),
    (["upscale", "IN", "--start-sigma", "nan"], "--start-sigma must be positive, got nan"),
    (["colorize", "IN", "--render-size", "-1"], "--render-size must lie in 0..4096, got -1"),
    (["colorize", "IN", "--render-size", "100000"], "--render-size must lie in 0..4096"),
    (["inpaint", "IN", "--mask", "MASK", "--context", "nan"], "--context must lie in 0..4, got nan"),
    (["inpaint", "IN", "--mask", "MASK", "--grow", "100000"], "--grow must lie in 0..4096, got 100000"),
    (["inpaint", "IN", "--mask", "MASK", "--feather", "-2"], "--feather must lie in 0..4096"),
    (["inpaint", "IN", "--mask", "MASK", "--min-context", "-1"], "--min-context must lie in 0..4096"),
])
def test_numbers_the_engine_cannot_take_are_one_line_errors(argv, message, images, tiny_model_file, no_compute, capsys):
    subst = {"IN": str(images / "in.png"), "MASK": str(images / "mask.png")}
    argv = [subst.get(a, a) for a in argv]
    assert main([*argv, "--model", str(tiny_model_file), "--quiet", "--out", str(images / "o.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (images / "o.png").exists()


def test_a_batch_output_folder_that_cannot_be_made_is_said_before_the_model_loads(images, tiny_model_file,
                                                                                   no_compute, capsys):
    out = images / "in.png" / "results"  # under a file
    assert main(["upscale", str(images / "in.png"), str(images / "mask.png"), "--model", str(tiny_model_file),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot create the output folder" in err and "Traceback" not in err


def test_an_unwritable_output_folder_is_said_before_the_model_loads(images, tiny_model_file, no_compute, monkeypatch,
                                                                    capsys):
    locked = images / "locked"
    locked.mkdir()
    real_access = os.access
    # As a read-only mount or folder says it (chmod does not stop the root user tests may run as).
    monkeypatch.setattr(os, "access",
                        lambda p, mode, **kw: False if os.fspath(p) == str(locked) else real_access(p, mode, **kw))
    m = ["--model", str(tiny_model_file), "--quiet"]
    assert main(["upscale", str(images / "in.png"), *m, "--out", str(locked / "x.png")]) == 2
    assert "locked: output folder is not writable" in capsys.readouterr().err
    assert main(["upscale", str(images / "in.png"), str(images / "mask.png"), *m, "--out", str(locked)]) == 2
    assert "locked: output folder is not writable" in capsys.readouterr().err
    assert not any(locked.iterdir())


@pytest.mark.parametrize("inside", ["up", "."])
def test_rerunning_a_batch_into_its_own_input_folder_skips_its_results(inside, tmp_path, tiny_model_file, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(folder / "a.png")
    out = folder / inside
    args = ["upscale", str(folder), "--factor", "2", "--recursive", "--out", str(out), "--model", str(tiny_model_file),
            "--quiet", "--steps", "1"]
    assert main(args) == 0
    assert "1 written, 0 skipped" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 written, 1 skipped" in capsys.readouterr().out
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    assert found == sorted(["a.png", (out / "a_upscale_2x.png").relative_to(folder).as_posix()])


def test_top_level_help_names_the_app_form_and_version():
    from engine.cli import build_parser

    text = build_parser().format_help()
    assert "cstudio FILE..." in text and "--version" in text


def test_a_batch_of_only_earlier_results_says_so(tmp_path, tiny_model_file, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    for name in ("a_upscale_4x.png", "b_colorize.png"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / name)
    assert main(["upscale", str(folder), "--model", str(tiny_model_file), "--out", str(tmp_path / "more")]) == 2
    err = capsys.readouterr().err
    assert "2 found are results of earlier batches" in err and "Traceback" not in err


def test_info_without_a_model_describes_the_default_one(capsys):
    from engine.paths import default_model_path

    if default_model_path() is None:
        pytest.skip("this checkout ships no default model")
    assert main(["info", "--json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["unet"]["image_size"] == 32 and info["file"] == str(default_model_path())
    # It is an EDM denoiser: it generates by Heun steps, not on a consistency model's ts grid.
    assert info["kind"] == "edm" and info["sampler"] == {"sampler": "heun", "steps": 40}
    assert main(["info"]) == 0
    assert "default sampling: heun, 40 steps" in capsys.readouterr().out


def test_batches_and_lossy_outputs_say_what_was_left_out(images, tiny_model_file, capsys):
    """A batch says an animated input lost its frames, as a single run does; a JPEG output says it
    dropped the transparency (the notes the app shows in its status bar)."""
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "green", "blue")]
    frames[0].save(images / "anim.gif", save_all=True, append_images=frames[1:])
    m = ["--model", str(tiny_model_file), "--quiet", "--steps", "1"]
    assert main(["upscale", str(images / "anim.gif"), str(images / "in.png"), "--factor", "2", *m,
                 "--out", str(images / "out")]) == 0
    assert "anim.gif: animated image: using the first of 3 frames" in capsys.readouterr().err
    rgba = np.dstack([np.asarray(Image.open(images / "in.png")), np.full((24, 30), 255, np.uint8)])
    rgba[:, :4, 3] = 0
    Image.fromarray(rgba, "RGBA").save(images / "clear.png")
    assert main(["upscale", str(images / "clear.png"), "--factor", "2", *m, "--out", str(images / "c.jpg")]) == 0
    err = capsys.readouterr().err
    assert "c.jpg: JPEG keeps no transparency" in err, err


def test_colorizing_a_colour_photo_says_its_colours_are_replaced(images, tiny_model_file, capsys):
    m = ["--model", str(tiny_model_file), "--quiet", "--steps", "1"]
    assert main(["colorize", str(images / "in.png"), *m, "--out", str(images / "c.png")]) == 0
    assert f"note: {images / 'in.png'}: the photo already has colour" in capsys.readouterr().err
    grey = np.asarray(Image.open(images / "in.png").convert("L"))
    Image.fromarray(grey).save(images / "grey.png")
    assert main(["colorize", str(images / "grey.png"), *m, "--out", str(images / "g.png")]) == 0
    assert "already has colour" not in capsys.readouterr().err
