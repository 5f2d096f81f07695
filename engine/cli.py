"""Headless commands of `cstudio`: info, convert, generate, inpaint, colorize, upscale (+ data, train, eval)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_model, save_model
from .batch import collect_inputs, run_batch, upscale_op
from .imageio import ImageError, Picture, load_picture, read_mask, save_picture, write_image
from .fallback import run_with_fallback
from .inpaint import InpaintOptions
from .paths import default_model_path
from .schedules import even_ts


class UsageError(Exception):
    """A bad command-line argument, reported without a traceback."""


class ProgressBar:
    """A one-line text progress bar on stderr (silent when stderr is not a terminal and quiet is set)."""

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label, self.quiet, self.t0 = label, quiet, time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        width = 30
        fill = int(width * done / max(total, 1))
        secs = time.perf_counter() - self.t0
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {secs:5.1f}s{end}")
        sys.stderr.flush()


def _parse_ts(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        ts = tuple(int(t) for t in text.replace(" ", "").split(","))
    except ValueError:
        raise UsageError(f"--ts must be comma-separated integers like 0,22,39, got {text!r}") from None
    if len(ts) < 2 or ts[0] != 0:
        raise UsageError(f"--ts must start at 0 and list at least two indices, got {text!r}")
    return ts


def _resolve_model_path(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    p = default_model_path()
    if p is None:
        raise UsageError("no model available: this build ships no default model (resources/models/default.safetensors). "
                         "Pass --model FILE (a .safetensors made by `cstudio convert`, an official .pt or a diffusers folder).")
    return p


def _load(args: argparse.Namespace):
    from .pipeline import Model

    path = _resolve_model_path(args.model)
    try:
        return Model.load(path, device=args.device, precision=args.precision)
    except ValueError as e:  # device/precision problems
        raise UsageError(str(e)) from None


def _sampling_kwargs(args: argparse.Namespace, model) -> dict:
    ts = _parse_ts(args.ts)
    if ts is None and args.steps is not None:
        if args.steps < 1:
            raise UsageError("--steps must be at least 1")
        ts = even_ts(args.steps, model.spec.sampler.steps)
    return {"ts": ts}


def _edit_kwargs(args: argparse.Namespace) -> dict:
    """Loop settings of an editing task: --ts (a grid from sigma_max) or --start-sigma/--steps;
    what is not given keeps the engine's per-task default (engine.pipeline.*_DEFAULT)."""
    ts = _parse_ts(args.ts)
    if ts is not None:
        if args.start_sigma is not None:
            raise UsageError("--ts and --start-sigma exclude each other: --ts runs a grid from sigma_max")
        return {"ts": ts, **({"sampler": args.sampler} if args.sampler else {})}
    kw: dict = {"sampler": args.sampler} if args.sampler else {}
    if args.start_sigma is not None:
        if args.start_sigma <= 0:
            raise UsageError("--start-sigma must be positive")
        kw["sigma_start"] = args.start_sigma
    if args.steps is not None:
        if args.steps < 1:
            raise UsageError("--steps must be at least 1")
        kw["num_steps"] = args.steps
    return kw


def _out_path(args: argparse.Namespace, src: Path | None, suffix: str) -> Path:
    if args.out:
        return Path(args.out)
    if src is None:
        return Path(f"{suffix}.png")
    return src.with_name(f"{src.stem}_{suffix}.png")


# ----------------------------------------------------------------------------------------------
# Commands.


EDIT_NAMES = {"upscale": "upscale x4/x8", "upscale_detail": "upscale x4/x8 --detail", "upscale_x2": "upscale x2",
              "stroke_edit": "stroke edit"}


def cmd_info(args: argparse.Namespace) -> int:
    from .pipeline import EDIT_DEFAULTS

    spec, sd, meta = load_model(args.model, image_size=args.image_size)
    n = sum(v.numel() for v in sd.values())
    edits = EDIT_DEFAULTS.get(spec.denoiser.kind, EDIT_DEFAULTS["cm"])
    info = {
        "file": str(args.model), "name": spec.name, "kind": spec.denoiser.kind, "resolution": spec.unet.image_size,
        "parameters": n, "tensors": len(sd), "dtype": str(next(iter(sd.values())).dtype).replace("torch.", ""),
        "class_conditional": spec.unet.num_classes is not None, "sampler": {"steps": spec.sampler.steps, "ts": list(spec.sampler.ts)},
        # Stroke editing starts from its strength's sigma, so only its steps and sampler are defaults.
        "editing": {task: {"start_sigma": None if task == "stroke_edit" else loop.sigma, "steps": loop.steps,
                           "sampler": loop.sampler, "blend": loop.blend,
                           **({} if loop.base is None else {"base": {"start_sigma": loop.base.sigma, "steps": loop.base.steps,
                                                                     "sampler": loop.base.sampler, "runs": loop.base.runs},
                                                            "band_cycles_per_px": list(loop.band)})}
                    for task, loop in edits.items()},
        "unet": spec.unet.to_dict(), "metadata": {k: v for k, v in meta.items() if k != "spec"},
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{info['file']}: {spec.name or '(unnamed)'}, {spec.denoiser.kind.upper()} model, "
              f"{spec.unet.image_size}x{spec.unet.image_size}, {n:,} parameters in {len(sd)} tensors ({info['dtype']})")
        print(f"  default sampling: ts={','.join(map(str, spec.sampler.ts))} on a {spec.sampler.steps}-point grid"
              f"{', class-conditional' if info['class_conditional'] else ''}")
        print("  editing loops: " + "; ".join(
            f"{EDIT_NAMES.get(task, task)} {loop.sampler}, {loop.steps} steps from "
            + ("the strength's sigma" if task == "stroke_edit" else f"sigma {loop.sigma:g}")
            + (f", structure of {loop.blend} samples" if loop.blend > 1 else "")
            + ("" if loop.base is None else
               f", structure from {loop.base.sampler} {loop.base.steps} steps from sigma {loop.base.sigma:g}"
               + (f" (the mean of {loop.base.runs} runs)" if loop.base.runs > 1 else ""))
            for task, loop in edits.items()))
        for k, v in info["metadata"].items():
            print(f"  {k}: {v}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    out = Path(args.out_file)
    if out.suffix.lower() != ".safetensors":
        raise UsageError(f"output must end in .safetensors, got {out.name}")
    if out.exists() and not args.overwrite:
        raise UsageError(f"{out}: already exists (pass --overwrite to replace it)")
    spec, sd, meta = load_model(args.in_file, image_size=args.image_size)
    if args.name:
        from dataclasses import replace

        spec = replace(spec, name=args.name)
    dtype = torch.float16 if args.fp16 else None
    save_model(out, spec, sd, dtype=dtype, metadata={"converted_from": Path(args.in_file).name, "source": meta.get("source", "native")})
    print(f"wrote {out} ({spec.name}, {spec.denoiser.kind}, {spec.unet.image_size}px, {out.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    model = _load(args)
    imgs = run_with_fallback(model, "generate", dict(n=args.n, seed=args.seed, class_label=args.class_label,
                             progress=ProgressBar("generate", args.quiet), **_sampling_kwargs(args, model)), log=_warn)
    out = _out_path(args, None, "generated")
    if args.n == 1:
        write_image(out, imgs[0], overwrite=args.overwrite)
        print(out)
    else:
        for i, im in enumerate(imgs):
            p = out.with_name(f"{out.stem}_{i:03d}{out.suffix}")
            write_image(p, im, overwrite=args.overwrite)
            print(p)
    return 0


def _warn(message: str) -> None:
    print(f"cstudio: {message}", file=sys.stderr)


def _save(args: argparse.Namespace, out: Path, pic: Picture) -> None:
    save_picture(out, pic, overwrite=args.overwrite)
    print(out)


def cmd_inpaint(args: argparse.Namespace) -> int:
    if args.blend is not None and args.blend < 1:
        raise UsageError("--blend must be at least 1")
    pic = load_picture(args.image)
    for note in pic.notes:
        print(f"note: {args.image}: {note}", file=sys.stderr)
    mask = read_mask(args.mask, pic.size)
    model = _load(args)
    opts = InpaintOptions(context=args.context, min_context=args.min_context, grow=args.grow, feather=args.feather,
                          colour_match=not args.no_colour_match)
    blend = {} if args.blend is None else {"blend": args.blend}
    rgb = run_with_fallback(model, "inpaint", dict(image=pic.rgb, mask=mask, seed=args.seed, options=opts,
                            progress=ProgressBar("inpaint", args.quiet), **_edit_kwargs(args), **blend),
                            log=_warn)
    _save(args, _out_path(args, Path(args.image), "inpaint"), pic.with_pixels(rgb, pic.alpha))
    return 0


def _batch(args: argparse.Namespace, op: str, run_one: Callable[[Picture], Picture]) -> int:
    """One input file -> --out file; several files or folders -> --out folder, per-file errors reported."""
    single = len(args.inputs) == 1 and not Path(args.inputs[0]).is_dir()
    if single:
        src = Path(args.inputs[0])
        pic = load_picture(src)
        for note in pic.notes:
            print(f"note: {src}: {note}", file=sys.stderr)
        _save(args, _out_path(args, src, op), run_one(pic))
        return 0
    if not args.out:
        raise UsageError("several inputs or a folder need --out FOLDER")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file; batches need a folder")
    items = collect_inputs(args.inputs, recursive=args.recursive)
    if not items:
        raise UsageError("no image files found in the given inputs")
    out_dir.mkdir(parents=True, exist_ok=True)

    def process(src: Path, dst: Path) -> None:
        save_picture(dst, run_one(load_picture(src)), overwrite=args.overwrite)

    report = run_batch(items, process, out_dir, op, skip_existing=not args.overwrite, log=print)
    print(report.summary())
    return 1 if report.failed else 0


def cmd_colorize(args: argparse.Namespace) -> int:
    kw = _edit_kwargs(args)
    model = _load(args)

    def run_one(pic: Picture) -> Picture:
        rgb = run_with_fallback(model, "colorize", dict(image=pic.rgb, seed=args.seed, render_size=args.render_size,
                                progress=ProgressBar("colorize", args.quiet), **kw), log=_warn)
        return pic.with_pixels(rgb, pic.alpha)

    return _batch(args, "colorize", run_one)


def cmd_upscale(args: argparse.Namespace) -> int:
    if args.factor not in (2, 4, 8):
        raise UsageError(f"--factor must be 2, 4 or 8, got {args.factor}")
    model = _load(args)
    if model.resolution % args.factor:
        raise UsageError(f"this model ({model.resolution}px) cannot upscale by {args.factor}")
    if args.detail and args.factor == 2:
        _warn("--detail applies to x4 and x8; x2's default loop already carries the detail")
    kw = _edit_kwargs(args)

    def run_one(pic: Picture) -> Picture:
        out = run_with_fallback(model, "upscale", dict(image=pic.rgb, factor=args.factor, seed=args.seed,
                                overlap=args.overlap, alpha=pic.alpha, samples=args.average, detail=args.detail,
                                progress=ProgressBar(f"upscale x{args.factor}", args.quiet), **kw), log=_warn)
        rgb, alpha = out if isinstance(out, tuple) else (out, None)
        return pic.with_pixels(rgb, alpha)

    return _batch(args, upscale_op(args.factor, args.detail), run_one)


# ----------------------------------------------------------------------------------------------
# Parser.


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model file or diffusers folder (default: the embedded default model)")
    p.add_argument("--steps", type=int, help="network evaluations (generate: spread over the model's grid; "
                   "edits: from the start sigma; default per task)")
    p.add_argument("--ts", help="explicit grid indices, e.g. 0,22,39 (overrides --steps)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="fp32 is exact; auto uses bf16/fp16 where the hardware is fast at it")
    p.add_argument("--out", help="output file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file (atomically)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _edit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start-sigma", type=float, default=None,
                   help="start the loop from the task's first guess (bicubic, grey, smooth fill) noised to this "
                   "level: 0.3-2 faithful, 80 most freedom; each task's default: `cstudio info`")
    p.add_argument("--sampler", choices=("consistency", "ddim", "ancestral"), default=None,
                   help="editing loop: consistency (re-noise each step; smooth), ddim (deterministic steps; "
                   "more detail from EDM-trained models) or ancestral (DDIM with fresh noise each step). "
                   "Default: the model's (`cstudio info`)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cstudio", description="Consistency Studio: image editing with consistency models. "
                                     "Without a command, opens the desktop app.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="describe a model file")
    p.add_argument("model")
    p.add_argument("--image-size", type=int, help="resolution, for official files whose size is not standard")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="import an official .pt / diffusers folder into a native .safetensors")
    p.add_argument("in_file")
    p.add_argument("out_file")
    p.add_argument("--fp16", action="store_true", help="store weights in half precision (half the size)")
    p.add_argument("--name", help="model name stored in the file")
    p.add_argument("--image-size", type=int)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("generate", help="sample new images")
    _model_args(p)
    p.add_argument("-n", type=int, default=1, help="number of images")
    p.add_argument("--class-label", type=int, help="ImageNet class for class-conditional models")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("inpaint", help="fill the white part of a mask")
    p.add_argument("image")
    p.add_argument("--mask", required=True, help="mask image: white = fill, same size as the image")
    _model_args(p)
    _edit_args(p)
    d = InpaintOptions()
    p.add_argument("--context", type=float, default=d.context, help="context around each hole, as a fraction of its size")
    p.add_argument("--min-context", type=int, default=d.min_context, help="... but at least this many pixels")
    p.add_argument("--grow", type=int, default=d.grow, help="px the mask is grown by")
    p.add_argument("--feather", type=int, default=d.feather, help="px of soft blend around the fill")
    p.add_argument("--no-colour-match", action="store_true", help="do not blend the fill's edge into its surroundings (seamless cloning)")
    p.add_argument("--blend", type=int, default=None,
                   help="samples whose mean gives the fill's structure under one sample's texture, instead "
                   "of the default loop's cheap structure pass (1: a single sample, no structure pass; "
                   "default: the model's, `cstudio info`)")
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("colorize", help="colour grey photos (keeps their brightness)")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders (keeping their structure)")
    p.add_argument("--render-size", type=int,
                   help="short side, in px, of the view the model colours, aspect kept (default: the model's resolution)")
    _model_args(p)
    _edit_args(p)
    p.set_defaults(func=cmd_colorize)

    p = sub.add_parser("upscale", help="super-resolve by 2, 4 or 8")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--factor", type=int, default=4)
    p.add_argument("--overlap", type=float, default=0.25, help="tile overlap as a fraction of the tile")
    p.add_argument("--average", type=int, default=1, metavar="N",
                   help="average N samples per tile: truer to the input on average, less invented detail")
    p.add_argument("--detail", action="store_true",
                   help="x4 / x8: invent fine texture with a slower loop (`cstudio info` lists it; "
                        "the model card has what it costs in time and fidelity)")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders (keeping their structure)")
    _model_args(p)
    _edit_args(p)
    p.set_defaults(func=cmd_upscale)

    # Commands from the data, training and evaluation packages.
    for mod in ("engine.data.build", "engine.training.cli", "engine.eval.cli"):
        try:
            module = __import__(mod, fromlist=["add_cli"])
        except ImportError:
            continue
        module.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, CheckpointError, ImageError) as e:
        print(f"cstudio {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cstudio {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`cstudio info MODEL | head`): stop quietly, as Unix tools do, and
        # point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
