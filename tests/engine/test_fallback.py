"""engine.fallback: out-of-memory is retried with smaller pieces, then on the CPU; other errors pass through."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine import Cancelled, Model, preset
from engine.fallback import is_out_of_memory, run_with_fallback
from engine.inpaint import InpaintOptions


@pytest.fixture
def model() -> Model:
    # A fresh model per test: the tests patch its `denoise` and its `device`.
    return Model.random(preset("tiny"), seed=0, device="cpu", precision="fp32")


def image(h: int = 24, w: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, 0 * xx + 90], -1).astype(np.uint8)


class FailingDenoise:
    """Raises `error` on the first `times` calls (or always), records the batch size of every call."""

    def __init__(self, model: Model, times: int | None, error: BaseException | None = None) -> None:
        self.real = type(model).denoise.__get__(model)  # the unpatched method, even if another fake is installed
        self.times, self.calls, self.batches = times, 0, []
        self.error = error or torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def __call__(self, x: torch.Tensor, sigma: float, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        self.batches.append(x.shape[0])
        if self.times is None or self.calls <= self.times:
            raise self.error
        return self.real(x, sigma, class_labels)


def test_upscale_halves_the_batch_until_it_fits(model: Model) -> None:
    fail = FailingDenoise(model, times=2)
    model.denoise = fail
    log: list[str] = []
    kwargs = {"image": image(16, 16), "factor": 2, "batch": 16, "num_steps": 1}
    out = run_with_fallback(model, "upscale", kwargs, log.append)
    assert out.shape == (32, 32, 3)
    assert fail.batches[:3] == [9, 8, 4]  # all 9 tiles in one batch of 16; then 8, then 4 per batch
    assert log == ["Out of memory on CPU: retrying with 8 tiles per batch.",
                   "Out of memory on CPU: retrying with 4 tiles per batch."]


def test_a_runtime_error_that_says_out_of_memory_counts(model: Model) -> None:
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 8 GB)"))
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("expected scalar type Float"))
    model.denoise = FailingDenoise(model, times=1, error=RuntimeError("CUDA error: out of memory"))
    log: list[str] = []
    run_with_fallback(model, "upscale", {"image": image(16, 16), "factor": 2, "num_steps": 1}, log.append)
    assert len(log) == 1 and "8 tiles per batch" in log[0]  # from the default batch of 16


def test_other_errors_and_cancel_pass_straight_through(model: Model) -> None:
    fail = FailingDenoise(model, times=None, error=ValueError("bad input"))
    model.denoise = fail
    with pytest.raises(ValueError, match="bad input"):
        run_with_fallback(model, "upscale", {"image": image(16, 16), "factor": 2})
    assert fail.calls == 1

    def cancel(done: int, total: int) -> None:
        raise Cancelled()

    model.denoise = FailingDenoise(model, times=0)
    with pytest.raises(Cancelled):
        run_with_fallback(model, "colorize", {"image": image(), "progress": cancel})


def test_out_of_memory_on_the_cpu_at_the_smallest_settings_is_reported(model: Model) -> None:
    fail = FailingDenoise(model, times=None)
    model.denoise = fail
    with pytest.raises(torch.OutOfMemoryError):
        run_with_fallback(model, "upscale", {"image": image(16, 16), "factor": 2, "batch": 4})
    assert fail.batches == [4, 2, 1]  # no endless loop: 4, 2, 1, then give up


def test_gpu_out_of_memory_falls_back_to_a_cpu_copy(model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = run_with_fallback(model, "colorize", {"image": image(), "seed": 3, "num_steps": 1})
    model.denoise = FailingDenoise(model, times=None)  # the accelerator never has enough memory
    # CPU-only CI has no GPU: the "meta" device stands in for one (inputs move there, nothing runs there).
    monkeypatch.setattr(model, "device", torch.device("meta"))
    log: list[str] = []
    out = run_with_fallback(model, "colorize", {"image": image(), "seed": 3, "num_steps": 1}, log.append)
    assert log == ["Out of META memory even with the smallest settings: running on the CPU instead (slower)."]
    # The CPU copy is the same network: with fp32 on both sides the result is the same image.
    assert np.abs(out.astype(int) - reference.astype(int)).max() <= 1


def test_colorize_and_inpaint_shrink_their_working_size(model: Model) -> None:
    fail = FailingDenoise(model, times=1)
    model.denoise = fail
    log: list[str] = []
    run_with_fallback(model, "colorize", {"image": image(), "render_size": 32, "num_steps": 1}, log.append)
    assert log == ["Out of memory on CPU: retrying with a render size of 16 px."]

    model.denoise = FailingDenoise(model, times=2)
    mask = np.zeros((24, 32), np.uint8)
    mask[8:16, 10:20] = 255
    log.clear()
    opts = dataclasses.replace(InpaintOptions(), max_scale=4)
    kwargs = {"image": image(), "mask": mask, "options": opts, "num_steps": 1}
    out = run_with_fallback(model, "inpaint", kwargs, log.append)
    assert out.shape == (24, 32, 3)
    assert [m.split("with ")[1] for m in log] == ["a finest working size of 2x the model's.",
                                                 "a finest working size of 1x the model's."]


def test_unknown_task_names_are_refused(model: Model) -> None:
    with pytest.raises(ValueError, match="unknown task"):
        run_with_fallback(model, "__init__", {})
