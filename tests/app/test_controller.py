"""EditorController without Qt: a MagicMock(spec=EditorView) and an engine that runs jobs when told."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from unittest.mock import MagicMock

import numpy as np
import pytest
from PIL import Image

from app import tasks
from app.controller import MISSING_DEFAULT, EditorController, EditorView
from app.model import brush as brushes
from app.model import (ImportDone, ImportRequest, JobFailed, JobRequest, JobResult, LoadModelRequest, ModelReady,
                       Progress, Task)
from app.model.settings import load_settings
from tests.app.conftest import make_photo
from tests.app.fakes import SyncEngine


class StepEngine(SyncEngine):
    """Like SyncEngine, but answers through `app.tasks` directly so tests can reach the loaded model."""

    def __init__(self) -> None:
        super().__init__()
        self.model = None

    def process(self) -> int:
        c, n = self.controller, 0
        assert c is not None
        while self.queue:
            req = self.queue.pop(0)
            n += 1
            if req.job_id in self.cancelled:
                c.on_failed(JobFailed(req.job_id, "Cancelled.", cancelled=True))
            elif isinstance(req, LoadModelRequest):
                self.model, info = tasks.load(req.info)
                c.on_finished(ModelReady(req.job_id, info))
            elif isinstance(req, JobRequest):
                try:
                    out = tasks.run_task(self.model, req, lambda d, t: c.on_progress(Progress(req.job_id, d, t)))
                except tasks.TaskError as e:
                    c.on_failed(JobFailed(req.job_id, str(e)))
                else:
                    c.on_finished(JobResult(req.job_id, out.image, req.image_revision, 0.01, req.task,
                                            out.alpha, out.notes))
            elif isinstance(req, ImportRequest):
                c.on_finished(ImportDone(req.job_id, tasks.import_checkpoint(req.source, req.dest_dir, lambda *a: None)))
        return n


@pytest.fixture
def setup(tmp_path: Path, photo: np.ndarray):
    view = MagicMock(spec=EditorView)
    engine = StepEngine()
    c = EditorController(view, engine, settings_file=tmp_path / "s.json", models_dir=tmp_path / "models")
    engine.controller = c
    Image.fromarray(photo).save(tmp_path / "photo.png")
    c.start([str(tmp_path / "photo.png")])
    engine.process()  # load the test model
    view.reset_mock()
    return c, view, engine


def _stroke(c: EditorController, *points: tuple[float, float], erase: bool = False) -> None:
    c.begin_stroke(*points[0], erase=erase)
    for p in points[1:]:
        c.extend_stroke(*p)
    c.end_stroke()


def test_start_opens_the_file_and_falls_back_to_the_labelled_test_model(tmp_path: Path, photo: np.ndarray) -> None:
    view, engine = MagicMock(spec=EditorView), StepEngine()
    c = EditorController(view, engine, settings_file=tmp_path / "s.json", models_dir=tmp_path / "m")
    engine.controller = c
    Image.fromarray(photo).save(tmp_path / "p.png")
    c.start([str(tmp_path / "p.png")])
    assert c.document.path == tmp_path / "p.png"
    assert view.set_models.call_args.args[0][0].untrained
    engine.process()
    view.set_model_state.assert_called_with(MISSING_DEFAULT, ready=True, warning=True)
    assert c.model is not None and c.model.resolution == 16
    view.set_live_available.assert_called_with(True)


def test_a_stroke_sets_mask_pixels_and_can_be_undone(setup) -> None:
    c, view, _ = setup
    c.set_brush(size=8)
    _stroke(c, (10, 10), (40, 10))
    assert c.document.mask[10, 10:40].min() == 255 and c.document.mask[40, 10] == 0
    assert view.set_mask.call_args_list[0].args[1] is not None  # partial updates while drawing
    view.set_history.assert_called_with("Brush stroke", "")
    _stroke(c, (20, 10), (30, 10), erase=True)
    assert c.document.mask[10, 25] == 0 and c.document.mask[10, 12] == 255
    c.undo()
    assert c.document.mask[10, 25] == 255
    c.undo()
    assert not c.document.mask.any()
    c.redo()
    assert c.document.mask[10, 25] == 255


def test_run_inpaint_applies_the_result_with_history_and_compare(setup, photo: np.ndarray) -> None:
    c, view, engine = setup
    c.set_params(task="inpaint")
    assert c.run() is None  # empty mask: nothing submitted
    assert "mask is empty" in view.set_status.call_args.args[0] and not engine.queue
    _stroke(c, (20, 20), (40, 20))
    job = c.run()
    assert job is not None and c.busy
    view.set_busy.assert_called_with(True)
    engine.process()
    assert not c.busy and c.document.dirty
    assert (c.document.before == photo).all() and (c.document.image != photo).any()
    view.set_before.assert_called()
    texts = [call.args[2] for call in view.set_progress.call_args_list]
    assert "Inpaint: 100 %" in texts  # a share of the work: the engine's count is not the picker's steps
    view.set_history.assert_called_with("Inpaint", "")
    assert not c.document.mask.any()  # the filled area is cleared so the overlay does not hide it
    c.undo()
    assert (c.document.image == photo).all() and not c.document.dirty and c.document.mask.any()


@pytest.mark.parametrize("live", [False, True])
def test_inpaint_refuses_a_mask_over_the_whole_picture_before_submitting(setup, live: bool) -> None:
    """Nothing known to fill from: the engine made a flat grey picture of it."""
    c, view, engine = setup
    c.set_params(task="inpaint")
    c.invert_mask()  # the empty mask inverted: every pixel
    assert c.document.mask.all()
    assert c.run(live=live) is None and not engine.queue and not c.busy
    assert "The mask covers the whole picture" in view.set_status.call_args.args[0]
    _stroke(c, (20, 20), (40, 20), erase=True)  # one known patch is enough
    assert c.run(live=live) is not None


@pytest.mark.parametrize("task", list(Task))
def test_every_task_replaces_the_image(setup, task: Task) -> None:
    c, _, engine = setup
    _stroke(c, (20, 20), (30, 25))
    c.set_params(task=task, upscale_factor=2)
    assert c.run() is not None
    engine.process()
    assert not c.busy and c.history.undo_label != "Brush stroke"


def test_stale_results_are_dropped(setup, tmp_path: Path) -> None:
    c, view, engine = setup
    _stroke(c, (20, 20), (30, 20))
    c.run()
    image = c.document.image
    # A result with another id (e.g. from a job that was replaced) changes nothing.
    c.on_finished(JobResult(999, np.zeros((4, 4, 3), np.uint8), c.document.image_revision, 0.0, Task.inpaint))
    assert c.document.image is image and c.busy
    # The image changes while the job runs (a colour stroke): the result no longer applies.
    c.set_brush(tool="colour")
    _stroke(c, (5, 5), (6, 6))
    changed = c.document.image
    engine.process()
    assert c.document.image is changed and not c.busy
    assert "discarded" in view.set_status.call_args.args[0]


def test_cancel_mid_run_leaves_the_document_untouched(setup) -> None:
    c, view, engine = setup
    _stroke(c, (20, 20), (30, 20))
    image = c.document.image
    job = c.run()
    c.cancel()
    assert job in engine.cancelled
    engine.process()
    assert c.document.image is image and not c.busy
    view.set_status.assert_called_with("Cancelled.")
    view.show_error.assert_not_called()


def test_engine_errors_become_a_message(setup) -> None:
    c, view, _ = setup
    _stroke(c, (20, 20), (30, 20))
    job = c.run()
    c.on_failed(JobFailed(job, "Out of memory: try a smaller image."))
    view.show_error.assert_called_once_with("The task failed", "Out of memory: try a smaller image.")
    assert not c.busy


def test_live_mode_coalesces_to_the_latest_request(setup) -> None:
    c, _, engine = setup
    c.set_params(task="inpaint", live=True)
    _stroke(c, (10, 10), (20, 10))
    assert len(engine.queue) == 1 and engine.queue[0].live and engine.queue[0].params.steps == 1
    # Three more strokes while the first job runs: no pile-up, one re-run with the newest mask.
    for x in (30, 40, 50):
        _stroke(c, (x, 30), (x + 5, 30))
    assert len(engine.queue) == 1
    first = engine.queue.pop(0)
    c.on_finished(JobResult(first.job_id, tasks.execute(engine.model, first, lambda d, t: None),
                            first.image_revision, 0.01, Task.inpaint))
    assert len(engine.queue) == 1
    rerun = engine.queue[0]
    assert rerun.mask[30, 52] == 255  # it carries the last stroke
    engine.process()
    assert not engine.queue and not c.busy
    assert c.history.undo_label == "Inpaint (live)"


def test_live_needs_a_one_step_model_and_the_inpaint_task(setup) -> None:
    c, view, engine = setup
    c.set_params(task="colorize", live=True)
    view.set_live_available.assert_called_with(False)
    _stroke(c, (10, 10), (20, 10))
    assert not engine.queue


def test_a_bad_file_shows_an_error_and_keeps_the_document(setup, tmp_path: Path) -> None:
    c, view, _ = setup
    _stroke(c, (10, 10), (20, 10))
    doc = c.document
    (tmp_path / "bad.png").write_bytes(b"garbage")
    assert not c.open_path(tmp_path / "bad.png")
    view.show_error.assert_called_once()
    assert "bad.png" in view.show_error.call_args.args[1]
    assert c.document is doc and doc.mask.any() and c.history.can_undo


def test_save_marks_clean_and_remembers_recent_files(setup, tmp_path: Path) -> None:
    c, view, engine = setup
    _stroke(c, (20, 20), (30, 20))
    c.run()
    engine.process()
    assert c.document.dirty
    assert c.save(tmp_path / "out.webp")
    assert not c.document.dirty and (tmp_path / "out.webp").is_file()
    view.set_title.assert_called_with("out.webp", False)
    recent = load_settings(tmp_path / "s.json").recent_files
    assert recent[0].endswith("out.webp") and recent[1].endswith("photo.png")
    c.open_array(np.zeros((8, 8, 3), np.uint8))
    assert not c.save()  # no path yet: the view must ask for one


def test_mask_operations_are_undoable(setup, tmp_path: Path) -> None:
    c, _, _ = setup
    _stroke(c, (30, 24), (31, 24))
    area = lambda: int((c.document.mask > 0).sum())  # noqa: E731
    a0 = area()
    c.grow_mask()
    assert area() > a0
    c.shrink_mask()
    c.feather_mask()
    assert 0 < c.document.mask.max() and len(np.unique(c.document.mask)) > 2
    c.invert_mask()
    assert c.document.mask[0, 0] == 255
    assert c.export_mask(tmp_path / "m.png")
    c.clear_mask()
    assert not c.document.mask.any()
    assert c.import_mask(tmp_path / "m.png") and c.document.mask[0, 0] == 255
    for label in ("Import mask", "Clear mask", "Invert mask", "Feather mask", "Shrink mask", "Grow mask"):
        assert c.history.undo_label == label
        c.undo()
    assert area() == a0


def test_colour_strokes_paint_the_image(setup, photo: np.ndarray) -> None:
    c, _, _ = setup
    c.set_brush(tool="colour", colour=(255, 0, 255), hardness=1.0, size=6)
    _stroke(c, (10.5, 10.5), (30.5, 10.5))
    assert tuple(c.document.image[10, 20]) == (255, 0, 255) and c.document.dirty
    assert not c.document.mask.any()
    c.undo()
    assert (c.document.image == photo).all()


def test_a_colour_stroke_is_its_blend_inside_its_bounds_and_the_photo_elsewhere(setup, photo: np.ndarray) -> None:
    # The stroke paints into an uninitialised buffer and the picture it ends in is copied on a
    # thread (`_painting._Copy`): what the document gets must still be exactly the blend of every
    # dab over the photo, and the photo's own pixels everywhere else.
    c, view, _ = setup
    c.set_brush(tool="colour", colour=(20, 200, 90), hardness=0.3, size=9)
    c.begin_stroke(5.5, 6.5)
    for x, y in ((20.0, 12.0), (33.0, 30.0), (12.0, 40.0)):
        c.extend_stroke(x, y)
    stroke = c._stroke
    shown = view.set_image.call_args.args
    c.end_stroke()
    expected = brushes.apply_to_image(photo, stroke.coverage, (20, 200, 90), stroke.bounds)
    assert np.array_equal(c.document.image, expected)
    x0, y0, x1, y1 = stroke.bounds
    outside = np.ones(photo.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(c.document.image[outside], photo[outside]) and not np.array_equal(expected, photo)
    # The canvas was sent the painted pixels of the last dab's rectangle.
    (rx0, ry0, rx1, ry1) = shown[1]
    assert np.array_equal(shown[0][ry0:ry1, rx0:rx1], expected[ry0:ry1, rx0:rx1])


def test_model_switches_drop_stale_loads_and_import_adds_a_model(setup, tmp_path: Path) -> None:
    c, view, engine = setup
    import torch

    from engine import Model, preset

    m = Model.random(preset("tiny"), seed=3)
    torch.save({k: v.float() for k, v in m.denoiser.net.state_dict().items()}, tmp_path / "cm.pt")
    c.import_checkpoint(tmp_path / "cm.pt")
    engine.process()
    assert [m.path.name for m in c.models if m.path] == ["cm.safetensors"]
    assert c.model is not None and c.model.path == tmp_path / "models" / "cm.safetensors"
    c.select_model(0)
    first = c._model_job
    c.select_model(1)
    c.on_finished(ModelReady(first, c.models[0]))  # the earlier load finishing late
    assert c.model is None
    engine.process()
    assert c.model is not None and c.model.path is not None


def test_upscale_factor_must_divide_the_model_resolution(setup) -> None:
    c, view, engine = setup
    c.set_params(task="upscale", upscale_factor=8)
    job = c.run()
    assert job is not None  # 16 px model: 8x is fine (not run here: 2-px tiles are slow on CPU)
    c.on_failed(JobFailed(job, "Cancelled.", cancelled=True))
    engine.queue.clear()
    c.model = dataclasses.replace(c.model, resolution=12)
    assert c.run() is None and "can upscale by 2x, 4x" in view.set_status.call_args.args[0]


def test_settings_persist_between_sessions(setup, tmp_path: Path) -> None:
    c, _, _ = setup
    c.set_params(task="colorize", steps=2, upscale_factor=8, upscale_detail=True)
    c.brush_bigger()
    c.shutdown()
    c2 = EditorController(MagicMock(spec=EditorView), StepEngine(), settings_file=tmp_path / "s.json")
    assert c2.params.task == Task.colorize and c2.params.steps == 2 and c2.brush.size == 60
    assert c2.params.upscale_factor == 8 and c2.params.upscale_detail


# -- results that land during a stroke, cancel races, transparency, unreadable settings ----------


def _inpaint_job(c: EditorController) -> int:
    _stroke(c, (20, 20), (40, 20))
    job = c.run()
    assert job is not None
    return job


def test_a_result_landing_mid_mask_stroke_is_applied_when_the_stroke_ends(setup, photo: np.ndarray) -> None:
    c, view, engine = setup
    c.set_brush(size=6)
    _inpaint_job(c)
    c.begin_stroke(10, 40)
    c.extend_stroke(30, 40)
    engine.process()  # the result arrives while the button is still down
    c.extend_stroke(30, 22)  # the stroke goes on, over the area the job just filled
    c.end_stroke()
    doc = c.document
    assert (doc.image != photo).any() and not c.busy  # the result is kept ...
    assert doc.mask[40, 10:30].min() == 255  # ... and so is the stroke
    assert doc.mask[20, 38] == 0  # the filled area stays cleared (the stroke never reached x=38)
    assert (view.set_image.call_args.args[0] == doc.image).all()
    # One undo step each, newest first: undoing the result keeps the stroke, undoing the stroke keeps nothing.
    assert c.history.undo_label == "Inpaint"
    c.undo()
    assert (c.document.image == photo).all()
    assert c.document.mask[40, 20] == 255 and c.document.mask[20, 38] == 255
    c.undo()
    assert c.history.undo_label == "Brush stroke" and c.document.mask[40, 20] == 0


@pytest.mark.parametrize("task", ["inpaint", "upscale"])
def test_a_result_landing_mid_colour_stroke_keeps_both(setup, photo: np.ndarray, task: str) -> None:
    c, view, engine = setup
    c.set_params(task=task, upscale_factor=2)
    _inpaint_job(c)
    c.set_brush(tool="colour", colour=(255, 0, 255), hardness=1.0, size=6)
    c.begin_stroke(5.5, 40.5)
    c.extend_stroke(12.5, 40.5)
    engine.process()
    c.extend_stroke(20.5, 40.5)
    c.end_stroke()
    doc, k = c.document, 2 if task == "upscale" else 1
    assert doc.image.shape == (48 * k, 64 * k, 3) and doc.mask.shape == (48 * k, 64 * k)
    if k == 1:
        assert (doc.image[15:26, 18:43] != photo[15:26, 18:43]).any()  # the inpainted area is the result's
    assert tuple(doc.image[40 * k, 15 * k]) == (255, 0, 255)  # the stroke, painted over the result
    assert view.set_image.call_args.args[0].shape == doc.image.shape  # the canvas shows the result's size
    c.undo()  # the result (with the stroke on top) goes; the stroke on the old image stays
    assert c.document.image.shape == photo.shape and tuple(c.document.image[40, 15]) == (255, 0, 255)
    assert (c.document.image[:30] == photo[:30]).all()
    c.undo()
    assert (c.document.image == photo).all()


def test_cancel_drops_a_result_already_on_its_way(setup, photo: np.ndarray) -> None:
    c, view, engine = setup
    job = _inpaint_job(c)
    request = engine.queue.pop(0)
    late = JobResult(job, tasks.execute(engine.model, request, lambda d, t: None), request.image_revision, 0.01,
                     Task.inpaint)
    c.cancel()  # Esc, while the finished message was already queued
    c.on_finished(late)
    assert (c.document.image == photo).all() and c.history.undo_label == "Brush stroke"
    assert not c.busy
    view.set_status.assert_called_with("Cancelled.")


def test_cancel_during_a_stroke_drops_the_held_result(setup, photo: np.ndarray) -> None:
    c, _, engine = setup
    _inpaint_job(c)
    c.begin_stroke(10, 40)
    engine.process()
    c.cancel()
    c.end_stroke()
    assert (c.document.image == photo).all() and not c.busy and c.history.undo_label == "Brush stroke"


def test_a_live_rerun_requested_during_a_batch_runs_after_it(setup, tmp_path: Path) -> None:
    from app.model import BatchDone

    c, _, engine = setup
    c.set_params(task="colorize")
    batch = c.run_batch([tmp_path / "photo.png"])
    assert batch is not None
    engine.queue.clear()
    c.set_params(task="inpaint", live=True)
    _stroke(c, (10, 10), (20, 10))  # live wants a run, but the batch holds the engine
    assert not engine.queue
    c.on_finished(BatchDone(batch, (), (), ()))
    assert len(engine.queue) == 1 and engine.queue[0].live and c.busy


def test_generate_gives_an_opaque_image(setup, tmp_path: Path) -> None:
    c, _, engine = setup
    rgba = np.dstack([make_photo(16, 16), np.full((16, 16), 0, np.uint8)])
    rgba[4:12, 4:12, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cutout.png")
    assert c.open_path(tmp_path / "cutout.png") and c.document.alpha is not None
    c.set_params(task="generate")
    c.run()
    engine.process()
    assert c.history.undo_label == "Generate" and c.document.alpha is None
    c.undo()
    assert c.document.alpha is not None


def test_unusable_settings_fall_back_to_defaults(tmp_path: Path) -> None:
    # json reads NaN and Infinity; a `steps` the picker does not offer would be shown as "Default".
    (tmp_path / "s.json").write_text('{"brush_size": NaN, "brush_hardness": Infinity, "steps": 3, "upscale_factor": 3}')
    c = EditorController(MagicMock(spec=EditorView), StepEngine(), settings_file=tmp_path / "s.json")
    assert c.brush.size == 48.0 and c.brush.hardness == 0.6
    assert c.params.steps == 0 and c.params.upscale_factor == 4


def test_a_live_result_landing_mid_stroke_reruns_once_with_the_new_stroke(setup) -> None:
    c, _, engine = setup
    c.set_params(task="inpaint", live=True)
    c.set_brush(size=6)
    _stroke(c, (10, 10), (20, 10))
    first = engine.queue.pop(0)
    c.begin_stroke(10, 30)
    c.extend_stroke(30, 30)
    c.on_finished(JobResult(first.job_id, tasks.execute(engine.model, first, lambda d, t: None),
                            first.image_revision, 0.01, Task.inpaint))
    assert c.busy and not engine.queue  # held: nothing applied, nothing started mid-stroke
    c.end_stroke()
    assert c.history.undo_label == "Inpaint (live)"
    assert len(engine.queue) == 1 and engine.queue[0].mask[30, 20] == 255  # one re-run, with the new stroke
    engine.process()
    assert not c.busy and not engine.queue


def test_progress_shows_the_time_left_once_the_rate_is_known(setup, monkeypatch) -> None:
    from app import controller as controller_module
    from app.model.jobs import Progress
    from engine.progress import TimeLeft

    now = [0.0]
    monkeypatch.setattr(controller_module.EditorController, "_new_time_left", staticmethod(lambda: TimeLeft(lambda: now[0])))
    c, view, engine = setup
    c.set_params(task="inpaint")
    _stroke(c, (20, 20), (40, 20))
    job = c.run()
    texts = []
    for done, t in [(1, 20.0), (2, 21.0), (3, 22.0), (4, 23.0)]:  # the first step pays for the warm-up
        now[0] = t
        c.on_progress(Progress(job, done, 604))
        texts.append(view.set_progress.call_args.args[2])
    assert texts[:2] == ["Inpaint: 0 %", "Inpaint: 0 %"]  # too early for an estimate
    # 1 s a step from the first report on (not 23 s / 4): 600 steps left, 10 minutes.
    assert texts[3] == "Inpaint: 0 % \u00b7 about 10 min left"


def test_a_batch_keeps_its_file_count_next_to_the_time_left(setup, monkeypatch, tmp_path) -> None:
    from app import controller as controller_module
    from app.model.jobs import Progress
    from engine.progress import TimeLeft

    now = [0.0]
    monkeypatch.setattr(controller_module.EditorController, "_new_time_left", staticmethod(lambda: TimeLeft(lambda: now[0])))
    c, view, engine = setup
    c.set_params(task="colorize")
    files = []
    for i in range(2):
        f = tmp_path / f"in{i}.png"
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(f)
        files.append(f)
    job = c.run_batch(files)
    assert job is not None
    for done, t in [(0, 0.0), (500, 30.0), (1000, 60.0)]:
        now[0] = t
        c.on_progress(Progress(job, done, 2000, "1/2 in0.png" if done < 1000 else "2/2 in1.png"))
    # The file being worked on stays named beside the time left (it was dropped once a time showed).
    assert view.set_progress.call_args.args[2] == "Colorize: 2/2 in1.png \u00b7 about 1 min left"


def test_a_recent_file_that_is_gone_leaves_open_recent(tmp_path) -> None:
    from tests.app.fakes import make_controller

    kept, gone = tmp_path / "kept.png", tmp_path / "gone.png"
    for f in (kept, gone):
        Image.fromarray(make_photo(16, 16)).save(f)
    c, view, _ = make_controller(tmp_path, load_model=False)
    assert c.open_path(gone) and c.open_path(kept)
    assert list(c.settings.recent_files) == [str(kept.resolve()), str(gone.resolve())]
    gone.unlink()
    assert not c.open_path(gone)
    assert "removed from Open Recent" in view.show_error.call_args.args[1]
    assert list(c.settings.recent_files) == [str(kept.resolve())]
    view.set_recent_files.assert_called_with([str(kept.resolve())])
    assert load_settings(tmp_path / "settings.json").recent_files == (str(kept.resolve()),)
    # A file that is there but unreadable stays: it may be fixed, and the entry is how to find it.
    kept.write_bytes(b"not an image")
    assert not c.open_path(kept)
    assert list(c.settings.recent_files) == [str(kept.resolve())]


def test_a_blank_start_is_nothing_to_save_until_it_changes(tmp_path: Path) -> None:
    """Without a file or the sample the app shows a grey blank; closing it asked whether to save it."""
    view, engine = MagicMock(spec=EditorView), StepEngine()
    c = EditorController(view, engine, settings_file=tmp_path / "s.json", models_dir=tmp_path / "m",
                         autosave_dir=tmp_path / "autosave")
    engine.controller = c
    c.start()
    engine.process()
    assert c.document.path is None and not c.document.dirty
    c.set_params(task=Task.generate)
    c.run()
    engine.process()
    assert c.document.dirty  # a generated picture is worth a question


def test_colorizing_a_colour_photo_says_its_colours_are_replaced(setup, photo: np.ndarray) -> None:
    c, view, engine = setup
    c.set_params(task=Task.colorize)
    c.run()
    engine.process()
    assert "already has colour" in view.set_status.call_args.args[0]
    grey = np.repeat(photo.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
    c.open_array(grey, "grey.png")
    c.run()
    engine.process()
    status = view.set_status.call_args.args[0]
    assert "Colorize done" in status and "already has colour" not in status


def test_a_generated_picture_is_not_saved_over_the_opened_photo(setup, tmp_path: Path) -> None:
    c, view, engine = setup
    assert c.document.path == tmp_path / "photo.png"
    c.set_params(task=Task.generate)
    c.run()
    engine.process()
    assert c.document.path is None and c.document.name == "generated.png" and c.document.dirty
    assert c.save() is False  # no file to save over: the view goes to Save As


def test_generate_drops_the_photo_s_metadata_and_undo_attaches_the_photo_again(setup, tmp_path: Path) -> None:
    c, view, engine = setup
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(tmp_path / "cam.jpg", exif=exif)
    assert c.open_path(tmp_path / "cam.jpg") and "exif" in c.document.info
    c.set_params(task=Task.colorize)
    c.run()
    engine.process()
    c.set_params(task=Task.generate)
    c.run()
    engine.process()
    assert c.document.path is None and "exif" not in c.document.info  # no camera data on a new picture
    c.undo()
    assert c.document.path == tmp_path / "cam.jpg" and c.document.name == "cam.jpg" and "exif" in c.document.info
    c.redo()
    assert c.document.path is None and c.document.name == "generated.png"
