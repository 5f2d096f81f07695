"""Training-speed benchmark: steps/s of the real training step for precisions, layouts and thread counts.

    python -m engine.training.bench --preset studio32 --batch 32 --threads 1 2 --recipe ict
    python -m engine.training.bench --device cuda --preset studio64 --batch 256 --variants bf16+channels_last fp16+channels_last

Uses a synthetic photo so it runs without the photo set; numbers are only comparable on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..device import synchronize
from .config import TrainConfig
from .data import CropSampler, Photo
from .trainer import Trainer

VARIANTS = {"bf16+channels_last": ("bf16", True), "fp16+channels_last": ("fp16", True), "fp32": ("fp32", False),
            "fp32+channels_last": ("fp32", True)}


def measure(preset: str, recipe: str, batch: int, threads: int, precision: str, channels_last: bool,
            steps: int = 5, warmup: int = 2, device: str = "cpu") -> float:
    """Seconds per optimiser step (mean over `steps` after `warmup`) on one fixed batch."""
    cfg = TrainConfig.from_dict({"name": "bench", "preset": preset, "recipe": recipe, "edm_steps": 1, "total_steps": 10**6,
                                 "batch_size": batch, "precision": precision, "channels_last": channels_last, "dropout": 0.1})
    photo = Photo(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8), "synthetic", "noise")
    trainer = Trainer(cfg, "runs/bench", device=device, threads=threads,
                      sampler=CropSampler([photo], cfg.unet_config().image_size, cfg.data), log=lambda _m: None)
    trainer.enter_phase(0, switching=False)
    x = trainer.sampler.batch(batch)
    for _ in range(warmup):
        trainer.train_step(x)
    synchronize(trainer.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(x)
    synchronize(trainer.device)
    return (time.perf_counter() - t0) / steps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="studio32")
    p.add_argument("--recipe", default="ict", choices=("ict", "edm"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--variants", nargs="+", default=["bf16+channels_last", "fp32"], choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    args = p.parse_args(argv)
    print(f"| {args.preset} {args.recipe}, batch {args.batch} | threads | s/step | steps/s | img/s |\n|---|---|---|---|---|")
    for threads in args.threads:
        for name in args.variants:
            precision, cl = VARIANTS[name]
            dt = measure(args.preset, args.recipe, args.batch, threads, precision, cl, args.steps, device=args.device)
            print(f"| {name} | {threads} | {dt:.2f} | {1 / dt:.3f} | {args.batch / dt:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
