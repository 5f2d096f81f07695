"""Stroke edit (SDEdit) on photos larger than the model: the scale it works at, and what it keeps."""

from __future__ import annotations

import numpy as np
import pytest

from engine.pipeline import STROKE_MAX_ZOOM


def make_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Gradients, a stripe pattern and noise: structure at every scale."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 5)], -1) * 200 + rng.normal(0, 8, (h, w, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture
def grids(tiny_model, monkeypatch):
    """The (h, w) of every network evaluation: the working grid the edit ran on."""
    seen: list[tuple[int, int]] = []
    real = tiny_model.denoise

    def spy(x, sigma, class_labels=None):
        seen.append(tuple(x.shape[2:]))
        return real(x, sigma, class_labels)

    monkeypatch.setattr(tiny_model, "denoise", spy)
    return seen


def test_a_large_photo_is_edited_above_the_model_resolution(tiny_model, grids):
    # 512x768 at the model's 16 px was a 16x24 grid: the whole photo came back as a blur of
    # 32 px blocks even at strength 0. The short side now goes up to STROKE_MAX_ZOOM x 16 px.
    guide = make_photo(512, 768)
    out = tiny_model.stroke_edit(guide, strength=0.0, seed=0)
    assert out.shape == guide.shape
    R = tiny_model.resolution
    assert set(grids) == {(STROKE_MAX_ZOOM * R, STROKE_MAX_ZOOM * R * 3 // 2)}


def test_a_photo_below_the_largest_working_size_keeps_its_own_size(tiny_model, grids):
    tiny_model.stroke_edit(make_photo(40, 48), strength=0.3, seed=0)
    assert set(grids) == {(40, 48)}


def test_a_masked_edit_works_around_the_mask_and_keeps_the_rest(tiny_model, grids, monkeypatch):
    # A small mask on a large photo: the edit runs on a context window around it, so each working
    # pixel covers a few photo pixels, not the 75 of the whole 1200 px photo at 16 px.
    guide = make_photo(1200, 1200)
    mask = np.zeros((1200, 1200), np.uint8)
    mask[590:610, 400:430] = 255
    import engine.pipeline as pipeline

    windows = []
    real = pipeline.Model._stroke_window
    monkeypatch.setattr(pipeline.Model, "_stroke_window",
                        lambda self, g, *a: windows.append(g.shape[:2]) or real(self, g, *a))
    out = tiny_model.stroke_edit(guide, strength=0.5, mask=mask, seed=0)
    (h, w), = set(grids)
    assert max(h, w) == STROKE_MAX_ZOOM * tiny_model.resolution
    # The window: the mask's box and its context (at least 128 px a side), not the whole photo.
    assert windows == [(30 + 2 * 128, 30 + 2 * 128)]
    keep = mask == 0
    assert np.array_equal(out[keep], guide[keep])  # bit-identical outside the mask
    assert (out[~keep] != guide[~keep]).any()


def test_a_mask_at_the_border_and_an_empty_mask(tiny_model):
    guide = make_photo(300, 500)
    mask = np.zeros((300, 500), np.uint8)
    mask[0:10, 480:500] = 1  # the window is shifted inward, not cut
    out = tiny_model.stroke_edit(guide, strength=0.5, mask=mask, seed=1)
    assert out.shape == guide.shape and np.array_equal(out[mask == 0], guide[mask == 0])
    assert np.array_equal(tiny_model.stroke_edit(guide, mask=np.zeros((300, 500), np.uint8)), guide)


def test_same_seed_same_masked_edit(tiny_model):
    guide = make_photo(200, 260)
    mask = np.zeros((200, 260), np.uint8)
    mask[50:90, 60:140] = 255
    a = tiny_model.stroke_edit(guide, strength=0.6, mask=mask, seed=5)
    b = tiny_model.stroke_edit(guide, strength=0.6, mask=mask, seed=5)
    assert np.array_equal(a, b)


def test_separate_masked_parts_get_their_own_windows(tiny_model, grids, monkeypatch):
    """Strokes in two corners of a large photo: one window around both was the whole photo, so each
    stroke got its coarse scale; each part now has a window (and noise) of its own."""
    import engine.pipeline as pipeline

    windows = []
    real = pipeline.Model._stroke_window

    def spy(self, guide, hole, *args):
        windows.append(guide.shape[:2])
        return real(self, guide, hole, *args)

    monkeypatch.setattr(pipeline.Model, "_stroke_window", spy)
    guide = make_photo(1200, 1200)
    mask = np.zeros((1200, 1200), np.uint8)
    mask[40:60, 40:70] = mask[1130:1150, 1120:1150] = 255
    seen = []
    out = tiny_model.stroke_edit(guide, strength=0.5, mask=mask, seed=0, progress=lambda d, t: seen.append((d, t)))
    assert len(windows) == 2 and all(max(s) < 400 for s in windows), windows
    keep = mask == 0
    assert np.array_equal(out[keep], guide[keep])
    assert (out[40:60, 40:70] != guide[40:60, 40:70]).any() and (out[1130:1150, 1120:1150] != guide[1130:1150, 1120:1150]).any()
    assert [d for d, _ in seen] == list(range(1, len(seen) + 1)) and {t for _, t in seen} == {len(seen)}
