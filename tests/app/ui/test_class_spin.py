"""The Class control by name: ClassSpin shows "207 golden retriever", takes a number or a name typed,
and completes names from any part of them; a model whose classes have no names shows numbers."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.ui.class_spin import ClassSpin
from engine.classes import class_names


def _box(qtbot, classes: int) -> ClassSpin:
    box = ClassSpin()
    qtbot.addWidget(box)
    box.set_classes(classes, class_names(classes))
    return box


def _type(qtbot, box: ClassSpin, text: str) -> None:
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), text)
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)


def test_an_imagenet_model_s_class_shows_its_name_and_takes_one_typed(qtbot):
    box = _box(qtbot, 1000)
    box.setValue(207)
    assert box.text() == "207 golden retriever" and box.maximum() == 999
    seen = []
    box.valueChanged.connect(seen.append)
    _type(qtbot, box, "tabby cat")
    assert box.value() == 281 and box.text() == "281 tabby" and seen == [281]
    _type(qtbot, box, "Siberian husky")
    assert box.value() == 250
    _type(qtbot, box, "42")
    assert box.value() == 42 and box.text() == "42 agama"
    # An unknown or ambiguous name keeps the class there was; nothing else changes.
    for bad in ("no such animal", "crane", "1000"):
        _type(qtbot, box, bad)
        assert box.value() == 42 and box.text() == "42 agama", bad
    assert seen == [281, 250, 42]
    box.stepBy(1)
    assert box.text() == "43 frilled lizard"


def test_names_complete_from_any_part_of_them(qtbot):
    box = _box(qtbot, 1000)
    completer = box.lineEdit().completer()
    completer.setCompletionPrefix("retriever")
    found = [completer.completionModel().index(i, 0).data() for i in range(completer.completionCount())]
    assert found == ["205 flat-coated retriever", "206 curly-coated retriever", "207 golden retriever",
                     "208 Labrador retriever", "209 Chesapeake Bay retriever"]
    completer.activated.emit("208 Labrador retriever")
    assert box.value() == 208


def test_a_model_with_unnamed_classes_shows_numbers(qtbot):
    box = _box(qtbot, 10)
    box.setValue(3)
    assert box.text() == "3" and box.maximum() == 9
    assert box.lineEdit().completer().model().rowCount() == 0
    _type(qtbot, box, "tabby")
    assert box.value() == 3
    _type(qtbot, box, "7")
    assert box.value() == 7
