"""What the headless commands say and how they end: exit codes of interrupts and refusals, errors that name
the file and the path looked at, batch reports, progress output in logs, and the help text."""

from __future__ import annotations

import builtins
import json
import signal
from pathlib import Path

import pytest

import engine.cli
from app.__main__ import main
from engine.batch import run_batch

from .test_training import REPO, make_photoset


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photoset(tmp_path_factory.mktemp("photos"))


def _config(path: Path, data: Path | str, **overrides: object) -> Path:
    cfg = json.loads((REPO / "configs" / "tiny-test.json").read_text())
    cfg.update({"data": {"path": str(data)}, "log_every": 1000, "sample_every": 1000, **overrides})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg))
    return path


# -- train ----------------------------------------------------------------------------------------


def test_ctrl_c_during_train_saves_a_checkpoint_and_exits_130(photos, tmp_path, monkeypatch, capsys):
    from engine.training.trainer import Trainer

    step = Trainer.train_step

    def step_then_ctrl_c(self, x):
        loss = step(self, x)
        if self.step == 2:
            signal.raise_signal(signal.SIGINT)  # as a Ctrl-C: the trainer's own handler receives it
        return loss

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c)
    run = tmp_path / "run"
    cfg = _config(tmp_path / "c.json", photos, total_steps=50, edm_steps=10, checkpoint_every=1000)
    assert main(["train", str(cfg), "--out", str(run)]) == 130
    out, err = capsys.readouterr()
    assert "stopping at step 2 (signal)" in out and "interrupted at step 2" in err
    assert (run / "checkpoints" / "step-00000002.safetensors").is_file()  # the clean stop is kept


@pytest.mark.parametrize("option", [["--steps", "0"], ["--steps", "-5"], ["--minutes", "0"], ["--minutes", "nan"]])
def test_train_refuses_non_positive_steps_and_minutes_before_writing(photos, tmp_path, capsys, option):
    run = tmp_path / "run"
    cfg = _config(tmp_path / "c.json", photos)
    assert main(["train", str(cfg), "--out", str(run), *option]) == 2
    assert f"{option[0]} must be" in capsys.readouterr().err
    assert not run.exists()


def test_train_config_errors_name_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["train", str(missing)]) == 2
    assert f"{missing}: no such config file" in capsys.readouterr().err
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    assert main(["train", str(image)]) == 2
    assert f"{image}: not a JSON config" in capsys.readouterr().err


# -- where the photo set is looked for ------------------------------------------------------------


def test_a_missing_photo_set_is_named_by_its_absolute_path_with_a_way_out(tmp_path, monkeypatch, capsys,
                                                                         tiny_model_file):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # An eval from another folder: the path looked at, the option to change, before the model loads.
    monkeypatch.setattr("engine.pipeline.Model.load", lambda *a, **k: pytest.fail("loaded the model first"))
    assert main(["eval", str(tiny_model_file), "--data", "photos", "--n", "1"]) == 2
    err = capsys.readouterr().err
    assert str(elsewhere / "photos" / "manifest.tsv") in err and "--data FOLDER" in err
    # A config's relative data.path: the folder it would be found under is said, not silently used.
    project = tmp_path / "project"
    make_photoset(project / "photos")
    cfg = _config(project / "configs" / "c.json", "photos")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert str(elsewhere / "photos" / "manifest.tsv") in err and f"{project / 'photos'} has one" in err
    assert "data.path" in err and not (tmp_path / "run").exists()


def test_missing_photo_set_is_none_for_a_set(photos):
    from engine.training.data import missing_photo_set

    assert missing_photo_set(photos) is None


# -- eval: the whole-photo colorization ------------------------------------------------------------


def test_eval_whole_photos_limits_or_skips_the_full_size_colorization(tmp_path, monkeypatch, tiny_model):
    import importlib

    ev = importlib.import_module("engine.eval.evaluate")  # the module; the package exports a function of its name

    data = make_photoset(tmp_path / "photos", n=9)  # 3 held-out photos
    coloured: list[int] = []
    monkeypatch.setattr(ev, "_colorization_photos", lambda model, photos, *a: coloured.append(len(photos)) or [])
    for crops in ("_super_resolution", "_colorization", "_inpainting"):  # the crop tasks: not what is tested here
        monkeypatch.setattr(ev, crops, lambda *a, **k: ([], None))
    for limit in (None, 1, 0):
        report = ev.evaluate(tiny_model, data, n=1, whole_photos=limit, log=lambda _m: None)
        assert "whole photos" in report.notes[0]
    assert coloured == [3, 1]  # all by default (what the model card measures), the first 1, none
    with pytest.raises(ValueError, match="whole_photos"):
        ev.evaluate(tiny_model, data, n=1, whole_photos=-1)


def test_eval_help_says_n_does_not_bound_the_whole_photo_rows(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "every held-out photo at full size" in text and "--whole-photos N" in text


# -- interrupts outside a command ------------------------------------------------------------------


def _no_traceback(entry, argv: list[str]) -> int:
    try:
        return entry(argv)
    except KeyboardInterrupt:  # what the interpreter would print as a traceback
        pytest.fail("the Ctrl-C escaped the command's handler")


def test_ctrl_c_while_the_engine_imports_exits_130_quietly(monkeypatch, capsys):
    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "engine.cli":  # torch loads here, for seconds: where a Ctrl-C lands
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert _no_traceback(main, ["upscale", "photo.png"]) == 130
    assert capsys.readouterr().err == "cstudio: interrupted\n"


def test_ctrl_c_while_the_parser_is_built_exits_130(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.cli, "build_parser", interrupted)
    assert _no_traceback(engine.cli.main, ["upscale", "photo.png"]) == 130
    assert "interrupted" in capsys.readouterr().err


# -- batches ----------------------------------------------------------------------------------------


def test_batch_failures_go_to_stderr_and_name_the_file_once(images, tiny_model_file, capsys):
    bad = images / "bad.png"
    bad.write_text("not an image\n")
    out = images / "out"
    assert main(["colorize", str(images / "in.png"), str(bad), "--model", str(tiny_model_file), "--quiet",
                 "--steps", "1", "--out", str(out)]) == 1
    stdout, stderr = capsys.readouterr()
    assert "FAILED" not in stdout and str(out / "in_colorize.png") in stdout
    failed = [line for line in stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].count(str(bad)) == 1, failed


def test_run_batch_removes_only_the_empty_folders_it_made(tmp_path):
    src = tmp_path / "in"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "keep").mkdir()
    for rel in ("a.png", "sub/deep/c.png", "keep/k.png"):
        (src / rel).write_bytes(b"")
    out = tmp_path / "out"
    (out / "keep").mkdir(parents=True)  # there before the batch: stays, even empty

    def process(s: Path, d: Path) -> None:
        if s.parent.name in ("deep", "keep"):
            raise ValueError(f"{s}: damaged")
        d.write_bytes(b"ok")

    items = [(src / rel, Path(rel)) for rel in ("a.png", "sub/deep/c.png", "keep/k.png")]
    lines: list[str] = []
    report = run_batch(items, process, out, "op", log=lines.append)
    assert len(report.written) == 1 and len(report.failed) == 2
    assert not (out / "sub").exists() and (out / "keep").is_dir()
    failures: list[str] = []
    run_batch(items, process, tmp_path / "again", "op", log=lines.append, fail=failures.append)
    assert failures == [f"[2/3] {src / 'sub/deep/c.png'}: FAILED: damaged", f"[3/3] {src / 'keep/k.png'}: FAILED: damaged"]


def test_a_batch_interrupted_before_its_first_write_leaves_no_new_folder(images, tiny_model_file, monkeypatch, capsys):
    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.cli, "load_picture", interrupted)
    (images / "two").mkdir()
    (images / "two" / "x.png").write_bytes((images / "in.png").read_bytes())
    out = images / "new" / "out"
    assert main(["colorize", str(images / "two"), "--model", str(tiny_model_file), "--quiet",
                 "--out", str(out)]) == 130
    assert not (images / "new").exists()


# -- options ----------------------------------------------------------------------------------------


def test_start_sigma_outside_the_models_noise_levels_is_refused(images, tiny_model_file, capsys):
    m = [str(images / "in.png"), "--model", str(tiny_model_file), "--quiet", "--out", str(images / "o.png")]
    assert main(["colorize", *m, "--start-sigma", "1000"]) == 2
    assert "--start-sigma must lie in 0.004..80" in capsys.readouterr().err
    assert main(["upscale", *m, "--factor", "2", "--start-sigma", "0.001"]) == 2
    assert not (images / "o.png").exists()
    assert main(["colorize", *m, "--start-sigma", "80", "--steps", "1"]) == 0  # the top is allowed


def test_convert_checks_the_output_folder_before_reading_the_model(tmp_path, tiny_model_file, monkeypatch, capsys):
    monkeypatch.setattr(engine.cli, "load_model", lambda *a, **k: pytest.fail("read the model first"))
    assert main(["convert", str(tiny_model_file), str(tmp_path / "missing" / "a.safetensors")]) == 2
    assert f"{tmp_path / 'missing'}: output folder does not exist" in capsys.readouterr().err


def test_progress_bar_writes_one_plain_line_when_stderr_is_not_a_terminal(capsys):
    bar = engine.cli.ProgressBar("upscale x4")  # capsys's stderr is no terminal, as a log file
    for done in (1, 2, 3, 4):
        bar(done, 4)
    err = capsys.readouterr().err
    assert "\r" not in err and "#" not in err and err.count("\n") == 1 and err.startswith("upscale x4: 4/4 in ")
    live = engine.cli.ProgressBar("upscale x4", live=True)
    live(1, 4)
    assert capsys.readouterr().err.startswith("\rupscale x4 [")


def test_classes_errors_have_the_prefix_and_say_the_range(capsys):
    assert main(["classes", "1000"]) == 2
    assert capsys.readouterr().err == "cstudio classes: error: classes are 0..999, got 1000\n"
    assert main(["classes", "zzqqxx"]) == 1
    assert capsys.readouterr().err.startswith("cstudio classes: error: no ImageNet class name contains 'zzqqxx'")


# -- help -------------------------------------------------------------------------------------------


def _subparsers():
    import argparse

    parser = engine.cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_option_and_argument_of_the_image_commands_has_help():
    for name in ("info", "classes", "convert", "generate", "inpaint", "colorize", "upscale", "train", "eval"):
        p = _subparsers()[name]
        missing = [a.dest for a in p._actions if not a.help]
        assert not missing, (name, missing)


def test_help_states_the_defaults_and_what_outputs_are_named():
    subs = _subparsers()

    def help_of(command: str, option: str) -> str:
        action = next(a for a in subs[command]._actions if option in a.option_strings or a.dest == option)
        return subs[command]._get_formatter()._expand_help(action)

    assert "(default 4)" in help_of("upscale", "--factor")
    assert "(default 0.25)" in help_of("upscale", "--overlap")
    assert "(default 1" in help_of("upscale", "--average")
    for option, value in (("--context", "0.3"), ("--min-context", "128"), ("--grow", "1"), ("--feather", "0")):
        assert f"(default {value})" in help_of("inpaint", option)
    assert "gen_000.png" in help_of("generate", "-n")
    assert "or 0: the model's resolution" in help_of("colorize", "--render-size")
    assert ".webp" in help_of("generate", "--out")
    assert "(default 0)" in help_of("eval", "--seed")
