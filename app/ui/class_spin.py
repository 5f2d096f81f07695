"""ClassSpin: the class a class-conditional model conditions on, by number or by name.

OpenAI's ImageNet 64 px checkpoints take one of 1000 classes; "207" means nothing to a user, "golden
retriever" does. The box shows "207 golden retriever", takes a number or a name typed in ("tabby
cat", "husky"), and completes names from any part of them. It stays a QSpinBox, so the arrows, the
wheel and `value()` work as for any number.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QCompleter, QSpinBox

_LEADING_NUMBER = re.compile(r"\s*(\d+)(?:\s|$)")


class ClassSpin(QSpinBox):
    def __init__(self, tip: str = "") -> None:
        super().__init__()
        self._names_of: tuple[str, ...] = ()  # one line of lemmas per class ("tabby, tabby cat"), or none
        self.setRange(0, 999)
        self.setToolTip(tip)
        self.setKeyboardTracking(False)  # one change per edit, not one per key typed
        self._names = QStringListModel(self)
        completer = QCompleter(self._names, self)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)  # "retriever" finds all five retrievers
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setMaxVisibleItems(12)
        completer.activated.connect(self._pick)
        # The popup would take the box's width, eliding names ("205 flat-coated retri...").
        completer.popup().setMinimumWidth(self.fontMetrics().horizontalAdvance("0" * 34))
        self.lineEdit().setCompleter(completer)

    def set_classes(self, num_classes: int | None, names: tuple[str, ...] | None = None) -> None:
        """The loaded model's class count, and its classes' names (engine.classes.class_names: an
        ImageNet model's lemma lines) for showing, typing and completing them; None: numbers only."""
        self._names_of = tuple(names) if names and len(names) == num_classes else ()
        self.setMaximum(max(0, (num_classes or 1) - 1))
        self._names.setStringList([f"{i} {n}" for i, n in enumerate(self._names_of)])
        self.setAccessibleDescription("ImageNet class, by number or name" if self._names_of else "class number")
        self.lineEdit().setText(self.textFromValue(self.value()))

    def _pick(self, text: str) -> None:
        self.setValue(self.valueFromText(text))

    def _parse(self, text: str) -> int | None:
        m = _LEADING_NUMBER.match(text)
        if m:  # "207 golden retriever" as shown, or a number typed
            n = int(m.group(1))
            return n if self.minimum() <= n <= self.maximum() else None
        # A name: the one class that has it as a lemma, in any case (two classes called "crane":
        # neither; the command line's --class-label says why, here the box keeps its class).
        key = " ".join(text.lower().split())
        hits = [i for i, line in enumerate(self._names_of) if key in line.lower().split(", ")]
        return hits[0] if len(hits) == 1 else None

    def textFromValue(self, value: int) -> str:  # noqa: N802 (Qt's name)
        if 0 <= value < len(self._names_of):
            return f"{value} {self._names_of[value].split(', ')[0]}"
        return str(value)

    def valueFromText(self, text: str) -> int:  # noqa: N802
        n = self._parse(text)
        return self.value() if n is None else n

    def validate(self, text: str, pos: int):  # noqa: N802
        # A name being typed is Intermediate (kept in the box), a whole one Acceptable; on Enter or
        # leaving the box an unknown name falls back to the last class (`fixup`).
        if self._parse(text) is not None:
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def fixup(self, text: str) -> str:
        return self.textFromValue(self.value())
