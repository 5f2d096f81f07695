"""PNG saving: our writer (`engine._deep.encode_png`, what every PNG output and the app's Save use)
against Pillow's PNG writer at its default level (what 8-bit PNGs went through before), measured
in the same run on the same pixels. Prints time, file size and their ratios, and checks that each
file decodes to the input.

The photos: the largest originals in the data builder's cache (`cstudio data build`), else the
shipped sample tiled up to 24 Mpx, plus an upscaled photo (a ×4 Lanczos of one: what `cstudio
upscale` writes) and a screenshot-like picture (flat panels and text-like detail).

    python bench/png_encode.py                # up to 3 cached photos, all cores and one
    python bench/png_encode.py --photos 1 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import _deep  # noqa: E402 - after the path is set
from engine.imageio import load_picture  # noqa: E402


def pictures(n: int) -> list[tuple[str, np.ndarray]]:
    cache = ROOT / "data-cache" / "debian-cache" / "originals"
    files = sorted(cache.glob("*.jpg"), key=lambda p: p.stat().st_size)[-n:] if cache.is_dir() else []
    out = [(f"photo {f.name[:10]}", load_picture(f).rgb) for f in files]
    if not out:
        sample = load_picture(ROOT / "resources" / "samples" / "italy.png").rgb
        out = [("sample tiled", np.tile(sample, (8, 8, 1))[:4000, :6000])]
    small = out[0][1][:1000, :1500]
    up = np.asarray(Image.fromarray(small).resize((6000, 4000), Image.Resampling.LANCZOS))
    out.append(("x4 upscale", up))
    rng = np.random.default_rng(0)
    ui = np.full((3000, 4000, 3), 236, np.uint8)
    for _ in range(400):
        y, x = rng.integers(0, 2900), rng.integers(0, 3800)
        ui[y:y + rng.integers(10, 100), x:x + rng.integers(20, 200)] = rng.integers(0, 256, 3)
    text = rng.random((3000, 4000)) < 0.03
    ui[text] = 20
    out.append(("screenshot-like", ui))
    return out


def timed(fn, repeat: int) -> tuple[float, bytes]:
    best, data = float("inf"), b""
    for _ in range(repeat):
        t0 = time.perf_counter()
        data = fn()
        best = min(best, time.perf_counter() - t0)
    return best, data


def pillow_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=3, help="how many cached photos (largest first)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, _deep._encode_workers()],
                    help="thread counts to run our writer with")
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    args = ap.parse_args()
    print(f"{'picture':18} {'Mpx':>5} {'writer':12} {'time s':>7} {'MB':>7} {'speed-up':>8} {'size':>7}")
    for name, rgb in pictures(args.photos):
        mpx = rgb.shape[0] * rgb.shape[1] / 1e6
        t_base, base = timed(lambda: pillow_png(rgb), args.repeat)
        print(f"{name:18} {mpx:5.1f} {'Pillow':12} {t_base:7.2f} {len(base) / 1e6:7.2f} {'1.00x':>8} {'100.0%':>7}")
        for w in dict.fromkeys(args.workers):
            t, data = timed(lambda: _deep.encode_png(rgb, None, {}, workers=w), args.repeat)
            with Image.open(io.BytesIO(data)) as im:
                assert np.array_equal(np.asarray(im), rgb), "decoded pixels differ"
            print(f"{'':18} {'':5} {f'ours, {w} thr':12} {t:7.2f} {len(data) / 1e6:7.2f} "
                  f"{t_base / t:7.2f}x {100 * len(data) / len(base):6.1f}%")


if __name__ == "__main__":
    main()
