"""The open image, its mask and what it looked like before the last result."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# One counter for every document: a revision number is never reused, so "the image a job was
# started on" can be recognised even after undo/redo.
_revisions = itertools.count(1)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Snapshot:
    """A restorable state for undo/redo; the arrays are read-only and shared, never copied twice."""

    image: np.ndarray
    mask: np.ndarray
    before: np.ndarray | None
    alpha: np.ndarray | None
    image_revision: int

    @property
    def nbytes(self) -> int:
        return self.image.nbytes + self.mask.nbytes + (self.alpha.nbytes if self.alpha is not None else 0)


class Document:
    """Image (H, W, 3) uint8 plus a mask (H, W) uint8 where 255 = fill; soft values blend."""

    def __init__(self, image: np.ndarray, path: Path | None = None, *, alpha: np.ndarray | None = None,
                 icc_profile: bytes | None = None, name: str | None = None) -> None:
        self.image = _frozen(np.ascontiguousarray(image, dtype=np.uint8))
        if self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got {self.image.shape}")
        self.mask = np.zeros(self.image.shape[:2], np.uint8)  # mutated in place by strokes
        self.alpha = alpha  # transparency is set aside and re-attached on save
        self.before: np.ndarray | None = None  # the image before the last result, for compare
        self.path = path
        self.icc_profile = icc_profile
        self._name = name
        self.image_revision = next(_revisions)
        self.saved_revision = self.image_revision if path is not None else -1

    @property
    def name(self) -> str:
        if self.path is not None:
            return self.path.name
        return self._name or "Untitled"

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.image.shape[:2]
        return w, h

    @property
    def dirty(self) -> bool:
        """Only the image counts: the saved file holds no mask, so mask edits alone need no prompt."""
        return self.image_revision != self.saved_revision

    def snapshot(self) -> Snapshot:
        return Snapshot(self.image, _frozen(self.mask.copy()), self.before, self.alpha, self.image_revision)

    def restore(self, snap: Snapshot) -> None:
        self.image, self.before, self.alpha = snap.image, snap.before, snap.alpha
        self.mask = snap.mask.copy()
        self.image_revision = snap.image_revision

    def set_image(self, image: np.ndarray, *, keep_before: bool = True) -> None:
        """Replace the image (a result or a colour stroke); the mask follows a size change."""
        image = _frozen(np.ascontiguousarray(image, dtype=np.uint8))
        old_h, old_w = self.image.shape[:2]
        h, w = image.shape[:2]
        if keep_before:
            self.before = self.image
        if (h, w) != (old_h, old_w):
            self.mask = _resize_nearest(self.mask, h, w)
            self.alpha = None if self.alpha is None else _resize_nearest(self.alpha, h, w)
        self.image = image
        self.image_revision = next(_revisions)

    def set_mask(self, mask: np.ndarray) -> None:
        if mask.shape != self.image.shape[:2]:
            raise ValueError(f"mask {mask.shape[1]}x{mask.shape[0]} does not match image {self.size[0]}x{self.size[1]}")
        self.mask = np.ascontiguousarray(mask, dtype=np.uint8).copy()

    def mark_saved(self, path: Path) -> None:
        self.path = path
        self.saved_revision = self.image_revision


def _resize_nearest(a: np.ndarray, h: int, w: int) -> np.ndarray:
    ys = (np.arange(h) * a.shape[0] // h).clip(0, a.shape[0] - 1)
    xs = (np.arange(w) * a.shape[1] // w).clip(0, a.shape[1] - 1)
    return np.ascontiguousarray(a[ys][:, xs])
