"""Test doubles for the controller: a synchronous engine running the real `Runner`, and a scripted view."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from unittest.mock import MagicMock

from app.controller import EditorController, EditorView
from app.model import JobFailed
from app.runner import Runner


class SyncEngine:
    """Queues requests; `process()` runs them through the real `app.runner.Runner`, like the worker thread."""

    def __init__(self) -> None:
        self.queue: list[object] = []
        self.cancelled: set[int] = set()
        self.runner = Runner("cpu")
        self.controller: EditorController | None = None

    def submit(self, request: object) -> None:
        self.queue.append(request)

    def cancel(self, job_id: int) -> None:
        self.cancelled.add(job_id)

    def process(self) -> int:
        c, n = self.controller, 0
        assert c is not None
        while self.queue:
            req = self.queue.pop(0)
            n += 1
            msg = self.runner.handle(req, c.on_progress, lambda job_id: job_id in self.cancelled)
            (c.on_failed if isinstance(msg, JobFailed) else c.on_finished)(msg)
        return n


def scripted_view(*, overwrite: bool = True, recover: str = "recover") -> MagicMock:
    """A MagicMock(spec=EditorView) whose questions have fixed answers (recover: "recover", "discard", "later")."""
    view = MagicMock(spec=EditorView)
    view.confirm_overwrite.return_value = overwrite
    view.ask_recover.return_value = recover
    return view


def make_controller(tmp_path: Path, *, start: list[str] | None = None, load_model: bool = True,
                    view: MagicMock | None = None) -> tuple[EditorController, MagicMock, SyncEngine]:
    view = view if view is not None else scripted_view()
    engine = SyncEngine()
    c = EditorController(view, engine, settings_file=tmp_path / "settings.json", models_dir=tmp_path / "models")
    engine.controller = c
    c.start(start or [])
    if load_model:
        engine.process()
    else:
        engine.queue.clear()
    return c, view, engine


def kill_after_autosave(argv: list[str], env: dict[str, str]) -> list[str]:
    """Start a child process that prints "autosaved ..." once its autosave is on disk, then SIGKILL it
    (no exit handler runs, as after a crash); returns that line's words."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        assert line and line[0] == "autosaved", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        proc.kill()
    return line
