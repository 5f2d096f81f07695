"""`cstudio` / `python -m app`: a known subcommand runs headless, anything else opens the desktop app."""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path

HEADLESS = {"info", "classes", "convert", "generate", "inpaint", "colorize", "upscale", "data", "train", "eval", "-h", "--help"}
# Options of the desktop app itself; any other option is a mistake, not a file name.
GUI_OPTIONS = {"--smoke-test"}
DIST_NAME = "consistency-studio"


def version() -> str:
    """The installed distribution's version; from a checkout that is not installed, pyproject.toml's."""
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        return dist_version(DIST_NAME)
    except PackageNotFoundError:
        pass
    try:
        text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return found.group(1) if found else "unknown"


def _usage_error(message: str) -> int:
    print(f"usage: cstudio [FILE ...] | cstudio COMMAND ... (see cstudio --help)\ncstudio: error: {message}",
          file=sys.stderr)
    return 2


def _no_display() -> bool:
    """On X11/Wayland systems without either (ssh, a server), Qt would abort the process with a core dump and
    advice to reinstall; say what is wrong instead. QT_QPA_PLATFORM set (offscreen, eglfs, vnc) is a choice."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd", "sunos")):
        return False
    return not any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _headless(argv: list[str]) -> int:
    """engine.cli's main; a Ctrl-C while it is imported (torch takes seconds to load) is an
    interrupt, exit 130, as during the command itself, not a traceback from inside torch."""
    try:
        from engine.cli import main as cli_main
    except KeyboardInterrupt:
        print("cstudio: interrupted", file=sys.stderr)
        return 130
    return cli_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--version", "-V"):
        print(f"cstudio {version()}")
        return 0
    if argv and argv[0] == "help":
        # `cstudio help [COMMAND]`, as git and pip spell it; otherwise "help" would be opened as an image.
        return _headless([*argv[1:2], "--help"])
    if argv and argv[0] in HEADLESS:
        # Headless commands never import Qt, so they run on servers without a display.
        return _headless(argv)
    # The app opens only files, so a mistyped option or command would otherwise start it with an error dialog
    # (or silently, for an option). macOS Finder may add -psn_0_NNN to an app it starts: not a mistake.
    options = [a for a in argv if a.startswith("-") and not a.startswith("-psn_")]
    unknown = [a for a in options if a not in GUI_OPTIONS]
    if unknown:
        return _usage_error(f"unrecognized option {unknown[0]!r}")
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and not os.path.lexists(first) and not Path(first).suffix and os.sep not in first \
            and (os.altsep is None or os.altsep not in first):
        # A bare word that is no file: a command typed wrong (`cstudio upscal x.png`), never an image to open.
        commands = sorted(c for c in HEADLESS if not c.startswith("-"))
        close = difflib.get_close_matches(first, commands, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (commands: {', '.join(commands)})"
        return _usage_error(f"{first!r} is neither a command nor an existing file{hint}")
    if _no_display():
        print("cstudio: no display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the desktop app cannot open. "
              "The headless commands work without one: cstudio --help.", file=sys.stderr)
        return 1
    from app.gui import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
