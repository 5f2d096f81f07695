"""The engine side of jobs (app.tasks) and the model catalog, on the tiny random model."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from app import tasks
from app.model import TEST_MODEL, GenerationParams, JobRequest, ModelInfo, Task, read_model_info, scan_models
from engine import CheckpointError, Model, preset, save_model

from .conftest import make_photo

ROOT = Path(__file__).resolve().parents[2]


def _request(task: Task, image: np.ndarray, mask: np.ndarray | None = None, **params: object) -> JobRequest:
    mask = np.zeros(image.shape[:2], np.uint8) if mask is None else mask
    return JobRequest(1, GenerationParams(task=task, **params), image, mask, image_revision=1)


def test_every_task_runs_on_the_tiny_model(tiny_model: Model, photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[10:30, 20:40] = 255
    calls: list[tuple[int, int]] = []
    shapes = {}
    for task in Task:
        out = tasks.execute(tiny_model, _request(task, photo[:16, :16] if task == Task.upscale else photo,
                                                 mask[:16, :16] if task == Task.upscale else mask),
                            lambda d, t: calls.append((d, t)))
        assert out.dtype == np.uint8 and out.ndim == 3
        shapes[task] = out.shape
    assert shapes[Task.generate] == (16, 16, 3)
    assert shapes[Task.upscale] == (64, 64, 3)
    assert shapes[Task.inpaint] == photo.shape and shapes[Task.colorize] == photo.shape
    assert calls and all(0 < d <= t for d, t in calls)


def test_inpaint_changes_the_hole_and_keeps_far_pixels(tiny_model: Model) -> None:
    photo = make_photo(96, 128)
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[10:30, 20:40] = 255
    out = tasks.execute(tiny_model, _request(Task.inpaint, photo, mask), lambda d, t: None)
    assert (out[mask == 255] != photo[mask == 255]).any()
    assert (out[70:, 90:] == photo[70:, 90:]).all()  # far from the mask: bit-identical


def test_stroke_edit_blends_through_a_soft_mask(tiny_model: Model, photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[10:30, 20:40] = 255
    mask[10:30, 40] = 128
    out = tasks.execute(tiny_model, _request(Task.stroke_edit, photo, mask), lambda d, t: None)
    assert (out[mask == 0] == photo[mask == 0]).all()
    assert (out[mask == 255] != photo[mask == 255]).any()


def test_steps_choose_the_number_of_evaluations(tiny_model: Model) -> None:
    blank = np.zeros((4, 4, 3), np.uint8)
    for steps, want in ((1, 1), (2, 2), (4, 4), (0, 2)):  # 0 = published ts (0, 22, 39): two evaluations
        seen: list[int] = []
        tasks.execute(tiny_model, _request(Task.generate, blank, steps=steps), lambda d, t: seen.append(t))
        assert seen[-1] == want


def test_steps_choose_the_sampler_steps_of_an_edm_model(tiny_model: Model) -> None:
    import dataclasses

    from app.model.params import default_steps

    spec = tiny_model.spec
    edm = Model(dataclasses.replace(spec, denoiser=dataclasses.replace(spec.denoiser, kind="edm")),
                tiny_model.denoiser.net.state_dict(), device="cpu", precision="fp32")
    blank = np.zeros((4, 4, 3), np.uint8)
    outs = []
    for steps in (1, 2):
        seen: list[int] = []
        outs.append(tasks.execute(edm, _request(Task.generate, blank, steps=steps), lambda d, t: seen.append(t)))
        assert seen[-1] == steps
    assert not np.array_equal(outs[0], outs[1])
    # "Default" is its Heun steps (the count the picker's items mean for it), not the ts count.
    assert default_steps(Task.generate, (0, 22, 39), "edm") is None
    assert default_steps(Task.generate, (0, 22, 39), "edm", edm_steps=40) == 40
    info = tasks.describe(edm, ModelInfo(path=Path("edm.safetensors"), name="edm", resolution=16, kind="edm"))
    assert info.edm_steps == spec.sampler.edm_steps


def test_the_default_model_s_generate_default_names_its_heun_steps() -> None:
    from app.model.catalog import read_model_info
    from app.model.params import default_steps
    from engine.paths import default_model_path

    info = read_model_info(default_model_path(), is_default=True)
    assert info.kind == "edm" and info.edm_steps == 40
    assert default_steps(Task.generate, info.published_ts, info.kind, edm_steps=info.edm_steps) == 40


def test_user_errors_are_task_errors(tiny_model: Model, photo: np.ndarray) -> None:
    with pytest.raises(tasks.TaskError, match="mask is empty"):
        tasks.execute(tiny_model, _request(Task.inpaint, photo), lambda d, t: None)


def test_same_seed_same_image(tiny_model: Model) -> None:
    a = tasks.execute(tiny_model, _request(Task.generate, np.zeros((4, 4, 3), np.uint8), seed=7), lambda d, t: None)
    b = tasks.execute(tiny_model, _request(Task.generate, np.zeros((4, 4, 3), np.uint8), seed=7), lambda d, t: None)
    c = tasks.execute(tiny_model, _request(Task.generate, np.zeros((4, 4, 3), np.uint8), seed=8), lambda d, t: None)
    assert (a == b).all() and (a != c).any()


def _tiny_file(path: Path) -> Path:
    m = Model.random(preset("tiny"), seed=1)
    return save_model(path, m.spec, {k: v.float() for k, v in m.denoiser.net.state_dict().items()})


def test_catalog_reads_headers_and_falls_back_to_the_test_model(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    path = _tiny_file(folder / "mine.safetensors")
    (folder / "broken.safetensors").write_bytes(b"\x00" * 3)
    info = read_model_info(path)
    assert (info.resolution, info.kind, info.name) == (16, "cm", "tiny") and info.one_step
    assert "16 px" in info.label and "consistency" in info.label
    models, problems = scan_models(None, [folder, tmp_path / "absent"])
    assert models[0] == TEST_MODEL and "Untrained test model" in models[0].label
    assert [m.path for m in models[1:]] == [path]
    assert len(problems) == 1 and "broken.safetensors" in problems[0]
    models, _ = scan_models(path, [folder])
    assert models[0].is_default and len(models) == 1  # the default is not listed twice


def _header_only_file(path: Path, metadata: dict) -> Path:
    """A safetensors file with no tensors: 8-byte little-endian header length, then the JSON header."""
    header = json.dumps({"__metadata__": metadata}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


_GOOD_SPEC = {"name": "m", "unet": {"image_size": 64}, "denoiser": {"kind": "cm"}, "sampler": {"steps": 40}}


@pytest.mark.parametrize("spec", [
    {**_GOOD_SPEC, "denoiser": "x"}, {**_GOOD_SPEC, "sampler": ["steps"]}, {**_GOOD_SPEC, "unet": 64},
    {**_GOOD_SPEC, "unet": {"image_size": 0}}, {**_GOOD_SPEC, "unet": {"image_size": 1e999}},
    {**_GOOD_SPEC, "sampler": {"steps": 40, "ts": 5}}, {**_GOOD_SPEC, "sampler": {"steps": True}},
    ["not", "an", "object"], "[[[[" * 50_000 + "]]]]" * 50_000,
], ids=["denoiser-string", "sampler-list", "unet-number", "size-0", "size-inf", "ts-number", "steps-bool",
        "spec-list", "deeply-nested"])
def test_a_malformed_model_header_is_listed_as_unreadable(tmp_path: Path, spec: object) -> None:
    """Whatever the header holds, that one file is reported and skipped: scanning, and the start, go on."""
    from .fakes import make_controller

    folder = tmp_path / "models"
    folder.mkdir()
    bad = _header_only_file(folder / "bad.safetensors", {"spec": spec if isinstance(spec, str) else json.dumps(spec)})
    good = _header_only_file(folder / "good.safetensors", {"spec": json.dumps(_GOOD_SPEC)})
    models, problems = scan_models(None, [folder])
    assert [m.path for m in models] == [None, good] and models[1].resolution == 64
    assert len(problems) == 1 and "bad.safetensors" in problems[0]
    c, view, _ = make_controller(tmp_path, load_model=False)  # the controller's start scans the same folder
    assert [m.path for m in c.models] == [None, good]
    assert any("bad.safetensors" in call.args[0] for call in view.set_status.call_args_list)


def test_load_describes_the_real_spec(tmp_path: Path) -> None:
    model, info = tasks.load(TEST_MODEL)
    assert info.untrained and info.resolution == model.resolution == 16
    path = _tiny_file(tmp_path / "m.safetensors")
    model, info = tasks.load(read_model_info(path))
    assert info.path == path and info.published_ts == (0, 22, 39)


def test_import_an_official_pt_into_the_models_folder(tmp_path: Path) -> None:
    m = Model.random(preset("tiny"), seed=2)
    torch.save({k: v.float() for k, v in m.denoiser.net.state_dict().items()}, tmp_path / "official.pt")
    stages: list[str] = []
    dest = tasks.import_checkpoint(tmp_path / "official.pt", tmp_path / "models", lambda d, t, s: stages.append(s))
    assert dest == tmp_path / "models" / "official.safetensors"
    assert stages[0] == "Reading checkpoint" and stages[-1] == "Done"
    info = read_model_info(dest)
    assert info.resolution == 16
    # A second import of the same name does not overwrite the first.
    again = tasks.import_checkpoint(tmp_path / "official.pt", tmp_path / "models", lambda *a: None)
    assert again.name == "official-2.safetensors"


def test_import_refuses_pickles_that_run_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(CheckpointError):
        tasks.import_checkpoint(tmp_path / "evil.pt", tmp_path / "models", lambda *a: None)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


@pytest.mark.skipif(not (ROOT / "tests/fixtures/refcheck/small_lsun/state_dict.pt").exists(),
                    reason="reference checkpoint fixture not present")
def test_import_the_reference_official_checkpoint(tmp_path: Path) -> None:
    dest = tasks.import_checkpoint(ROOT / "tests/fixtures/refcheck/small_lsun/state_dict.pt", tmp_path, lambda *a: None)
    assert read_model_info(dest).path == dest


@pytest.mark.parametrize("kind", ["cm", "edm"])
def test_default_steps_label_matches_the_engine_loop(tiny_model: Model, photo: np.ndarray, kind: str) -> None:
    """"Default (n steps)" in the panel is what the engine runs: its per-task default loop for the model's kind."""
    import dataclasses

    from app.model.params import default_steps
    from engine.pipeline import EDIT_DEFAULTS

    spec = tiny_model.spec
    model = Model(dataclasses.replace(spec, denoiser=dataclasses.replace(spec.denoiser, kind=kind)),
                  tiny_model.denoiser.net.state_dict(), device="cpu", precision="fp32")
    engine_steps = {Task.upscale: EDIT_DEFAULTS[kind]["upscale"].steps, Task.colorize: EDIT_DEFAULTS[kind]["colorize"].steps,
                    Task.inpaint: EDIT_DEFAULTS[kind]["inpaint"].steps, Task.stroke_edit: EDIT_DEFAULTS[kind]["stroke_edit"].steps}
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[8:20, 8:20] = 255
    x2 = EDIT_DEFAULTS[kind]["upscale_x2"].steps
    assert default_steps(Task.upscale, (0, 22, 39), kind, factor=2) == x2
    assert default_steps(Task.upscale, (0, 22, 39), kind, factor=8) == engine_steps[Task.upscale]
    seen_x2: list[int] = []
    tasks.execute(model, _request(Task.upscale, photo[:8, :8], steps=0, upscale_factor=2), lambda d, t: seen_x2.append(t))
    assert seen_x2[-1] == x2  # one batch of tiles, the x2 loop
    detail = EDIT_DEFAULTS[kind]["upscale_detail"]
    assert default_steps(Task.upscale, (0, 22, 39), kind, factor=4, detail=True) == detail.steps
    seen_detail: list[int] = []
    tasks.execute(model, _request(Task.upscale, photo[:4, :4], steps=0, upscale_detail=True),
                  lambda d, t: seen_detail.append(t))
    assert seen_detail[-1] == detail.evaluations  # one batch of tiles: the detail loop and its base
    for task, n in engine_steps.items():
        assert default_steps(task, (0, 22, 39), kind) == n
        seen: list[int] = []
        tasks.execute(model, _request(task, photo, mask if task in (Task.inpaint, Task.stroke_edit) else None, steps=0),
                      lambda d, t: seen.append(t))
        # Progress totals count network evaluations: colorize runs the loop once, upscale once per
        # batch of tiles, inpainting adds its finer passes.
        if task in (Task.colorize, Task.stroke_edit):
            assert seen[-1] == n
        elif task == Task.upscale:
            assert seen[-1] % n == 0
        else:
            assert seen[-1] >= n
