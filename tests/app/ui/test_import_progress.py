"""The progress bar while imports run: several may be in flight (the Model menu stays usable, Esc
cancels them), the engine runs one at a time, and the bar must stay visible and say how many are in
flight and where the current one is, until none is left. It was hidden as soon as anything else
ended: a failed import, a task, a model load."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.model import ImportDone, ImportRequest, JobFailed, Progress
from tests.app.fakes import make_controller
from tests.app.ui.test_import_flow import diffusers_folder



def _mask_half(c) -> None:
    """Mask the top half (a mask over the whole picture is refused: nothing known to fill from)."""
    mask = c.document.mask.copy()
    mask[:mask.shape[0] // 2] = 255
    c.document.set_mask(mask)

def _bar(view) -> tuple[int, int, str]:
    return view.set_progress.call_args.args


def _step(engine, c) -> object:
    """Run the oldest queued request through the real runner (the worker thread runs one at a time)."""
    req = engine.queue.pop(0)
    msg = engine.runner.handle(req, c.on_progress, lambda job_id: job_id in engine.cancelled)
    (c.on_failed if isinstance(msg, JobFailed) else c.on_finished)(msg)
    return req


def test_a_failed_import_leaves_the_other_on_the_bar(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 200)
    good = diffusers_folder(tmp_path / "good_cm64")
    c, view, engine = make_controller(tmp_path)

    c.import_checkpoint(broken)
    assert _bar(view) == (0, 3, "Importing broken.pt: waiting")
    c.import_checkpoint(good)
    assert _bar(view) == (0, 3, "2 imports \u00b7 broken.pt: waiting")  # the first runs first

    _step(engine, c)  # broken.pt fails at its first stage
    assert c.importing
    assert _bar(view) == (0, 3, "Importing good_cm64: waiting")  # not hidden: good_cm64 is still to come

    view.set_progress.reset_mock()
    _step(engine, c)  # good_cm64: reading, checking, writing, done; then its model loads
    texts = [call.args[2] for call in view.set_progress.call_args_list]
    assert texts[:4] == ["Importing good_cm64: Reading checkpoint", "Importing good_cm64: Checking weights",
                         "Importing good_cm64: Writing model", "Importing good_cm64: Done"]
    assert _bar(view) == (0, 1, "")  # none left: hidden
    engine.process()  # the new model loads
    assert _bar(view) == (0, 1, "") and not c.importing


def test_a_model_load_ending_does_not_hide_an_import_in_flight(tmp_path: Path) -> None:
    a, b = diffusers_folder(tmp_path / "a64"), diffusers_folder(tmp_path / "b64")
    c, view, engine = make_controller(tmp_path)
    c.import_checkpoint(a)
    _step(engine, c)  # a imported; its model is queued to load
    c.import_checkpoint(b)  # started while a's model loads
    _step(engine, c)  # a's model is ready: b still waits behind it
    assert c.model is not None and c.model.path.name == "a64.safetensors"
    assert _bar(view) == (0, 3, "Importing b64: waiting")
    engine.process()
    assert _bar(view) == (0, 1, "")


# -- the window: messages driven by hand, in the order the engine thread sends them -------------------------------


class _Captured:
    """Takes the window's requests instead of the engine thread, so each test says what happens when."""

    def __init__(self) -> None:
        self.requests: list[object] = []
        self.cancelled: list[int] = []

    def submit(self, request: object) -> None:
        self.requests.append(request)

    def cancel(self, job_id: int) -> None:
        self.cancelled.append(job_id)


@pytest.fixture
def captured(window, monkeypatch: pytest.MonkeyPatch) -> _Captured:
    cap = _Captured()
    monkeypatch.setattr(window.controller, "engine", cap)
    return cap


def _imports(cap: _Captured) -> list[int]:
    return [r.job_id for r in cap.requests if isinstance(r, ImportRequest)]


def test_the_bar_counts_the_imports_in_flight(window, captured: _Captured, tmp_path: Path) -> None:
    w, c = window, window.controller
    bar = w.progress
    assert not bar.isVisible()
    c.import_checkpoint(tmp_path / "cd_imagenet64_l2.pt")
    a = _imports(captured)[-1]
    c.on_progress(Progress(a, 1, 3, "Checking weights"))
    assert bar.isVisible() and (bar.value(), bar.maximum()) == (1, 3)
    # The bar does not elide: a long name is shortened so that the stage stays readable.
    assert bar.format() == "Importing cd_imagenet64_l\u2026: Checking weights"

    c.import_checkpoint(tmp_path / "cd_bedroom256_lpips.pt")  # the second: the first is still running
    b = _imports(captured)[-1]
    assert bar.isVisible() and (bar.value(), bar.maximum()) == (1, 3)  # still the first one's progress
    assert bar.format().startswith("2 imports \u00b7 cd_imagenet64") and bar.format().endswith(": Checking weights")
    assert len(bar.format()) <= 44  # a long name is shortened; the count and the stage stay readable
    w.grab().save(str(tmp_path / "two_imports.png"))

    c.on_progress(Progress(a, 2, 3, "Writing model"))
    assert bar.format().endswith(": Writing model") and bar.value() == 2
    c.on_failed(JobFailed(a, "disk full"))  # the first fails: its error, and the bar goes on with the second
    assert bar.isVisible() and bar.format() == "Importing cd_bedroom256_lpips.pt: waiting" and bar.value() == 0
    c.on_progress(Progress(b, 0, 3, "Reading checkpoint"))
    assert bar.format().startswith("Importing cd_bedroom256") and bar.format().endswith("\u2026: Reading checkpoint")

    c.cancel()  # Esc: no task runs, so it stops the import
    assert captured.cancelled == [b]
    c.on_failed(JobFailed(b, "Cancelled.", cancelled=True))
    assert not bar.isVisible() and not w.act_cancel.isEnabled()


def test_a_task_ending_does_not_hide_the_imports(window, captured: _Captured, tmp_path: Path) -> None:
    w, c = window, window.controller
    bar = w.progress
    c.import_checkpoint(tmp_path / "a.pt")
    c.import_checkpoint(tmp_path / "b.pt")
    a, b = _imports(captured)
    _mask_half(c)
    job = c.run()  # a task started while the imports are in flight (it runs after them)
    assert job is not None and bar.isVisible()
    c.on_progress(Progress(a, 1, 3, "Checking weights"))  # the engine is on the first import meanwhile
    assert bar.format() == "2 imports \u00b7 a.pt: Checking weights"
    c.on_progress(Progress(a, 3, 3, "Done"))
    c.on_finished(ImportDone(a, tmp_path / "models" / "a.safetensors"))
    assert bar.isVisible() and bar.format() == "Importing b.pt: waiting"

    c.cancel()  # Esc stops the task first; the import goes on
    c.on_failed(JobFailed(job, "Cancelled.", cancelled=True))
    assert not c.busy and c.importing
    assert bar.isVisible() and bar.format() == "Importing b.pt: waiting"
    assert w.act_cancel.isEnabled()  # Esc now reaches the import
    c.on_progress(Progress(b, 2, 3, "Writing model"))
    assert bar.format() == "Importing b.pt: Writing model" and bar.value() == 2
    c.on_finished(ImportDone(b, tmp_path / "models" / "b.safetensors"))
    assert not bar.isVisible()


def test_a_task_queued_behind_an_import_gets_the_bar_back(window, captured: _Captured, tmp_path: Path) -> None:
    w, c = window, window.controller
    bar = w.progress
    c.import_checkpoint(tmp_path / "a.pt")
    (a,) = _imports(captured)
    _mask_half(c)
    c.run()
    c.on_progress(Progress(a, 2, 3, "Writing model"))
    c.on_failed(JobFailed(a, "disk full"))
    # The import ended, the task has not reported yet: the bar says so, it does not keep the import's stage.
    assert bar.isVisible() and bar.format() == "Inpaint: starting" and bar.maximum() == 0
