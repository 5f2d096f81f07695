"""Render the README screenshots: the real main window, offscreen, running each task on the default model.

    QT_QPA_PLATFORM=offscreen python docs/make_screenshots.py [task ...]

Writes docs/screenshots/<task>.png. Uses the shipped sample photo and the embedded default model,
with settings and autosave in a temporary folder so a user's own are never touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_tmp = tempfile.mkdtemp(prefix="cstudio-shots-")
for var in ("CSTUDIO_CONFIG_DIR", "CSTUDIO_DATA_DIR", "CSTUDIO_STATE_DIR"):
    os.environ[var] = str(Path(_tmp) / var.lower())

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
SAMPLE = ROOT / "resources" / "samples" / "italy.png"


def main(tasks: list[str]) -> None:
    app = QApplication([])
    from app.gui import build
    from engine.paths import default_model_path

    window = build(default_model=default_model_path())
    window.resize(1100, 700)
    c = window.controller
    c.start([str(SAMPLE)])
    window.show()

    def pump(seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            app.processEvents()
            time.sleep(0.01)

    def wait() -> None:
        t0 = time.time()
        while (c.busy or c.model is None) and time.time() - t0 < 600:
            pump(0.05)
        pump(0.3)

    def save(name: str) -> None:
        path = OUT / f"{name}.png"
        window.grab().toImage().save(str(path))
        if path.stat().st_size > 300_000:  # keep the repository small: a 256-colour palette is plenty here
            Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        print(name, path.stat().st_size)

    wait()
    photo = np.asarray(Image.open(SAMPLE).convert("RGB"))
    for task in tasks:
        c.open_path(SAMPLE)
        if task == "colorize":
            grey = np.repeat(photo.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
            c.open_array(grey, "italy-grey.png")
        if task == "upscale":
            small = np.asarray(Image.fromarray(photo[140:268, 280:472]).resize((48, 32), Image.Resampling.BOX))
            c.open_array(small, "italy-small.png")
            c.set_params(upscale_factor=4)
        c.set_params(task=task)
        if task == "inpaint":
            # The red cloth on the floor, right of the split: its removal shows in the result half
            # (a stroke over the dark backdrop changed nothing anyone could see).
            c.set_brush(size=36, hardness=0.7)
            c.begin_stroke(652, 498)
            c.extend_stroke(672, 500)
            c.extend_stroke(694, 499)
            c.end_stroke()
            save("inpaint-mask")
        c.run()
        wait()
        if task in ("inpaint", "colorize"):
            window.split.setValue(50)
            pump(0.3)
        save(task)
        window.split.setValue(0)
    c.document.saved_revision = c.document.image_revision
    window.close()


if __name__ == "__main__":
    main(sys.argv[1:] or ["inpaint", "colorize", "upscale", "generate"])
