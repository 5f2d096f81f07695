"""The class of a class-conditional model (the ImageNet 64 px checkpoints) reaches every task: the
engine's `Model.class_label`, and `--class-label` on generate, inpaint, colorize and upscale, checked
before any compute with one usage error (exit 2) for models without classes or a class out of range."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.__main__ import main
from engine import Model, save_model

from .conftest import read_image

CLASSES = 10


@pytest.fixture(scope="module")
def cond_model():
    """The tiny preset with a 10-class label embedding (as ImageNet's 1000), random weights."""
    from engine import preset

    spec = preset("tiny")
    cond = dataclasses.replace(spec, name="tiny-cond", unet=dataclasses.replace(spec.unet, num_classes=CLASSES))
    return Model.random(cond, seed=0, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def cond_file(tmp_path_factory, cond_model):
    path = tmp_path_factory.mktemp("cond") / "cond.safetensors"
    save_model(path, cond_model.spec, cond_model.denoiser.net.state_dict())
    return path


def _photo(h: int = 24, w: int = 30) -> np.ndarray:
    return (np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)


def _mask(h: int = 24, w: int = 30) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[5:15, 5:20] = 255
    return m


TASKS = {
    "generate": lambda m: m.generate(1, seed=1)[0],
    "inpaint": lambda m: m.inpaint(_photo(), _mask(), seed=1),
    "colorize": lambda m: m.colorize(_photo(), seed=1),
    "upscale": lambda m: m.upscale(_photo(16, 16), factor=2, seed=1),
    "stroke_edit": lambda m: m.stroke_edit(_photo(), seed=1),
}


@pytest.mark.parametrize("task", TASKS)
def test_the_model_s_class_changes_every_task_s_result(cond_model, task):
    run = TASKS[task]
    outs = {}
    for label in (3, 7):
        cond_model.class_label = label
        outs[label] = run(cond_model)
    cond_model.class_label = 3
    again = run(cond_model)
    cond_model.class_label = 0
    assert np.array_equal(outs[3], again), "same class, same seed: the same pixels"
    assert not np.array_equal(outs[3], outs[7]), "another class is another prior: other pixels"


def test_a_default_model_conditions_on_class_0(cond_model):
    assert Model.random(cond_model.spec, seed=0, device="cpu", precision="fp32").class_label == 0


# -- the CLI ---------------------------------------------------------------------------------------------------------


def _cli(model_path, *argv) -> list[str]:
    return [*argv, "--model", str(model_path), "--quiet", "--seed", "1", "--device", "cpu", "--precision", "fp32"]


def _commands(images):
    """(name, argv without the model options, output file, the same run through the engine with the model's class)."""
    pic = read_image(images / "in.png")
    mask = read_image(images / "mask.png")
    return [
        ("inpaint", ["inpaint", str(images / "in.png"), "--mask", str(images / "mask.png")],
         lambda m: m.inpaint(pic, mask, seed=1)),
        ("colorize", ["colorize", str(images / "in.png")], lambda m: m.colorize(pic, seed=1)),
        ("upscale", ["upscale", str(images / "in.png"), "--factor", "2"], lambda m: m.upscale(pic, factor=2, seed=1)),
        ("generate", ["generate"], lambda m: m.generate(1, seed=1)[0]),
    ]


@pytest.mark.parametrize("command", ["inpaint", "colorize", "upscale", "generate"])
def test_class_label_sets_the_class_of_each_command(command, cond_file, images, capsys):
    name, argv, engine_run = next(c for c in _commands(images) if c[0] == command)
    outs = {}
    for run, label in enumerate((3, 7, 3)):
        out = images / f"{name}_{run}.png"
        assert main(_cli(cond_file, *argv, "--class-label", str(label), "--out", str(out))) == 0, capsys.readouterr().err
        outs[run] = read_image(out)
    assert np.array_equal(outs[0], outs[2])
    assert not np.array_equal(outs[0], outs[1])
    # What the command wrote is the engine's result for that class: the option is the model's class.
    model = Model.load(cond_file, device="cpu", precision="fp32")
    model.class_label = 7
    assert np.array_equal(outs[1], engine_run(model))


def test_without_the_option_an_edit_keeps_class_0(cond_file, images):
    out0, out_default = images / "c0.png", images / "cd.png"
    assert main(_cli(cond_file, "colorize", str(images / "in.png"), "--class-label", "0", "--out", str(out0))) == 0
    assert main(_cli(cond_file, "colorize", str(images / "in.png"), "--out", str(out_default))) == 0
    assert np.array_equal(read_image(out0), read_image(out_default))


def test_a_batch_uses_the_class_for_every_file(cond_file, images, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        (folder / f"p{i}.png").write_bytes((images / "in.png").read_bytes())
    outs = {}
    for label in (2, 5):
        out = tmp_path / f"out{label}"
        assert main(_cli(cond_file, "colorize", str(folder), "--class-label", str(label), "--out", str(out))) == 0
        outs[label] = [read_image(out / f"p{i}_colorize.png") for i in range(2)]
    assert np.array_equal(outs[2][0], outs[2][1]) and np.array_equal(outs[5][0], outs[5][1])
    assert not np.array_equal(outs[2][0], outs[5][0])


@pytest.fixture()
def no_network(monkeypatch):
    """Fail the test if a command gets as far as a network evaluation."""
    import engine.pipeline

    def denoise(*args, **kwargs):
        raise AssertionError("the model ran before --class-label was checked")

    monkeypatch.setattr(engine.pipeline.Model, "denoise", denoise)


@pytest.mark.parametrize("command", ["inpaint", "colorize", "upscale", "generate"])
def test_a_model_without_classes_refuses_the_option(command, tiny_model_file, images, capsys, no_network):
    _, argv, _ = next(c for c in _commands(images) if c[0] == command)
    out = images / "refused.png"
    assert main(_cli(tiny_model_file, *argv, "--class-label", "3", "--out", str(out))) == 2
    err = capsys.readouterr().err
    assert f"cstudio {command}: error: --class-label: this model is not class-conditional" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("command", ["inpaint", "colorize", "upscale", "generate"])
@pytest.mark.parametrize("label", ["10", "-1"])
def test_a_class_out_of_range_is_refused(command, label, cond_file, images, capsys, no_network):
    _, argv, _ = next(c for c in _commands(images) if c[0] == command)
    out = images / "refused.png"
    assert main(_cli(cond_file, *argv, "--class-label", label, "--out", str(out))) == 2
    err = capsys.readouterr().err
    assert f"--class-label: must be in 0..{CLASSES - 1} for this model, got {label}" in err and "Traceback" not in err
    assert not out.exists()


def test_a_batch_refuses_a_bad_class_before_its_first_file(cond_file, images, tmp_path, capsys, no_network):
    out = tmp_path / "out" / "deeper"
    assert main(_cli(cond_file, "upscale", str(images), "--factor", "2", "--class-label", "99", "--out", str(out))) == 2
    assert "--class-label: must be in 0..9" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # the folders made for the batch are taken back


@pytest.mark.parametrize("command", ["inpaint", "colorize", "upscale", "generate"])
def test_help_says_what_the_class_is(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--class-label N|NAME" in text and "by number or name" in text and "207 or 'golden retriever'" in text


def test_the_model_refuses_a_class_it_does_not_have(cond_model, tiny_model):
    """Set on the Model itself (the Python API), a class out of range failed only at the first
    evaluation, as an index error in the class embedding (a device-side assert on CUDA)."""
    cond_model.class_label = 0
    for bad in (CLASSES, -1, None, True, 2.5):
        with pytest.raises(ValueError, match="class_label must be in"):
            cond_model.class_label = bad
        with pytest.raises(ValueError, match="class_label must be in"):
            cond_model.generate(1, class_label=bad if bad is not None else CLASSES)
    assert cond_model.class_label == 0  # unchanged by the refused values
    with pytest.raises(ValueError, match="not class-conditional"):
        tiny_model.class_label = 3
    tiny_model.class_label = None
