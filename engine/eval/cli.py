"""`cstudio eval MODEL --data data-cache/photos`: held-out scores, a Markdown table and contact sheets."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def add_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the `eval` sub-command."""
    p = subparsers.add_parser("eval", help="score a model on held-out photos (super-resolution, colorization, inpainting)",
                              description="Prints a Markdown table and writes eval.md, eval.json and contact sheets "
                                          "(input | baseline | ours | truth) to --out.")
    p.add_argument("model", help="model file (.safetensors, or any format `cstudio` loads)")
    p.add_argument("--data", default="data-cache/photos",
                   help="photo set folder with manifest.tsv (its held-out split is scored); default %(default)s, "
                   "relative to the current folder")
    p.add_argument("--n", type=int, default=64,
                   help="number of held-out crops (default %(default)s). The 'colorization (whole photos)' rows "
                   "do not use them: they colour every held-out photo at full size (minutes on a CPU), "
                   "whatever --n is; --whole-photos limits that")
    p.add_argument("--whole-photos", type=int, default=None, metavar="N",
                   help="colour only the first N held-out photos for the 'colorization (whole photos)' rows; "
                   "0 skips them (default: all, as the model card's scores)")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/eval/<model name>)")
    p.add_argument("--seed", type=int, default=0, help="crop and noise seed (default %(default)s)")
    p.add_argument("--batch", type=int, default=64,
                   help="crops per network call (default 64). The noise is seeded per batch (seed + first crop), "
                        "so scores are comparable only at the same batch: the model card's are at 64")
    p.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps "
                   "(default %(default)s)")
    p.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads (default: $CSTUDIO_THREADS, or the physical cores)")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from ..checkpoint import CheckpointError
    from ..pipeline import Model
    from ..training.data import checkout_root, missing_photo_set
    from .evaluate import evaluate
    from .report import markdown_table, targets, write_report

    out = Path(args.out) if args.out else Path("runs") / "eval" / Path(args.model).stem
    # Argument errors and a missing photo set before the model loads (evaluate() would say both, later).
    if args.whole_photos is not None and args.whole_photos < 0:
        print(f"cstudio eval: error: --whole-photos must be 0 (skip) or more, got {args.whole_photos}", file=sys.stderr)
        return 2
    # A relative --data is read from the current folder; the checkout's own set is only pointed at.
    problem = missing_photo_set(args.data, how="pass --data FOLDER", near=(checkout_root(),))
    if problem:
        print(f"cstudio eval: error: {problem}", file=sys.stderr)
        return 2
    try:
        model = Model.load(args.model, device=args.device, precision=args.precision, threads=args.threads)
        # The output folder before the evaluation: that takes minutes, and a folder it cannot
        # write would otherwise only show when the report is saved.
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
        report = evaluate(model, args.data, n=args.n, seed=args.seed, batch=args.batch,
                          whole_photos=args.whole_photos, log=lambda m: print(m, file=sys.stderr))
        paths = write_report(report, out)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"cstudio eval: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a read-only or full output folder
        print(f"cstudio eval: error: {e}", file=sys.stderr)
        return 1
    print(markdown_table(report))
    print()
    for line in targets(report):
        print(f"- {line}")
    for note in report.notes:
        print(f"Note: {note}")
    print(f"\nwrote {paths['markdown']} and {len(report.sheets)} contact sheets in {out}")
    return 0
