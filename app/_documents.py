"""Document intents of the controller: open, save, masks in and out, autosave and recovery, batches.

A mixin of `EditorController` (kept apart only for size, like `_painting`). Nothing here may lose
work: a failed open leaves the document as it was, a failed save leaves the file on disk as it was
(and the document open and dirty), a file the user opened is only replaced after they confirm, and
its previous version is then kept as `name.bak.ext`. The document is autosaved every
`AUTOSAVE_INTERVAL_S` (the view's timer calls `autosave_tick`) and after each accepted result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from engine.imageio import SAVE_FORMATS

from .batch import plan, unwritable_folder
from .files import (ImageError, backup_path, document_picture, format_losses, open_document, read_mask,
                    save_picture_safely, write_mask)
from .model.autosave import AutosaveError
from .model.document import Document
from .model.jobs import BATCH_FORMATS, DEFAULT_BATCH_FORMAT, BatchDone, BatchRequest, batch_suffix
from .model.params import BATCH_TASKS, TASK_LABELS, Task

if TYPE_CHECKING:
    from .controller import EditorController

T = TypeVar("T")
AUTOSAVE_INTERVAL_S = 30
MAX_LISTED_FAILURES = 12


def _same_file_key(path: Path) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(Path(path).absolute())


class DocumentsMixin:
    _written: set[str]
    _autosaved: tuple[int, int] | None
    _autosave_pending: bool
    # Runs a step of file work (decode, encode and write) and returns its result or raises its error.
    # The window sets one that runs it on a thread while the window keeps painting (a 24 Mpx PNG
    # takes seconds to encode); without a window it runs inline.
    offload: Callable[[Callable[[], T]], T]

    # -- open -----------------------------------------------------------------------------------

    def open_path(self: EditorController, path: Path, *, as_sample: bool = False) -> bool:
        """Open an image file; on failure the current document is left untouched."""
        path = Path(path)
        try:
            doc = self.offload(lambda: open_document(path))
        except ImageError as e:
            message = str(e)
            gone = str(path.resolve())
            if not path.exists() and gone in self.settings.recent_files:
                # Moved or deleted: the entry would only fail again on every later try.
                self.save_settings(recent_files=tuple(r for r in self.settings.recent_files if r != gone))
                self.view.set_recent_files(list(self.settings.recent_files))
                message += "\nIt was removed from Open Recent."
            self.view.show_error("Could not open the image", message)
            return False
        if as_sample:
            doc = Document(doc.image, None, alpha=doc.alpha, info=doc.info, notes=doc.notes, name=path.name)
            doc.saved_revision = doc.image_revision  # a pristine sample is nothing to save
        else:
            # Opened afresh, the file is the user's original again (another program may have
            # rewritten it since this session last saved it): the first save over it asks and keeps
            # a backup once more.
            self._written.discard(_same_file_key(path))
        self._replace_document(doc)
        if not as_sample:
            self.save_settings(**self._recent_changes(path))
            self.view.set_recent_files(list(self.settings.recent_files))
        depth = ", 16-bit" if doc.image.dtype == np.uint16 else ""
        alpha = ", transparency kept" if doc.alpha is not None else ""
        notes = "".join(f" Note: {n}." for n in doc.notes)
        self._status(f"Opened {path.name} ({doc.size[0]}x{doc.size[1]}{depth}{alpha}).{notes}")
        return True

    def open_array(self: EditorController, image: np.ndarray, name: str = "Pasted image", *,
                   alpha: np.ndarray | None = None) -> None:
        """A new untitled document (a paste); `alpha` kept as an opened file's is, saved with it."""
        self._replace_document(Document(image, None, alpha=alpha, name=name))
        kept = ", transparency kept" if alpha is not None else ""
        self._status(f"{name} ({image.shape[1]}x{image.shape[0]}{kept}).")

    def _recent_changes(self: EditorController, path: Path) -> dict[str, object]:
        s = self.settings.with_recent(path)
        return {"recent_files": s.recent_files, "last_dir": s.last_dir}

    def _replace_document(self: EditorController, doc: Document) -> None:
        if self._job is not None and not self._job_batch:
            self.engine.cancel(self._job)  # its result would be dropped anyway (stale revision)
            # Ended here, not when the engine confirms: that "Cancelled." would replace what the open
            # says (notes such as "rotated upright"), and Run would stay off meanwhile.
            self._live_pending = False
            self._end_job()
        self._stroke = self._stroke_before = self._stroke_image = self._stroke_display = self._stroke_base = None
        self.document = doc
        self.history.clear()
        self.history.attach(doc)  # its pictures count toward the undo memory limit
        self._show_document()

    # -- save -----------------------------------------------------------------------------------

    def save(self: EditorController, path: Path | None = None, *, confirmed: bool = False) -> bool:
        """Save the image (to its own path if none is given); False if not saved (no path, declined, failed).

        An existing file this session has not written yet is only replaced after the view's
        `confirm_overwrite` (or `confirmed=True` when a file dialog already asked), and its old
        version is kept as `name.bak.ext`.
        """
        doc = self.document
        target = Path(path) if path is not None else doc.path
        if target is None:
            return False
        key = _same_file_key(target)
        replacing = target.exists() and key not in self._written
        # Chosen once: the question, the write and the status must name the same file.
        keep = backup_path(target) if replacing else None
        loses = doc.save_loses if doc.path is not None and _same_file_key(doc.path) == key else ""
        # Asked also after a file dialog's own "Replace?" when the file has pages the save drops: that
        # question says nothing of them.
        if replacing and (not confirmed or loses) and not self.view.confirm_overwrite(
                target.name, keep.name, *((loses,) if loses else ())):
            return False
        # What is written is the document as it is now: the picture and its revision are taken here,
        # on the UI thread, before the file work leaves it.
        pic, revision = document_picture(doc), doc.image_revision
        try:
            report = self.step_progress
            keep = self.offload(lambda: save_picture_safely(target, pic, backup=keep or False,
                                                            progress=lambda done, total: report(done / max(total, 1))))
        except ImageError as e:
            self.view.show_error("Could not save the image", f"{e}\nYour work is still open (and autosaved).")
            return False
        self._written.add(key)
        doc.mark_saved(target, revision)
        self.save_settings(**self._recent_changes(target))
        self.view.set_recent_files(list(self.settings.recent_files))
        self.view.set_title(doc.name, doc.dirty)
        # The backup's real name: another may have taken the one asked about meanwhile (`_keep_backup`).
        kept = f" The previous version is kept as {keep.name}." if keep is not None else ""
        losses = format_losses(pic, SAVE_FORMATS[target.suffix.lower()])
        self._status(" ".join([f"Saved {target.name}.", *losses]) + kept)
        self._autosave()
        return True

    # -- mask files -----------------------------------------------------------------------------

    def import_mask(self: EditorController, path: Path) -> bool:
        # Both outcomes are said in the status bar: it still said what came before ("Mask saved to
        # m.png." after an export), as if that were the latest news, after an import or a failed one.
        name = Path(path).name
        try:
            shape = self.document.mask.shape
            mask, note = self.offload(lambda: read_mask(path, shape))
        except ImageError as e:
            self._status(f"Could not import the mask from {name}; the mask is as it was.")
            self.view.show_error("Could not import the mask", str(e))
            return False
        # `_change_mask` inlined: its note on dropped undo steps is said with the import's, not instead.
        before = self.document.snapshot(mask_replaced=True)
        self.document.set_mask(mask, adopt=True)
        dropped = self._record(before, "Import mask")
        self.view.set_mask(self.document.mask)
        self._show_history()
        self._status(" ".join(t for t in (f"Imported the mask from {name}.", note, dropped) if t))
        return True

    def export_mask(self: EditorController, path: Path) -> bool:
        try:
            mask = self.document.mask
            self.offload(lambda: write_mask(path, mask))
        except ImageError as e:
            self.view.show_error("Could not export the mask", str(e))
            return False
        self._status(f"Mask saved to {Path(path).name}.")
        return True

    # -- autosave and recovery ------------------------------------------------------------------

    def _has_work(self: EditorController) -> bool:
        d, h = self.document, self.history
        return d.dirty or h.can_undo or h.can_redo or bool(d.mask.any())

    def autosave_tick(self: EditorController) -> None:
        """Called by the view's timer every AUTOSAVE_INTERVAL_S; writes only when something changed."""
        if self._current_settings() != self.settings:
            # Otherwise written only at a clean exit: a crash or a kill forgot the task, steps and brush.
            self.save_settings()
        if self._stroke is not None:
            self._autosave_pending = True  # mid-stroke: save once the stroke is in the history
            return
        self._autosave()

    def _autosave(self: EditorController) -> None:
        self._autosave_pending = False
        failed = self.autosave.take_error()  # from the writer thread, since the last call
        if failed is not None:
            self._autosaved = None  # write again now
        state = (self.document.image_revision, self.history.version)
        if state == self._autosaved:
            self.autosave.heartbeat()
            return
        try:
            if self._has_work():
                self.autosave.save(self.document, self.history)
            else:
                self.autosave.clear()
        except OSError as e:
            failed = e
        else:
            self._autosaved = state
        if failed is not None:
            # Not modal: it would repeat every 30 s. The work is still open; the last good autosave stays.
            self._status(f"Autosave failed ({failed.strerror or failed}); save your work to another folder.")

    def _offer_recovery(self: EditorController) -> bool:
        """Offer each autosave left by a crashed app, newest first; True once one is recovered.

        Only an explicit "discard" deletes an autosave. "later" (also what closing the question
        means) keeps it and every older one for the next start, and opens nothing from them; any
        other answer is taken as "later" too, since deleting work is the one thing not to guess.
        """
        for orphan in self.autosave.orphans():
            answer = self.view.ask_recover(orphan.describe())
            if answer == "discard":
                self.autosave.discard(orphan)
                continue
            if answer != "recover":
                return False
            try:
                recovered = self.autosave.load(orphan)
            except AutosaveError as e:
                self.view.show_error("Could not recover the autosave", str(e))
                self.autosave.discard(orphan)
                continue
            self._replace_document(recovered.document)
            dropped = self.history.load(recovered.undo, recovered.redo)
            self._show_history()
            self._autosave()
            self.autosave.flush()
            if self.autosave.take_error() is None:  # our own copy exists: only now may the old one go
                self.autosave.discard(orphan)
            else:
                self._autosaved = None
            # Saved under a higher limit or an older count: steps dropped here must not go unsaid.
            n = len(self.history.entries()[0])
            note = (f" Undo goes back {n} step{'s' if n != 1 else ''}: the oldest were dropped to keep "
                    f"undo within {self.history.max_bytes / 2**30:.1f} GB and {self.history.max_entries} "
                    "steps.") if dropped else ""
            self._status(f"Recovered {orphan.describe()}.{note}")
            return True
        return False

    # -- batches --------------------------------------------------------------------------------

    def set_batch_out_dir(self: EditorController, folder: Path | None) -> bool:
        """Batches write to `folder` (None: next to each input) from now on; False, with the reason in
        the status bar, for a folder that cannot be written (picked, it only failed at the next batch)."""
        blocked = unwritable_folder(Path(folder)) if folder else None
        if blocked is not None:
            self._status(f"Cannot write to {blocked}: pick another folder for batch results "
                         f"(they still go {self._batch_where(self.settings.batch_out_dir or None)}).")
            return False
        self.save_settings(batch_out_dir=str(folder) if folder else "")
        self._status(f"Batch results go {self._batch_where(folder)}.")
        return True

    @staticmethod
    def _batch_where(folder: Path | str | None) -> str:
        return f"to {folder}" if folder else "next to each input"

    @property
    def batch_overwrite(self: EditorController) -> bool:
        """Batches replace existing results (File > Batch: Overwrite Existing Results); off, they skip them."""
        return self.settings.batch_overwrite

    def set_batch_overwrite(self: EditorController, on: bool) -> None:
        """Remembered in the settings file; off is the default, so a dropped batch resumes where it stopped."""
        self.save_settings(batch_overwrite=bool(on))
        self._status("Batches replace existing results (changed seed, steps or model: drop the files again)."
                     if on else "Batches skip files whose result exists, so dropping them again resumes.")

    @property
    def batch_format(self: EditorController) -> str:
        """The file type batches write: a `BATCH_FORMATS` key (a settings file saying anything else: PNG)."""
        fmt = self.settings.batch_format
        return fmt if fmt in BATCH_FORMATS else DEFAULT_BATCH_FORMAT

    def set_batch_format(self: EditorController, fmt: str) -> None:
        """Batches write `fmt` (a `BATCH_FORMATS` key) from now on, remembered in the settings file."""
        if fmt not in BATCH_FORMATS:
            raise ValueError(f"unknown batch format {fmt!r}; one of {', '.join(BATCH_FORMATS)}")
        self.save_settings(batch_format=fmt)
        suffix = batch_suffix(fmt)
        self._status("Batch results are written " + (f"as {suffix} files." if suffix else
                                                      "in each input's own format (GIF as .png)."))

    def run_batch(self: EditorController, inputs: list[Path]) -> int | None:
        """Queue the current task (upscale or colorize) on files and folders; returns the job id or None."""
        self.view.commit_edits()  # a value still being typed counts, as for `run`
        p = self.params
        if p.task not in BATCH_TASKS:
            names = " or ".join(TASK_LABELS[t] for t in BATCH_TASKS)
            self._status(f"Several files or a folder run as a batch: choose {names} first.")
            return None
        if self._job is not None:
            self._status("A task is already running: cancel it first.")
            return None
        if self.model is None:
            self._status("The model is still loading; try again in a moment.")
            return None
        if p.task == Task.upscale and self.model.resolution % p.upscale_factor:
            self._status(f"This model ({self.model.resolution} px) cannot upscale by {p.upscale_factor}x.")
            return None
        out = Path(self.settings.batch_out_dir) if self.settings.batch_out_dir else None
        job = BatchRequest(self._ids.next(), p, tuple(Path(i) for i in inputs), out_dir=out,
                           skip_existing=not self.batch_overwrite, suffix=batch_suffix(self.batch_format))
        try:
            pairs = plan(job)  # a folder listing: quick, and a drop of nothing is no failed task
        except OSError:
            pairs = None  # the worker reports it with the file's name
        if pairs == []:
            self._status(f"No images to {TASK_LABELS[p.task].lower()} among the dropped items "
                                 "(folders are read without their sub-folders; earlier results are left out).")
            return None
        # A folder the results cannot go to is said once, up front, with what to do: each file used
        # to fail on its own with the same line (a camera card's read-only folder, "next to inputs").
        # Outputs that exist and are skipped need no room.
        todo = {dst.parent for _, dst in pairs or () if not job.skip_existing or not dst.exists()}
        blocked = next((b for b in map(unwritable_folder, sorted(todo)) if b is not None), None)
        if blocked is not None:
            where = "batch results" if out is not None else "results next to the inputs"
            self._status(f"Cannot write {where}: {blocked} is not writable; nothing was changed. "
                         "Choose a folder you can write to in File > Batch Results to a Folder.")
            return None
        self._job, self._job_live, self._job_batch, self._job_mask = job.job_id, False, True, None
        self._job_task = p.task
        self.view.set_busy(True)
        # Replaces what an earlier drop said ("choose Upscale or Colorize first"), which no longer holds.
        self._job_said = f"{TASK_LABELS[p.task]} batch running{self._class_note()}; Esc cancels."
        self._status(self._job_said)
        self.view.set_progress(0, 0, f"{TASK_LABELS[p.task]} batch: starting")
        self._time_left = self._new_time_left()
        self.engine.submit(job)
        return job.job_id

    def _on_batch_done(self: EditorController, msg: BatchDone) -> None:
        if msg.job_id != self._job:
            return
        self._end_job()
        notes = "".join(f" {n}." for n in msg.notes[:3])
        # Where the results are: the end message named no folder, and after a cancel it said "done"
        # and left out the files not reached, and that a drop of the same files resumes.
        where = f" Results are {'in ' + str(msg.out_dir) if msg.out_dir else 'next to each input'}." \
            if msg.written or msg.skipped else ""
        if msg.cancelled:
            again = ("drop the files again to resume" if not self.batch_overwrite else
                     "to resume, turn off File > Batch: Overwrite Existing Results and drop the files again")
            self._status(f"Batch cancelled: {msg.summary()}; {again}.{where}{notes}")
        else:
            self._status(f"Batch done: {msg.summary()}.{where}{notes}")
        if self._live_pending:  # a stroke released while the batch held the engine
            self.run(live=True)
        lines = _failure_lines(msg.failed)
        lines += [f"{p.name}: exists but does not open as an image; left as it is (delete it, or turn on "
                  "File > Batch: Overwrite Existing Results, and drop the files again)" for p in msg.unreadable]
        if lines:
            shown = lines[:MAX_LISTED_FAILURES]
            if len(lines) > MAX_LISTED_FAILURES:
                shown.append(f"... and {len(lines) - MAX_LISTED_FAILURES} more")
            self.view.show_error("Some files could not be processed", "\n".join(shown))


def _failure_lines(failed: tuple[tuple[Path, str], ...], names: int = 3) -> list[str]:
    """One line per reason, naming the inputs that failed with it: a folder that became read-only
    mid-batch gave one identical line per file. The engine's reasons may name the input by its whole
    path ("/in/c.jpg: the image is damaged"): after the name the line starts with, that said it twice."""
    by_reason: dict[str, list[str]] = {}
    for p, reason in failed:
        by_reason.setdefault(reason.removeprefix(f"{p}: "), []).append(p.name)
    lines = []
    for reason, files in by_reason.items():
        more = f" and {len(files) - names} more" if len(files) > names else ""
        lines.append(f"{', '.join(files[:names])}{more}: {reason}")
    return lines
