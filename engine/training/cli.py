"""`cstudio train CONFIG`: argument parsing for the training loop (wired into the main CLI by `add_cli`).

Multi-process: ``torchrun --nproc_per_node 2 -m engine.cli train CONFIG`` (or the
`cstudio` entry point under torchrun); rank 0 writes the run folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the `train` sub-command."""
    p = subparsers.add_parser("train", help="train a consistency model from a JSON config (configs/*.json)",
                              description="Train or continue training; outputs go to runs/<name>/ (checkpoints, "
                                          "log.csv, loss.png, samples/, exports/, model.safetensors).")
    p.add_argument("config", help="training config (JSON), e.g. configs/studio32-edm-then-ict.json")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    p.add_argument("--init", metavar="FILE", help="start from a model file's weights (e.g. the shipped default); "
                   "its step count is kept if it was exported by this config. A narrower network (fewer "
                   "channels per level) is grown into the config's, keeping what it computes (Net2WiderNet)")
    p.add_argument("--init-step", type=int, metavar="N", help="with --init: the step to start counting from")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/<config name>)")
    p.add_argument("--steps", type=int, metavar="N", help="stop after N steps (at least 1) in this invocation "
                   "(schedules still span the config's total_steps; default: run to total_steps)")
    p.add_argument("--minutes", type=float, metavar="M", help="stop (with a checkpoint) after M minutes "
                   "(a positive number; default: no time limit). Ctrl-C also stops with a checkpoint, exit 130")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads per process (default: config, "
                   "$CSTUDIO_THREADS, or physical cores / processes)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from .config import TrainConfig
    from .data import checkout_root, missing_photo_set
    from .trainer import train

    cfg = None
    try:
        cfg = TrainConfig.load(args.config)
        config_dir = Path(args.config).absolute().parent
        problem = missing_photo_set(cfg.data.path, how=f"set data.path in {args.config} (absolute, or relative to "
                                    "the folder cstudio runs in)",
                                    near=(config_dir, config_dir.parent, checkout_root()))
        if problem:
            raise FileNotFoundError(problem)
        trainer = train(cfg, out=args.out, resume=args.resume, init=args.init, init_step=args.init_step,
                        steps=args.steps, minutes=args.minutes, threads=args.threads, device=args.device)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"cstudio train: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # A full disk or a read-only run folder: the checkpoints written so far stay usable (each
        # is written atomically), so say so instead of printing a traceback; when there are none
        # (an unreadable config or data folder, a first write that failed) there is nothing to resume.
        from .state import latest_checkpoint

        run_dir = Path(args.out) if args.out else (Path("runs") / (cfg.name or "run") if cfg is not None else None)
        try:
            resumable = cfg is not None and run_dir is not None and latest_checkpoint(run_dir / "checkpoints") is not None
        except OSError:
            resumable = False
        hint = " (the checkpoints already written are whole: continue with --resume)" if resumable else ""
        print(f"cstudio train: error: {e}{hint}", file=sys.stderr)
        return 1
    if trainer.stopped_by is not None:
        # Ctrl-C (or SIGTERM) stopped the run cleanly, with a checkpoint: still an interrupted command,
        # so a script or scheduler sees 130 (143), not "done".
        print(f"cstudio train: interrupted at step {trainer.step}; the checkpoint is saved (continue with --resume)",
              file=sys.stderr)
        return 128 + trainer.stopped_by
    return 0
