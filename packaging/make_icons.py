#!/usr/bin/env python3
"""Render the app icon's PNG sizes from its hand-drawn SVG into the hicolor layout under resources/icons/.

    python packaging/make_icons.py                 # rsvg-convert if installed, else Qt's QSvgRenderer
    python packaging/make_icons.py --renderer qt   # force one renderer
    python packaging/make_icons.py --check         # exit 1 if a PNG is missing or has the wrong size

The output tree mirrors the freedesktop icon theme layout, so installing is a copy:

    resources/icons/hicolor/scalable/apps/io.github.consistency_studio.ConsistencyStudio.svg   (the source)
    resources/icons/hicolor/<N>x<N>/apps/io.github.consistency_studio.ConsistencyStudio.png    (N = 16 ... 512)
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

APP_ID = "io.github.consistency_studio.ConsistencyStudio"
SIZES = (16, 32, 48, 64, 128, 256, 512)
ROOT = Path(__file__).resolve().parent.parent
HICOLOR = ROOT / "resources" / "icons" / "hicolor"
SVG = HICOLOR / "scalable" / "apps" / f"{APP_ID}.svg"


def png_path(size: int) -> Path:
    return HICOLOR / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (no imaging library needed)."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG file")
    return struct.unpack(">II", head[16:24])


def render_rsvg(svg: Path, size: int, out: Path) -> None:
    subprocess.run(["rsvg-convert", "--width", str(size), "--height", str(size), "--keep-aspect-ratio",
                    "--format", "png", "--output", str(out), str(svg)], check=True)


def render_qt(svg: Path, size: int, out: Path) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QPainter needs an application
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: Qt cannot parse this SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(out), "PNG"):
        raise SystemExit(f"{out}: could not write")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--renderer", choices=("auto", "rsvg", "qt"), default="auto")
    ap.add_argument("--check", action="store_true", help="only verify that every size exists with the right dimensions")
    args = ap.parse_args(argv)

    if args.check:
        bad = [f"{png_path(s)}: missing" for s in SIZES if not png_path(s).is_file()]
        bad += [f"{png_path(s)}: {png_size(png_path(s))}, expected {(s, s)}" for s in SIZES
                if png_path(s).is_file() and png_size(png_path(s)) != (s, s)]
        print("\n".join(bad) or f"ok: {len(SIZES)} PNG sizes + {SVG.name}")
        return 1 if bad else 0

    renderer = args.renderer
    if renderer == "auto":
        renderer = "rsvg" if shutil.which("rsvg-convert") else "qt"
    render = render_rsvg if renderer == "rsvg" else render_qt
    for size in SIZES:
        out = png_path(size)
        out.parent.mkdir(parents=True, exist_ok=True)
        render(SVG, size, out)
        if png_size(out) != (size, size):
            raise SystemExit(f"{out}: rendered {png_size(out)}, expected {size}x{size}")
        print(f"{out.relative_to(ROOT)}  ({out.stat().st_size} bytes, {renderer})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
