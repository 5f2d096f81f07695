"""Random use: a hypothesis state machine drives the controller with random actions and checks invariants.

Actions: paint / erase / colour strokes, mask operations, undo, redo, run (a synchronous fake engine
that answers instantly, sometimes with a failure), cancel, open (good, 16-bit, transparent and
broken files), save (declined, accepted, or onto a full disk), switch model, autosave ticks. After
every action: the document, mask and history are consistent and nothing raised. Over 1,000
actions run per CI run, in well under 30 s.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from PIL import Image

from app.controller import EditorController
from app.model import (TEST_MODEL, JobFailed, JobRequest, JobResult, LoadModelRequest, ModelInfo, ModelReady,
                       Task)
from app.model import safe_write
from engine.imageio import Picture, save_picture

from .conftest import make_photo
from .fakes import scripted_view

MIN_ACTIONS = 1000
MODELS = [TEST_MODEL] + [ModelInfo(Path(f"model{i}.safetensors"), f"model{i}", 16, "cm") for i in range(2)]


class FakeEngine:
    """Answers like the worker but instantly: results are simple functions of the request."""

    def __init__(self) -> None:
        self.queue: list[object] = []
        self.cancelled: set[int] = set()

    def submit(self, request: object) -> None:
        self.queue.append(request)

    def cancel(self, job_id: int) -> None:
        self.cancelled.add(job_id)

    def answer(self, req: object, fail: bool) -> object:
        if req.job_id in self.cancelled:
            return JobFailed(req.job_id, "Cancelled.", cancelled=True)
        if fail:
            return JobFailed(req.job_id, "Out of memory: try a smaller image.")
        if isinstance(req, LoadModelRequest):
            return ModelReady(req.job_id, req.info)
        assert isinstance(req, JobRequest)
        img, peak = req.image, (65535 if req.image.dtype == np.uint16 else 255)
        alpha = None
        if req.task == Task.upscale:
            if max(img.shape) > 64:
                return JobFailed(req.job_id, "Too big for the fake engine.")
            out = img.repeat(2, 0).repeat(2, 1)
            alpha = None if req.alpha is None else req.alpha.repeat(2, 0).repeat(2, 1)
        elif req.task == Task.generate:
            out = np.full((16, 16, 3), peak // 3, img.dtype)
        elif req.task == Task.colorize:
            out = np.ascontiguousarray(img[..., ::-1])
        else:
            out = img.copy()
            out[req.mask > 0] = peak - out[req.mask > 0]
        return JobResult(req.job_id, out, req.image_revision, 0.001, req.task, alpha=alpha)


class Counter:
    actions = 0
    outcomes: dict[str, int] = {}

    @classmethod
    def note(cls, what: str) -> None:
        cls.outcomes[what] = cls.outcomes.get(what, 0) + 1


class EditorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="cstudio-random-"))
        self.view = scripted_view()
        self.engine = FakeEngine()
        self.c = EditorController(self.view, self.engine, settings_file=self.tmp / "s.json",
                                  models_dir=self.tmp / "models", autosave_dir=self.tmp / "autosave")
        self.c.start([str(FILES["photo"])])
        self.c.models = list(MODELS)
        self._deliver(False)  # the first model loads

    def teardown(self) -> None:
        self.c.shutdown()

    def _act(self) -> None:
        Counter.actions += 1

    @rule(points=st.lists(st.tuples(st.floats(-10, 80), st.floats(-10, 60)), min_size=1, max_size=4),
          tool=st.sampled_from(["mask", "erase", "colour"]), size=st.integers(1, 30), right=st.booleans())
    def paint(self, points, tool, size, right) -> None:
        self._act()
        self.c.set_brush(tool=tool, size=size)
        self.c.begin_stroke(*points[0], erase=right)
        for p in points[1:]:
            self.c.extend_stroke(*p)
        self.c.end_stroke()

    @rule(op=st.sampled_from(["clear_mask", "invert_mask", "grow_mask", "shrink_mask", "feather_mask"]))
    def mask_op(self, op) -> None:
        self._act()
        getattr(self.c, op)()

    @rule()
    def undo(self) -> None:
        self._act()
        self.c.undo()

    @rule()
    def redo(self) -> None:
        self._act()
        self.c.redo()

    @rule(task=st.sampled_from(list(Task)), factor=st.sampled_from([2, 4]), live=st.booleans())
    def run(self, task, factor, live) -> None:
        self._act()
        self.c.set_params(task=task, upscale_factor=factor)
        self.c.run(live=live)

    @rule(task=st.sampled_from(list(Task)))
    def run_to_completion(self, task) -> None:
        """Run and let the engine answer everything queued (the common case of a job that just works)."""
        self._act()
        self.c.set_params(task=task, upscale_factor=2)
        self.c.run()
        while self.engine.queue:
            self._deliver(False)

    @precondition(lambda self: bool(self.engine.queue))
    @rule(fail=st.booleans())
    def pump(self, fail) -> None:
        """The engine answers the oldest request (a result, a failure or a cancel)."""
        self._act()
        self._deliver(fail)

    def _deliver(self, fail: bool) -> None:
        req = self.engine.queue.pop(0)
        msg = self.engine.answer(req, fail)
        revision = self.c.document.image_revision
        (self.c.on_failed if isinstance(msg, JobFailed) else self.c.on_finished)(msg)
        if isinstance(msg, JobFailed):
            Counter.note("cancelled" if msg.cancelled else "failed")
        elif isinstance(msg, JobResult):
            Counter.note("result applied" if self.c.document.image_revision != revision else "result dropped")

    @rule()
    def cancel(self) -> None:
        self._act()
        self.c.cancel()

    @rule(name=st.sampled_from(["photo", "deep", "alpha", "broken", "missing"]))
    def open(self, name) -> None:
        self._act()
        before = self.c.document
        ok = self.c.open_path(FILES[name])
        Counter.note("opened" if ok else "open refused")
        assert ok == (name not in ("broken", "missing"))
        if not ok:
            assert self.c.document is before

    @rule(answer=st.booleans(), disk_full=st.booleans(), own_path=st.booleans())
    def save(self, answer, disk_full, own_path) -> None:
        self._act()
        self.view.confirm_overwrite.return_value = answer
        target = None if own_path else self.tmp / "saved.png"
        image, dirty = self.c.document.image, self.c.document.dirty
        DISK["full"] = disk_full
        try:
            saved = self.c.save(target)
        finally:
            DISK["full"] = False
        Counter.note("saved" if saved else "save refused")
        if disk_full:
            assert not saved and self.c.document.dirty == dirty
        assert self.c.document.image is image

    @rule(index=st.integers(0, len(MODELS) - 1))
    def switch_model(self, index) -> None:
        self._act()
        self.c.select_model(index)

    @rule(context=st.floats(0, 1), grow=st.integers(0, 20), render=st.sampled_from([0, 32, 64]))
    def params(self, context, grow, render) -> None:
        self._act()
        self.c.set_params(context=context, grow=grow, render_size=render)

    @rule()
    def autosave(self) -> None:
        self._act()
        self.c.autosave_tick()

    @rule()
    def undo_all_then_redo_all(self) -> None:
        """History consistency: walking back to the start and forward again returns the same state."""
        self._act()
        if self.c._stroke is not None:
            return
        image, mask, n = self.c.document.image, self.c.document.mask.copy(), 0
        redo_before = [label for _, label in self.c.history.entries()[1]]
        while self.c.history.can_undo:
            self.c.undo()
            n += 1
        for _ in range(n):
            self.c.redo()
        assert np.array_equal(self.c.document.image, image) and np.array_equal(self.c.document.mask, mask)
        assert [label for _, label in self.c.history.entries()[1]] == redo_before

    @invariant()
    def document_is_consistent(self) -> None:
        d = self.c.document
        assert d.image.dtype in (np.uint8, np.uint16) and d.image.ndim == 3 and d.image.shape[2] == 3
        assert not d.image.flags.writeable  # results and snapshots share it: nobody may write into it
        assert d.mask.dtype == np.uint8 and d.mask.shape == d.image.shape[:2]  # uint8: always within 0..255
        assert d.alpha is None or d.alpha.shape == d.image.shape[:2]
        assert d.before is None or d.before.ndim == 3

    @invariant()
    def history_is_consistent(self) -> None:
        undo, redo = self.c.history.entries()
        assert len(undo) <= self.c.history.max_entries
        for snap, label in undo + redo:
            assert label and snap.mask.shape == snap.image.shape[:2] and not snap.mask.flags.writeable

    @invariant()
    def busy_matches_the_job(self) -> None:
        assert self.c.busy == (self.c._job is not None)
        calls = [c.args[0] for c in self.view.set_busy.call_args_list[-1:]]
        assert calls in ([], [self.c.busy])
        self.view.reset_mock()  # keep the mock's call log short: it is re-read after every step
        self.view.confirm_overwrite.return_value = True
        self.view.ask_recover.return_value = "recover"


FILES: dict[str, Path] = {}
DISK = {"full": False}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(make_photo(24, 32)).save(tmp_path / "photo.png")
    deep = (make_photo(20, 28).astype(np.uint16) * 257)
    save_picture(tmp_path / "deep.png", Picture(rgb=deep))
    rgba = np.dstack([make_photo(24, 32), np.full((24, 32), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    FILES.update(photo=tmp_path / "photo.png", deep=tmp_path / "deep.png", alpha=tmp_path / "alpha.png",
                 broken=tmp_path / "broken.png", missing=tmp_path / "missing.png")
    real_replace = safe_write.os.replace

    def replace(src, dst):  # a full disk, on demand (tests run as root: chmod cannot simulate it)
        if DISK["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(safe_write.os, "replace", replace)


def test_random_use_keeps_the_editor_consistent(files) -> None:
    Counter.actions, Counter.outcomes = 0, {}
    t0 = time.perf_counter()
    run_state_machine_as_test(EditorMachine, settings=settings(
        max_examples=30, stateful_step_count=50, deadline=None, database=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    elapsed = time.perf_counter() - t0
    print(f"random use: {Counter.actions} actions in {elapsed:.1f} s; {dict(sorted(Counter.outcomes.items()))}")
    assert Counter.actions >= MIN_ACTIONS
    assert elapsed < 30
