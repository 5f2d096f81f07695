"""`app.gui.launch(argv)`: what `cstudio FILE` runs before the event loop (`run` = launch + exec).

The real `exec()` is not run here: quitting the application inside pytest would leave it closing
for every later test.
"""

from __future__ import annotations

from pathlib import Path

from app import gui


def test_launch_opens_the_argv_file_with_the_test_model(qtbot, photo_file: Path, dialog_log, monkeypatch) -> None:
    monkeypatch.setattr(gui, "sample_image_path", lambda: None)
    monkeypatch.setattr(gui, "default_model_path", lambda: None)
    app, window = gui.launch([str(photo_file), "--ignored-flag"])
    qtbot.addWidget(window)
    try:
        assert window.isVisible() and app.applicationName() == "Consistency Studio"
        assert window.controller.document.path == photo_file
        qtbot.waitUntil(lambda: window.controller.model is not None, timeout=10000)
        assert window.panel.model.currentText().startswith("Untrained test model")
    finally:
        window.close()
        window.engine.shutdown()


def test_launch_without_files_shows_the_sample(qtbot, photo_file: Path, dialog_log, monkeypatch) -> None:
    monkeypatch.setattr(gui, "sample_image_path", lambda: photo_file)
    monkeypatch.setattr(gui, "default_model_path", lambda: None)
    _, window = gui.launch([])
    qtbot.addWidget(window)
    try:
        doc = window.controller.document
        assert doc.name == "photo.png" and doc.path is None and not doc.dirty  # never saved over the sample
    finally:
        window.close()
        window.engine.shutdown()
