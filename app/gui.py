"""GUI entry point: `run(argv)` builds the application, opens the given files and runs the event loop."""

from __future__ import annotations

import signal
import sys
import time
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


# Python slot calls `slot_leaks_none` makes: a lost reference per call stands far out of anything
# else that might run meanwhile; a few ms. PROBE_S bounds it where a timer does not fire.
PROBE_CALLS = 1000
PROBE_S = 2.0
SLOT_LEAK_WARNING = (
    "This Qt for Python (PySide6 {version}) loses a reference to None at every call into Python, and on "
    "Python {python} that ends in a crash after some minutes of work (a long batch). Install another "
    "release (pip install 'PySide6-Essentials<6.12'), or run on Python 3.12 or newer.")


def slot_leaks_none(app: QApplication) -> bool:
    """Whether this Qt binding takes a reference from None at each Python slot call and never gives
    it back (PySide6 6.12.0 does). Where None is immortal (Python >= 3.12) that is harmless; before,
    None's count runs down to zero and the process aborts with "none_dealloc" (after ~26 minutes
    of batch work, by an audit's measure). Calls a slot PROBE_CALLS times from a timer (the path
    that leaks; a direct emit does not) and compares the count: run it before the window and the
    controller exist, whose own queued work would move the count too (by +591 at a real start).
    False when the timer did not fire PROBE_CALLS times within PROBE_S."""
    if sys.version_info >= (3, 12):
        return False
    calls = [0]

    def slot() -> None:
        calls[0] += 1

    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(slot)
    before = sys.getrefcount(None)
    deadline = time.monotonic() + PROBE_S
    timer.start()
    while calls[0] < PROBE_CALLS and time.monotonic() < deadline:
        app.processEvents()
    timer.stop()
    return calls[0] >= PROBE_CALLS and sys.getrefcount(None) - before < -PROBE_CALLS // 2


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
    leaks = slot_leaks_none(app)  # first: nothing of ours is queued yet to move the count
    window = build(default_model=default_model_path())
    window.controller.start([a for a in argv if not a.startswith("-")], sample=sample_image_path())
    window.show()
    if leaks:
        import PySide6

        text = SLOT_LEAK_WARNING.format(version=PySide6.__version__, python=sys.version.split()[0])
        print(f"cstudio: warning: {text}", file=sys.stderr)
        window.show_error("Qt for Python will crash this app", text)
    return app, window  # type: ignore[return-value]


def run(argv: list[str]) -> int:
    """argv: image files to open (the first is opened; none = the bundled sample). Returns the exit code."""
    smoke = _SmokeTest() if "--smoke-test" in argv else None
    app, window = launch(argv)
    # SIGTERM/SIGINT close the window normally (autosave, worker shutdown) instead of killing Qt mid-paint.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: window.close())
    # Python only runs signal handlers between bytecodes; a timer gives it a chance while Qt idles.
    tick = QTimer()
    tick.start(250)
    tick.timeout.connect(lambda: None)
    if smoke is None:
        return app.exec()
    smoke.watch(window, tick)
    app.exec()
    return smoke.code


class _SmokeTest:
    """`cstudio --smoke-test` (packaging/smoke.py): start as usual, then exit 0 once the window is up and the
    model has loaded, 1 if an error was shown or the model does not load within limit_s. Checks a wheel's or
    a bundle's GUI imports and resources end to end with no one there to close the window, so dialogs answer
    nothing (the recovery question keeps the autosave: "later") and are printed instead of waiting for a click."""

    def __init__(self, limit_s: float = 300.0) -> None:
        self.limit_s, self.waited, self.code, self.errors = limit_s, 0.0, 1, []
        self._real_modal = MainWindow._modal
        MainWindow._modal = self._dialog  # before launch(): the start may already ask (recovery, open errors)

    def _dialog(self, dialog, *args):  # noqa: ANN001, ANN202 - as MainWindow._modal (bound here, not to the window)
        print(f"cstudio --smoke-test: dialog {dialog.__name__}: {' '.join(map(str, args))}", file=sys.stderr,
              flush=True)
        if dialog.__name__ == "show_error":
            self.errors.append(args)
        return None

    def watch(self, window: MainWindow, tick: QTimer) -> None:
        controller = window.controller

        def poll() -> None:
            self.waited += tick.interval() / 1000
            if controller.model is not None and controller.model.untrained:
                # The in-memory stand-in the app falls back to when the shipped weights are missing:
                # exactly what this test is for finding in a wheel or a bundle.
                print("cstudio --smoke-test: failed: the default model's weights were not found "
                      "(the app fell back to an untrained model)", file=sys.stderr, flush=True)
            elif controller.model is not None and window.isVisible() and not self.errors:
                print(f"cstudio --smoke-test: window shown, model loaded: {controller.model.label}", flush=True)
                self.code = 0
            elif not (self.errors or controller._model_job is None or self.waited > self.limit_s):
                return  # still loading
            else:
                print(f"cstudio --smoke-test: failed after {self.waited:.0f} s: "
                      f"{'an error was shown' if self.errors else 'the model did not load'}", file=sys.stderr, flush=True)
            tick.timeout.disconnect(poll)
            window.close()  # the normal way out: settings, autosave and the engine thread shut down
            MainWindow._modal = self._real_modal

        tick.timeout.connect(poll)
