"""`cstudio` arguments and outputs: EDM step counts, bad arguments and output problems said in one
line (exit 2) and before any compute, encoding limits and memory as clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from app.__main__ import main
from engine.imageio import ImageError, Picture, save_picture

from .conftest import read_image as _read


@pytest.fixture()
def photo(images):
    return images / "in.png"


@pytest.fixture()
def edm_file(tmp_path, tiny_model):
    from engine import save_model

    spec = tiny_model.spec
    path = tmp_path / "edm.safetensors"
    save_model(path, dataclasses.replace(spec, denoiser=dataclasses.replace(spec.denoiser, kind="edm")),
               tiny_model.denoiser.net.state_dict())
    return path


# -- 1. EDM models: --steps counts sampler steps, --ts is refused ---------------------------------------------------


def test_generate_steps_sets_the_edm_sampler_steps(edm_file, tmp_path, capsys):
    from engine import Model

    m = ["--model", str(edm_file), "--quiet", "--seed", "1", "--device", "cpu", "--precision", "fp32"]
    for steps in (1, 2, 3):
        assert main(["generate", *m, "--steps", str(steps), "--out", str(tmp_path / f"s{steps}.png")]) == 0
    s1, s2, s3 = (_read(tmp_path / f"s{n}.png") for n in (1, 2, 3))
    assert not np.array_equal(s2, s3) and not np.array_equal(s1, s2)
    model = Model.load(edm_file, device="cpu", precision="fp32")
    calls = []
    model.generate(1, seed=1, steps=3, progress=lambda done, total: calls.append(total))
    assert calls and calls[-1] == 3  # three Heun steps
    assert np.array_equal(s3, model.generate(1, seed=1, steps=3)[0])


def test_ts_with_an_edm_model_is_refused(edm_file, tmp_path, capsys):
    assert main(["generate", "--model", str(edm_file), "--quiet", "--ts", "0,22,39", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "--ts" in err and "EDM" in err and "--steps" in err and "Traceback" not in err


def test_the_pipeline_refuses_ts_for_edm(edm_file):
    from engine import Model

    with pytest.raises(ValueError, match="EDM"):
        Model.load(edm_file, device="cpu", precision="fp32").generate(1, ts=(0, 20))


# -- 3. the output is checked before the model is loaded ----------------------------------------------------------


def test_output_problems_are_found_before_any_compute(photo, tiny_model_file, no_compute, capsys):
    d = photo.parent
    m = ["--model", str(tiny_model_file), "--quiet"]
    (d / "taken.png").write_bytes(b"x")
    cases = [
        (["upscale", str(photo), *m, "--out", str(d / "taken.png")], "already exists"),
        (["colorize", str(photo), *m, "--out", str(d / "x.xyz")], "unknown output format '.xyz'"),
        (["upscale", str(photo), *m, "--out", str(d / "nowhere" / "x.png")], "output folder does not exist"),
        (["generate", *m, "--out", str(d / "taken.png")], "already exists"),
        (["generate", *m, "--out", str(d / "g.gif")], "unknown output format '.gif'"),
        (["inpaint", str(photo), "--mask", str(photo), *m, "--out", str(d / "taken.png")], "already exists"),
        (["upscale", str(photo), *m, "--out", str(d / "missing") + "/"], "output folder does not exist"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
    assert not (d / "nowhere").exists() and not (d / "missing").exists() and (d / "taken.png").read_bytes() == b"x"


def test_generate_n_checks_every_numbered_output_first(tiny_model_file, tmp_path, no_compute, capsys):
    (tmp_path / "g_001.png").write_bytes(b"x")
    assert main(["generate", "--model", str(tiny_model_file), "--quiet", "-n", "3", "--out", str(tmp_path / "g.png")]) == 2
    assert "g_001.png: already exists" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g_001.png"]


def test_out_naming_a_folder_writes_inside_it(photo, tiny_model_file, tmp_path, capsys):
    m = ["--model", str(tiny_model_file), "--quiet"]
    folder = tmp_path / "results"
    folder.mkdir()
    assert main(["upscale", str(photo), "--factor", "2", *m, "--out", str(folder)]) == 0
    assert (folder / "in_upscale_2x.png").is_file()
    assert main(["generate", *m, "--out", str(folder) + "/"]) == 0
    assert (folder / "generated.png").is_file()
    # Running it again meets the existing file before the model runs.
    assert main(["upscale", str(photo), "--factor", "2", *m, "--out", str(folder)]) == 2
    assert "in_upscale_2x.png: already exists" in capsys.readouterr().err


# -- 4. bad arguments: one line, exit 2 -----------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["generate", "--ts", "0,22,50"], "--ts indices must lie in 0..39"),
    (["generate", "--ts", "0,30,20"], "--ts must be strictly increasing"),
    (["colorize", "IN", "--ts", "0,39,39"], "--ts must be strictly increasing"),
    (["upscale", "IN", "--ts", "0,40"], "--ts indices must lie in 0..39"),
    (["generate", "--device", "gpu"], "unknown device 'gpu'"),
    (["generate", "--device", "cuda:x"], "unknown device 'cuda:x'"),
    (["generate", "--class-label", "3"], "not class-conditional"),
    (["generate", "-n", "0"], "-n must be at least 1"),
    (["generate", "-n", "-1"], "-n must be at least 1"),
    (["generate", "--steps", "0"], "--steps must be at least 1"),
])
def test_bad_arguments_are_one_line_errors(argv, message, photo, tiny_model_file, capsys):
    argv = [str(photo) if a == "IN" else a for a in argv]
    assert main([*argv, "--model", str(tiny_model_file), "--quiet", "--out", str(photo.parent / "o.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (photo.parent / "o.png").exists()


def test_a_gpu_that_is_not_there_is_named(monkeypatch, tiny_model_file, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert main(["generate", "--model", str(tiny_model_file), "--device", "cuda:3", "--quiet",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "cuda:3" in capsys.readouterr().err


def test_class_labels_are_range_checked(tiny_model, tmp_path, capsys):
    from engine import save_model

    spec = tiny_model.spec
    cond = dataclasses.replace(spec, unet=dataclasses.replace(spec.unet, num_classes=10))
    path = tmp_path / "cond.safetensors"
    from engine import Model

    save_model(path, cond, Model.random(cond, device="cpu", precision="fp32").denoiser.net.state_dict())
    m = ["--model", str(path), "--quiet"]
    for label in ("10", "-1"):
        assert main(["generate", *m, "--class-label", label, "--out", str(tmp_path / "x.png")]) == 2
        assert "--class-label: must be in 0..9" in capsys.readouterr().err
    assert main(["generate", *m, "--class-label", "9", "--out", str(tmp_path / "x.png")]) == 0


# -- 5. encoding limits and memory ----------------------------------------------------------------------------------


def test_format_size_limits_are_image_errors(tmp_path):
    with pytest.raises(ImageError, match="WebP.*16383"):
        save_picture(tmp_path / "wide.webp", Picture(rgb=np.zeros((1, 16384, 3), np.uint8)))
    from engine.imageio import check_output_path

    with pytest.raises(ImageError, match="JPEG.*65500"):
        check_output_path(tmp_path / "wide.jpg", size=(65501, 2))
    assert not list(tmp_path.iterdir())


def test_an_encoder_failure_is_an_image_error(tmp_path, monkeypatch):
    import engine.imageio

    def broken(*a, **k):
        raise OSError("broken data stream when writing image file")

    monkeypatch.setattr(engine.imageio, "encode_picture", broken)
    with pytest.raises(ImageError, match="could not encode"):
        save_picture(tmp_path / "x.png", Picture(rgb=np.zeros((2, 2, 3), np.uint8)))
    assert not (tmp_path / "x.png").exists()


def test_an_upscale_too_wide_for_its_format_stops_before_compute(tmp_path, tiny_model_file, no_compute, capsys):
    Image.new("RGB", (2100, 2)).save(tmp_path / "strip.png")
    assert main(["upscale", str(tmp_path / "strip.png"), "--factor", "8", "--model", str(tiny_model_file),
                 "--out", str(tmp_path / "big.webp")]) == 2
    assert "16800x16 is over WebP's limit of 16383" in capsys.readouterr().err


def test_running_out_of_memory_names_the_output_size(photo, tiny_model_file, monkeypatch, capsys):
    from engine.pipeline import Model

    def huge(self, image, factor=4, **kw):
        raise MemoryError()

    monkeypatch.setattr(Model, "upscale", huge)
    assert main(["upscale", str(photo), "--factor", "8", "--model", str(tiny_model_file), "--quiet",
                 "--out", str(photo.parent / "o.png")]) != 0
    err = capsys.readouterr().err
    assert "not enough memory" in err and "240x192" in err and "Traceback" not in err
