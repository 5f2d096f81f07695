"""The open image, its mask and what it looked like before the last result."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

# One counter for every document: a revision number is never reused, so "the image a job was
# started on" can be recognised even after undo/redo.
_revisions = itertools.count(1)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def new_revision() -> int:
    """A revision number never used before (recovered autosaves get fresh ones)."""
    return next(_revisions)


# Pixels keep the file's depth: 16-bit scans stay 16-bit through edits and saves.
PIXEL_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


def peak(dtype: np.dtype) -> int:
    """The value of full white for a pixel dtype."""
    return 65535 if np.dtype(dtype) == np.uint16 else 255


def to_uint8(a: np.ndarray) -> np.ndarray:
    """8-bit pixels for display (rounded); uint8 input is returned as is, not copied."""
    if a.dtype == np.uint8:
        return a
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def convert_depth(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """uint8 <-> uint16 with full white mapped to full white (x 257 up, rounded down)."""
    dtype = np.dtype(dtype)
    if a.dtype == dtype:
        return a
    if dtype == np.uint16:
        return a.astype(np.uint16) * 257
    return to_uint8(a)


def _pixels(image: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(image)
    if a.dtype not in PIXEL_DTYPES:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {a.shape}")
    return _frozen(a)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """A restorable state for undo/redo; the arrays are read-only and shared, never copied twice."""

    image: np.ndarray
    mask: np.ndarray
    before: np.ndarray | None
    alpha: np.ndarray | None
    image_revision: int
    # (path, name, info) of the file the picture belongs to: a generate detaches the document from
    # its photo, and undoing it must attach it again. None (an autosave's history): left as it is.
    identity: tuple[Path | None, str | None, Mapping[str, object]] | None = None
    # The transparency `before` had (None: opaque); kept apart from `alpha`, which is the image's: a
    # generate drops the alpha and an upscale resizes it, and compare must show 'before' as it was.
    before_alpha: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return self.image.nbytes + self.mask.nbytes + (self.alpha.nbytes if self.alpha is not None else 0)


class Document:
    """Image (H, W, 3) uint8 or uint16 plus a mask (H, W) uint8 where 255 = fill; soft values blend.

    `alpha` (same dtype as the image, or None) and `info` (EXIF, ICC profile, PNG text, DPI: what
    the file carried) are set aside while editing and written back on save.

    The mask is copied on write: after `restore`, `set_mask` or a snapshot taken with
    `mask_replaced`, it is read-only and shared with a snapshot, and `editable_mask()` copies it once
    before a stroke paints into it. On a 96 Mpx photo every mask copy is 96 MB: undo and redo used
    to copy it twice per step (snapshot, then restore) and whole-mask operations three times.
    """

    def __init__(self, image: np.ndarray, path: Path | None = None, *, alpha: np.ndarray | None = None,
                 info: Mapping[str, object] | None = None, notes: tuple[str, ...] = (),
                 name: str | None = None, save_loses: str = "") -> None:
        self.image = _pixels(image)
        self.mask = np.zeros(self.image.shape[:2], np.uint8)  # strokes paint into `editable_mask()`
        self.alpha = None if alpha is None else _frozen(np.ascontiguousarray(alpha))
        self.before: np.ndarray | None = None  # the image before the last result, for compare
        self.before_alpha: np.ndarray | None = None  # its transparency then (`Snapshot.before_alpha`)
        self.path = path
        self.info: Mapping[str, object] = MappingProxyType(dict(info or {}))
        self.notes = tuple(notes)  # what the user was told on opening (e.g. "first of 12 frames")
        # What saving over `path` would lose that the user should hear first (the other pages of a
        # TIFF): said in the "Replace the original?" question; "" if nothing.
        self.save_loses = save_loses
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

    def snapshot(self, *, mask_replaced: bool = False) -> Snapshot:
        """The current state, sharing every array it can.

        A read-only mask is already shared (restored, or set whole) and goes in as it is. A writable
        one is copied, since strokes may still paint into it after this call, unless `mask_replaced`
        says the caller gives the document a new mask next: then it is frozen and handed over.
        """
        mask = self.mask
        if mask.flags.writeable:
            mask = _frozen(mask) if mask_replaced else _frozen(mask.copy())
        return Snapshot(self.image, mask, self.before, self.alpha, self.image_revision,
                        (self.path, self._name, self.info), self.before_alpha)

    def restore(self, snap: Snapshot) -> None:
        self.image, self.before, self.alpha = snap.image, snap.before, snap.alpha
        self.before_alpha = snap.before_alpha
        # The snapshot's read-only mask is shared, not copied: it leaves the undo stack here, and the
        # next stroke copies it (editable_mask) only if it paints. A writable one (a Snapshot built
        # by hand) could change under the document, so that one is still copied.
        self.mask = snap.mask if not snap.mask.flags.writeable else _frozen(snap.mask.copy())
        self.image_revision = snap.image_revision
        if snap.identity is not None:
            self.path, self._name, self.info = snap.identity

    def editable_mask(self) -> np.ndarray:
        """The mask, writable: a shared (read-only) one is copied first, once, so snapshots keep theirs."""
        if not self.mask.flags.writeable:
            self.mask = self.mask.copy()
        return self.mask

    def set_image(self, image: np.ndarray, *, keep_before: bool = True, alpha: np.ndarray | None = None,
                  opaque: bool = False) -> None:
        """Replace the image (a result or a colour stroke); the mask and alpha follow a size change.

        `alpha` is the result's own transparency (the upscaler resamples it properly); without it
        the old alpha is stretched (nearest) to the new size. `opaque` drops the transparency
        (a generated image is a new picture: the old cut-out has nothing to do with it).
        """
        image = _pixels(image)
        old_h, old_w = self.image.shape[:2]
        h, w = image.shape[:2]
        if keep_before:
            self.before, self.before_alpha = self.image, self.alpha  # the alpha it had, before it changes below
        if opaque:
            self.alpha = None
        elif alpha is not None and alpha.shape == (h, w):
            self.alpha = _frozen(np.ascontiguousarray(alpha))
        elif (h, w) != (old_h, old_w) and self.alpha is not None:
            self.alpha = _frozen(_resize_nearest(self.alpha, h, w))
        if (h, w) != (old_h, old_w):
            self.mask = _resize_nearest(self.mask, h, w)
        self.image = image
        self.image_revision = next(_revisions)

    def set_mask(self, mask: np.ndarray, *, adopt: bool = False) -> None:
        """Replace the whole mask (kept read-only: the next snapshot shares it instead of copying it).

        The caller's array is copied, unless `adopt` says it is a new array nobody else writes to
        (the result of invert, grow, ...): then it is kept as it is when it owns its pixels.
        """
        if mask.shape != self.image.shape[:2]:
            raise ValueError(f"mask {mask.shape[1]}x{mask.shape[0]} does not match image {self.size[0]}x{self.size[1]}")
        owned = adopt and mask.dtype == np.uint8 and mask.flags.c_contiguous and mask.base is None
        self.mask = _frozen(mask if owned else np.array(mask, dtype=np.uint8, order="C"))

    def detach(self, name: str) -> None:
        """From now on a new picture, not the opened file's: Save asks where, offering `name`, and
        the photo's metadata (EXIF with its camera and place, ICC profile, PNG text) does not follow."""
        self.path = None
        self._name = name
        self.info = MappingProxyType({})

    def mark_saved(self, path: Path, revision: int | None = None) -> None:
        """The file at `path` holds the image as it was at `revision` (default: now)."""
        self.path = path
        self.saved_revision = self.image_revision if revision is None else revision


def _resize_nearest(a: np.ndarray, h: int, w: int) -> np.ndarray:
    ys = (np.arange(h) * a.shape[0] // h).clip(0, a.shape[0] - 1)
    xs = (np.arange(w) * a.shape[1] // w).clip(0, a.shape[1] - 1)
    return np.ascontiguousarray(a[ys][:, xs])
