"""The document keeps what the file had: 16-bit pixels, alpha, EXIF, ICC and PNG text survive open, edit, run, save."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.imageio import Picture, load_picture, save_picture

from .conftest import make_photo
from .fakes import make_controller

ICC = b"\x00\x00\x01\x00not-a-real-icc-profile" * 4  # carried as opaque bytes: never parsed


def _stroke(c, *points) -> None:
    c.begin_stroke(*points[0])
    for p in points[1:]:
        c.extend_stroke(*p)
    c.end_stroke()


def test_sixteen_bit_png_with_alpha_and_text_survives_edits_and_tasks(tmp_path: Path) -> None:
    rgb = make_photo(16, 16).astype(np.uint16) * 257 + 3  # low bits set: an 8-bit trip would lose them
    alpha = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (16, 1))
    src = tmp_path / "scan.png"
    save_picture(src, Picture(rgb=rgb, alpha=alpha, info={"text": {"Author": "me"}, "icc_profile": ICC}))
    c, view, engine = make_controller(tmp_path, start=[str(src)])
    d = c.document
    assert d.image.dtype == np.uint16 and np.array_equal(d.image, rgb) and np.array_equal(d.alpha, alpha)
    shown = view.set_image.call_args.args[0]
    assert shown.dtype == np.uint8 and shown.shape == (16, 16, 3)  # the canvas gets 8 bits, the document keeps 16
    assert any("16-bit, transparency kept" in call.args[0] for call in view.set_status.call_args_list)

    c.set_brush(tool="colour", colour=(255, 0, 0), hardness=1.0, size=4)
    _stroke(c, (4.5, 4.5), (6.5, 4.5))
    assert c.document.image.dtype == np.uint16 and c.document.image[4, 5].tolist() == [65535, 0, 0]
    assert view.set_image.call_args.args[0].dtype == np.uint8
    c.set_brush(tool="mask")
    _stroke(c, (10, 10), (12, 12))
    for task in ("inpaint", "colorize", "stroke_edit"):
        c.set_params(task=task, steps=1)
        c.run()
        engine.process()
        assert c.document.image.dtype == np.uint16, task
        _stroke(c, (10, 10), (12, 12))
    c.set_params(task="upscale", upscale_factor=2, steps=1)
    c.run()
    engine.process()
    d = c.document
    assert d.image.dtype == np.uint16 and d.image.shape == (32, 32, 3)
    assert d.alpha is not None and d.alpha.shape == (32, 32) and d.alpha.dtype == np.uint16
    assert d.alpha[:, :2].max() < 6000 and d.alpha[:, -2:].min() > 59000  # resampled by the engine, not stretched

    out = tmp_path / "out.png"
    assert c.save(out)
    back = load_picture(out)
    assert back.bits == 16 and np.array_equal(back.rgb, d.image) and np.array_equal(back.alpha, d.alpha)
    assert back.info["text"]["Author"] == "me" and back.info["icc_profile"] == ICC
    c.undo()
    assert c.document.image.shape == (16, 16, 3) and c.document.alpha.shape == (16, 16)
    assert c.save(tmp_path / "out.tif")
    assert load_picture(tmp_path / "out.tif").bits == 16


def test_exif_and_icc_of_a_jpeg_are_carried_and_orientation_reset(tmp_path: Path) -> None:
    im = Image.fromarray(make_photo(16, 24))
    exif = im.getexif()
    exif[0x0112] = 6
    exif[0x010F] = "CameraMaker"
    src = tmp_path / "phone.jpg"
    im.save(src, "JPEG", exif=exif, icc_profile=ICC, quality=95)
    c, _, engine = make_controller(tmp_path, start=[str(src)])
    assert c.document.image.shape == (24, 16, 3)  # upright
    _stroke(c, (5, 5), (9, 9))
    c.run()
    engine.process()
    out = tmp_path / "edited.jpg"
    assert c.save(out)
    with Image.open(out) as back:
        e = back.getexif()
        assert e.get(0x010F) == "CameraMaker" and e.get(0x0112, 1) == 1 and back.size == (16, 24)
        assert back.info.get("icc_profile") == ICC


def test_a_scaled_mask_is_imported_with_a_note_and_masks_export_losslessly(tmp_path: Path) -> None:
    c, view, _ = make_controller(tmp_path, load_model=False)
    h, w = c.document.mask.shape
    m = np.zeros((h * 2, w * 2), np.uint8)
    m[:h, :] = 200
    Image.fromarray(m).save(tmp_path / "big_mask.png")
    assert c.import_mask(tmp_path / "big_mask.png")
    assert c.document.mask[: h // 2].min() == 200 and "scaled" in view.set_status.call_args.args[0]
    assert c.export_mask(tmp_path / "m.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m.png")), c.document.mask)
