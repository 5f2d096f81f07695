"""Headless commands of `cstudio`: info, convert, generate, inpaint, colorize, upscale (+ data, train, eval)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .checkpoint import KINDS, CheckpointError, SettingError, guessed_settings, load_model, save_model
from .classes import IMAGENET_CLASSES, class_names, imagenet_names, parse_class, search
from .batch import collect_inputs, output_suffix, run_batch, upscale_op
from .device import pick_device
from .imageio import (SAVE_FORMATS, ImageError, Picture, check_output_path, format_losses, load_picture, read_mask,
                      save_picture, write_image)
from .fallback import is_out_of_memory, run_with_fallback
from .inpaint import InpaintOptions
from .paths import default_model_path
from .progress import TimeLeft, format_time_left
from .tensors import near_grey


class UsageError(Exception):
    """A bad command-line argument, reported without a traceback."""


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


class ProgressBar:
    """A one-line text progress bar on stderr, redrawn in place (`\\r`) when stderr is a terminal.

    Anywhere else (a log file, a pipe, a CI job) every redraw would pile up as text, so only one
    line is written when the job is done. `quiet`: nothing at all. `live` overrides the terminal test."""

    def __init__(self, label: str, quiet: bool = False, clock: Callable[[], float] = time.perf_counter,
                 live: bool | None = None) -> None:
        self.label, self.quiet, self.clock = label, quiet, clock
        self.live = _stderr_is_terminal() if live is None else live
        self.t0 = clock()
        self.left = TimeLeft(clock)
        self.width = 0  # of the last line written, to blank what a shorter one leaves behind

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if not self.live:
            if done >= total:
                print(f"{self.label}: {done}/{total} in {self.clock() - self.t0:.1f}s", file=sys.stderr, flush=True)
            return
        width = 30
        fill = int(width * done / max(total, 1))
        secs = self.clock() - self.t0
        left = format_time_left(self.left.update(done, total)) if done < total else ""
        line = f"{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {secs:5.1f}s" + (f", {left}" if left else "")
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{line.ljust(self.width)}{end}")
        self.width = len(line)
        sys.stderr.flush()


def _parse_ts(text: str | None, grid: int | None = None) -> tuple[int, ...] | None:
    """--ts as indices: from 0, strictly increasing and, given the model's `grid` size N, below N."""
    if text is None:
        return None
    try:
        ts = tuple(int(t) for t in text.replace(" ", "").split(","))
    except ValueError:
        raise UsageError(f"--ts must be comma-separated integers like 0,22,39, got {text!r}") from None
    if len(ts) < 2 or ts[0] != 0:
        raise UsageError(f"--ts must start at 0 and list at least two indices, got {text!r}")
    if any(b <= a for a, b in zip(ts, ts[1:])):
        raise UsageError(f"--ts must be strictly increasing, got {text!r}")
    if grid is not None and ts[-1] > grid - 1:
        raise UsageError(f"--ts indices must lie in 0..{grid - 1} (this model's grid has {grid} points), got {text!r}")
    return ts


def _resolve_model_path(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    p = default_model_path()
    if p is None:
        raise UsageError("no model available: this build ships no default model (resources/models/default.safetensors). "
                         "Pass --model FILE (a .safetensors made by `cstudio convert`, an official .pt or a diffusers folder).")
    return p


def _settings(args: argparse.Namespace) -> dict:
    """--image-size, --head-channels and --kind as `load_model` takes them."""
    return {"image_size": args.image_size, "num_head_channels": args.head_channels, "kind": args.kind}


# The options that state each setting a "guessed" note may list.
SETTING_OPTIONS = {"image_size": "--image-size N", "num_head_channels": "--head-channels N",
                   "kind": "--kind cm|ct|edm"}


def _guess_notes(meta: dict[str, str], *, convert: bool = False) -> list[str]:
    """What a model's metadata says was guessed or taken from the app, with how to state it."""
    notes = []
    if "image_size_chosen" in meta:
        notes.append(f"runs at {meta['image_size_chosen']}; --image-size N states another")
    if meta.get("guessed"):
        options = " and ".join(SETTING_OPTIONS[k] for k in guessed_settings(meta))
        fix = (f"if wrong, state them with {options}" + ("" if convert else " (or `cstudio convert` the file "
               "once with them, to a file that keeps them)")) if options else ""
        notes.append(f"guessed: {meta['guessed']}" + (f"; {fix}" if fix else ""))
    return notes


def _load(args: argparse.Namespace):
    from .pipeline import Model

    path = _resolve_model_path(args.model)
    try:
        pick_device(args.device)  # a wrong --device is said before the model file is read
        model = Model.load(path, device=args.device, precision=args.precision, **_settings(args))
    except ValueError as e:  # device/precision problems
        raise UsageError(str(e)) from None
    # A setting the file does not store changes every output: never used without a word.
    _notes(path, _guess_notes(model.metadata))
    return model


def _sampling_kwargs(args: argparse.Namespace, model) -> dict:
    """generate's loop: a consistency model's --ts, or --steps spread over its grid; an EDM model's
    --steps Heun/Euler steps (it has no grid indices)."""
    if args.steps is not None and args.steps < 1:
        raise UsageError("--steps must be at least 1")
    if model.kind == "edm":
        if args.ts is not None:
            raise UsageError("--ts picks indices on a consistency model's sampling grid; this is an EDM model, "
                             f"which takes --steps N {model.spec.sampler.edm_sampler} steps instead "
                             f"(default {model.spec.sampler.edm_steps})")
        return {} if args.steps is None else {"steps": args.steps}
    ts = _parse_ts(args.ts, model.spec.sampler.steps)
    return {"ts": ts} if ts is not None else {} if args.steps is None else {"steps": args.steps}


def _edit_kwargs(args: argparse.Namespace, model=None) -> dict:
    """Loop settings of an editing task: --ts (a grid from sigma_max) or --start-sigma/--steps;
    what is not given keeps the engine's per-task default (engine.pipeline.*_DEFAULT).
    Without `model` only what needs no model is checked (before it loads)."""
    ts = _parse_ts(args.ts, None if model is None else model.spec.sampler.steps)
    if ts is not None:
        if args.start_sigma is not None:
            raise UsageError("--ts and --start-sigma exclude each other: --ts runs a grid from sigma_max")
        return {"ts": ts, **({"sampler": args.sampler} if args.sampler else {})}
    kw: dict = {"sampler": args.sampler} if args.sampler else {}
    if args.start_sigma is not None:
        if not args.start_sigma > 0:  # also nan, which no comparison lets through
            raise UsageError(f"--start-sigma must be positive, got {args.start_sigma:g}")
        if model is not None:
            # Model.sigmas_from clamps a start outside the model's noise levels (the low end to twice
            # sigma_min, where one step is left): a value beyond them would silently run another loop.
            d = model.spec.denoiser
            lo, hi = 2 * d.sigma_min, d.sigma_max
            if not lo <= args.start_sigma <= hi:
                raise UsageError(f"--start-sigma must lie in {lo:g}..{hi:g} for this model (its noise levels, "
                                 f"`cstudio info`), got {args.start_sigma:g}")
        kw["sigma_start"] = args.start_sigma
    if args.steps is not None:
        if args.steps < 1:
            raise UsageError("--steps must be at least 1")
        kw["num_steps"] = args.steps
    return kw


def _use_class(args: argparse.Namespace, model) -> None:
    """--class-label checked against the loaded model and made the class it conditions on for this run.

    Every task's denoiser calls read `model.class_label` (engine.pipeline.Model.denoise), so setting it
    here reaches inpaint, colorize and upscale without a per-task argument; a command runs one job on
    its model, so nothing else sees the change. Called right after the model loads, before any compute.
    Without the option a class-conditional model keeps its default class (0)."""
    if args.class_label is None:
        return
    try:
        # A number or an ImageNet name ("tabby cat"); made a number for the tasks that read it.
        args.class_label = parse_class(str(args.class_label), model.spec.unet.num_classes)
    except ValueError as e:
        raise UsageError(f"--class-label: {e}") from None
    model.class_label = args.class_label


# --format: the outputs' format where the command names them (batches, or no --out file).
OUTPUT_FORMATS = ("png", "jpg", "webp", "tif", "bmp", "same")


def _batch_suffix(args: argparse.Namespace) -> str | None:
    """The extension --format gives default output names; None: each input's own (`output_suffix`)."""
    fmt = getattr(args, "format", None)
    return None if fmt == "same" else f".{fmt or 'png'}"


def _out_path(args: argparse.Namespace, src: Path | None, suffix: str) -> Path:
    """--out, or the default name (`<input>_<op>.png` next to the input; `<op>.png`; --format changes
    the extension): inside --out when it names a folder (an existing one, or any path ending in a slash)."""
    ext = ".png" if src is None else output_suffix(src, _batch_suffix(args))
    name = f"{suffix}{ext}" if src is None else f"{src.stem}_{suffix}{ext}"
    if args.out:
        out = Path(args.out)
        if out.is_dir() or args.out.endswith(("/", os.sep) + ((os.altsep,) if os.altsep else ())):
            if not out.is_dir():
                raise UsageError(f"{out}: output folder does not exist")
            return out / name
        fmt = getattr(args, "format", None)
        if fmt and SAVE_FORMATS.get(out.suffix.lower()) not in (None, SAVE_FORMATS[ext]):
            # Two options that disagree: guessing which one the user meant would write the wrong file.
            raise UsageError(f"--format {fmt} asks for {SAVE_FORMATS[ext]}, but --out {out} names a "
                             f"{SAVE_FORMATS[out.suffix.lower()]} file: drop one of them")
        return out
    return Path(name) if src is None else src.with_name(name)


def _check_range(option: str, value: float | None, lo: float, hi: float, *, below_hi: bool = False) -> None:
    """A numeric option within lo..hi (below hi with `below_hi`): the engine turns nan or a huge
    value into a traceback or an out-of-memory kill, and a negative one into a silent default."""
    if value is not None and not (lo <= value < hi if below_hi else lo <= value <= hi):
        span = f"be at least {lo:g} and below {hi:g}" if below_hi else f"lie in {lo:g}..{hi:g}"
        raise UsageError(f"{option} must {span}, got {value:g}")


def _check_out(args: argparse.Namespace, out: Path, size: tuple[int, int] | None = None) -> None:
    """What `save_picture` would refuse, said before the model loads or runs (nothing is created).
    A usage error (exit 2): the command line has to change (another --out, --overwrite)."""
    try:
        check_output_path(out, overwrite=args.overwrite, size=size)
    except ImageError as e:
        raise UsageError(str(e)) from None


# ----------------------------------------------------------------------------------------------
# Commands.


EDIT_NAMES = {"upscale": "upscale x4/x8", "upscale_detail": "upscale x4/x8 --detail", "upscale_x2": "upscale x2",
              "stroke_edit": "stroke edit"}


def cmd_classes(args: argparse.Namespace) -> int:
    """The ImageNet classes the 64 px class-conditional models take, by index: all, or those
    matching the words given (the best first). Exit 1 when nothing matches."""
    text = " ".join(args.words)
    key = text.strip()
    if key.removeprefix("-").isascii() and key.removeprefix("-").isdigit() and not 0 <= int(key) < IMAGENET_CLASSES:
        # A number is looked up as an index, never as part of a name: say the range, not "no name".
        raise UsageError(f"classes are 0..{IMAGENET_CLASSES - 1}, got {int(key)}")
    hits = search(IMAGENET_CLASSES, text, limit=IMAGENET_CLASSES)
    names = imagenet_names()
    for i in hits:
        print(f"{i:4d}  {names[i]}")
    if not hits:
        # 1, as grep: the search ran, nothing matched (the words are not wrong as such).
        print(f"cstudio {args.command}: error: no ImageNet class name contains {text!r}", file=sys.stderr)
        return 1
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .pipeline import EDIT_DEFAULTS

    path = _resolve_model_path(args.model)
    spec, sd, meta = load_model(path, **_settings(args))
    n = sum(v.numel() for v in sd.values())
    edits = EDIT_DEFAULTS.get(spec.denoiser.kind, EDIT_DEFAULTS["cm"])
    # Every tensor's type, not the first one's: a half-converted file holds several.
    dtypes = Counter(str(v.dtype).replace("torch.", "") for v in sd.values())
    dtype = next(iter(dtypes)) if len(dtypes) == 1 else \
        "mixed: " + ", ".join(f"{t} x{c}" for t, c in dtypes.most_common())
    d = spec.denoiser
    info = {
        "file": str(path), "name": spec.name, "kind": d.kind, "resolution": spec.unet.image_size,
        "parameters": n, "tensors": len(sd), "dtype": dtype,
        "noise": {"sigma_min": d.sigma_min, "sigma_max": d.sigma_max, "sigma_data": d.sigma_data, "rho": d.rho},
        "class_conditional": spec.unet.num_classes is not None, "classes": spec.unet.num_classes,
        "class_names": class_names(spec.unet.num_classes) is not None, "sampler": ({"sampler": spec.sampler.edm_sampler, "steps": spec.sampler.edm_steps} if d.kind == "edm"
                    else {"steps": spec.sampler.steps, "ts": list(spec.sampler.ts)}),
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
        # An EDM model generates by Heun/Euler steps down its curve; ts are a consistency model's.
        loop = (f"{spec.sampler.edm_sampler}, {spec.sampler.edm_steps} steps" if d.kind == "edm" else
                f"ts={','.join(map(str, spec.sampler.ts))} on a {spec.sampler.steps}-point grid")
        print(f"  default sampling: {loop}")
        if info["class_conditional"]:
            named = " (ImageNet; --class-label takes a number or a name)" if info["class_names"] else ""
            print(f"  class-conditional: {info['classes']} classes{named}")
        print(f"  noise levels: sigma {d.sigma_min:g} to {d.sigma_max:g} (Karras rho {d.rho:g}), "
              f"sigma_data {d.sigma_data:g}")
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
        options = " and ".join(SETTING_OPTIONS[k] for k in guessed_settings(meta))
        if options:
            print(f"  (if a guess is wrong, state it with {options}; `cstudio convert` with them writes a file "
                  "that keeps them)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    out = Path(args.out_file)
    if out.suffix.lower() != ".safetensors":
        raise UsageError(f"output must end in .safetensors, got {out.name}")
    if out.exists() and not args.overwrite:
        raise UsageError(f"{out}: already exists (pass --overwrite to replace it)")
    # Before the model is read (seconds to minutes for a large one), and exit 2 as the image
    # commands' missing output folder: the command line has to change.
    folder = out.parent
    if not folder.is_dir():
        raise UsageError(f"{folder}: output folder " + ("is a file" if folder.exists() else "does not exist"))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{folder}: output folder is not writable; nothing was changed")
    spec, sd, meta = load_model(args.in_file, **_settings(args))
    if args.name:
        from dataclasses import replace

        spec = replace(spec, name=args.name)
    dtype = torch.float16 if args.fp16 else None
    # The input's own notes (its training run, where it was first converted from) travel on; the file
    # format's keys are written afresh by save_model.
    # An image size the app kept for the input is the output's own (stated in its spec), not a note.
    kept = {k: v for k, v in meta.items() if k not in ("format", "format_version", "spec", "image_size_chosen")}
    origin = {"converted_from": kept.get("converted_from", Path(args.in_file).name),
              "source": kept.get("source", "native")}
    save_model(out, spec, sd, dtype=dtype, metadata={**kept, **origin})
    # What was guessed goes into the file (its "guessed" note) and is said here, not presented as fact.
    guessed = meta.get("guessed", "").split(" (", 1)[0]
    print(f"wrote {out} ({spec.name}, {spec.denoiser.kind}, {spec.unet.image_size}px, {out.stat().st_size / 1e6:.1f} MB"
          + (f"; guessed: {guessed}" if guessed else "") + ")")
    _notes(Path(args.in_file), _guess_notes(meta, convert=True))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise UsageError(f"-n must be at least 1, got {args.n}")
    if args.steps is not None and args.steps < 1:
        raise UsageError("--steps must be at least 1")
    _parse_ts(args.ts)
    out = _out_path(args, None, "generated")
    paths = [out] if args.n == 1 else [out.with_name(f"{out.stem}_{i:03d}{out.suffix}") for i in range(args.n)]
    for p in paths:
        _check_out(args, p)
    model = _load(args)
    _use_class(args, model)
    kw = _sampling_kwargs(args, model)
    for p in paths:
        _check_out(args, p, (model.resolution, model.resolution))
    imgs = run_with_fallback(model, "generate", dict(n=args.n, seed=args.seed, class_label=args.class_label,
                             progress=ProgressBar("generate", args.quiet), **kw), log=_warn)
    for p, im in zip(paths, imgs):
        write_image(p, im, overwrite=args.overwrite)
        print(p)
    return 0


def _warn(message: str) -> None:
    print(f"cstudio: {message}", file=sys.stderr)


def _notes(path: Path, notes: list[str]) -> None:
    for note in notes:
        print(f"note: {path}: {note}", file=sys.stderr)


def _save(args: argparse.Namespace, out: Path, pic: Picture) -> None:
    save_picture(out, pic, overwrite=args.overwrite)
    # What the output's format could not keep (16 bits, transparency, a colour profile), as the app says it.
    _notes(out, format_losses(pic, SAVE_FORMATS[out.suffix.lower()]))
    print(out)


def cmd_inpaint(args: argparse.Namespace) -> int:
    """Fill the mask's white in each image: one mask for one photo, or for a folder of photos of its
    size (frames, screenshots or scans with a watermark or a blemish in the same place)."""
    if args.blend is not None and args.blend < 1:
        raise UsageError("--blend must be at least 1")
    # The app's ranges (app.model.params.GenerationParams).
    _check_range("--context", args.context, 0, 4)
    for option, value in (("--min-context", args.min_context), ("--grow", args.grow), ("--feather", args.feather)):
        _check_range(option, value, 0, 4096)
    _edit_kwargs(args)  # argument errors before anything is read
    mask_file = Path(args.mask)
    masks: dict[tuple[tuple[int, int], int], np.ndarray] = {}

    refused: dict[tuple[tuple[int, int], int], ImageError] = {}

    def mask_for(pic: Picture) -> np.ndarray:
        # Read once per image size: a batch of same-sized frames shares one array, and photos of a
        # size the mask does not fit are refused without decoding it again.
        key = (pic.size, pic.orientation)
        if key in refused:
            raise refused[key]
        if key not in masks:
            try:
                masks[key] = read_mask(mask_file, pic.size, orientation=pic.orientation)  # names an unturned photo
            except ImageError as e:
                refused[key] = e
                raise
        return masks[key]

    def prepare() -> RunOne:
        model = _load(args)
        _use_class(args, model)
        opts = InpaintOptions(context=args.context, min_context=args.min_context, grow=args.grow,
                              feather=args.feather, colour_match=not args.no_colour_match, grain=not args.no_grain)
        kw = {**_edit_kwargs(args, model), **({} if args.blend is None else {"blend": args.blend})}

        def run_one(pic: Picture) -> Picture:
            rgb = run_with_fallback(model, "inpaint", dict(image=pic.rgb, mask=mask_for(pic), seed=args.seed,
                                    options=opts, progress=ProgressBar("inpaint", args.quiet), **kw), log=_warn)
            return pic.with_pixels(rgb, pic.alpha)

        return run_one

    if not mask_file.is_file():  # before any photo is read (a batch would fail every file for it)
        raise ImageError(f"{mask_file}: " + ("is a folder, expected a mask image" if mask_file.is_dir()
                                             else "no such mask file"))
    if not _one_file(args):
        # What the mask holds (unreadable, selecting nothing or everything) is said once, before the
        # model loads; each photo then only has to have its size.
        read_mask(mask_file, None)
    return _batch(args, "inpaint", prepare, check=mask_for, exclude=(mask_file,))


RunOne = Callable[[Picture], Picture]


def _out_of_memory(error: BaseException) -> bool:
    """Python's MemoryError (numpy's allocations), a GPU's out-of-memory the fallback could not avoid,
    or torch's CPU allocator giving up ("DefaultCPUAllocator: not enough memory")."""
    return isinstance(error, MemoryError) or is_out_of_memory(error) or "not enough memory" in str(error)


def _one_file(args: argparse.Namespace) -> bool:
    """A single input file (not a batch: several inputs, or a folder)."""
    return len(args.inputs) == 1 and not Path(args.inputs[0]).is_dir()


def _batch(args: argparse.Namespace, op: str, prepare: Callable[[], RunOne],
           out_size: Callable[[tuple[int, int]], tuple[int, int]] = lambda size: size,
           notes_for: Callable[[Picture], list[str]] = lambda pic: [],
           check: Callable[[Picture], None] = lambda pic: None, exclude: tuple[Path, ...] = ()) -> int:
    """One input file -> --out file (or into the --out folder); several files or folders -> --out folder,
    per-file errors reported (output names: `engine.batch.output_paths`). Outputs are checked before
    `prepare()` loads the model and, in a batch, before each file is computed; `out_size` maps an
    input's (width, height) to its output's; `notes_for` adds the task's own notes about an input;
    `check` raises `ImageError` for an input the task cannot take (said, like the output checks,
    before the model loads or the file is computed); files in `exclude` found in a folder are not inputs."""
    single = _one_file(args)
    if single:
        src = Path(args.inputs[0])
        pic = load_picture(src)
        _notes(src, pic.notes)
        out = _out_path(args, src, op)
        _check_out(args, out, out_size(pic.size))
        check(pic)
        run_one = prepare()
        _notes(src, notes_for(pic))  # once the command is known to run
        _save(args, out, run_one(pic))
        return 0
    if not args.out:
        raise UsageError("several inputs or a folder need --out FOLDER")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file; batches need a folder")
    # e.g. the mask kept in the folder of photos it applies to: it is not one of them.
    skip = {os.path.realpath(p) for p in exclude}

    def inputs(skip_outputs: bool) -> list[tuple[Path, Path]]:
        found = collect_inputs(args.inputs, recursive=args.recursive, skip_outputs=skip_outputs)
        return [item for item in found if os.path.realpath(item[0]) not in skip]

    items = inputs(True)
    if not items:
        earlier = inputs(False)
        raise UsageError(f"no images to process in the given inputs ({len(earlier)} found are results of earlier "
                         "batches, named like *_upscale_4x, *_colorize or *_inpaint)" if earlier else
                         "no image files found in the given inputs")
    made = [p for p in (out_dir, *out_dir.parents) if not p.exists()]  # what a failure must take back
    try:
        out_dir.mkdir(parents=True, exist_ok=True)  # before the model loads, as a single output's folder is checked
    except OSError as e:
        raise UsageError(f"{out_dir}: cannot create the output folder ({os.strerror(e.errno) if e.errno else e})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UsageError(f"{out_dir}: output folder is not writable; nothing was changed")
    try:
        run_one = prepare()

        def process(src: Path, dst: Path) -> None:
            pic = load_picture(src)
            _notes(src, pic.notes)  # e.g. "animated image: using the first of 12 frames"
            _check_out(args, dst, out_size(pic.size))
            check(pic)
            _notes(src, notes_for(pic))  # once the file is known to be processed
            result = run_one(pic)
            save_picture(dst, result, overwrite=args.overwrite)
            _notes(dst, format_losses(result, SAVE_FORMATS[dst.suffix.lower()]))

        # Written paths on stdout (a script reads them), failures on stderr with the other errors.
        report = run_batch(items, process, out_dir, op, suffix=_batch_suffix(args), skip_existing=not args.overwrite,
                           log=print, fail=lambda line: print(line, file=sys.stderr))
    finally:
        # Refused before any file was processed (a --class-label or --factor this model lacks),
        # interrupted before the first write, or every file failed: the folders this command made
        # are left empty, and only those go (rmdir never removes a folder with anything in it).
        for folder in made:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
    print(report.summary())
    return 1 if report.failed else 0


def cmd_colorize(args: argparse.Namespace) -> int:
    _edit_kwargs(args)  # argument errors before anything is read
    _check_range("--render-size", args.render_size, 0, 4096)  # the app's range; 0: the model's resolution

    from .pipeline import COLOUR_REPLACED

    def prepare() -> RunOne:
        model = _load(args)
        _use_class(args, model)
        kw = _edit_kwargs(args, model)

        def run_one(pic: Picture) -> Picture:
            rgb = run_with_fallback(model, "colorize", dict(image=pic.rgb, seed=args.seed, render_size=args.render_size,
                                    progress=ProgressBar("colorize", args.quiet), **kw), log=_warn)
            return pic.with_pixels(rgb, pic.alpha)

        return run_one

    # The colours a photo has are replaced, not kept: say so (naming the file) before the user finds out.
    return _batch(args, "colorize", prepare, notes_for=lambda pic: [] if near_grey(pic.rgb) else [COLOUR_REPLACED])


def cmd_upscale(args: argparse.Namespace) -> int:
    k = args.factor
    if k not in (2, 4, 8):
        raise UsageError(f"--factor must be 2, 4 or 8, got {k}")
    if args.average < 1:
        raise UsageError(f"--average must be at least 1, got {args.average}")
    _check_range("--overlap", args.overlap, 0, 1, below_hi=True)
    _edit_kwargs(args)  # argument errors before anything is read

    def prepare() -> RunOne:
        model = _load(args)
        _use_class(args, model)
        if model.resolution % k:
            raise UsageError(f"this model ({model.resolution}px) cannot upscale by {k}")
        if args.detail and k == 2:
            _warn("--detail applies to x4 and x8; x2's default loop already carries the detail")
        kw = _edit_kwargs(args, model)

        def run_one(pic: Picture) -> Picture:
            try:
                out = run_with_fallback(model, "upscale", dict(image=pic.rgb, factor=k, seed=args.seed,
                                        overlap=args.overlap, alpha=pic.alpha, samples=args.average, detail=args.detail,
                                        progress=ProgressBar(f"upscale x{k}", args.quiet), **kw), log=_warn)
            except (MemoryError, RuntimeError) as e:
                if not _out_of_memory(e):
                    raise
                w, h = pic.size
                gb = w * k * h * k * (4 if pic.alpha is not None else 3) * pic.bits // 8 / 1e9
                raise MemoryError(f"not enough memory for the {w * k}x{h * k} result of x{k} ({gb:.1f} GB for its "
                                  "pixels alone): try a smaller --factor or cut the image into parts") from None
            rgb, alpha = out if isinstance(out, tuple) else (out, None)
            return pic.with_pixels(rgb, alpha)

        return run_one

    return _batch(args, upscale_op(k, args.detail), prepare, lambda size: (size[0] * k, size[1] * k))


# ----------------------------------------------------------------------------------------------
# Parser.


def _setting_args(p: argparse.ArgumentParser) -> None:
    """What an official .pt does not store: guessed when not given, and the guess reported (`_guess_notes`)."""
    p.add_argument("--image-size", type=int, metavar="N",
                   help="resolution the model was trained at, for an official .pt, which does not store it "
                   "(default: that of the released model of its layout, else a guess, reported as such), or for "
                   "a file converted or imported from one whose size was guessed (`cstudio info` says so)")
    p.add_argument("--head-channels", type=int, metavar="N",
                   help="channels per attention head (num_head_channels), which an official .pt does not store "
                   "either; OpenAI's released models use 64 (default: as --image-size; the guess is 64 where "
                   "it fits)")
    p.add_argument("--kind", choices=tuple(KINDS),
                   help="what an official .pt is, which only its file name tells: cm, a consistency model "
                   "(CD, 40-point grid); ct, a consistency-trained model (the released CT model's grid, "
                   "e.g. 201 points for ImageNet 64); edm, an EDM teacher (Heun steps). Default: from a "
                   "released file's name (edm_*, ct_*, cd_*), else cm, reported as a guess where released "
                   "models of several kinds share the layout")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model file or diffusers folder (default: the embedded default model)")
    _setting_args(p)
    p.add_argument("--steps", type=int, help="network evaluations (generate: a consistency model spreads them over "
                   "its grid, an EDM model takes that many Heun/Euler steps; edits: from the start sigma; "
                   "default per task)")
    p.add_argument("--ts", help="explicit indices on a consistency model's grid, strictly increasing from 0, "
                   "e.g. 0,22,39 (overrides --steps; generate with an EDM model has none)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="fp32 is exact; auto uses bf16/fp16 where the hardware is fast at it")
    p.add_argument("--out", help="output file (its extension picks the format: .png, .jpg/.jpeg, .webp, "
                   ".tif/.tiff or .bmp), or a folder to write the default name into (an existing folder "
                   "or a path ending in /); several inputs: the output folder. Batch names are <name>_<task>.png "
                   "(--format changes the extension), "
                   "sub-folders kept; inputs that would share a name get their extension (img_jpg_...) "
                   "or a number (img-2_...)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file (atomically)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _class_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--class-label", metavar="N|NAME",
                   help="class-conditional models (the ImageNet 64 px ones): the ImageNet class the model "
                   "conditions on, by number or name, e.g. 207 or 'golden retriever', 281 or 'tabby cat'; for an "
                   "edit, the class of what the photo shows (default 0, tench). Refused for other models; "
                   "'cstudio classes WORD' finds a class")


def _edit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=OUTPUT_FORMATS, default=None,
                   help="format of the outputs this command names (a batch's, or without an --out file): png "
                   "(default; keeps 16 bits and transparency), jpg (quality 95, 4:4:4), webp (lossless), tif, bmp, "
                   "or same (each input's own; GIF: png)")
    p.add_argument("--start-sigma", type=float, default=None,
                   help="start the loop from the task's first guess (bicubic, grey, smooth fill) noised to this "
                   "level: 0.3-2 faithful, 80 most freedom; within the model's noise levels (twice its lowest "
                   "sigma up to its highest); each task's default: `cstudio info`")
    p.add_argument("--sampler", choices=("consistency", "ddim", "ancestral"), default=None,
                   help="editing loop: consistency (re-noise each step; smooth), ddim (deterministic steps; "
                   "more detail from EDM-trained models) or ancestral (DDIM with fresh noise each step). "
                   "Default: the model's (`cstudio info`)")
    _class_arg(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cstudio", description="Consistency Studio: image editing with consistency models. "
                                     "Without a command, opens the desktop app; `cstudio FILE...` opens files in it.",
                                     epilog="`cstudio --version` prints the version; `cstudio help COMMAND` or "
                                     "`cstudio COMMAND --help` explains a command. Exit status: 0 done; 1 a file "
                                     "could not be read or the run failed (in a batch: any file failed); 2 the "
                                     "command line needs changing (an option, or --out: exists, missing folder); "
                                     "130 interrupted.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="describe a model file (default: the embedded default model)")
    p.add_argument("model", nargs="?", help="model file or diffusers folder; omitted: the embedded default model")
    _setting_args(p)
    p.add_argument("--json", action="store_true", help="print everything, with the metadata, as one JSON object")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("classes", help="find ImageNet classes by name or number (for --class-label)")
    p.add_argument("words", nargs="*", help="part of a class name, or a number; none: list all 1000")
    p.set_defaults(func=cmd_classes)

    p = sub.add_parser("convert", help="import an official .pt / diffusers folder into a native .safetensors")
    p.add_argument("in_file", help="the model to import: an official .pt checkpoint, a diffusers folder, or a "
                   "native .safetensors (to re-save it, e.g. with --fp16)")
    p.add_argument("out_file", help="the native model file to write (.safetensors, in an existing folder)")
    p.add_argument("--fp16", action="store_true", help="store weights in half precision (half the size)")
    p.add_argument("--name", help="model name stored in the file")
    _setting_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing out_file")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("generate", help="sample new images")
    _model_args(p)
    p.add_argument("-n", type=int, default=1, help="number of images (default %(default)s); with more than one, "
                   "the output name is numbered: --out gen.png writes gen_000.png, gen_001.png, ...")
    _class_arg(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("inpaint", help="fill the white part of a mask")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files or folders; one --mask for all "
                   "(each image must have the mask's size)")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders (keeping their structure)")
    p.add_argument("--mask", required=True,
                   help="mask image, the image's size: white or any bright colour = fill, black = keep; with "
                   "transparency, the bright visible pixels (or, for strokes of one colour on a transparent layer, "
                   "every visible one). It must leave some pixels known")
    _model_args(p)
    _edit_args(p)
    d = InpaintOptions()
    p.add_argument("--context", type=float, default=d.context,
                   help="context the model sees around each hole, as a fraction of the hole's size, 0-4 "
                   "(default %(default)s)")
    p.add_argument("--min-context", type=int, default=d.min_context,
                   help="... but at least this many px (default %(default)s)")
    p.add_argument("--grow", type=int, default=d.grow,
                   help="px the mask is grown by, so a tight mask leaves no halo (default %(default)s)")
    p.add_argument("--feather", type=int, default=d.feather,
                   help="px of soft blend outside the grown mask (default %(default)s)")
    p.add_argument("--no-colour-match", action="store_true", help="do not blend the fill's edge into its surroundings (seamless cloning)")
    p.add_argument("--no-grain", action="store_true",
                   help="do not give a fill smoother than its surroundings the photo's own grain")
    p.add_argument("--blend", type=int, default=None,
                   help="samples whose mean gives the fill's structure under one sample's texture, instead "
                   "of the default loop's cheap structure pass (1: a single sample, no structure pass; "
                   "default: the model's, `cstudio info`)")
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("colorize", help="colour grey photos (keeps their brightness)")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders (keeping their structure)")
    p.add_argument("--render-size", type=int,
                   help="short side, in px, of the view the model colours, aspect kept, up to 4096 (default, "
                   "or 0: the model's resolution)")
    _model_args(p)
    _edit_args(p)
    p.set_defaults(func=cmd_colorize)

    p = sub.add_parser("upscale", help="super-resolve by 2, 4 or 8")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--factor", type=int, default=4, help="2, 4 or 8 (default %(default)s)")
    p.add_argument("--overlap", type=float, default=0.25,
                   help="tile overlap as a fraction of the tile, at least 0 and below 1 (default %(default)s)")
    p.add_argument("--average", type=int, default=1, metavar="N",
                   help="average N samples per tile: truer to the input on average, less invented detail "
                   "(default %(default)s: one sample)")
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
    try:
        # Building the parser imports the training and evaluation packages: a Ctrl-C there is an
        # interrupt like any other, not a traceback.
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("cstudio: interrupted", file=sys.stderr)
        return 130
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        # 2: the command line asks for something that cannot be done (as argparse's own errors).
        print(f"cstudio {args.command}: error: {e}", file=sys.stderr)
        return 2
    except (CheckpointError, ImageError) as e:
        # 1: the command was well formed but a file it was given could not be used; 2 when it is
        # --image-size, --head-channels or --kind that does not fit the model (the option has to change).
        print(f"cstudio {args.command}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, SettingError) else 1
    except MemoryError as e:
        print(f"cstudio {args.command}: error: {e or 'not enough memory'}", file=sys.stderr)
        return 1
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
