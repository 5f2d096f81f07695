"""The class of a class-conditional model in the app, without Qt: listed by the catalog, carried by
GenerationParams, checked and persisted by the controller, and set on the model for every job
(edits, generate and batches) by the engine side (app.tasks, app.batch)."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import tasks
from app.batch import run_batch
from app.controller import EditorController
from app.model import JobRequest, Task
from app.model.catalog import TEST_MODEL, read_model_info
from app.model.jobs import BatchRequest
from app.model.params import GenerationParams
from app.model.settings import Settings, load_settings, save_settings
from engine import Model, preset, save_model
from tests.app.conftest import make_photo
from tests.app.fakes import SyncEngine, make_controller, scripted_view

CLASSES = 10


def cond_spec():
    """The tiny preset with a 10-class label embedding, as the ImageNet models have 1000."""
    spec = preset("tiny")
    return dataclasses.replace(spec, name="tiny-cond", unet=dataclasses.replace(spec.unet, num_classes=CLASSES))


def write_cond_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = Model.random(cond_spec(), seed=0, device="cpu", precision="fp32")
    path = folder / "cond.safetensors"
    save_model(path, model.spec, model.denoiser.net.state_dict())
    return path


@pytest.fixture(scope="module")
def cond_model() -> Model:
    return Model.random(cond_spec(), seed=0, device="cpu", precision="fp32")


def _cond_controller(tmp_path: Path):
    """A controller whose picker lists the untrained test model, then the class-conditional one, loaded."""
    write_cond_model(tmp_path / "models")
    c, view, engine = make_controller(tmp_path)
    c.select_model(1)
    engine.process()
    assert c.model is not None and c.model.num_classes == CLASSES
    return c, view, engine


# -- the catalog and the parameters --------------------------------------------------------------------------------


def test_the_catalog_reads_the_class_count_from_the_header(tmp_path, cond_model):
    path = write_cond_model(tmp_path)
    assert read_model_info(path).num_classes == CLASSES
    assert TEST_MODEL.num_classes is None
    # The loaded model's own description agrees.
    assert tasks.describe(cond_model, read_model_info(path)).num_classes == CLASSES
    plain = Model.random(preset("tiny"), device="cpu", precision="fp32")
    assert tasks.describe(plain, TEST_MODEL).num_classes is None


def test_a_header_with_a_bad_class_count_is_unreadable(tmp_path):
    from app.model.catalog import CatalogError

    path = write_cond_model(tmp_path)
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    bad = data[8:8 + n].replace(b'\\"num_classes\\": 10', b'\\"num_classes\\": 0')
    assert bad != data[8:8 + n]
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(len(bad).to_bytes(8, "little") + bad + data[8 + n:])
    with pytest.raises(CatalogError, match="num_classes"):
        read_model_info(broken)


def test_the_parameters_carry_a_class_index():
    assert GenerationParams().class_label == 0
    assert GenerationParams(class_label=207).class_label == 207
    with pytest.raises(ValueError, match="class"):
        GenerationParams(class_label=-1)


# -- the controller -------------------------------------------------------------------------------------------------


def test_the_class_is_checked_against_the_loaded_model(tmp_path):
    c, view, _ = _cond_controller(tmp_path)
    c.set_params(class_label=4)
    assert c.params.class_label == 4
    view.set_status.reset_mock()
    c.set_params(class_label=CLASSES)
    assert c.params.class_label == 4
    assert "0 to 9" in view.set_status.call_args.args[0]
    assert view.set_params.call_args.args[0].class_label == 4  # the view is put back to the value kept


def test_a_random_class_is_one_of_the_model_s(tmp_path):
    c, view, _ = _cond_controller(tmp_path)
    random.seed(0)
    seen = set()
    for _ in range(30):
        c.randomise_class()
        seen.add(c.params.class_label)
        assert view.set_params.call_args.args[0].class_label == c.params.class_label
    assert seen <= set(range(CLASSES)) and len(seen) > 3


def test_a_model_without_classes_draws_no_class(tmp_path):
    c, _, _ = make_controller(tmp_path)
    assert c.model is not None and c.model.num_classes is None
    c.set_params(class_label=12)  # kept for the next class-conditional model; this one ignores it
    c.randomise_class()
    assert c.params.class_label == 12


def test_the_class_is_persisted_in_the_settings(tmp_path):
    c, _, _ = _cond_controller(tmp_path)
    c.set_params(class_label=7)
    c.save_settings()
    assert load_settings(tmp_path / "settings.json").class_label == 7
    again, _, _ = make_controller(tmp_path)
    assert again.params.class_label == 7


def test_a_saved_class_beyond_the_model_s_classes_becomes_its_last(tmp_path):
    save_settings(Settings(class_label=207), tmp_path / "settings.json")  # from an ImageNet model
    c, view, _ = _cond_controller(tmp_path)
    assert c.params.class_label == CLASSES - 1
    assert view.set_params.call_args.args[0].class_label == CLASSES - 1


def test_a_corrupt_saved_class_falls_back_to_0(tmp_path):
    save_settings(Settings(class_label=-5), tmp_path / "settings.json")
    c, _, _ = make_controller(tmp_path)
    assert c.params.class_label == 0


# -- the jobs -------------------------------------------------------------------------------------------------------


def _edit(c: EditorController, engine: SyncEngine, label: int) -> np.ndarray:
    """Run the selected task with `label` and return the document's image, then undo it."""
    c.set_params(class_label=label)
    assert c.run() is not None
    engine.process()
    out = c.document.image.copy()
    c.undo()
    return out


@pytest.mark.parametrize("task", [Task.inpaint, Task.colorize, Task.upscale, Task.generate, Task.stroke_edit])
def test_every_task_of_the_app_uses_the_class(tmp_path, task):
    photo = tmp_path / "photo.png"
    Image.fromarray(make_photo(24, 30)).save(photo)
    write_cond_model(tmp_path / "models")
    c, view, engine = make_controller(tmp_path, start=[str(photo)])
    c.select_model(1)
    engine.process()
    mask = np.zeros((24, 30), np.uint8)
    mask[5:15, 5:20] = 255
    c.document.set_mask(mask)
    c.set_params(task=task, upscale_factor=2, seed=1)
    a, b, a_again = (_edit(c, engine, label) for label in (3, 7, 3))
    assert np.array_equal(a, a_again)
    assert not np.array_equal(a, b)
    assert any("class 3" in call.args[0] for call in view.set_status.call_args_list)  # the status says which


def test_the_job_sets_the_model_s_class(cond_model):
    """What the worker runs is the engine's task for that class (the same pixels as the engine's own call)."""
    image = make_photo(24, 30)
    mask = np.zeros((24, 30), np.uint8)
    mask[4:12, 6:18] = 255
    params = GenerationParams(task=Task.inpaint, seed=2, class_label=6)
    out = tasks.run_task(cond_model, JobRequest(1, params, image, mask, 0), lambda d, t: None).image
    assert cond_model.class_label == 6
    fresh = Model.random(cond_model.spec, seed=0, device="cpu", precision="fp32")
    fresh.class_label = 6
    name, kwargs = tasks.task_call(fresh, params, image, mask, None, lambda d, t: None)
    assert np.array_equal(out, getattr(fresh, name)(**kwargs))


def test_a_job_with_a_class_the_model_lacks_fails_with_a_message(cond_model):
    image = make_photo(16, 16)
    params = GenerationParams(task=Task.colorize, class_label=CLASSES)
    with pytest.raises(tasks.TaskError, match="classes 0 to 9"):
        tasks.run_task(cond_model, JobRequest(1, params, image, np.zeros((16, 16), np.uint8), 0), lambda d, t: None)


def test_a_model_without_classes_ignores_the_parameter():
    plain = Model.random(preset("tiny"), device="cpu", precision="fp32")
    image = make_photo(16, 16)
    outs = [tasks.run_task(plain, JobRequest(1, GenerationParams(task=Task.colorize, class_label=label), image,
                                             np.zeros((16, 16), np.uint8), 0), lambda d, t: None).image
            for label in (0, 500)]
    assert np.array_equal(*outs) and plain.class_label is None


def test_a_batch_uses_the_class_for_every_file(tmp_path, cond_model):
    for i in range(2):
        Image.fromarray(make_photo(20, 20, seed=1)).save(tmp_path / f"p{i}.png")
    results = {}
    for label in (1, 8):
        out = tmp_path / f"out{label}"
        done = run_batch(cond_model, BatchRequest(1, GenerationParams(task=Task.colorize, class_label=label),
                                                  (tmp_path / "p0.png", tmp_path / "p1.png"), out_dir=out),
                         lambda d, t, s: None)
        assert not done.failed and len(done.written) == 2
        results[label] = [np.asarray(Image.open(p)) for p in sorted(done.written)]
    assert np.array_equal(*results[1]) and np.array_equal(*results[8])
    assert not np.array_equal(results[1][0], results[8][0])


def test_a_batch_with_a_class_the_model_lacks_fails_each_file_with_the_reason(tmp_path, cond_model):
    for name in ("p.png", "q.png"):
        Image.fromarray(make_photo(20, 20)).save(tmp_path / name)
    done = run_batch(cond_model, BatchRequest(1, GenerationParams(task=Task.colorize, class_label=99),
                                              (tmp_path / "p.png", tmp_path / "q.png"), out_dir=tmp_path / "out"),
                     lambda d, t, s: None)
    assert done.written == () and [src.name for src, _ in done.failed] == ["p.png", "q.png"]
    assert all("classes 0 to 9" in reason for _, reason in done.failed)
    assert not list((tmp_path / "out").glob("*.png"))


def test_the_scripted_view_is_told_of_no_class_for_a_plain_model(tmp_path):
    """The status of a run says the class only when the model has classes (the class is then part of what runs)."""
    Image.fromarray(make_photo(24, 30)).save(tmp_path / "photo.png")
    c, view, engine = make_controller(tmp_path, start=[str(tmp_path / "photo.png")], view=scripted_view())
    c.set_params(task=Task.colorize)
    c.run()
    assert view.set_status.call_args.args[0] == "Colorize running; Esc cancels."
