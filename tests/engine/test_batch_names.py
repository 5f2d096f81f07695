"""Batch output names: unique within a batch, readable, and the same on every run (so a re-run skips)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from app.__main__ import main
from engine.batch import collect_inputs


def _photo(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((10, 12, 3)) * 255).astype(np.uint8)).save(path)


def _names(items, out_dir, op="upscale_2x"):
    from engine.batch import output_paths

    return [p.relative_to(out_dir).as_posix() for p in output_paths(items, op, out_dir)]


def test_same_name_from_two_folders_gets_a_number(tmp_path):
    for d in ("a", "b", "c"):
        _photo(tmp_path / d / "img.png", 0)
    items = collect_inputs([tmp_path / "a" / "img.png", tmp_path / "b" / "img.png", tmp_path / "c" / "img.png"])
    assert _names(items, tmp_path / "o") == ["img_upscale_2x.png", "img-2_upscale_2x.png", "img-3_upscale_2x.png"]


def test_same_stem_different_extensions_keep_their_extension(tmp_path):
    for name in ("img.png", "img.jpg", "other.png"):
        _photo(tmp_path / "in" / name, 0)
    items = collect_inputs([tmp_path / "in"])
    assert _names(items, tmp_path / "o") == ["img_jpg_upscale_2x.png", "img_png_upscale_2x.png", "other_upscale_2x.png"]


def test_folders_keep_their_sub_folders_and_names_differing_in_case_are_told_apart(tmp_path):
    for name in ("x/img.png", "y/img.png", "Pic.png", "pic.png"):
        _photo(tmp_path / "in" / name, 0)
    items = collect_inputs([tmp_path / "in"], recursive=True)
    # Case-insensitive file systems (Windows, macOS) would make Pic and pic one file.
    assert _names(items, tmp_path / "o") == ["Pic_upscale_2x.png", "pic-2_upscale_2x.png",
                                             "x/img_upscale_2x.png", "y/img_upscale_2x.png"]


def test_a_disambiguated_name_never_takes_another_inputs_name(tmp_path):
    for name in ("a/img.png", "b/img.png", "img-2.png"):
        _photo(tmp_path / name, 0)
    items = collect_inputs([tmp_path / "a" / "img.png", tmp_path / "b" / "img.png", tmp_path / "img-2.png"])
    names = _names(items, tmp_path / "o")
    assert names[2] == "img-2_upscale_2x.png" and len({n.lower() for n in names}) == 3


def test_next_to_the_inputs_names_are_unique_per_folder(tmp_path):
    for name in ("a/img.png", "a/img.jpg", "b/img.png"):
        _photo(tmp_path / name, 0)
    items = collect_inputs([tmp_path / "a", tmp_path / "b"])
    from engine.batch import output_paths

    assert [p.relative_to(tmp_path).as_posix() for p in output_paths(items, "colorize")] == [
        "a/img_jpg_colorize.png", "a/img_png_colorize.png", "b/img_colorize.png"]


def test_the_same_file_twice_is_one_input(tmp_path):
    _photo(tmp_path / "img.png", 0)
    assert len(collect_inputs([tmp_path / "img.png", tmp_path, str(tmp_path / "." / "img.png")])) == 1


def test_cli_batch_of_same_named_files_writes_them_all_and_resumes(tmp_path, tiny_model_file, capsys):
    _photo(tmp_path / "a" / "img.png", 1)
    _photo(tmp_path / "b" / "img.png", 2)
    _photo(tmp_path / "b" / "img.jpg", 3)
    out = tmp_path / "o"
    args = ["upscale", str(tmp_path / "a" / "img.png"), str(tmp_path / "b" / "img.png"), str(tmp_path / "b" / "img.jpg"),
            "--factor", "2", "--out", str(out), "--model", str(tiny_model_file), "--quiet"]
    assert main(args) == 0
    assert "3 written, 0 skipped" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["img-2_png_upscale_2x.png", "img_jpg_upscale_2x.png",
                                                      "img_png_upscale_2x.png"]
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(args) == 0
    assert "0 written, 3 skipped" in capsys.readouterr().out
    assert main([*args, "--overwrite"]) == 0
    assert "3 written" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # same names, nothing replaced by another input


def test_jfif_and_jpe_files_are_found_in_folders(tmp_path):
    """Browsers save JPEGs as .jfif, old cameras as .jpe: a folder batch must not skip them silently."""
    for name in ("a.jfif", "b.JPE", "c.jpg"):
        Image.new("RGB", (4, 4)).save(tmp_path / name, "JPEG")
    assert sorted(p.name for p, _ in collect_inputs([tmp_path])) == ["a.jfif", "b.JPE", "c.jpg"]


def test_an_output_never_replaces_an_input_of_the_same_batch(tmp_path):
    """`cstudio upscale a.png a_upscale_2x.png --out <their folder> --overwrite` used to write a's
    result over the second input before reading it."""
    _photo(tmp_path / "a.png", 0)
    _photo(tmp_path / "a_upscale_2x.png", 1)
    items = collect_inputs([tmp_path / "a.png", tmp_path / "a_upscale_2x.png"])
    assert _names(items, tmp_path) == ["a-2_upscale_2x.png", "a_upscale_2x_upscale_2x.png"]


def test_an_input_spelled_another_way_is_still_never_an_output(tmp_path, monkeypatch):
    """The guard above compares resolved paths: inputs given relative (`../w/a.png`) and --out given
    absolute, or through a symlink, name the same files."""
    w = tmp_path / "w"
    _photo(w / "a.png", 0)
    _photo(w / "a_upscale_2x.png", 1)
    (tmp_path / "link").symlink_to(w)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    items = collect_inputs(["../w/a.png", "../w/a_upscale_2x.png"])
    from engine.batch import output_paths

    for out_dir in (w, tmp_path / "link"):
        outs = output_paths(items, "upscale_2x", out_dir)
        assert outs[0].name == "a-2_upscale_2x.png", outs


def test_format_same_keeps_each_inputs_format_and_names_stay_apart(tmp_path):
    from engine.batch import output_paths

    for name in ("a.jpg", "a.png", "b.webp", "c.gif", "d.TIF"):
        _photo(tmp_path / "in" / name, 1)
    items = collect_inputs([tmp_path / "in"])
    out = tmp_path / "o"
    same = [p.relative_to(out).as_posix() for p in output_paths(items, "colorize", out, None)]
    # a.jpg and a.png no longer collide (their outputs keep their extensions), so no tag is needed;
    # a GIF's result is written as PNG.
    assert same == ["a_colorize.jpg", "a_colorize.png", "b_colorize.webp", "c_colorize.png", "d_colorize.tif"]
    jpeg = [p.name for p in output_paths(items, "colorize", out, ".jpg")]
    assert jpeg == ["a_jpg_colorize.jpg", "a_png_colorize.jpg", "b_colorize.jpg", "c_colorize.jpg", "d_colorize.jpg"]


def test_cli_format_names_and_writes_that_format(tmp_path, tiny_model_file, capsys):
    m = ["--model", str(tiny_model_file), "--quiet", "--steps", "1"]
    _photo(tmp_path / "in" / "x.png", 2)
    _photo(tmp_path / "in" / "y.png", 3)
    Image.open(tmp_path / "in" / "y.png").save(tmp_path / "in" / "y.jpg", quality=95)
    (tmp_path / "in" / "y.png").unlink()
    assert main(["colorize", str(tmp_path / "in"), *m, "--format", "webp", "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["x_colorize.webp", "y_colorize.webp"]
    assert Image.open(tmp_path / "o" / "x_colorize.webp").format == "WEBP"
    # A second run in another format is another set of outputs, not a skip of the first.
    assert main(["colorize", str(tmp_path / "in"), *m, "--format", "same", "--out", str(tmp_path / "o")]) == 0
    assert Image.open(tmp_path / "o" / "y_colorize.jpg").format == "JPEG"
    assert Image.open(tmp_path / "o" / "x_colorize.png").format == "PNG"
    # One file without --out: the default name takes the format.
    assert main(["colorize", str(tmp_path / "in" / "x.png"), *m, "--format", "jpg"]) == 0
    assert Image.open(tmp_path / "in" / "x_colorize.jpg").format == "JPEG"
    # --format and an --out file that disagree: refused before anything runs.
    capsys.readouterr()
    assert main(["colorize", str(tmp_path / "in" / "x.png"), *m, "--format", "jpg",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "--format jpg asks for JPEG" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    assert main(["colorize", str(tmp_path / "in" / "x.png"), *m, "--format", "jpg",
                 "--out", str(tmp_path / "x.jpeg")]) == 0  # .jpeg is JPEG too
