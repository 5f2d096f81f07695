"""Widget fixtures: a real main window with a real engine thread on the tiny model, dialogs patched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.ui import dialogs

from ..conftest import make_photo


class DialogLog:
    """Stands in for every modal dialog: records calls and returns scripted answers."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.unsaved_answer = "discard"
        self.unsaved_asked = 0
        self.save_path: str | None = None
        self.save_suffix = ".png"  # the file type picked in the Save As dialog
        self.overwrite_answer = True
        self.overwrite_asked: list[str] = []
        self.recover_answer = "recover"  # or "discard", or "later" (what Esc and the close button mean)
        self.recover_asked: list[str] = []
        self.batch_folder: str | None = None


@pytest.fixture
def dialog_log(monkeypatch: pytest.MonkeyPatch) -> DialogLog:
    log = DialogLog()

    def ask_unsaved(parent, name):
        log.unsaved_asked += 1
        return log.unsaved_answer

    monkeypatch.setattr(dialogs, "show_error", lambda parent, title, msg: log.errors.append((title, msg)))
    monkeypatch.setattr(dialogs, "show_text", lambda *a: None)
    monkeypatch.setattr(dialogs, "ask_unsaved", ask_unsaved)
    # Like the real one: (the path as typed, the extension of the picked file type), None if cancelled.
    monkeypatch.setattr(dialogs, "save_image_file",
                        lambda parent, suggested: (log.save_path, log.save_suffix) if log.save_path else None)

    def confirm_overwrite(parent, name, backup_name, loses=""):
        log.overwrite_asked.append(name)
        return log.overwrite_answer

    def ask_recover(parent, description):
        log.recover_asked.append(description)
        return log.recover_answer

    monkeypatch.setattr(dialogs, "confirm_overwrite", confirm_overwrite)
    monkeypatch.setattr(dialogs, "ask_recover", ask_recover)
    monkeypatch.setattr(dialogs, "pick_batch_folder", lambda parent, start: log.batch_folder)
    return log


@pytest.fixture
def photo_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(make_photo(48, 64)).save(path)
    return path


@pytest.fixture
def window(qtbot, tmp_path: Path, dialog_log: DialogLog, photo_file: Path):
    from app.gui import build

    w = build(settings_file=tmp_path / "settings.json", models_dir=tmp_path / "models")
    qtbot.addWidget(w)
    w.controller.start([str(photo_file)])
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.controller.model is not None, timeout=10000)
    yield w
    dialog_log.unsaved_answer = "discard"
    w.close()
    w.engine.shutdown()


def wait_idle(qtbot, w, timeout: int = 20000) -> None:
    qtbot.waitUntil(lambda: not w.controller.busy, timeout=timeout)


def canvas_image(w) -> np.ndarray:
    return w.canvas._image.array
