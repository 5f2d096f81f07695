"""How the product is installed and started: `cstudio`'s dispatch between the app and the headless commands,
`cstudio --smoke-test`, the built wheel and sdist, and packaging/install-desktop.sh's edge cases.

The wheel and sdist are built from a copy of the sources in a temporary folder (a few seconds, offline, with the
venv's setuptools); skipped where setuptools is too old to read pyproject.toml's licence expression.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import app.__main__ as entry

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "packaging"
APP_ID = "io.github.consistency_studio.ConsistencyStudio"


def _pyproject_version() -> str:
    return re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text("utf-8"), re.MULTILINE).group(1)


# ---------------------------------------------------------------------------------------------------------
# `cstudio ARGS`: which go to the app, which are answered on the terminal


@pytest.fixture
def gui_runs(monkeypatch):
    """Records the argv the desktop app would start with, instead of starting it."""
    import app.gui

    started: list[list[str]] = []
    monkeypatch.setattr(app.gui, "run", lambda argv: started.append(list(argv)) or 0)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    return started


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_and_does_not_open_the_app(flag, gui_runs, capsys):
    assert entry.main([flag]) == 0
    assert capsys.readouterr().out.strip() == f"cstudio {_pyproject_version()}"
    assert gui_runs == []


@pytest.mark.parametrize("argv, expect", [(["help"], "upscale"), (["help", "upscale"], "--factor")])
def test_help_word_prints_help(argv, expect, gui_runs, capsys):
    with pytest.raises(SystemExit) as e:
        entry.main(argv)
    assert e.value.code == 0 and expect in capsys.readouterr().out
    assert gui_runs == []


@pytest.mark.parametrize("argv, hint", [(["upscal", "photo.png"], "did you mean 'upscale'"),
                                        (["frobnicate"], "commands: classes, colorize"),
                                        (["--foo"], "unrecognized option '--foo'"),
                                        (["--verbose", "photo.png"], "unrecognized option '--verbose'")])
def test_mistyped_command_or_option_is_a_usage_error(argv, hint, gui_runs, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photo.png").write_bytes(b"")
    assert entry.main(argv) == 2
    err = capsys.readouterr().err
    assert hint in err and err.startswith("usage: cstudio")
    assert gui_runs == []


def test_files_open_in_the_app(gui_runs, tmp_path, monkeypatch):
    """Anything that may be a file still goes to the app, which says what is wrong with it in a dialog."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    (tmp_path / "noext").write_bytes(b"")
    cases = [[], ["a.png"], ["a.png", "b.png"], ["missing.png"], ["folder"], ["noext"], [str(tmp_path / "gone")],
             ["--smoke-test"], ["-psn_0_4711", "a.png"]]
    for argv in cases:
        assert entry.main(argv) == 0
    assert gui_runs == cases


def test_no_display_is_a_clear_error(gui_runs, monkeypatch, capsys):
    """Without X11/Wayland, Qt aborts the process (SIGABRT, core dump) advising to reinstall: say so instead."""
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert entry.main([]) == 1
    assert "no display" in capsys.readouterr().err and gui_runs == []
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert entry.main([]) == 0 and gui_runs == [[]]


def _app_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_DATA_HOME=str(home / "data"), XDG_STATE_HOME=str(home / "state"),
               XDG_CACHE_HOME=str(home / "cache"), PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    for var in ("CSTUDIO_CONFIG_DIR", "CSTUDIO_DATA_DIR", "CSTUDIO_STATE_DIR"):
        env.pop(var, None)
    return env


@pytest.mark.parametrize("files, rc, says", [([], 0, "model loaded"), (["missing.png"], 1, "an error was shown")])
def test_gui_smoke_test_exits_by_itself(tmp_path, files, rc, says):
    """packaging/smoke.py runs `cstudio --smoke-test`: it must end once the window is up and the model loaded (a
    dialog reported on stderr, never waited on), instead of running until someone closes it."""
    proc = subprocess.run([sys.executable, "-m", "app", *files, "--smoke-test"], cwd=tmp_path, env=_app_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == rc and says in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "QThread: Destroyed" not in proc.stderr  # left through the window's close, engine thread stopped


def test_gui_smoke_test_fails_when_the_default_weights_are_missing(tmp_path):
    """A wheel or bundle without resources/models/default.safetensors starts on an untrained stand-in model:
    the smoke test is there to catch exactly that."""
    child = ("import sys, engine.paths, app.resources\n"
             "engine.paths.default_model_path = app.resources.default_model_path = lambda: None\n"
             "from app.__main__ import main\n"
             "sys.exit(main(['--smoke-test']))\n")
    proc = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, env=_app_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "untrained" in proc.stderr


# ---------------------------------------------------------------------------------------------------------
# The wheel and the sdist


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} < 77 cannot read pyproject.toml's license expression")
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("pyproject.toml", "README.md", "MANIFEST.in", "COPYING"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    for name in ("app", "engine", "resources", "packaging"):
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    # What a used checkout also holds: bytecode next to resources/__init__.py, tests, training runs.
    (src / "resources" / "__pycache__").mkdir()
    (src / "resources" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"stale")
    (src / "tests").mkdir()
    (src / "tests" / "test_something.py").write_text("def test(): pass\n")
    (src / "runs").mkdir()
    (src / "runs" / "model.safetensors").write_bytes(b"x")
    out = tmp_path_factory.mktemp("dist")
    built = {}
    for kind in ("wheel", "sdist"):  # one process each: setuptools keeps state that misplaces a second build
        code = f"import sys; from setuptools import build_meta as b; print('BUILT', b.build_{kind}(sys.argv[1]))"
        proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=src, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        built[kind] = out / proc.stdout.rsplit("BUILT ", 1)[1].strip()
    return built


def test_wheel_contents_and_metadata(built):
    with zipfile.ZipFile(built["wheel"]) as z:
        names = set(z.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = z.read(f"{info}/METADATA").decode()
        entry_points = z.read(f"{info}/entry_points.txt").decode()
    for need in ("resources/models/default.safetensors", "resources/models/MODEL_CARD.md",
                 "resources/models/ATTRIBUTION.md", "resources/samples/italy.png", "engine/data/allowlist.tsv",
                 f"resources/icons/hicolor/scalable/apps/{APP_ID}.svg", "app/__main__.py", "engine/cli.py"):
        assert need in names, need
    stray = sorted(n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))
                   or n.split("/")[0] in ("tests", "runs", "data-cache", "packaging", "bench", ".venv"))
    assert stray == []
    assert f"Version: {_pyproject_version()}" in meta and "Name: consistency-studio" in meta
    assert "License-Expression: GPL-3.0-or-later" in meta and "Requires-Python: >=3.10" in meta
    assert "Requires-Dist: torch>=2.4" in meta
    # The GPL's text and the photo credits travel with every copy (the licence asks for the first).
    assert "License-File: COPYING" in meta and f"{info}/licenses/COPYING" in names
    assert f"{info}/licenses/resources/models/ATTRIBUTION.md" in names
    assert "cstudio = app.__main__:main" in entry_points and "cstudio-gui = app.__main__:main" in entry_points


def test_sdist_has_the_desktop_files_and_no_stray_tests(built):
    with tarfile.open(built["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for need in (f"packaging/{APP_ID}.desktop", f"packaging/{APP_ID}.metainfo.xml", "packaging/install-desktop.sh",
                 "resources/models/default.safetensors", "resources/models/ATTRIBUTION.md", "pyproject.toml"):
        assert need in names, need
    stray = sorted(n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.split("/")[0] in ("tests", "runs"))
    assert stray == []


# ---------------------------------------------------------------------------------------------------------
# packaging/install-desktop.sh


def _install(*args: str, cwd: Path | None = None, home: Path | None = None) -> subprocess.CompletedProcess:
    if shutil.which("sh") is None or shutil.which("install") is None:
        pytest.skip("needs a POSIX shell and install(1)")
    env = None if home is None else {**os.environ, "HOME": str(home)}
    return subprocess.run(["sh", str(PKG / "install-desktop.sh"), *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env=env)


def test_install_desktop_makes_a_relative_exec_absolute(tmp_path):
    exe = tmp_path / "venv" / "bin" / "cstudio"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    proc = _install("--prefix", str(tmp_path / "share"), "--exec", "venv/bin/cstudio", cwd=tmp_path)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    lines = (tmp_path / "share" / "applications" / f"{APP_ID}.desktop").read_text().splitlines()
    assert f"Exec={exe} %F" in lines and f"TryExec={exe}" in lines


def test_install_desktop_warns_about_a_missing_exec(tmp_path):
    proc = _install("--prefix", str(tmp_path / "share"), "--exec", str(tmp_path / "nope" / "cstudio"))
    assert proc.returncode == 0 and "not an executable file" in proc.stderr


@pytest.mark.parametrize("flag", ["--prefix", "--exec"])
def test_install_desktop_option_without_value(tmp_path, flag):
    proc = _install(flag)
    assert proc.returncode == 2 and f"{flag} needs a value" in proc.stderr


def test_install_desktop_help_is_the_header_only():
    proc = _install("--help")
    assert proc.returncode == 0 and "--uninstall" in proc.stdout
    assert "set -eu" not in proc.stdout and "APP_ID=" not in proc.stdout


def test_install_desktop_reinstall_and_uninstall_leave_nothing(tmp_path):
    prefix = tmp_path / "share"  # the user's own data folder ($HOME below)
    exe = sys.executable  # any executable file
    assert _install("--prefix", str(prefix), "--exec", exe, home=tmp_path).returncode == 0
    first = sorted(p for p in prefix.rglob("*"))
    assert _install("--prefix", str(prefix), "--exec", exe, home=tmp_path).returncode == 0
    assert sorted(p for p in prefix.rglob("*")) == first
    assert _install("--prefix", str(prefix), "--uninstall", home=tmp_path).returncode == 0
    # update-desktop-database's cache belongs to the folder (other entries), not to this app.
    left = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*"))
    assert set(left) <= {"applications", "applications/mimeinfo.cache"}, left


def test_install_desktop_uninstall_keeps_a_system_prefixs_empty_folders(tmp_path):
    system = tmp_path / "usr" / "share"  # outside $HOME: the icon theme's package owns its size folders
    (system / "icons" / "hicolor" / "48x48" / "apps").mkdir(parents=True)
    assert _install("--prefix", str(system), "--exec", sys.executable, home=tmp_path / "home").returncode == 0
    assert _install("--prefix", str(system), "--uninstall", home=tmp_path / "home").returncode == 0
    assert (system / "icons" / "hicolor" / "48x48" / "apps").is_dir()
    assert not list((system / "icons").rglob("*consistency*")) and not list((system / "icons").rglob("*Consistency*"))
