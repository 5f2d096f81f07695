"""Faults in the engine: out-of-memory is recovered (and said so), a failing job leaves the document as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app import tasks

from .conftest import make_photo
from .fakes import make_controller


@pytest.fixture
def editing(tmp_path: Path):
    path = tmp_path / "photo.png"
    Image.fromarray(make_photo(16, 16)).save(path)
    c, view, engine = make_controller(tmp_path, start=[str(path)])
    c.set_brush(size=4)  # a stroke, not a mask over the whole 16 px picture (which inpaint refuses)
    c.begin_stroke(4, 4)
    c.extend_stroke(10, 8)
    c.end_stroke()
    view.reset_mock()
    return c, view, engine


def _snapshot(c) -> tuple:
    d = c.document
    return d.image, d.image.copy(), d.mask.copy(), d.image_revision, c.history.version


def _unchanged(c, before: tuple) -> bool:
    image, pixels, mask, revision, version = before
    d = c.document
    return (d.image is image and np.array_equal(d.image, pixels) and np.array_equal(d.mask, mask)
            and d.image_revision == revision and c.history.version == version)


def test_out_of_memory_is_retried_and_the_user_is_told(editing) -> None:
    c, view, engine = editing
    model = engine.runner.model
    real, calls = model.denoise, []

    def denoise(x, sigma, class_labels=None):
        calls.append(x.shape[0])
        if len(calls) <= 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(x, sigma, class_labels)

    model.denoise = denoise
    c.set_params(task="upscale", upscale_factor=2, steps=1)
    c.run()
    engine.process()
    view.show_error.assert_not_called()
    assert c.document.image.shape == (32, 32, 3) and c.history.undo_label == "Upscale"
    status = view.set_status.call_args.args[0]
    assert "Upscale done" in status and "retrying with 4 tiles per batch" in status, status
    assert calls[:3] == [9, 8, 4]


def test_a_failing_engine_job_leaves_the_document_as_it_was(editing, monkeypatch) -> None:
    c, view, engine = editing
    c.set_brush(tool="colour")  # the image is now the editor's own array (a file's pixels come read-only)
    c.begin_stroke(2, 2)
    c.end_stroke()
    c.set_brush(tool="mask")
    before = _snapshot(c)

    def misbehaving(model, request, progress):
        progress(1, 3)
        # An engine bug that scribbles on its inputs before failing: the arrays it got are read-only.
        for a in (request.mask, request.image):
            try:
                a[...] = 0
            except ValueError:
                pass
        raise RuntimeError("kaboom inside the network")

    monkeypatch.setattr(tasks, "run_task", misbehaving)
    c.run()
    engine.process()
    title, message = view.show_error.call_args.args
    assert title == "The task failed" and "kaboom" in message
    assert _unchanged(c, before) and not c.busy


def test_a_cancelled_or_out_of_memory_job_changes_nothing(editing) -> None:
    c, view, engine = editing
    before = _snapshot(c)

    def denoise(x, sigma, class_labels=None):
        raise torch.OutOfMemoryError("CUDA out of memory")  # at every size, and already on the CPU

    engine.runner.model.denoise = denoise
    c.run()
    engine.process()
    title, message = view.show_error.call_args.args
    assert message.startswith("Out of memory") and _unchanged(c, before)
    c.run()
    c.cancel()
    engine.process()
    assert _unchanged(c, before) and view.set_status.call_args.args[0] == "Cancelled."
