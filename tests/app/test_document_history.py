from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.model import Document, History


def test_new_document_has_an_empty_mask_and_is_clean_when_from_a_file(photo: np.ndarray) -> None:
    doc = Document(photo, Path("a.png"))
    assert doc.mask.shape == photo.shape[:2] and not doc.mask.any()
    assert not doc.dirty and doc.name == "a.png"
    assert Document(photo).dirty  # pasted images exist nowhere yet


def test_results_replace_the_image_and_remember_before(photo: np.ndarray) -> None:
    doc = Document(photo, Path("a.png"))
    doc.mask[5:10, 5:10] = 255
    big = np.repeat(np.repeat(photo, 2, 0), 2, 1)
    doc.set_image(big)
    assert doc.dirty and doc.before is not None and doc.before.shape == photo.shape
    assert doc.mask.shape == big.shape[:2] and doc.mask[12, 12] == 255  # the mask follows the resize
    with pytest.raises(ValueError):
        doc.image[0, 0, 0] = 1  # images are shared with snapshots and jobs: read-only


def test_undo_redo_round_trip(photo: np.ndarray) -> None:
    doc, hist = Document(photo, Path("a.png")), History()
    before = doc.snapshot()
    doc.mask[:4] = 255
    hist.record(before, "Brush stroke")
    before = doc.snapshot()
    doc.set_image(255 - photo)
    hist.record(before, "Inpaint")
    assert hist.undo_label == "Inpaint"
    doc.restore(hist.undo(doc.snapshot()))
    assert (doc.image == photo).all() and doc.mask[:4].all() and not doc.dirty
    doc.restore(hist.undo(doc.snapshot()))
    assert not doc.mask.any() and not hist.can_undo
    assert hist.undo(doc.snapshot()) is None
    doc.restore(hist.redo(doc.snapshot()))
    doc.restore(hist.redo(doc.snapshot()))
    assert (doc.image == 255 - photo).all() and doc.mask[:4].all() and doc.dirty
    # A new change clears the redo stack.
    doc.restore(hist.undo(doc.snapshot()))
    hist.record(doc.snapshot(), "Clear mask")
    assert not hist.can_redo


def test_snapshots_are_independent_of_later_strokes(photo: np.ndarray) -> None:
    doc = Document(photo)
    snap = doc.snapshot()
    doc.mask[:] = 255
    assert not snap.mask.any()


def test_history_is_bounded() -> None:
    doc = Document(np.zeros((100, 100, 3), np.uint8))
    hist = History(max_entries=5, max_bytes=10**9)
    for _ in range(20):
        hist.record(doc.snapshot(), "x")
    n = 0
    while hist.undo(doc.snapshot()) is not None:
        n += 1
    assert n == 5
    # Steps that change the image are bounded by memory: each holds a new image (and its mask); the
    # oldest kept step also holds the image before it. 3 x (image + mask) fits two such steps.
    small = History(max_entries=100, max_bytes=3 * doc.snapshot().nbytes)
    for i in range(10):
        before = doc.snapshot()
        doc.set_image(np.full((100, 100, 3), i + 1, np.uint8))
        small.record(before, "x")
    assert small.nbytes <= small.max_bytes
    assert sum(1 for _ in iter(lambda: small.undo(doc.snapshot()), None)) == 2


def test_mask_strokes_on_a_big_image_cost_their_masks_not_the_image() -> None:
    """Stroke snapshots share the image array: each array counts once, so undo depth does not collapse.

    (An 8000x6000 photo, scaled down: counting the image per entry, 100 mask strokes would "cost" 100 images
    and only a quarter of them would fit this budget.)
    """
    doc = Document(np.zeros((300, 400, 3), np.uint8))
    image_bytes, mask_bytes = doc.image.nbytes, doc.mask.nbytes
    hist = History(max_entries=100, max_bytes=image_bytes + 100 * mask_bytes)
    assert 100 * (image_bytes + mask_bytes) > 3 * hist.max_bytes  # what the old count would have needed
    for i in range(100):
        before = doc.snapshot()
        doc.mask[i, :] = 255
        hist.record(before, "Brush stroke")
    undo, _ = hist.entries()
    assert len(undo) == 100 and hist.nbytes == image_bytes + 100 * mask_bytes
    # Results bring new images: those steps are still bounded, oldest first.
    for i in range(40):
        before = doc.snapshot()
        doc.set_image(np.full((300, 400, 3), i + 1, np.uint8))
        hist.record(before, "Inpaint")
    undo, _ = hist.entries()
    assert hist.nbytes <= hist.max_bytes
    assert 1 <= len(undo) < 40 and {label for _, label in undo} == {"Inpaint"}
