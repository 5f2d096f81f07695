"""The Qt binding the app runs on keeps Python's objects alive: PySide6 6.12.0 takes a reference
from None at every Python slot call, and on Python < 3.12 (where None is not immortal) the app then
aborts with "none_dealloc" after some minutes of batch work. pyproject.toml keeps that release off
those Pythons; this test fails if the installed binding leaks, and checks the app's own probe."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import QApplication

from app import gui


def test_python_slots_do_not_leak_references_to_none(qapp) -> None:
    assert not gui.slot_leaks_none(qapp)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal: its count does not move")
def test_signals_across_threads_keep_none_alive(qapp) -> None:
    # The engine's messages: a worker thread emits objects the UI thread receives (app.worker).
    class Source(QObject):
        message = Signal(object)

    class Emitter(QThread):
        def __init__(self, source: Source) -> None:
            super().__init__()
            self.source = source

        def run(self) -> None:
            for i in range(2000):
                self.source.message.emit((i, None, True))

    source, got = Source(), []
    source.message.connect(lambda m: got.append(m[0]))
    before = sys.getrefcount(None)
    thread = Emitter(source)
    thread.start()
    thread.wait()
    while len(got) < 2000:
        QApplication.processEvents()
    assert sys.getrefcount(None) - before > -100


def test_the_app_warns_when_the_binding_leaks(qapp, monkeypatch, capsys) -> None:
    # Where the probe finds a leak, launch() says so on stderr and in a dialog, naming the fix.
    shown, order = [], []
    monkeypatch.setattr(gui, "slot_leaks_none", lambda app: order.append("probe") or True)
    monkeypatch.setattr(gui, "build", lambda **kw: order.append("window") or _FakeWindow(shown))
    gui.launch([])
    # Probed before the window and controller exist: their queued start-up work moved None's count
    # by hundreds, hiding a leak or faking one.
    assert order == ["probe", "window"]
    assert shown and shown[0][0] == "Qt for Python will crash this app"
    assert "PySide6-Essentials<6.12" in shown[0][1] and "PySide6-Essentials<6.12" in capsys.readouterr().err


class _FakeWindow:
    def __init__(self, shown: list) -> None:
        self.shown = shown
        self.controller = self

    def start(self, files, sample=None) -> None:
        pass

    def show(self) -> None:
        pass

    def show_error(self, title: str, text: str) -> None:
        self.shown.append((title, text))
