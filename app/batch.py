"""Batches of files dropped on the window: every image in some files or folders through upscale or colorize.

Runs on the engine thread as one job. Each file is read, processed and written (atomically, with
its depth, alpha and metadata, like the CLI) before the next one starts. A file that fails is
recorded with its reason and the batch goes on (chaiNNer #900: one bad file must not stop a
batch); an existing output is skipped, so a batch that was stopped resumes where it was. Cancel
stops within one network step; the file in progress is dropped whole, never half-written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine import Cancelled, Model
from engine.batch import collect_inputs, output_paths, upscale_op
from engine.fallback import run_with_fallback
from engine.imageio import SAVE_FORMATS, check_output_path, format_losses, load_picture

from .files import save_picture_safely
from .model.jobs import BatchDone, BatchRequest
from .model.params import GenerationParams, Task
from .tasks import TaskError, input_notes, task_call, use_class, user_message

STEPS_PER_FILE = 1000  # progress resolution inside one file

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


def run_batch(model: Model, request: BatchRequest, progress: ProgressFn) -> BatchDone:
    """Process every file; `progress(done, total, stage)` may raise `Cancelled` to stop the batch."""
    pairs = plan(request)
    if not pairs:
        raise TaskError("No image files among the dropped items.")
    written: list[Path] = []
    skipped: list[Path] = []
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
                         tuple(said + notes))

    n = len(pairs)
    for i, (src, dst) in enumerate(pairs):
        stage = f"{i + 1}/{n} {src.name}"

        def file_progress(done: int, total: int, i: int = i, stage: str = stage) -> None:
            progress(i * STEPS_PER_FILE + STEPS_PER_FILE * done // max(total, 1), n * STEPS_PER_FILE, stage)

        try:
            progress(i * STEPS_PER_FILE, n * STEPS_PER_FILE, stage)  # also where a cancel between files lands
        except Cancelled:
            return done(True)
        if dst.exists() and request.skip_existing:
            skipped.append(dst)
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
            failed.append((src, user_message(e)))
            continue
        written.append(dst)
    try:
        progress(n * STEPS_PER_FILE, n * STEPS_PER_FILE, "done")
    except Cancelled:
        pass  # everything is written already: report it rather than a cancel
    return done(False)
