"""Thin strokes on whole held-out photos: membrane vs the model's fill vs OpenCV Telea, by stroke width.

For each held-out photo (at its own size) and each stroke width, a fixed random brush mask (a few
polylines, seeded by photo index and width) is filled by:

  membrane   `engine.inpaint.smooth_fill` alone (the fill's first guess, no network)
  membrane+1 the same through the mask grown by 1 px (what the default's grow alone costs)
  default    `Model.inpaint` with the default options (grow 1 px, feather 0)
  exact      `Model.inpaint` with grow 0, feather 0 (the mask exactly)
  telea      OpenCV's Telea (radius 3), a dev-only baseline (skipped without cv2)

and scored inside the painted hole: PSNR (mean over photos) and two high-frequency ratios
against the truth (ratios of sums over photos): "HF bbox" as `engine.eval` measures it (luma power
above 0.25 cycles/px on the hole's bounding box, which for a thin stroke is mostly known pixels)
and "HF hole" (the same high-pass of the whole photo, its power summed over the hole's pixels
only), which sees what the fill itself adds. A box row (a square of 1/8 of the short side in the
middle) checks that wide holes are not hurt. Figures are printed per method and as differences to
the same run's membrane, so runs on different machines compare by their ratios.

    python bench/thin_strokes.py                         # all held-out photos, widths 3 6 12 24 + box
    python bench/thin_strokes.py --photos 12 --widths 3,12 --methods membrane,exact
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def stroke_mask(h: int, w: int, width: int, seed: int, strokes: int = 2) -> np.ndarray:
    """`strokes` random 4-point polylines `width` px wide across an h x w photo (True = hole)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    im = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(im)
    for _ in range(strokes):
        pts = [(float(rng.uniform(0.1 * w, 0.9 * w)), float(rng.uniform(0.1 * h, 0.9 * h))) for _ in range(4)]
        draw.line(pts, fill=255, width=width, joint="curve")
    return np.asarray(im) > 0


def box_mask(h: int, w: int) -> np.ndarray:
    """A centred square of 1/8 of the short side."""
    s = max(4, min(h, w) // 8)
    m = np.zeros((h, w), bool)
    t, l = (h - s) // 2, (w - s) // 2
    m[t:t + s, l:l + s] = True
    return m


def hole_hf(image: np.ndarray, hole: np.ndarray) -> float:
    """Luma power above 0.25 cycles/px (an FFT high-pass of the whole photo), summed over the hole's pixels."""
    y = np.asarray(image, np.float64) @ np.array([0.299, 0.587, 0.114])
    f = np.fft.fft2(y - y.mean())
    r = np.hypot(*np.meshgrid(np.fft.fftfreq(y.shape[0]), np.fft.fftfreq(y.shape[1]), indexing="ij"))
    hp = np.real(np.fft.ifft2(f * (r > 0.25)))
    return float((hp[hole] ** 2).sum())


def psnr_in(pred: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    err = ((pred[hole].astype(np.float64) - truth[hole].astype(np.float64)) ** 2).mean()
    return float(10 * np.log10(255.0 ** 2 / max(err, 1e-10)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "default.safetensors"))
    ap.add_argument("--data", default=str(ROOT / "data-cache" / "photos"))
    ap.add_argument("--photos", type=int, default=0, help="first N held-out photos (0: all)")
    ap.add_argument("--widths", default="3,6,12,24")
    ap.add_argument("--box", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--methods", default="membrane,membrane+1,default,exact,telea")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from engine.eval.baselines import opencv_inpainters
    from engine.eval.metrics import hf_energy
    from engine.inpaint import InpaintOptions, dilate, smooth_fill
    from engine.pipeline import Model
    from engine.tensors import to_tensor, to_uint8
    from engine.training.data import load_photos

    photos = [p.pixels for p in load_photos(args.data, "heldout")]
    if args.photos:
        photos = photos[:args.photos]
    model = Model.load(args.model)
    telea = opencv_inpainters().get("Telea")
    methods = [m for m in args.methods.split(",") if m != "telea" or telea is not None]

    def run(method: str, img: np.ndarray, hole: np.ndarray, seed: int) -> np.ndarray:
        if method == "membrane":
            return to_uint8(smooth_fill(to_tensor(img), torch.from_numpy(~hole)[None, None]))[0]
        if method == "membrane+1":
            return to_uint8(smooth_fill(to_tensor(img), torch.from_numpy(~dilate(hole, 1))[None, None]))[0]
        if method == "default":
            return model.inpaint(img, hole, seed=seed)
        if method == "exact":
            return model.inpaint(img, hole, seed=seed, options=InpaintOptions(grow=0, feather=0))
        if method == "telea":
            return telea(img, hole)
        raise ValueError(method)

    cases = [(f"stroke {w} px", int(w)) for w in args.widths.split(",") if w] + ([("box 1/8", 0)] if args.box else [])
    print(f"{len(photos)} held-out photos at their own size; model {Path(args.model).name}; seed {args.seed}")
    print(f"{'mask':14s} {'method':10s} {'PSNR dB':>8s} {'vs memb':>8s} {'HF bbox':>8s} {'HF hole':>8s} {'s/photo':>8s}")
    for name, width in cases:
        masks = [stroke_mask(*p.shape[:2], width, seed=args.seed * 1000 + 7 * i + width) if width else box_mask(*p.shape[:2])
                 for i, p in enumerate(photos)]
        base = None
        for method in methods:
            t0 = time.perf_counter()
            ps, hb, hbt, hh, hht = [], 0.0, 0.0, 0.0, 0.0
            for i, (img, hole) in enumerate(zip(photos, masks)):
                out = run(method, img, hole, args.seed + i)
                ps.append(psnr_in(out, img, hole))
                hb += hf_energy(out, hole)
                hbt += hf_energy(img, hole)
                hh += hole_hf(out, hole)
                hht += hole_hf(img, hole)
            dt = (time.perf_counter() - t0) / len(photos)
            p = float(np.mean(ps))
            base = p if method == "membrane" else base
            rel = "" if base is None else f"{p - base:+8.2f}"
            print(f"{name:14s} {method:10s} {p:8.2f} {rel:>8s} {100 * hb / hbt:7.0f}% {100 * hh / hht:7.0f}% {dt:8.2f}", flush=True)


if __name__ == "__main__":
    main()
