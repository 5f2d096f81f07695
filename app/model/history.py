"""Undo/redo as two stacks of immutable snapshots, bounded by count and memory."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .document import Snapshot


@dataclass(frozen=True)
class _Entry:
    snapshot: Snapshot
    label: str  # "Brush stroke", "Inpaint", ... shown as "Undo Inpaint"


class History:
    """`record(before, label)` after each change; `undo(current)` returns the state to restore."""

    def __init__(self, max_entries: int = 100, max_bytes: int = 1536 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._undo: deque[_Entry] = deque()
        self._redo: list[_Entry] = []
        self.version = 0  # bumped on every change: autosave writes only when it moved

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str:
        return self._undo[-1].label if self._undo else ""

    @property
    def redo_label(self) -> str:
        return self._redo[-1].label if self._redo else ""

    def record(self, before: Snapshot, label: str) -> int:
        """Add an undo step; returns how many of the oldest steps were dropped to stay within the limits."""
        self._undo.append(_Entry(before, label))
        self._redo.clear()
        dropped = self._trim()
        self.version += 1
        return dropped

    def undo(self, current: Snapshot) -> Snapshot | None:
        if not self._undo:
            return None
        entry = self._undo.pop()
        self._redo.append(_Entry(current, entry.label))
        self.version += 1
        return entry.snapshot

    def redo(self, current: Snapshot) -> Snapshot | None:
        if not self._redo:
            return None
        entry = self._redo.pop()
        self._undo.append(_Entry(current, entry.label))
        self.version += 1
        return entry.snapshot

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self.version += 1

    def entries(self) -> tuple[list[tuple[Snapshot, str]], list[tuple[Snapshot, str]]]:
        """(undo, redo) as (snapshot, label) lists, oldest undo first, next redo last: for autosave."""
        return [(e.snapshot, e.label) for e in self._undo], [(e.snapshot, e.label) for e in self._redo]

    def load(self, undo: list[tuple[Snapshot, str]], redo: list[tuple[Snapshot, str]]) -> None:
        """Replace both stacks (a recovered session), in the order `entries` gives them."""
        self._undo = deque(_Entry(s, label) for s, label in undo)
        self._redo = [_Entry(s, label) for s, label in redo]
        self._trim()
        self.version += 1

    @property
    def nbytes(self) -> int:
        """Memory the undo stack holds, each array counted once however many snapshots share it."""
        return _distinct_nbytes(e.snapshot for e in self._undo)

    def _trim(self) -> int:
        n = len(self._undo)
        while len(self._undo) > self.max_entries:
            self._undo.popleft()
        # Brush strokes share the image array with the entries around them (only the mask is copied):
        # counting the image once per entry would let ten mask strokes on an 8000x6000 photo (144 MB
        # each) use up the budget, where they really cost their masks (48 MB each) and one image.
        while len(self._undo) > 1 and self.nbytes > self.max_bytes:
            self._undo.popleft()
        return n - len(self._undo)


def _buffer_owner(a: np.ndarray) -> np.ndarray:
    """The array that owns the memory `a` views (itself if it owns it): shared pixels have one owner."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _distinct_nbytes(snapshots: Iterable[Snapshot]) -> int:
    seen: dict[int, int] = {}  # id of the owning array -> its size; all of them are alive while counting
    for snap in snapshots:
        for a in (snap.image, snap.mask, snap.before, snap.alpha):
            if a is not None:
                owner = _buffer_owner(a)
                seen.setdefault(id(owner), owner.nbytes)
    return sum(seen.values())
