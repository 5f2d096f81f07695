"""Found by using `cstudio train` / `cstudio eval` as a user would: config mistakes caught before any
step, a changed config honoured on resume, disk errors reported, grey photos scored sensibly."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from engine.config import preset
from engine.training.config import TrainConfig
from engine.training.trainer import train
from tests.engine.test_training import make_photoset, tiny_config

QUIET = {"device": "cpu", "threads": 1, "log": lambda _m: None}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photoset(tmp_path_factory.mktemp("photos"))


@pytest.mark.parametrize(("override", "match"), [
    ({"preset": "tinyy"}, "unknown preset 'tinyy'"),  # was a KeyError traceback from the CLI
    ({"betas": 0.9}, "betas must be a list of two"),  # was "'float' object is not iterable"
    ({"betas": [0.9, 0.99, 0.5]}, "betas must be a list of two"),  # was accepted, then failed at step 1
    ({"betas": [0.9, 1.5]}, r"betas must lie in \[0, 1\)"),
    ({"lr": -1.0}, "lr must be a positive"),  # was accepted, then failed after the run folder was made
    ({"lr": float("nan")}, "lr must be a positive"),
    ({"tune_lr": -1.0}, "tune_lr"),
    ({"dropout": 2.0}, r"dropout must lie in \[0, 1\)"),
    # With edm_then_ict these failed only when the consistency phase began ("math domain error").
    ({"ict": {"s0": 64, "s1": 32}}, "1 <= s0 <= s1"),
    ({"ict": {"s0": 0}}, "1 <= s0 <= s1"),
    ({"data": {"max_zoom": 0.5}}, "data.max_zoom must be at least 1"),
    ({"data": {"whole_scene": 1.5}}, r"data.whole_scene .* in \[0, 1\]"),
    ({"data": {"jitter": 1.0}}, r"data.jitter must lie in \[0, 1\)"),
])
def test_config_mistakes_are_refused_when_loaded(tmp_path: Path, override: dict, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"preset": "tiny", "recipe": "edm_then_ict", "edm_steps": 4, "total_steps": 8,
                                **override}))
    with pytest.raises(ValueError, match=match):
        TrainConfig.load(path)


def test_a_missing_cd_teacher_fails_before_the_edm_phase(photos: Path, tmp_path: Path) -> None:
    """edm_then_cd loads cd.teacher at the phase switch: a typo there used to cost the whole EDM phase."""
    cfg = tiny_config(photos, recipe="edm_then_cd", edm_steps=2, total_steps=4,
                      cd={"teacher": str(tmp_path / "typo.safetensors")})
    with pytest.raises(FileNotFoundError, match="typo.safetensors"):
        train(cfg, out=tmp_path / "run", **QUIET)
    assert not (tmp_path / "run").exists()  # not a single step was trained


def test_resume_uses_the_configs_betas(photos: Path, tmp_path: Path) -> None:
    """The checkpoint's param groups used to override a changed `betas` without a word."""
    cfg = tiny_config(photos, checkpoint_every=100)
    train(cfg, out=tmp_path, steps=2, **QUIET)
    changed = TrainConfig.from_dict({**cfg.to_dict(), "betas": [0.5, 0.9]})
    logs: list[str] = []
    t = train(changed, out=tmp_path, resume=True, steps=1, device="cpu", threads=1, log=logs.append)
    assert t.step == 3 and tuple(t.opt.param_groups[0]["betas"]) == (0.5, 0.9)
    assert any("betas changed" in line for line in logs)


def test_train_cli_reports_a_full_disk(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import engine.training.state as state
    from engine.cli import main

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**tiny_config(photos).to_dict(), "threads": 1, "checkpoint_every": 1}))
    run = ["train", str(config), "--out", str(tmp_path / "run"), "--steps", "1", "--device", "cpu"]
    real = state.atomic_write_bytes
    monkeypatch.setattr(state, "atomic_write_bytes", full)
    assert main(run) == 1  # the very first checkpoint failed: there is nothing to resume
    err = capsys.readouterr().err
    assert "No space left on device" in err and "--resume" not in err and "Traceback" not in err
    monkeypatch.setattr(state, "atomic_write_bytes", real)
    assert main(run) == 0  # one whole checkpoint, then the disk fills up
    monkeypatch.setattr(state, "atomic_write_bytes", full)
    assert main([*run, "--resume"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "continue with --resume" in err and "Traceback" not in err


def test_eval_cli_checks_its_output_folder_before_evaluating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """An unwritable --out used to show only after the whole evaluation, as a traceback."""
    import importlib

    from engine.checkpoint import save_model
    from engine.cli import main
    from engine.unet import UNet

    spec = preset("tiny")
    save_model(tmp_path / "m.safetensors", spec, UNet(spec.unet).state_dict())

    def evaluate(*_a: object, **_k: object) -> None:
        raise AssertionError("the evaluation ran before the output folder was checked")

    # engine.eval re-exports the function under the module's name, hence import_module.
    monkeypatch.setattr(importlib.import_module("engine.eval.evaluate"), "evaluate", evaluate)
    (tmp_path / "taken").write_text("a file where the output folder should go")
    # A photo set to point at (its manifest is all that is checked before the evaluation), so the run
    # gets past that check on a machine without the project's data-cache too.
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "manifest.tsv").write_text("file\tsplit\n")
    rc = main(["eval", str(tmp_path / "m.safetensors"), "--data", str(tmp_path / "photos"), "--out",
               str(tmp_path / "taken"), "--device", "cpu", "--precision", "fp32", "--threads", "1"])
    assert rc == 1 and "taken" in capsys.readouterr().err


def test_grey_truth_has_no_chroma_ratio() -> None:
    """Grey held-out photos: the chroma ratio was taken against round-off and read e.g. 280969802 %."""
    from engine.eval.evaluate import score

    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(0, 256, (2, 16, 16, 1), dtype=np.uint8), 3, axis=3)
    colour = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert score("colorization", "ours", colour, grey).chroma_ratio is None
    assert score("colorization", "grey input", grey, grey).chroma_ratio is None
    assert score("colorization", "ours", colour, colour).chroma_ratio == pytest.approx(1.0)


def test_eval_refuses_zero_crops(tmp_path: Path) -> None:
    from engine.eval.evaluate import evaluate
    from engine.pipeline import Model

    model = Model.random(preset("tiny"), device="cpu", precision="fp32", threads=1)
    for kw in ({"n": 0}, {"n": -2}, {"batch": 0}):
        with pytest.raises(ValueError, match="at least 1"):  # was "need at least one array to stack"
            evaluate(model, tmp_path, log=lambda _m: None, **kw)


def test_data_build_replaces_a_damaged_cached_original(tmp_path: Path) -> None:
    """Offline path with the cache present: a cached original that no longer matches its sha256 used
    to stop the build ("is corrupt: delete it and re-run"); it is now extracted again and verified."""
    import shutil

    from engine.data import build_dataset, load_manifest
    from engine.data.build import Cache, read_allowlist
    from tests.engine.test_data_build import FakeFetch, build_fake_deb, write_allowlist

    if shutil.which("dpkg-deb") is None:
        pytest.skip("needs dpkg-deb (Debian)")
    deb, originals = build_fake_deb(tmp_path)
    allowlist = write_allowlist(tmp_path / "allow.tsv", originals)
    out, cache = tmp_path / "out", Cache(tmp_path / "cache")
    quiet = dict(cache_dir=cache.root, allowlist=allowlist, fetch=FakeFetch(deb), log=lambda _m: None)
    rows = load_manifest(build_dataset(out, **quiet))
    entry = next(e for e in read_allowlist(allowlist) if e.path.endswith("small.png"))
    cache.jpeg(entry).unlink()  # not resized yet, so the original is needed again ...
    cache.original(entry).write_bytes(b"damaged")  # ... and its cached copy is bad
    (out / "manifest.tsv").unlink()
    assert load_manifest(build_dataset(out, **quiet)) == rows
    assert hashlib.sha256(cache.original(entry).read_bytes()).hexdigest() == entry.sha256


def test_a_truncated_photo_is_named(tmp_path: Path) -> None:
    """`cstudio train` / `cstudio eval` on a photo set with a cut-off JPEG used to fail with Pillow's
    bare "Truncated File Read" (an OSError, a traceback from the CLI) naming no file."""
    from engine.training.data import load_photos

    data = make_photoset(tmp_path / "photos", n=3)
    jpeg = data / "images" / "img1.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"img1\.jpg: cannot decode"):
        load_photos(data, "train")


def test_init_flags_that_would_be_ignored_are_refused(photos: Path, tmp_path: Path) -> None:
    cfg = tiny_config(photos, recipe="edm", total_steps=2, checkpoint_every=1)
    train(cfg, out=tmp_path / "a", steps=1, **QUIET)
    exported = tmp_path / "a.safetensors"
    train(cfg, out=tmp_path / "b", **QUIET)  # to the end: writes its model
    (tmp_path / "b" / "model.safetensors").rename(exported)
    with pytest.raises(ValueError, match="give --init too"):
        train(cfg, out=tmp_path / "c", init_step=5, **QUIET)
    # --resume would win silently over --init where there are checkpoints.
    with pytest.raises(ValueError, match="drop --init"):
        train(cfg, out=tmp_path / "a", resume=True, init=exported, **QUIET)
    # A model already at total_steps would "finish" at once without a word.
    with pytest.raises(ValueError, match="raise total_steps"):
        train(cfg, out=tmp_path / "d", init=exported, **QUIET)
