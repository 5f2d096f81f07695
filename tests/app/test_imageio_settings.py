from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import files
from app.model import Settings, load_settings, save_settings
from engine.imageio import ImageError, Picture


def _save(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> Path:
    files.save_picture_safely(path, Picture(rgb=rgb, alpha=alpha))
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_save_formats_round_trip(tmp_path: Path, photo: np.ndarray, suffix: str) -> None:
    path = _save(tmp_path / f"out{suffix}", photo)
    back = files.open_document(path).image
    assert back.shape == photo.shape
    lossless = suffix != ".jpg"  # WebP is written lossless too
    assert np.abs(back.astype(int) - photo).max() <= (0 if lossless else 90)  # 4:2:0 chroma at the disc's edge
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]  # no temp files left behind


def test_write_is_atomic_when_encoding_fails(tmp_path: Path, photo: np.ndarray, monkeypatch) -> None:
    target = tmp_path / "keep.png"
    _save(target, photo)
    original = target.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(ImageError, match="No space left"):
        _save(target, 255 - photo)
    assert target.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_unknown_extension_is_refused(tmp_path: Path, photo: np.ndarray) -> None:
    with pytest.raises(ImageError, match="png"):
        _save(tmp_path / "x.xyz", photo)


def test_bad_files_give_readable_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="junk.png"):
        files.open_document(tmp_path / "junk.png")
    with pytest.raises(ImageError, match="no such file"):
        files.open_document(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="folder"):
        files.open_document(tmp_path)


def test_exif_orientation_alpha_and_icc_are_kept(tmp_path: Path) -> None:
    a = np.zeros((10, 20, 3), np.uint8)
    a[:, :10] = 255  # left half white
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    rgb = files.open_document(tmp_path / "rot.jpg").image
    assert rgb.shape == (20, 10, 3) and rgb[2, 5].min() > 200 and rgb[17, 5].max() < 50

    rgba = np.dstack([a, np.full((10, 20), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    loaded = files.open_document(tmp_path / "alpha.png")
    assert loaded.alpha is not None and loaded.alpha[0, 0] == 128
    files.save_document(loaded, tmp_path / "again.png")
    assert Image.open(tmp_path / "again.png").mode == "RGBA"


def test_mask_files(tmp_path: Path) -> None:
    m = np.zeros((8, 12), np.uint8)
    m[2:5, 3:9] = 255
    m[6, 6] = 100  # soft values survive
    files.write_mask(tmp_path / "m.png", m)
    assert (files.read_mask(tmp_path / "m.png", (8, 12))[0] == m).all()
    resized, note = files.read_mask(tmp_path / "m.png", (16, 24))  # same shape, twice the size: scaled
    assert resized.shape == (16, 24) and resized[6, 10] == 255 and "scaled" in note
    with pytest.raises(ImageError, match="12x8 but the image is 12x12"):
        files.read_mask(tmp_path / "m.png", (12, 12))  # another shape: a mask for another image
    # A black image whose alpha carries the mask (what many editors export).
    rgba = np.zeros((8, 12, 4), np.uint8)
    rgba[..., 3] = m
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert (files.read_mask(tmp_path / "a.png", (8, 12))[0] == m).all()


def test_imported_masks_follow_the_command_lines_rule(tmp_path: Path) -> None:
    """Mask > Import reads a file as `cstudio inpaint --mask` does (soft edges kept), so one mask
    file selects the same pixels in both."""
    box = np.zeros((8, 12), bool)
    box[2:5, 3:9] = True

    def imported(pixels: np.ndarray, mode: str) -> np.ndarray:
        Image.fromarray(pixels, mode).save(tmp_path / "m.png")
        return files.read_mask(tmp_path / "m.png", (8, 12))[0]

    red = np.zeros((8, 12, 3), np.uint8)
    red[box] = (255, 0, 0)  # luma 76: it used to select nothing
    assert (imported(red, "RGB") == np.where(box, 255, 0)).all()
    # Opaque black with a white box, one pixel not quite opaque: the colour is the mask (alpha
    # alone made the whole black image a fill).
    rgba = np.zeros((8, 12, 4), np.uint8)
    rgba[box, :3] = 255
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 200
    assert (imported(rgba, "RGBA") > 127).tolist() == box.tolist()
    # Strokes of one colour (here blue) on a transparent layer: the alpha is the mask.
    layer = np.zeros((8, 12, 4), np.uint8)
    layer[box] = (0, 0, 255, 255)
    layer[7, 0] = (0, 0, 255, 128)  # a soft stroke edge stays soft
    m = imported(layer, "RGBA")
    assert (m[box] == 255).all() and m[7, 0] == 128 and m[~box].sum() == 128


def test_settings_round_trip_and_recent_files(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.json"
    s = Settings(brush_size=12.0, task="upscale")
    for name in ("a.png", "b.png", "a.png"):
        s = s.with_recent(tmp_path / name)
    save_settings(s, path)
    back = load_settings(path)
    assert back == s
    assert [Path(p).name for p in back.recent_files] == ["a.png", "b.png"]


def test_settings_survive_corrupt_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    assert load_settings(path) == Settings()
    path.write_text("{not json")
    assert load_settings(path) == Settings()
    path.write_text(json.dumps({"brush_size": "huge", "steps": 2, "live": True, "future_key": 1}))
    s = load_settings(path)
    assert s.brush_size == Settings().brush_size and s.steps == 2 and s.live and s.extra == {"future_key": "1"}
    save_settings(s, path)
    assert json.loads(path.read_text())["future_key"] == "1"  # kept for a newer version


def test_settings_default_to_platformdirs_with_override(private_dirs: Path) -> None:
    from app.model.settings import settings_path, user_models_dir

    assert settings_path() == private_dirs / "config" / "settings.json"
    assert user_models_dir() == private_dirs / "data" / "models"


def test_settings_reject_numbers_that_are_not_finite(tmp_path: Path) -> None:
    # Python's json reads (and a hand edit may contain) NaN and Infinity: they must not reach the widgets.
    path = tmp_path / "settings.json"
    path.write_text('{"brush_size": NaN, "brush_hardness": -Infinity, "live": true}')
    s = load_settings(path)
    assert s.brush_size == Settings().brush_size and s.brush_hardness == Settings().brush_hardness and s.live
    path.write_text('{"brush_size": Infinity, "brush_hardness": 0.25}')
    s = load_settings(path)
    assert s.brush_size == Settings().brush_size and s.brush_hardness == 0.25
