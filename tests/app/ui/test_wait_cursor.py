"""Steps that hold the UI thread for seconds on a large photo (open, save, mask files and edits) show a
wait cursor and say what they do in the status bar, painted before the work starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.model import Task
from app.ui import dialogs


class _Paints(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def _cursor() -> Qt.CursorShape | None:
    cursor = QApplication.overrideCursor()
    return None if cursor is None else cursor.shape()


# (action, what it calls that is replaced by the probe, the status text while it runs)
STEPS = [
    ("act_open", "controller.open_path", "Opening photo.png..."),
    ("act_save", "controller.save", "Saving photo.png..."),
    ("act_save_as", "controller.save", "Saving copy.png..."),
    ("act_import_mask", "controller.import_mask", "Importing the mask from m.png..."),
    ("act_export_mask", "controller.export_mask", "Saving the mask to m.png..."),
    ("act_invert_mask", "controller.invert_mask", "Inverting the mask..."),
    ("act_grow_mask", "controller.grow_mask", "Growing the mask..."),
    ("act_shrink_mask", "controller.shrink_mask", "Shrinking the mask..."),
    ("act_feather_mask", "controller.feather_mask", "Feathering the mask..."),
    ("act_copy", "_copy", "Copying the image..."),
]


@pytest.fixture
def files(window, dialog_log, monkeypatch, photo_file: Path, tmp_path: Path) -> None:
    """Every file dialog answers at once, as if the user had picked a file."""
    monkeypatch.setattr(dialogs, "open_image_file", lambda parent, start: str(photo_file))
    monkeypatch.setattr(dialogs, "open_mask_file", lambda parent, start: str(tmp_path / "m.png"))
    monkeypatch.setattr(dialogs, "save_mask_file", lambda parent, suggested: str(tmp_path / "m.png"))
    dialog_log.save_path = str(tmp_path / "copy.png")
    window.controller.set_params(task=Task.inpaint)  # the mask actions are on


@pytest.mark.parametrize("action, target, text", STEPS, ids=[s[0][4:] for s in STEPS])
def test_a_long_step_shows_a_wait_cursor_and_says_what_it_does(window, files, monkeypatch, qtbot, action: str,
                                                                target: str, text: str) -> None:
    owner = window.controller if target.startswith("controller.") else window
    name = target.rpartition(".")[2]
    paints = _Paints()
    window.status_text.installEventFilter(paints)
    window.set_status("Ready.")
    fired: list[int] = []
    QTimer.singleShot(0, lambda: fired.append(1))  # stands for a click or an engine result waiting in the queue
    seen = []

    def probe(*args, **kwargs) -> bool:
        seen.append((_cursor(), window.status_text.text(), paints.count, list(fired)))
        return True

    monkeypatch.setattr(owner, name, probe)
    paints.count = 0
    getattr(window, action).trigger()
    # The cursor and the text were up, and painted, before the work began; no queued event ran meanwhile.
    assert seen == [(Qt.CursorShape.WaitCursor, text, seen[0][2], [])] and seen[0][2] > 0
    assert _cursor() is None
    assert window.status_text.text() == "Ready."  # put back: the probe said nothing of its own
    qtbot.waitUntil(lambda: fired == [1])


def test_the_cursor_is_restored_when_the_step_fails(window, files, monkeypatch) -> None:
    window.set_status("Ready.")

    def broken(*args, **kwargs) -> bool:
        assert _cursor() == Qt.CursorShape.WaitCursor
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(window.controller, "save", broken)
    with pytest.raises(RuntimeError):
        window._on_save()
    assert _cursor() is None and window.status_text.text() == "Ready."


def test_a_question_asked_during_a_step_gets_the_normal_pointer(window, files, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(dialogs, "confirm_overwrite",
                        lambda parent, name, backup: (seen.append(("asked", _cursor())), True)[1])

    def save(*args, **kwargs) -> bool:
        window.confirm_overwrite("photo.png", "photo.bak.png")  # what the controller's save asks
        seen.append(("after", _cursor()))
        return True

    monkeypatch.setattr(window.controller, "save", save)
    window._on_save()
    assert seen == [("asked", Qt.CursorShape.ArrowCursor), ("after", Qt.CursorShape.WaitCursor)]
    assert _cursor() is None


def test_a_real_save_says_saved_and_restores_the_cursor(window, files, tmp_path: Path) -> None:
    window.act_save_as.trigger()
    assert (tmp_path / "copy.png").is_file()
    assert window.status_text.text().startswith("Saved copy.png.") and _cursor() is None
