"""GUI entry point: `run(argv)` builds the application, opens the given files and runs the event loop."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from .controller import EditorController
from .resources import APP_ID, default_model_path, resources_root, sample_image_path
from .ui.main_window import MainWindow
from .worker import EngineClient


def build(*, settings_file: Path | None = None, default_model: Path | None = None, models_dir: Path | None = None,
          device: str = "auto") -> MainWindow:
    """The composition root: engine thread, controller and window, wired once."""
    engine = EngineClient(device)
    try:
        window = MainWindow()
        controller = EditorController(window, engine, settings_file=settings_file, default_model=default_model,
                                      models_dir=models_dir)
        window.bind(controller, engine)
    except BaseException:
        engine.shutdown()  # its thread, and the garbage collector it holds back (app.worker)
        raise
    return window


def launch(argv: list[str]) -> tuple[QApplication, MainWindow]:
    """Create (or reuse) the QApplication and show the window with the files in argv; no event loop yet."""
    if QApplication.instance() is None:
        # Fractional scaling (150 %) must not be rounded to 200 %, or everything looks blurry/huge.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Consistency Studio")
    app.setOrganizationName("consistency-studio")
    # Must equal the .desktop file's name so docks and Wayland match windows to the launcher.
    app.setDesktopFileName(APP_ID)
    icon = resources_root() / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    window = build(default_model=default_model_path())
    window.controller.start([a for a in argv if not a.startswith("-")], sample=sample_image_path())
    window.show()
    return app, window  # type: ignore[return-value]


def run(argv: list[str]) -> int:
    """argv: image files to open (the first is opened; none = the bundled sample). Returns the exit code."""
    app, window = launch(argv)
    # SIGTERM/SIGINT close the window normally (autosave, worker shutdown) instead of killing Qt mid-paint.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.close())
    # Python only runs signal handlers between bytecodes; a timer gives it a chance while Qt idles.
    tick = QTimer()
    tick.start(250)
    tick.timeout.connect(lambda: None)
    return app.exec()
