"""Large-photo benchmark: inpaint (box, stroke), colorize and x4 / x2 upscale of a 1024x768 photo, and a huge x2 upscale.

Each task runs in its own subprocess so its peak RSS (ru_maxrss) is its own. Prints seconds, peak
RSS and tiles per second. The model is the embedded default when present (else a random-weights
`studio64`, said so in the output); the huge upscale's memory is dominated by image buffers, so it
may use the `tiny` preset to finish in minutes (--huge-model).

    python bench/large_bench.py                   # 1024x768 tasks + 8000x8000 x2
    python bench/large_bench.py --huge 4000       # a smaller huge run
    python bench/large_bench.py --huge 0 --tasks inpaint,stroke,colorize   # the quick ones only
    python bench/large_bench.py --huge 0 --tasks upscale2   # x2 with the default loop (11 steps for the default model)
    python bench/large_bench.py --huge 0 --tasks inpaint,inpaint-40,stroke,stroke-40   # vs the previous fill loop
    python bench/large_bench.py --huge 0 --size 64x96 --tasks upscale4,upscale4-detail   # what --detail costs

A task name ending in "-40" fills with the previous default loop (40 ancestral steps over the same
structure pass), one ending in "-blend4" with the structure of 4 blended samples (`blend=4`, the
default before that), as baselines measured in the same run; the summary prints each default's
time as a ratio of its baseline's.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def synthetic_photo(h: int, w: int, seed: int = 0, rows: int = 512) -> np.ndarray:
    """Smooth gradients, edges and texture: a stand-in when no held-out photo is available.

    Made in bands of `rows` so that building an 8000 x 8000 input does not itself need GBs of
    float temporaries (that would hide the upscaler's own peak RSS).
    """
    rng = np.random.default_rng(seed)
    out = np.empty((h, w, 3), np.uint8)
    xx = np.arange(w, dtype=np.float32)[None, :]
    for top in range(0, h, rows):
        yy = np.arange(top, min(top + rows, h), dtype=np.float32)[:, None]
        xb, yb = np.broadcast_to(xx, (len(yy), w)), np.broadcast_to(yy, (len(yy), w))
        img = np.stack([xb / w, yb / h, 0.5 + 0.3 * np.sin(xb / 37) * np.cos(yb / 53)], -1)
        img += (((xb // 97 + yb // 71) % 2) * 0.15)[..., None]
        img += rng.normal(0, 0.03, img.shape).astype(np.float32)
        out[top:top + len(yy)] = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return out


def photo(h: int, w: int) -> tuple[np.ndarray, str]:
    from PIL import Image

    manifest = ROOT / "data-cache" / "photos" / "manifest.tsv"
    if manifest.is_file():
        import csv

        rows = [r for r in csv.DictReader(manifest.open(), delimiter="\t") if r["split"] == "heldout"]
        rows.sort(key=lambda r: int(r["width"]) * int(r["height"]), reverse=True)
        if rows:
            im = Image.open(manifest.parent / rows[0]["file"]).convert("RGB")
            return np.asarray(im.resize((w, h), Image.Resampling.LANCZOS)), f"held-out photo {rows[0]['file']}"
    return synthetic_photo(h, w), "synthetic photo"


def child(task: str, size: tuple[int, int], model_name: str, steps: int | None = None) -> None:
    """Run one task and print a JSON line with its figures."""
    from engine import Model, preset
    from engine.paths import default_model_path

    path = default_model_path()
    if model_name == "default" and path is not None:
        model, label = Model.load(path), "default model"
    else:
        name = "studio64" if model_name == "default" else model_name
        model, label = Model.random(preset(name), seed=0), f"random-weights {name}"
    h, w = size
    img, source = photo(h, w) if max(h, w) <= 4096 else (synthetic_photo(h, w), "synthetic photo")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    tiles = 0
    fill_kw = {"blend": 4} if task.endswith("-blend4") else {"num_steps": 40} if task.endswith("-40") else {}
    if task.startswith("inpaint"):
        mask = np.zeros((h, w), bool)
        mask[h // 3:h // 3 + h // 5, w // 4:w // 4 + w // 5] = True
        model.inpaint(img, mask, seed=0, **fill_kw)
    elif task.startswith("stroke"):
        # A 12 px brush stroke across the photo, the typical "remove this wire" mask.
        from PIL import Image, ImageDraw
        canvas = Image.new("L", (w, h), 0)
        ImageDraw.Draw(canvas).line([(w // 8, h // 2), (w // 2, h // 3), (7 * w // 8, 2 * h // 3)], fill=255, width=12)
        model.inpaint(img, np.asarray(canvas) > 127, seed=0, **fill_kw)
    elif task == "colorize":
        grey = np.repeat(img.mean(-1, keepdims=True).astype(np.uint8), 3, -1)
        model.colorize(grey, seed=0)
    else:
        k = 4 if task.startswith("upscale4") else 2
        from engine.upscale import plan_tiles

        t = model.resolution // k
        tiles = plan_tiles(h, w, t, max(1, round(t * 0.25))).count
        model.upscale(img, k, seed=0, batch=64, detail=task.endswith("-detail"), **({"num_steps": steps} if steps else {}))
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if steps:
        label += f", {steps} step(s) per tile"
    print(json.dumps({"task": task, "size": f"{w}x{h}", "seconds": secs, "peak_rss_mb": peak / 1024,
                      "rss_before_mb": rss0 / 1024, "tiles": tiles, "model": label, "source": source}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--huge", type=int, default=8000, help="side of the square huge x2 upscale (0 = skip)")
    ap.add_argument("--huge-model", default="tiny", help="preset for the huge run, or 'default'")
    ap.add_argument("--model", default="default", help="'default' or a preset name for the 1024x768 tasks")
    ap.add_argument("--only-huge", action="store_true", help="skip the 1024x768 tasks")
    ap.add_argument("--tasks", default="inpaint,stroke,colorize,upscale4",
                    help="comma-separated tasks on a photo of --size: inpaint (a box), stroke (a thin stroke), colorize, upscale4, "
                         "upscale2; inpaint-40 / stroke-40 (the previous fill loop), inpaint-blend4 / stroke-blend4 "
                         "(the one before), upscale4-detail")
    ap.add_argument("--size", default="768x1024", help="HxW of those tasks' photo (default 768x1024)")
    ap.add_argument("--huge-steps", type=int, default=1, help="network evaluations per tile in the huge run "
                    "(memory does not depend on it; time scales with it)")
    ap.add_argument("--child", nargs=4, metavar=("TASK", "SIZE", "MODEL", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        task, size, model, steps = args.child
        h, w = map(int, size.split("x"))
        child(task, (h, w), model, int(steps) or None)
        return
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = set(tasks) - {"inpaint", "stroke", "colorize", "upscale4", "upscale2", "inpaint-blend4", "stroke-blend4",
                            "inpaint-40", "stroke-40", "upscale4-detail"}
    if unknown:
        ap.error(f"unknown task(s): {', '.join(sorted(unknown))}")
    runs = [] if args.only_huge else [(t, args.size, args.model, 0) for t in tasks]
    if args.huge:
        runs.append(("upscale2", f"{args.huge}x{args.huge}", args.huge_model, args.huge_steps))
    print(f"{'task':15s} {'size':>11s} {'seconds':>9s} {'peak RSS':>10s} {'tiles/s':>8s}  model / input")
    seconds: dict[str, float] = {}
    for task, size, model, steps in runs:
        res = subprocess.run([sys.executable, __file__, "--child", task, size, model, str(steps)],
                             capture_output=True, text=True, cwd=ROOT)
        if res.returncode != 0:
            print(f"{task:15s} {size:>11s} FAILED: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        tps = f"{r['tiles'] / r['seconds']:.1f}" if r["tiles"] else "-"
        print(f"{r['task']:15s} {r['size']:>11s} {r['seconds']:9.1f} {r['peak_rss_mb']:8.0f} MB {tps:>8s}  {r['model']} / {r['source']}")
        if size == args.size:
            seconds[task] = r["seconds"]
    for task, base in (("inpaint", "inpaint-40"), ("inpaint", "inpaint-blend4"), ("stroke", "stroke-40"),
                       ("stroke", "stroke-blend4"), ("upscale4-detail", "upscale4")):
        if task in seconds and base in seconds:
            print(f"{task}: {seconds[task] / seconds[base]:.2f}x the time of {base} (same run)")


if __name__ == "__main__":
    main()
