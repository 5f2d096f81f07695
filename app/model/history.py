"""Undo/redo as two stacks of immutable snapshots, bounded by count and memory."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .document import Document, Snapshot


# Entries are told apart by a number never reused: a mark (`History.redo_mark`) must not hold the
# snapshots themselves alive (a 96 Mpx result is 288 MB), and ids of freed objects come back.
_serials = itertools.count(1)


@dataclass(frozen=True)
class _Entry:
    snapshot: Snapshot
    label: str  # "Brush stroke", "Inpaint", ... shown as "Undo Inpaint"
    serial: int = field(default_factory=lambda: next(_serials))


class History:
    """`record(before, label)` after each change; `undo(current)` returns the state to restore."""

    def __init__(self, max_entries: int = 100, max_bytes: int = 1536 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._undo: deque[_Entry] = deque()
        self._redo: list[_Entry] = []
        self._document: Document | None = None  # see `attach`
        self.version = 0  # bumped on every change: autosave writes only when it moved

    def attach(self, document: Document | None) -> None:
        """The document these steps belong to: its current state counts toward the memory limit.

        Undoing a result moves the document's image into the redo stack while the image restored
        stays there too, as that redo step's 'before': counted only from the undo stack, the history
        grew past the limit by a whole picture at the first undo (288 MB on a 96 Mpx photo), and
        the limit was only checked again at the next new step. See `nbytes`.
        """
        self._document = document

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

    def redo_mark(self) -> frozenset[int]:
        """The redo steps there are now, for `redo_since`."""
        return frozenset(e.serial for e in self._redo)

    def redo_since(self, mark: frozenset[int]) -> list[str]:
        """Labels of the redo steps made (by undo) since `redo_mark` gave `mark`, next redo last: what
        a `record` now would take away that the user took back only after the mark."""
        return [e.label for e in self._redo if e.serial not in mark]

    def redo_states_since(self, mark: frozenset[int]) -> list[Snapshot]:
        """The states those redo steps bring back, next redo last."""
        return [e.snapshot for e in self._redo if e.serial not in mark]

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

    def load(self, undo: list[tuple[Snapshot, str]], redo: list[tuple[Snapshot, str]]) -> int:
        """Replace both stacks (a recovered session), in the order `entries` gives them; returns how
        many of the oldest undo steps were dropped to stay within the limits."""
        self._undo = deque(_Entry(s, label) for s, label in undo)
        self._redo = [_Entry(s, label) for s, label in redo]
        dropped = self._trim()
        self.version += 1
        return dropped

    @property
    def nbytes(self) -> int:
        """Memory the history keeps alive at the worst point the user can step to, each array counted
        once however many snapshots share it ('before' and alpha included, undo and redo alike).

        Wherever the user steps, the document shows one state and the history holds all the others:
        the undo and redo steps and, once stepped away from it, the attached document's current
        state. So the count is every array of all these states but those only the state shown holds,
        taking the state whose own arrays are the smallest. It does not change as the user steps:
        undo and redo only move states between the document and the stacks, so they never need to
        drop a step. Without an attached document the current state is unknown and the count is
        what the stacks hold now, as before.
        """
        states = [e.snapshot for e in self._undo] + [e.snapshot for e in self._redo]
        if not states:
            return 0
        arrays = [(s.image, s.mask, s.before, s.alpha, s.before_alpha) for s in states]
        doc = self._document
        if doc is not None:
            arrays.append((doc.image, doc.mask, doc.before, doc.alpha, doc.before_alpha))
        size: dict[int, int] = {}  # id of the owning array -> its size; all alive while counting
        holders: dict[int, set[int]] = {}  # id of the owning array -> the states that hold it
        for i, state in enumerate(arrays):
            for a in state:
                if a is not None:
                    owner = _buffer_owner(a)
                    size.setdefault(id(owner), owner.nbytes)
                    holders.setdefault(id(owner), set()).add(i)
        total = sum(size.values())
        if doc is None:
            return total
        own = [0] * len(arrays)  # per state: the bytes no other state shares, which the document holds then
        for key, held_by in holders.items():
            if len(held_by) == 1:
                own[next(iter(held_by))] += size[key]
        return total - min(own)

    def _trim(self) -> int:
        """Drop the oldest undo steps beyond the limits; returns how many went.

        The newest undo step is kept whatever it costs, and redo steps are never dropped: they are
        the newest work, and only `load` can bring any (a `record` has just cleared them).
        """
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
