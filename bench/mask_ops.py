"""Mask > Grow / Shrink / Feather on large photos: time and peak memory, against filtering the whole mask.

The app's mask operations (`app.model.brush.grow`, `shrink`, `feather`) run on the UI thread, so
they must stay quick on a 100 Mpx photo. They filter only the crop that a mask edge can reach; the
baseline, measured in the same run, filters the whole mask with the same filters (what they did
before, apart from the filters themselves). Each mask is run at the size the app uses for one
click (`_edge_pixels`: 1 % of the long side; feather twice that):

  stroke    a 12 px brush stroke across the photo and a box (the common case: a few strokes)
  scattered 300 boxes all over the photo (the crop is the whole photo: no gain expected)

    python bench/mask_ops.py                  # 12000 x 9000
    python bench/mask_ops.py --size 4000x3000
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.model import brush  # noqa: E402 - after the path is set


def masks(h: int, w: int) -> dict[str, np.ndarray]:
    stroke = np.zeros((h, w), np.uint8)
    stroke[h * 4 // 9:h * 4 // 9 + 12, w // 12:w * 11 // 12] = 255
    stroke[h * 2 // 9:h * 2 // 9 + h // 15, w // 4:w // 4 + w // 15] = 255
    scattered = np.zeros((h, w), np.uint8)
    rng = np.random.default_rng(0)
    side = max(4, min(h, w) // 60)
    for _ in range(300):
        y, x = rng.integers(0, h - side), rng.integers(0, w - side)
        scattered[y:y + side, x:x + side] = 255
    return {"stroke": stroke, "scattered": scattered}


def whole_grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    return brush._max_filter(brush._max_filter(mask, pixels, 0), pixels, 1)


def whole_feather(mask: np.ndarray, pixels: int) -> np.ndarray:
    img = Image.fromarray(mask)
    for _ in range(3):
        img = img.filter(ImageFilter.BoxBlur(max(1, round(pixels / 3))))
    return np.asarray(img)


def measure(fn, *args) -> tuple[float, float, np.ndarray]:
    tracemalloc.start()
    t = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="12000x9000", help="WxH of the photo")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    edge = max(2, round(max(h, w) / 100))  # the controller's one-click size
    print(f"{w}x{h} mask, grow/shrink {edge} px, feather {2 * edge} px "
          "(seconds; peak MB of numpy arrays, Pillow's own buffers not counted)")
    print(f"{'mask':10} {'op':8} {'whole mask':>18} {'cropped':>18} {'speed-up':>9}  same")
    for name, mask in masks(h, w).items():
        for op, ours, whole, px in (("grow", brush.grow, whole_grow, edge),
                                    ("feather", brush.feather, whole_feather, 2 * edge)):
            t0, m0, ref = measure(whole, mask, px)
            t1, m1, out = measure(ours, mask, px)
            same = "yes" if np.array_equal(out, ref) else f"max diff {np.abs(out.astype(int) - ref).max()}"
            print(f"{name:10} {op:8} {t0:8.2f} s {m0:6.0f} MB {t1:8.2f} s {m1:6.0f} MB {t0 / t1:8.1f}x  {same}")


if __name__ == "__main__":
    main()
