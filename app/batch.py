"""Batches of files dropped on the window: every image in some files or folders through upscale or colorize.

Runs on the engine thread as one job. Each file is read, processed and written (atomically, with
its depth, alpha and metadata, like the CLI) before the next one starts. A file that fails is
recorded with its reason and the batch goes on (chaiNNer #900: one bad file must not stop a
batch); an existing output is skipped, so a batch that was stopped resumes where it was. Cancel
stops within one network step; the file in progress is dropped whole, never half-written.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from engine import Cancelled, Model
from engine.batch import collect_inputs, output_paths, upscale_op
from engine.fallback import run_with_fallback
from engine import imageio
from engine.imageio import SAVE_FORMATS, check_output_path, format_losses, load_picture
from engine.upscale import plan_tiles

from .files import save_picture_safely
from .model.jobs import BatchDone, BatchRequest
from .model.params import GenerationParams, Task
from .tasks import TaskError, input_notes, task_call, use_class, user_message

# A batch's progress is counted in these units over the whole batch, each file's share weighted by
# its work (`file_work`): with a share per file, a x4 upscale 16 times the pixels of the others
# crawled through its fifth of the bar for most of the batch, and the time left was wrong for all of it.
PROGRESS_UNITS = 100_000
HEADER_REPORT = 32  # inputs whose headers are read between two chances for a cancel
UPSCALE_OVERLAP = 0.25  # Model.upscale's default `overlap` (task_call passes none): for the tile count

ProgressFn = Callable[[int, int, str], None]


def op_name(params: GenerationParams) -> str:
    """The part of output names that says what was done: `upscale_4x`, `upscale_4x_detail`, `colorize`.

    Fine detail gets its own name, so a batch with it does not skip the plain batch's outputs."""
    if params.task == Task.upscale:
        return upscale_op(params.upscale_factor, params.upscale_detail)
    if params.task == Task.colorize:
        return "colorize"
    raise TaskError(f"{params.task.value} cannot run as a batch: choose Upscale or Colorize")


def plan(request: BatchRequest) -> list[tuple[Path, Path]]:
    """(input, output) pairs: `name_upscale_4x.png` next to the input, or under `out_dir` keeping
    sub-folders; names unique within the batch as the CLI makes them (`engine.batch.output_paths`).
    The extension is the request's format (`BatchRequest.suffix`; None: each input's own, GIF -> .png)."""
    op = op_name(request.params)
    # Outputs of earlier batches (any task, factor or detail) found in a dropped folder are not
    # inputs (engine.batch.EARLIER_OUTPUT, the CLI's rule): a Fine-detail batch does not upscale the
    # plain batch's results again. A file dropped by itself is processed, whatever its name.
    items = collect_inputs(request.inputs, skip_outputs=True)
    return list(zip((src for src, _ in items), output_paths(items, op, request.out_dir, request.suffix)))


def unwritable_folder(folder: Path) -> Path | None:
    """The folder that keeps results from being written into `folder`: itself, or where it does not
    exist yet, the nearest one above it (where it would be made); None when it can be written."""
    at = Path(os.path.abspath(folder))
    while not at.exists() and at.parent != at:
        at = at.parent
    return None if at.is_dir() and os.access(at, os.W_OK | os.X_OK) else at


def file_work(params: GenerationParams, src: Path, dst: Path, resolution: int | None) -> float | None:
    """How much network work one input is, relative to the others of its batch, from its header only.

    Upscale: the tiles the engine runs (`plan_tiles`, as `Model.upscale` plans them; by output
    pixels without a model). Colorize: the model works at its render size (short side fixed, long
    side up to 8 times it), so only the aspect ratio counts. 0 for a result too large to be written
    (`check_output_path` refuses it before any compute: a 50 Mpx photo's x2 took nearly the whole
    bar, and the time left with it, then failed at once); None for a header that cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(src) as im:
                w, h = im.size
    except Exception:  # noqa: BLE001 - any unreadable header: load_picture says why, per file
        return None
    if params.task == Task.upscale:
        k = params.upscale_factor
        side = imageio.MAX_SIDE.get(imageio.SAVE_FORMATS.get(dst.suffix.lower(), ""))
        if w * k * h * k > imageio.MAX_PIXELS or (side is not None and max(w, h) * k > side):
            return 0.0
        if not resolution or resolution % k:
            return float(w * h * k * k)
        tile = resolution // k
        return float(plan_tiles(h, w, tile, max(1, round(tile * UPSCALE_OVERLAP))).count)
    return float(min(8.0, max(w, h) / max(1, min(w, h))))


# How a complete PNG ends (its IEND chunk, length 0 and CRC), and a JPEG (the EOI marker, which
# some writers follow with a few bytes of padding).
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_END, JPEG_TAIL = b"\xff\xd9", 1024


def readable_result(path: Path) -> bool:
    """Whether an existing output is a picture: its header opens, and a PNG or JPEG ends as a whole
    file does (text under an image's name, or a file cut short, is no finished result). Header and
    tail only: decoding every existing result (then Pillow's `verify`, which reads every byte of a
    PNG) made resuming a batch of large results read them all before any new work."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt = im.format
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - JPEG_TAIL))
            tail = f.read()
    except Exception:  # noqa: BLE001 - whatever Pillow raises for a broken file
        return False
    if fmt == "PNG":
        return tail.endswith(PNG_END)
    if fmt in ("JPEG", "MPO"):
        return JPEG_END in tail
    return True


def run_batch(model: Model, request: BatchRequest, progress: ProgressFn) -> BatchDone:
    """Process every file; `progress(done, total, stage)` may raise `Cancelled` to stop the batch.

    `done` and `total` count `PROGRESS_UNITS`, shared by the files' work (`file_work`). A file that
    needs no compute (its result exists) or fails before any takes its share off `total` rather
    than adding it to `done` (`engine.progress.TimeLeft` must not take an instant jump for speed),
    and until the engine's first step `total` is 0: the first step also pays for warming up, as a
    single task's first report does, and the time left is measured from it."""
    pairs = plan(request)
    if not pairs:
        raise TaskError("No image files among the dropped items.")
    written: list[Path] = []
    skipped: list[Path] = []
    unreadable: list[Path] = []  # of `skipped`: existing outputs that are not pictures, left alone
    failed: list[tuple[Path, str]] = []
    notes: list[str] = []
    coloured = 0  # colorize inputs that had colour of their own
    # What the output format left out (`format_losses`, what a single save says): a JPEG or BMP keeps
    # no transparency, so a cut-out comes out flattened onto white; only PNG and TIFF keep 16 bits.
    # Counted per note, one line each for the whole batch (the status bar shows the first few notes).
    losses: dict[str, int] = {}
    made: list[Path] = []  # folders this batch created, to take back those it left empty

    def done(cancelled: bool) -> BatchDone:
        # Every file of a folder failed, or a cancel came first: no empty folder is left behind
        # (the CLI's rule). rmdir never removes a folder with anything in it.
        for folder in sorted(set(made), key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass
        said = [f"{coloured} of the photos already had colour: colorize kept their brightness and replaced "
                "their colours"] if coloured else []
        said += [f"{note.rstrip('.')} ({k} file{'s' if k != 1 else ''})" for note, k in losses.items()]
        return BatchDone(request.job_id, tuple(written), tuple(skipped), tuple(failed), cancelled,
                         tuple(said + notes), total=len(pairs), out_dir=request.out_dir,
                         unreadable=tuple(unreadable))

    n = len(pairs)
    # Every input's header, for its share of the bar: on a slow share or card that takes a while, so
    # a cancel may land between them (Esc waited for all of them), and a result that exists and will
    # be skipped needs none (resuming is the common case).
    work: list[float | None] = []
    for i, (src, dst) in enumerate(pairs):
        if i % HEADER_REPORT == 0:
            try:
                progress(0, 0, f"reading {n} files")
            except Cancelled:
                return done(True)
        skip = request.skip_existing and dst.exists()
        work.append(0.0 if skip else file_work(request.params, src, dst, getattr(model, "resolution", None)))
    known = [w for w in work if w]
    fallback = sum(known) / len(known) if known else 1.0  # a header not read: an average file's share
    weights = [fallback if w is None else w for w in work]
    units = [max(1, round(PROGRESS_UNITS * w / (sum(weights) or 1))) for w in weights]
    state = {"base": 0, "total": sum(units), "started": False}  # units done, units of the batch now

    def report(at: int, stage: str) -> None:
        progress(at, state["total"] if state["started"] else 0, stage)

    for i, (src, dst) in enumerate(pairs):
        stage = f"{i + 1}/{n} {src.name}"
        reached = [0]  # this file's units the engine's reports reached

        def file_progress(step: int, steps: int, i: int = i, stage: str = stage, reached: list[int] = reached) -> None:
            state["started"] = True
            reached[0] = min(units[i], units[i] * step // max(steps, 1))
            report(state["base"] + reached[0], stage)

        def drop() -> None:
            # What was not computed of this file leaves the total; what was stays done work.
            state["base"] += reached[0]
            state["total"] -= units[i] - reached[0]

        try:
            report(state["base"], stage)  # also where a cancel between files lands
        except Cancelled:
            return done(True)
        if dst.exists() and request.skip_existing:
            skipped.append(dst)
            # Kept whatever it holds (the skip rule: never replace a file unasked), but one that
            # is not a picture (truncated, text) is not a result either: said, with what to do.
            if not readable_result(dst):
                unreadable.append(dst)
            drop()
            continue
        try:
            made.extend(p for p in (dst.parent, *dst.parent.parents) if not p.exists())
            dst.parent.mkdir(parents=True, exist_ok=True)
            # A folder that cannot take the result fails the file before its compute (minutes for a
            # large upscale), not after it, as the CLI does.
            check_output_path(dst, overwrite=True)
            pic = load_picture(src)
            # With the result's size: over the editor's pixel limit, or a side longer than the format
            # holds (WebP: 16383 px, a x4 upscale of a 4096 px photo), fails before the compute too.
            k = request.params.upscale_factor if request.params.task == Task.upscale else 1
            check_output_path(dst, overwrite=True, size=(pic.size[0] * k, pic.size[1] * k))
            notes.extend(f"{src.name}: {note}" for note in pic.notes)
            use_class(model, request.params)  # a class the model lacks fails each file, as a factor it lacks
            name, kwargs = task_call(model, request.params, pic.rgb, None, pic.alpha, file_progress)
            out = run_with_fallback(model, name, kwargs, lambda m, s=src.name: notes.append(f"{s}: {m}"))
            rgb, alpha = out if isinstance(out, tuple) else (out, pic.alpha)
            out_pic = pic.with_pixels(rgb, alpha)
            save_picture_safely(dst, out_pic)
            for note in format_losses(out_pic, SAVE_FORMATS[dst.suffix.lower()]):
                losses[note] = losses.get(note, 0) + 1
            coloured += bool(input_notes(request.params, pic.rgb))  # written ones only; one line for all, below
        except Cancelled:
            return done(True)
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the batch; its reason is reported
            # The dialog names the input before its reason: a reason that starts with the input's or
            # the output's whole path ("/in/big_upscale_2x.png: the result would be ...") said it twice.
            reason = user_message(e)
            for path in (src, dst):
                reason = reason.removeprefix(f"{path}: ")
            failed.append((src, reason))
            drop()
            continue
        written.append(dst)
        state["base"] += units[i]
    try:
        end = max(1, state["base"])
        progress(end, end, "done")
    except Cancelled:
        pass  # everything is written already: report it rather than a cancel
    return done(False)
