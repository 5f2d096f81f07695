"""Every file of the bad-input corpus (tests/corpus), through the app's open paths and through the CLI.

Each one must give a clear, specific message (or load correctly, with a note saying what was
odd about it), and the open document must come through untouched. The tables below say what each
file must produce; a corpus file missing from them fails `test_every_corpus_file_is_covered`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.__main__ import main
from engine.imageio import load_picture

from .fakes import make_controller

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PWNED = Path("/tmp/cstudio-corpus-pwned")  # what corpus/checkpoints/runs_code.pt would create if unpickled
OK = None

# file -> (what the app says, what the CLI says): a regex of the error, or OK plus a regex of the note.
IMAGES: dict[str, tuple[str | None, str | None]] = {
    "base.png": (OK, OK),
    "truncated.png": ("damaged or truncated", "damaged or truncated"),
    "truncated.jpg": ("damaged or truncated", "damaged or truncated"),
    "truncated16.png": ("damaged or truncated", "damaged or truncated"),
    "zero_bytes.png": ("the file is empty", "the file is empty"),
    "garbage.jpg": ("not a supported image", "not a supported image"),
    "text_named.webp": ("not a supported image", "not a supported image"),
    "bomb_100000x100000.png": ("too large.*200 Mpx limit", "too large.*200 Mpx limit"),
    "folder.png": ("is a folder", "no image files found"),
}
ODD_IMAGES: dict[str, str] = {  # valid but odd: loaded, and the status bar says what was done
    "animated.gif": "first of 3 frames",
    "animated.webp": "first of 3 frames",
    "cmyk.jpg": "CMYK converted to RGB",
    "deep16.png": "16-bit",
    "palette_alpha.png": "transparency kept",
    "exif_rotated.jpg": r"rotated upright \(EXIF orientation 6\)",
}
MASKS: dict[str, tuple[str | None, str]] = {  # (app, CLI): the app scales a mask of the image's shape
    "mask_wrong_size.png": ("20x20 but the image is 32x24", "20x20 but the image is 32x24"),
    "mask_scaled.png": (OK, "64x48 but the image is 32x24"),
}
CHECKPOINTS: dict[str, str] = {
    "empty.pt": "the file is empty",
    "empty.safetensors": "the file is empty",
    "truncated.safetensors": "truncated or corrupt",
    "huge_header.safetensors": "header too large",
    "wrong_shapes.safetensors":
        r"'input_blocks.0.0.weight' has shape \(3, 32, 3, 3\), the config needs \(32, 3, 3, 3\)",
    "unknown_keys.safetensors": r"1 unknown key\(s\), e.g. 'secret_head.weight'",
    "runs_code.pt": "refused to load.*could run code",
    "not_a_model": "needs config.json",
}


def test_every_corpus_file_is_covered() -> None:
    listed = {f"images/{n}" for n in [*IMAGES, *ODD_IMAGES]} | {f"masks/{n}" for n in MASKS} \
        | {f"checkpoints/{n}" for n in CHECKPOINTS}
    present = {f"{d.name}/{p.name}" for d in CORPUS.iterdir() if d.is_dir() for p in d.iterdir()}
    assert present == listed
    size = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert size < 1_000_000


@pytest.fixture
def editing(tmp_path: Path):
    """A controller with work in progress: a painted mask and one undo step."""
    c, view, engine = make_controller(tmp_path, start=[str(CORPUS / "images" / "base.png")])
    c.begin_stroke(10, 10)
    c.extend_stroke(20, 12)
    c.end_stroke()
    view.reset_mock()
    return c, view, engine


def _state(c) -> tuple:
    return c.document, c.document.image, c.document.mask.copy(), c.history.undo_label, c.history.version


def _intact(c, before: tuple) -> bool:
    doc, image, mask, label, version = before
    return (c.document is doc and c.document.image is image and np.array_equal(c.document.mask, mask)
            and c.history.undo_label == label and c.history.version == version)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_images_through_the_app(editing, name: str) -> None:
    c, view, _ = editing
    before = _state(c)
    expected, _ = IMAGES[name]
    opened = c.open_path(CORPUS / "images" / name)
    if expected is OK:
        assert opened and c.document.path == CORPUS / "images" / name
        view.show_error.assert_not_called()
        return
    assert not opened
    title, message = view.show_error.call_args.args
    assert title == "Could not open the image" and name in message and re.search(expected, message), message
    assert _intact(c, before)


@pytest.mark.parametrize("name", sorted(ODD_IMAGES))
def test_odd_images_load_correctly_with_a_note(editing, name: str) -> None:
    c, view, _ = editing
    assert c.open_path(CORPUS / "images" / name)
    view.show_error.assert_not_called()
    assert re.search(ODD_IMAGES[name], view.set_status.call_args.args[0])
    doc = c.document
    base = load_picture(CORPUS / "images" / "base.png").rgb.astype(int)
    if name == "deep16.png":
        assert doc.image.dtype == np.uint16 and doc.image[0, -1, 0] == 65535 and doc.image[-1, 0, 1] == 65535
    elif name == "palette_alpha.png":
        assert doc.alpha is not None and doc.alpha[:, :8].max() == 0 and doc.alpha[:, 8:].min() == 255
    elif name == "exif_rotated.jpg":
        assert doc.image.shape == (32, 24, 3)  # upright: the white half is now on top
        assert doc.image[:14].min() > 200 and doc.image[18:].max() < 60
    elif name == "cmyk.jpg":
        assert np.abs(doc.image.astype(int) - base).mean() < 8
    else:  # animated: the first frame
        assert np.abs(doc.image.astype(int) - base).mean() < 8


@pytest.mark.parametrize("name", sorted(MASKS) + [f"../images/{n}" for n in sorted(IMAGES) if IMAGES[n][0] is not OK])
def test_masks_through_the_app(editing, name: str) -> None:
    c, view, _ = editing
    before = _state(c)
    expected = MASKS[name][0] if name in MASKS else IMAGES[Path(name).name][0]
    imported = c.import_mask(CORPUS / "masks" / name)
    if expected is OK:
        assert imported and c.document.mask.shape == (24, 32) and c.document.mask[10, 15] == 255
        assert "scaled" in view.set_status.call_args.args[0]
        return
    assert not imported
    title, message = view.show_error.call_args.args
    assert title == "Could not import the mask" and re.search(expected, message), message
    assert _intact(c, before)


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_checkpoints_through_the_app(editing, name: str) -> None:
    c, view, engine = editing
    before, model, models = _state(c), c.model, list(c.models)
    c.import_checkpoint(CORPUS / "checkpoints" / name)
    engine.process()
    title, message = view.show_error.call_args.args
    assert title == "Could not import the checkpoint" and re.search(CHECKPOINTS[name], message), message
    assert c.model is model and c.models == models and _intact(c, before)
    assert not PWNED.exists()


@pytest.mark.parametrize("name", sorted(n for n in CHECKPOINTS if n.endswith(".safetensors")))
def test_broken_models_in_the_models_folder(editing, tmp_path: Path, name: str) -> None:
    """A broken file dropped into the models folder is listed as a problem or fails to load, with a message."""
    c, view, engine = editing
    before = _state(c)
    (tmp_path / "models").mkdir(exist_ok=True)
    shutil.copy(CORPUS / "checkpoints" / name, tmp_path / "models" / name)
    c.refresh_models()
    engine.process()
    listed = [m for m in c.models if m.path is not None and m.path.name == name]
    if not listed:  # unreadable header: reported in the status bar when the folder is scanned
        assert any(name in call.args[0] for call in view.set_status.call_args_list)
    else:
        c.select_model(c.models.index(listed[0]))
        engine.process()
        title, message = view.show_error.call_args.args
        assert title == "Could not load the model" and re.search(CHECKPOINTS[name], message), message
    assert _intact(c, before)


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("name", sorted([*IMAGES, *ODD_IMAGES]))
def test_images_through_the_cli(capsys, tmp_path: Path, tiny_model_file: Path, name: str) -> None:
    src = CORPUS / "images" / name
    out = tmp_path / "out.png"
    code, err = _cli(capsys, "upscale", str(src), "--model", str(tiny_model_file), "--factor", "2", "--out", str(out),
                     "--device", "cpu", "--precision", "fp32", "--quiet")
    expected = IMAGES[name][1] if name in IMAGES else OK
    if expected is OK:
        assert code == 0 and out.is_file()
        pic = load_picture(out)
        assert pic.size == tuple(2 * s for s in load_picture(src).size)
        if name == "deep16.png":
            assert pic.bits == 16
        if name == "palette_alpha.png":
            assert pic.alpha is not None
        if name.startswith("animated"):
            assert "first of 3 frames" in err
        return
    # A folder given as the image is read as an (empty) batch: the command line must change (2); a file
    # that cannot be used is 1.
    assert code == (2 if (CORPUS / "images" / name).is_dir() else 1) and re.search(expected, err), err
    assert not out.exists()


@pytest.mark.parametrize("name", sorted(MASKS))
def test_masks_through_the_cli(capsys, tmp_path: Path, tiny_model_file: Path, name: str) -> None:
    out = tmp_path / "out.png"
    code, err = _cli(capsys, "inpaint", str(CORPUS / "images" / "base.png"), "--mask", str(CORPUS / "masks" / name),
                     "--model", str(tiny_model_file), "--out", str(out), "--device", "cpu", "--quiet")
    assert code == 1 and re.search(MASKS[name][1], err) and not out.exists(), err


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_checkpoints_through_the_cli(capsys, name: str) -> None:
    code, err = _cli(capsys, "info", str(CORPUS / "checkpoints" / name))
    assert code == 1 and re.search(CHECKPOINTS[name], err), err
    assert not PWNED.exists()
