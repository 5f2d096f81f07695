"""Layering, checked by parsing imports (ast), so it holds without importing anything heavy.

engine    -> never PySide6 or app
app.model, app.controller (+ its mixins), app.tasks, app.runner, app.batch, app.files -> never PySide6
app.ui    -> never engine directly (it goes through the worker thread)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    names: set[str] = set()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # resolve relative imports against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module or "")
    return names


def _violations(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for f in files:
        for name in _imports(f):
            if any(name == p or name.startswith(p + ".") for p in forbidden):
                bad.append(f"{f.relative_to(ROOT)} imports {name}")
    return bad


def test_engine_imports_neither_qt_nor_app() -> None:
    files = sorted((ROOT / "engine").rglob("*.py"))
    assert files
    assert _violations(files, ("PySide6", "PyQt5", "PyQt6", "app")) == []


def test_app_model_and_controller_are_qt_free() -> None:
    files = sorted((ROOT / "app" / "model").rglob("*.py"))
    names = ("controller.py", "_painting.py", "_documents.py", "tasks.py", "runner.py", "batch.py", "files.py",
             "resources.py")
    files += [ROOT / "app" / name for name in names]
    assert _violations(files, ("PySide6", "PyQt5", "PyQt6", "app.ui", "app.worker")) == []


def test_model_layer_does_not_reach_up() -> None:
    files = sorted((ROOT / "app" / "model").rglob("*.py"))
    assert _violations(files, ("app.controller", "app.ui", "app.worker", "app.tasks", "engine")) == []


def test_widgets_never_call_the_engine_directly() -> None:
    files = sorted((ROOT / "app" / "ui").rglob("*.py"))
    assert _violations(files, ("engine", "app.tasks", "torch")) == []


def test_relative_imports_are_resolved() -> None:
    assert "app.model.brush" in _imports(ROOT / "app" / "controller.py")
