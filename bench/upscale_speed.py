"""Upscale speed: the current defaults against the previous ones, measured in the same run.

A x4 upscale (default: a 128x96 crop of resources/samples/italy.png, the embedded default model)
runs under each configuration in its own subprocess, the configurations taking turns `--repeat`
times, so background load hits them alike; prints the median seconds, tiles per second, peak RSS,
each one's speed as a ratio of the baseline's, and how far its output is from the baseline's.

Configurations:
  baseline       glibc's malloc left alone (the code before `engine.device.keep_freed_memory`)
  current        the defaults now: glibc keeps freed memory for the next tensor
  batch32        current with 32 tiles per batch instead of 16, a change tried and not kept
                 (about 1 % faster on the 128x96 crop, 60 MB more peak memory)

    python bench/upscale_speed.py                       # 128x96 crop, 3 rounds
    python bench/upscale_speed.py --size 256x192 --repeat 5
    python bench/upscale_speed.py --configs baseline current --factor 2

Timings on a shared machine are noisy: compare ratios within one run, never against a figure
from another.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "resources" / "models" / "default.safetensors"
SAMPLE = ROOT / "resources" / "samples" / "italy.png"

# name -> (tiles per batch, None = the default; tune glibc's allocator)
CONFIGS: dict[str, tuple[int | None, bool]] = {
    "baseline": (None, False),
    "current": (None, True),
    "batch32": (32, True),
}

# Runs in the subprocess: argv = size, factor, batch ("" = default), tune ("0"/"1"), output path.
CHILD = r"""
import json, resource, sys, time
import numpy as np
from PIL import Image
sys.path.insert(0, sys.argv[6])
import engine.pipeline as pipeline
w, h = (int(v) for v in sys.argv[1].split("x"))
factor, batch, tune, out_path = int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5]
if not tune:
    pipeline.keep_freed_memory = lambda: False  # the allocator as glibc sets it up
model = pipeline.Model.load(sys.argv[7])
img = np.asarray(Image.open(sys.argv[8]).convert("RGB"))
top, left = max(0, (img.shape[0] - h) // 2), max(0, (img.shape[1] - w) // 2)
crop = np.ascontiguousarray(img[top:top + h, left:left + w])
kw = {} if batch == "" else {"batch": int(batch)}
model.upscale(crop[:16, :16], factor, **kw)  # warm-up: oneDNN picks its kernels on the first call
t0 = time.perf_counter()
out = model.upscale(crop, factor, **kw)
seconds = time.perf_counter() - t0
np.save(out_path, out)
R = model.resolution
plan = pipeline.plan_tiles(h, w, R // factor, max(1, round(R // factor * 0.25)))
print(json.dumps({"seconds": seconds, "tiles": plan.count, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_once(name: str, size: str, factor: int, folder: Path, round_: int) -> dict:
    batch, tune = CONFIGS[name]
    out = folder / f"{name}-{round_}.npy"
    cmd = [sys.executable, "-c", CHILD, size, str(factor), "" if batch is None else str(batch), "1" if tune else "0",
           str(out), str(ROOT), str(MODEL), str(SAMPLE)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(f"{name} failed:\n{res.stderr[-3000:]}")
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    rec["out"] = out
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="128x96", help="crop of the sample photo, WxH (default 128x96)")
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="rounds; each runs every configuration once")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = ap.parse_args()
    names = args.configs if "baseline" in args.configs else ["baseline", *args.configs]

    runs: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for r in range(args.repeat):
            for n in names:  # interleaved: every round runs each configuration once
                runs[n].append(run_once(n, args.size, args.factor, folder, r))
                print(f"round {r + 1}/{args.repeat} {n:10s} {runs[n][-1]['seconds']:7.2f} s", file=sys.stderr, flush=True)
        base_s = statistics.median(x["seconds"] for x in runs["baseline"])
        ref = np.load(runs["baseline"][0]["out"]).astype(np.int32)
        tiles = runs["baseline"][0]["tiles"]
        print(f"x{args.factor} upscale of a {args.size} crop of {SAMPLE.name}, {tiles} tiles, "
              f"median of {args.repeat} alternating runs each")
        print(f"{'config':10s} {'seconds':>8s} {'tiles/s':>8s} {'speed-up':>9s} {'peak MB':>8s} {'max |diff|':>10s} {'pixels differing':>17s}  runs (s)")
        for n in names:
            s = statistics.median(x["seconds"] for x in runs[n])
            diffs = [np.abs(np.load(x["out"]).astype(np.int32) - ref) for x in runs[n]]
            worst = max(int(d.max()) for d in diffs)
            frac = max(float((d > 0).mean()) for d in diffs)
            rss = statistics.median(x["rss_mb"] for x in runs[n])
            times = " ".join(f"{x['seconds']:.2f}" for x in runs[n])
            print(f"{n:10s} {s:8.2f} {tiles / s:8.1f} {base_s / s:8.3f}x {rss:8.0f} {worst:10d} {frac:16.4%}  {times}")


if __name__ == "__main__":
    main()
