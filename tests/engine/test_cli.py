"""The headless `cstudio` commands, run in-process on a tiny model file."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from app.__main__ import main
from tests.conftest import FIXTURES

from .conftest import read_image as _read


def test_info_and_convert(tmp_path, capsys, tiny_model_file):
    assert main(["info", str(tiny_model_file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["resolution"] == 16 and info["kind"] == "cm"
    # A consistency model edits with the paper's loop; the listed defaults are what the tasks run.
    assert {t: (e["sampler"], e["steps"]) for t, e in info["editing"].items()} == {
        "upscale": ("consistency", 3), "upscale_detail": ("consistency", 3), "upscale_x2": ("consistency", 3),
        "colorize": ("consistency", 3), "inpaint": ("consistency", 3), "stroke_edit": ("consistency", 3)}
    out = tmp_path / "small.safetensors"
    assert main(["convert", str(FIXTURES / "refcheck/small/state_dict.pt"), str(out), "--fp16"]) == 0
    assert main(["info", str(out)]) == 0
    assert "1,280,643 parameters" in capsys.readouterr().out
    assert main(["convert", str(FIXTURES / "refcheck/small/state_dict.pt"), str(out)]) == 2  # exists
    assert "already exists" in capsys.readouterr().err


def test_tasks_write_outputs(images, tiny_model_file, capsys):
    m = ["--model", str(tiny_model_file), "--quiet"]
    assert main(["generate", *m, "-n", "2", "--out", str(images / "g.png")]) == 0
    assert (images / "g_000.png").exists() and (images / "g_001.png").exists()
    assert main(["inpaint", str(images / "in.png"), "--mask", str(images / "mask.png"), *m, "--grow", "0", "--feather", "0"]) == 0
    out = _read(images / "in_inpaint.png")
    src = _read(images / "in.png")
    keep = _read(images / "mask.png") == 0
    assert np.array_equal(out[keep], src[keep])
    # Blended ancestral samples: a different fill, the same known pixels.
    assert main(["inpaint", str(images / "in.png"), "--mask", str(images / "mask.png"), *m, "--grow", "0", "--feather", "0",
                 "--sampler", "ancestral", "--blend", "3", "--out", str(images / "blend.png")]) == 0
    blend = _read(images / "blend.png")
    assert np.array_equal(blend[keep], src[keep]) and not np.array_equal(blend, out)
    assert main(["inpaint", str(images / "in.png"), "--mask", str(images / "mask.png"), *m, "--blend", "0",
                 "--out", str(images / "b0.png")]) == 2
    assert "--blend must be at least 1" in capsys.readouterr().err
    assert main(["colorize", str(images / "in.png"), *m, "--steps", "2"]) == 0
    assert main(["upscale", str(images / "in.png"), "--factor", "2", *m, "--out", str(images / "up.png")]) == 0
    with Image.open(images / "up.png") as im:
        assert im.size == (60, 48)


def test_clear_errors(images, tiny_model_file, capsys):
    m = ["--model", str(tiny_model_file), "--quiet"]
    assert main(["upscale", str(images / "in.png"), "--factor", "3", *m]) == 2
    assert "--factor must be 2, 4 or 8" in capsys.readouterr().err
    assert main(["generate", *m, "--ts", "5,10"]) == 2
    assert "must start at 0" in capsys.readouterr().err
    (images / "bad.png").write_bytes(b"not an image at all")
    assert main(["colorize", str(images / "bad.png"), *m]) == 1  # the file cannot be used; the command line was fine
    assert "not a supported image" in capsys.readouterr().err
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(images / "small_mask.png")
    assert main(["inpaint", str(images / "in.png"), "--mask", str(images / "small_mask.png"), *m]) == 1
    assert "mask is 5x5 but the image is 30x24" in capsys.readouterr().err
    assert main(["colorize", str(images / "in.png"), *m, "--ts", "0,39", "--start-sigma", "4"]) == 2
    assert "--ts and --start-sigma exclude each other" in capsys.readouterr().err
    assert main(["upscale", str(images / "in.png"), *m, "--start-sigma", "0"]) == 2
    assert "--start-sigma must be positive" in capsys.readouterr().err
    assert main(["info", str(images)]) == 1
    assert main(["generate", "--model", str(images / "nope.safetensors")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_no_model_is_said_plainly(monkeypatch, capsys):
    import engine.cli

    monkeypatch.setattr(engine.cli, "default_model_path", lambda: None)
    assert main(["generate", "--quiet"]) == 2
    assert "no model available" in capsys.readouterr().err


def test_batch_upscale_folder_skips_and_survives_bad_files(images, tiny_model_file, capsys):
    folder = images / "batch"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in ("a.png", "sub/b.jpg"):
        Image.fromarray((rng.random((10, 12, 3)) * 255).astype(np.uint8)).save(folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = np.linspace(0, 255, 64).reshape(8, 8).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    out = images / "out"
    args = ["upscale", str(folder), "--factor", "2", "--out", str(out), "--recursive", "--model", str(tiny_model_file), "--quiet"]
    assert main(args) == 1  # one file failed, the others were written
    text, err = capsys.readouterr()
    # The summary with the written paths on stdout; the failure on stderr, with the other errors.
    assert "3 written, 0 skipped" in text and "1 failed" in text and "broken.png: FAILED" in err
    assert (out / "a_upscale_2x.png").exists() and (out / "sub" / "b_upscale_2x.png").exists()
    with Image.open(out / "alpha_upscale_2x.png") as up:
        assert up.mode == "RGBA" and up.size == (16, 16)
    assert main(args) == 1
    assert "0 written, 3 skipped" in capsys.readouterr().out


def test_a_closed_pipe_ends_quietly(tiny_model_file):
    """`cstudio info MODEL | head -1`: when the reader has gone, no traceback and status 0."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    proc = subprocess.Popen([sys.executable, "-m", "app", "info", str(tiny_model_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=repo)
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_upscale_detail_runs_the_detail_loop_and_says_x2_has_none(images, tiny_model, tmp_path, capsys):
    import dataclasses

    from engine import save_model

    spec = tiny_model.spec
    edm = tmp_path / "edm.safetensors"
    save_model(edm, dataclasses.replace(spec, denoiser=dataclasses.replace(spec.denoiser, kind="edm")),
               tiny_model.denoiser.net.state_dict())
    common = [str(images / "in.png"), "--model", str(edm), "--quiet", "--seed", "3"]
    assert main(["upscale", *common, "--factor", "4", "--out", str(tmp_path / "plain.png")]) == 0
    assert main(["upscale", *common, "--factor", "4", "--detail", "--out", str(tmp_path / "detail.png")]) == 0
    plain, detail = _read(tmp_path / "plain.png"), _read(tmp_path / "detail.png")
    assert plain.shape == detail.shape == (96, 120, 3) and not np.array_equal(plain, detail)
    capsys.readouterr()
    assert main(["upscale", *common, "--factor", "2", "--detail", "--out", str(tmp_path / "x2.png")]) == 0
    assert "--detail applies to x4 and x8" in capsys.readouterr().err


def test_info_tells_mixed_dtypes_and_noise_and_convert_keeps_provenance(tmp_path, capsys, tiny_model_file):
    import torch

    from engine.checkpoint import load_model, save_model

    spec, sd, _ = load_model(tiny_model_file)
    sd = {k: (v.half() if i % 2 else v) for i, (k, v) in enumerate(sd.items())}  # half converted
    mixed = tmp_path / "mixed.safetensors"
    save_model(mixed, spec, sd, metadata={"trained_steps": "1234"})
    assert main(["info", str(mixed), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    halves = sum(v.dtype == torch.float16 for v in sd.values())
    assert info["dtype"] == f"mixed: float32 x{len(sd) - halves}, float16 x{halves}" or \
        info["dtype"] == f"mixed: float16 x{halves}, float32 x{len(sd) - halves}"
    assert info["noise"] == {"sigma_min": 0.002, "sigma_max": 80.0, "sigma_data": 0.5, "rho": 7.0}
    # A second conversion keeps the first's notes and where the weights first came from.
    once, twice = tmp_path / "once.safetensors", tmp_path / "twice.safetensors"
    assert main(["convert", str(FIXTURES / "refcheck/small/state_dict.pt"), str(once)]) == 0
    assert main(["convert", str(once), str(twice), "--fp16"]) == 0
    meta = load_model(twice)[2]
    assert meta["converted_from"] == "state_dict.pt" and meta["source"] == "official"
    assert main(["convert", str(mixed), str(tmp_path / "m2.safetensors")]) == 0
    assert load_model(tmp_path / "m2.safetensors")[2]["trained_steps"] == "1234"
    # The image size is for official files, which do not store it; ours states its own.
    capsys.readouterr()
    assert main(["info", str(mixed), "--image-size", "64"]) == 2  # the option must change
    assert "states its own (16 px)" in capsys.readouterr().err
    assert main(["info", str(mixed), "--image-size", "16"]) == 0


def test_one_mask_inpaints_a_folder_of_photos_of_its_size(tmp_path, tiny_model_file, capsys):
    """Frames or scans with a blemish in the same place: one mask for all of them. The mask kept in
    the same folder is not an input; a photo of another size fails alone; only the hole changes."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "frames"
    folder.mkdir()
    photos = {}
    for name in ("f1.png", "f2.png"):
        photos[name] = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(photos[name]).save(folder / name)
    Image.fromarray(rng.integers(0, 256, (20, 32, 3), dtype=np.uint8)).save(folder / "other_size.png")
    mask = np.zeros((24, 32), np.uint8)
    mask[8:14, 10:20] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    out = tmp_path / "out"
    m = ["--model", str(tiny_model_file), "--quiet", "--steps", "1", "--grow", "0"]
    assert main(["inpaint", str(folder), "--mask", str(folder / "mask.png"), *m, "--out", str(out)]) == 1
    cap = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["f1_inpaint.png", "f2_inpaint.png"]
    assert "other_size.png" in cap.err and "mask is 32x24 but the image is 32x20" in cap.err
    for name, before in photos.items():
        after = _read(out / name.replace(".png", "_inpaint.png"))
        hole = mask > 0
        assert (after[~hole] == before[~hole]).all() and (after[hole] != before[hole]).any()
    # Run again: what is done is skipped, and the results in the folder are not taken as inputs.
    assert main(["inpaint", str(folder), str(out), "--mask", str(folder / "mask.png"), *m, "--out", str(out)]) == 1
    assert "2 skipped" in capsys.readouterr().out
    # A missing mask is said before any photo is read or the model loads.
    assert main(["inpaint", str(folder), "--mask", str(tmp_path / "nope.png"), *m, "--out", str(out)]) == 1
    assert "nope.png: no such mask file" in capsys.readouterr().err


def test_a_batch_mask_that_selects_nothing_is_refused_once_before_the_model_loads(tmp_path, tiny_model_file,
                                                                                capsys, monkeypatch):
    import engine.cli as cli

    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((12, 16, 3), 90, np.uint8)).save(folder / name)
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(folder / "mask.png")

    def no_model(_args):
        raise AssertionError("the model loaded for a mask that selects nothing")

    monkeypatch.setattr(cli, "_load", no_model)
    assert main(["inpaint", str(folder), "--mask", str(folder / "mask.png"), "--model", str(tiny_model_file),
                 "--quiet", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("selects no pixel") == 1 and not (tmp_path / "out").exists()
    # A folder holding only the mask: nothing to process, and the mask is not called an earlier result.
    (folder / "a.png").unlink()
    (folder / "b.png").unlink()
    half = np.zeros((12, 16), np.uint8)
    half[:6] = 255
    Image.fromarray(half).save(folder / "mask.png")
    assert main(["inpaint", str(folder), "--mask", str(folder / "mask.png"), "--out", str(tmp_path / "out")]) == 2
    assert "no image files found" in capsys.readouterr().err
