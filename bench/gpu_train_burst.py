"""A training burst sized to a lent GPU's few minutes: measure, size the schedule, train, bring back.

    python bench/gpu_train_burst.py --minutes 7 --out "$OUT"           # on the lent machine
    python bench/gpu_train_burst.py --device cpu --config configs/tiny-test.json --minutes 0.2  # dry run

The photo set must be there (`cstudio data build`, or carried to the machine: data-cache/photos,
about 44 MB). The lr schedule (warm-up, constant, linear cool-down over the last `--cooldown` share)
needs the run's length in steps, so the network's step time and the crop workers' rate are measured
first and the steps that fit in `--minutes` become the config's `total_steps`; the time limit still
stops the run if the estimate was optimistic. Only the exported model (EMA weights, fp16), the log,
the loss curve and the last sample grid are written to `--out` (checkpoints stay in `--run`), and
then, with `--eval N`, the held-out evaluation of that model on the same device (`cstudio eval`'s
table and contact sheets in `--out`/eval): written last, so a time limit that cuts it short
still leaves the model.
Imports only engine.training (torch, numpy, pillow, safetensors): no Qt, no platformdirs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.training.bench import measure  # noqa: E402
from engine.training.config import TrainConfig  # noqa: E402
from engine.training.data import parallel_batches  # noqa: E402
from engine.training.trainer import train  # noqa: E402


def crop_rate(cfg: TrainConfig, seconds: float = 6.0) -> float:
    """Crops per second the config's workers deliver (after their start-up)."""
    stream = parallel_batches(cfg.data.path, cfg.unet_config().image_size, cfg.data, cfg.batch_size,
                              workers=max(1, cfg.data.workers), seed=12345)
    next(stream)  # workers decode the photos first
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += next(stream).shape[0]
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "configs" / "studio32w-gpu.json"))
    p.add_argument("--init", default=str(REPO / "resources" / "models" / "default.safetensors"),
                   help="start from this model file (a narrower one is grown into the config's network); "
                        "'' = from scratch")
    p.add_argument("--minutes", type=float, default=7.0, help="training time, after the measurements")
    p.add_argument("--cooldown", type=float, default=0.3, help="share of the steps spent decaying the lr to 0")
    p.add_argument("--device", default="cuda", help="cuda (default); cpu for a dry run")
    p.add_argument("--rate-seconds", type=float, default=6.0, help="how long the crop workers are timed")
    p.add_argument("--eval", type=int, default=0, metavar="N", help="then evaluate on N held-out crops (0: skip)")
    p.add_argument("--run", default=time.strftime("runs/gpu-burst-%Y%m%d-%H%M%S"),
                   help="run folder (checkpoints; not brought back); a new one per call by default, so a second "
                        "burst on a still-warm machine does not meet the first one's checkpoints")
    p.add_argument("--out", default="runs/gpu-burst-out", help="what to bring back")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig.load(args.config)

    import torch
    print("torch", torch.__version__, "| cuda:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
          flush=True)
    # The config's own precision ("auto" included): the Trainer resolves it as the run will.
    step_s = measure(cfg.preset, "edm", cfg.batch_size, threads=1, precision=cfg.precision,
                     channels_last=cfg.channels_last, steps=10, warmup=3, device=args.device)
    rate = crop_rate(cfg, args.rate_seconds) if cfg.data.workers else float("inf")
    steps_per_s = min(1 / step_s, rate / cfg.batch_size)
    total = max(10, int(0.92 * steps_per_s * args.minutes * 60))
    print(f"network {step_s * 1000:.1f} ms/step at batch {cfg.batch_size}; crops {rate:.0f}/s; "
          f"planning {total} steps in {args.minutes} min", flush=True)
    cfg = dataclasses.replace(cfg, total_steps=total, lr_cooldown=int(args.cooldown * total))
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    t0 = time.time()
    # Counting from 0 lets the warm-up run: the fresh optimiser meets a larger batch and lr.
    trainer = train(cfg, out=args.run, init=args.init or None, init_step=0 if args.init else None,
                    minutes=args.minutes + 0.5, device=args.device)
    wall = time.time() - t0
    run = Path(args.run)
    for name in ("model.safetensors", "log.csv", "loss.png"):
        if (run / name).is_file():
            shutil.copy2(run / name, out / name)
    grids = sorted((run / "samples").glob("*.png"))
    if grids:
        shutil.copy2(grids[-1], out / grids[-1].name)
    summary = {"steps": trainer.step, "planned": total, "wall_s": round(wall, 1),
               "ms_per_step": round(1000 * step_s, 2), "crops_per_s": None if rate == float("inf") else round(rate),
               "config": cfg.name, "init": args.init}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary), flush=True)
    if args.eval and (out / "model.safetensors").is_file():
        from engine.eval import cli as eval_cli

        # Through `cstudio eval`'s own parser, so its defaults (seed, batch, precision, threads) stay the
        # CLI's. The batch especially: evaluate seeds each batch's noise by its first crop, so only the
        # default batch gives scores like-for-like with the model card's.
        parser = argparse.ArgumentParser()
        eval_cli.add_cli(parser.add_subparsers())
        eval_cli.run_eval(parser.parse_args(["eval", str(out / "model.safetensors"), "--data", str(cfg.data.path),
                                             "--n", str(args.eval), "--out", str(out / "eval"),
                                             "--device", args.device]))
    return 0 if trainer.step >= total else 1


if __name__ == "__main__":
    sys.exit(main())
