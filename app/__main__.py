"""`cstudio` / `python -m app`: a known subcommand runs headless, anything else opens the desktop app."""

from __future__ import annotations

import sys

HEADLESS = {"info", "convert", "generate", "inpaint", "colorize", "upscale", "data", "train", "eval", "-h", "--help"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in HEADLESS:
        # Headless commands never import Qt, so they run on servers without a display.
        from engine.cli import main as cli_main

        return cli_main(argv)
    from app.gui import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
