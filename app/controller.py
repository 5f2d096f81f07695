"""EditorController: user intents -> model changes and engine jobs. No Qt: tested with a mock view.

Data flows one way: the view calls intent methods (`run`, `begin_stroke`, `undo`, ...), the
controller changes `app.model` state and pushes the result back with the view's `set_*` methods.
Engine messages arrive through `on_progress/on_finished/on_failed`, always on the UI thread.
Images reach the view as 8-bit (`set_image`); the document keeps the file's own depth.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from engine import imageio
from engine.pipeline import stroke_work_size
from engine.progress import TimeLeft, format_time_left

from ._documents import DocumentsMixin
from ._painting import PaintingMixin
from .model import brush as brushes
from .model.autosave import Autosave
from .model.brush import BrushSettings, Rect, Stroke
from .model.catalog import (CatalogError, ModelInfo, forget_image_size, image_size_problem, picker_labels,
                            remember_image_size, scan_models)
from .model.document import Document, Snapshot, to_uint8
from .model.history import History
from .model.jobs import (BatchDone, ImportDone, ImportRequest, JobFailed, JobIds, JobRequest, JobResult,
                         LoadModelRequest, ModelReady, Progress)
from .model.params import (NEEDS_MASK, STEP_CHOICES, TASK_LABELS, UPSCALE_FACTORS, USES_MASK, GenerationParams,
                           Task)
from .model.settings import Settings, load_settings, save_settings, state_dir, user_models_dir

BLANK_SIZE = 256
IMPORT_STAGES = 3  # tasks.import_checkpoint reports reading, checking and writing
PROGRESS_CHARS = 44  # what the progress bar shows in full (main_window.PROGRESS_IMPORTS_LONGEST is this long)
MISSING_DEFAULT = ("No trained default model found (resources/models/default.safetensors): using an untrained "
                   "test model, so results will look like noise. Import a checkpoint from the Model menu.")


T = TypeVar("T")


def _inline(work: Callable[[], T]) -> T:
    return work()


class EditorView(Protocol):
    # alpha: (H, W) uint8 transparency of a whole image (rect None), or None if opaque
    def set_image(self, image: np.ndarray, rect: Rect | None = None, alpha: np.ndarray | None = None) -> None: ...
    def set_mask(self, mask: np.ndarray, rect: Rect | None = None) -> None: ...
    # alpha: (H, W) uint8 transparency 'before' had (None: opaque), drawn as the image's is
    def set_before(self, image: np.ndarray | None, alpha: np.ndarray | None = None) -> None: ...
    def set_params(self, params: GenerationParams) -> None: ...
    def set_brush(self, brush: BrushSettings) -> None: ...
    def set_models(self, models: list[ModelInfo], selected: int) -> None: ...
    def set_model_state(self, text: str, ready: bool, warning: bool) -> None: ...
    def set_live_available(self, available: bool) -> None: ...
    def set_busy(self, busy: bool) -> None: ...
    def set_importing(self, importing: bool) -> None: ...  # an import runs: Cancel (Esc) can stop it
    def set_progress(self, done: int, total: int, text: str) -> None: ...
    def set_status(self, text: str) -> None: ...
    def set_title(self, name: str, dirty: bool) -> None: ...
    def set_history(self, undo_label: str, redo_label: str) -> None: ...
    def set_recent_files(self, paths: list[str]) -> None: ...
    def show_error(self, title: str, message: str) -> None: ...
    # loses: what saving over it drops that the user should know first ("It holds 3 pages: ...")
    def confirm_overwrite(self, name: str, backup_name: str, loses: str = "") -> bool: ...
    def ask_recover(self, description: str) -> str: ...  # "recover", "discard" or "later"
    def commit_edits(self) -> None: ...  # send values typed but not yet confirmed (a spin box without Enter)


class EngineClient(Protocol):
    def submit(self, request: object) -> None: ...
    def cancel(self, job_id: int) -> None: ...


def _batch_progress_text(label: str, count: str, name: str, left: str) -> str:
    """A batch's bar: its file count, the file being processed and, once known, the time left
    ("Upscale: 3/7 beach.jpg \u00b7 about 2 min left", "3/7 IMG_20240612_1834\u2026 \u00b7 about 2 min left");
    the name was dropped whole once a time was shown, and the user could not see which file was
    being processed.

    The bar does not elide, so the name is cut to what the rest leaves of `PROGRESS_CHARS` (4 less:
    file names run wider than words, with their capitals, digits and underscores). Where that leaves
    too little for the whole name, the task's name goes first: the status bar says it too."""
    room_chars = PROGRESS_CHARS - 4
    head, tail = f"{label}: {count} ", f" \u00b7 {left}" if left else ""
    if len(head) + len(name) + len(tail) > room_chars:
        head = f"{count} "
    room = max(8, room_chars - len(head) - len(tail))
    if len(name) > room:
        name = name[:room - 1] + "\u2026"
    return f"{head}{name}{tail}"


class EditorController(PaintingMixin, DocumentsMixin):
    def __init__(self, view: EditorView, engine: EngineClient, *, settings_file: Path | None = None,
                 default_model: Path | None = None, models_dir: Path | None = None,
                 autosave_dir: Path | None = None) -> None:
        self.view = view
        self.engine = engine
        self.offload = _inline  # the window's runs file work on a thread (DocumentsMixin.offload)
        # How far the file step in `offload` has come (0-1), called on its thread; the window shows it.
        self.step_progress: Callable[[float], None] = lambda fraction: None
        self.settings_file = settings_file
        self.settings: Settings = load_settings(settings_file)
        s = self.settings
        task = s.task if s.task in Task._value2member_map_ else Task.inpaint.value
        # Only what the steps picker offers: another value would run while the picker shows "Default".
        steps = s.steps if s.steps in STEP_CHOICES else 0
        factor = s.upscale_factor if s.upscale_factor in UPSCALE_FACTORS else GenerationParams.upscale_factor
        # The class is checked against a model's class count once one has loaded (_on_model_ready).
        class_label = s.class_label if 0 <= s.class_label < 2**31 else 0
        self.params = GenerationParams(task=Task(task), steps=steps, live=s.live, upscale_factor=factor,
                                       upscale_detail=s.upscale_detail, class_label=class_label)
        self.brush = BrushSettings(size=s.brush_size, hardness=s.brush_hardness)
        self.default_model = default_model
        self.models_dir = models_dir or user_models_dir()
        self.document = Document(np.full((BLANK_SIZE, BLANK_SIZE, 3), 128, np.uint8), name="Untitled")
        self.document.saved_revision = self.document.image_revision  # an untouched blank is nothing to save
        self.history = History()
        self.history.attach(self.document)  # the cap counts the document's state from the start
        self.models: list[ModelInfo] = []
        self.model: ModelInfo | None = None  # the loaded model; None while loading
        self._ids = JobIds()
        self._job: int | None = None  # the task in flight (at most one)
        self._job_live = False
        self._job_task: Task | None = None  # what the job in flight runs: the picker may have moved on since
        self._time_left = self._new_time_left()  # a x4 upscale of a large photo runs for minutes on a CPU
        self._job_batch = False  # the job in flight is a batch of files, not an edit of the document
        self._job_mask: np.ndarray | None = None  # the mask the running job fills
        self._job_cancelled = False  # Esc was pressed: a result still on its way is dropped
        self._held_result: JobResult | None = None  # arrived mid-stroke: applied when the stroke ends
        self._live_pending = False  # a live request arrived while a job ran; the latest state wins
        self._model_job: int | None = None
        # Every import in flight, by job id -> the source's name: the Model menu stays usable while one
        # runs, and each import must report its own failure and reach the picker when it succeeds.
        self._imports: dict[int, str] = {}
        # Each one's last report (done, total, stage): the engine runs one at a time, the bar shows the
        # one that reported last and how many are in flight; one not yet started is "waiting".
        self._import_progress: dict[int, tuple[int, int, str]] = {}
        self._import_current: int | None = None
        self._task_progress: tuple[int, int, str] | None = None  # the task's last report, shown again after an import
        self._stroke: Stroke | None = None
        self._stroke_before: Snapshot | None = None
        # While a colour stroke is drawn: its pixels, valid inside the stroke's bounds only (`begin_stroke`)
        self._stroke_image: np.ndarray | None = None
        self._stroke_display: np.ndarray | None = None  # its 8-bit view, for 16-bit documents
        self._stroke_base = None  # the picture the colour stroke ends in, being copied (`_painting._Copy`)
        # (image, before, before's alpha): the document arrays the view shows, which `_show_document`
        # does not send again. None: nothing shown yet, or the canvas holds a colour stroke being drawn.
        self._shown: tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None = None
        self.autosave = Autosave(autosave_dir or state_dir() / "autosave")
        self._autosaved: tuple[int, int] | None = None  # (image revision, history version) last written
        self._autosave_pending = False
        self._written: set[str] = set()  # files saved this session: replacing them again needs no question
        # The last status text this controller sent (the view and _painting also write the status bar
        # directly; they only ever make an undo/redo message more stale, see `_record`).
        self._said = ""
        self._history_said = False  # the status bar still says "Undone: X." / "Redone: X."
        # Redo steps there were when the job in flight started (History.redo_mark): those undone
        # since are what its result, a new step, would take away (see `_apply_result`).
        self._job_redo: frozenset[int] = frozenset()
        self._job_said = ""  # what the status bar says while the job in flight runs ("Inpaint running; ...")

    # -- start-up and shutdown ------------------------------------------------------------------

    def start(self, files: list[str] | None = None, sample: Path | None = None) -> None:
        """Fill the view, open the first file (or the sample), and start loading the model."""
        self._said = ""
        self.view.set_params(self.params)
        self.view.set_brush(self.brush)
        self.view.set_recent_files(list(self.settings.recent_files))
        opened = self._offer_recovery()
        if opened and files:
            self._status(f"Recovered the autosaved work; {Path(files[0]).name} was not opened.")
        elif files:
            opened = self.open_path(Path(files[0]))
            if len(files) > 1:
                self._status(f"Opened {Path(files[0]).name}; one image at a time, the other files were ignored.")
        if not opened and sample is not None:
            opened = self.open_path(sample, as_sample=True)
        if not opened:
            self._show_document()
        # After the open: "Opened X (16-bit...). Note: ..." or "Recovered ..." must survive a broken
        # file in the models folder, so what the scan skipped is added to it, not put in its place.
        self.refresh_models(select=self.settings.model_path or None, add_to_status=True)

    def shutdown(self) -> None:
        """A clean exit: the view has already saved or discarded the work, so the autosave goes."""
        if self._job is not None:
            self.engine.cancel(self._job)
        self.save_settings()
        self.autosave.clear()

    def _status(self, text: str) -> None:
        """Every status message of the controller goes through here, so it knows what the bar says."""
        self._said = text
        self._history_said = False
        self.view.set_status(text)

    def _current_settings(self, **changes: object) -> Settings:
        return self.settings.replace(task=self.params.task.value, steps=self.params.steps, live=self.params.live,
                                     upscale_factor=self.params.upscale_factor,
                                     upscale_detail=self.params.upscale_detail, class_label=self.params.class_label,
                                     brush_size=self.brush.size, brush_hardness=self.brush.hardness, **changes)

    def save_settings(self, **changes: object) -> None:
        self.settings = self._current_settings(**changes)
        try:
            save_settings(self.settings, self.settings_file)
        except OSError as e:  # settings are a convenience: never let them stop the app
            self._status(f"Could not save settings: {e}")

    # -- parameters -----------------------------------------------------------------------------

    def set_params(self, **changes: object) -> None:
        try:
            classes = self.model.num_classes if self.model is not None else None
            label = changes.get("class_label")
            if classes and isinstance(label, int) and label >= classes:
                raise ValueError(f"This model knows classes 0 to {classes - 1}, not {label}.")
            self.params = self.params.replace(**changes)
        except (ValueError, TypeError) as e:
            self._status(str(e))
        self.view.set_params(self.params)
        self._update_live()

    def randomise_seed(self) -> None:
        self.set_params(seed=random.randrange(2**31))

    def randomise_class(self) -> None:
        """A random class of the loaded class-conditional model (what a class-free model would draw)."""
        if self.model is not None and self.model.num_classes:
            self.set_params(class_label=random.randrange(self.model.num_classes))

    def set_brush(self, **changes: object) -> None:
        self.brush = self.brush.replace(**changes)
        self.view.set_brush(self.brush)

    def brush_bigger(self) -> None:
        self.set_brush(size=self.brush.bigger().size)

    def brush_smaller(self) -> None:
        self.set_brush(size=self.brush.smaller().size)

    # -- models ---------------------------------------------------------------------------------

    def refresh_models(self, select: str | None = None, *, reload: bool = False, add_to_status: bool = False) -> None:
        """Scan the models again; `add_to_status`: the caller has just said what it did (opened a file,
        imported a model), and a note on unreadable model files is added to that instead of replacing it."""
        self.models, problems = scan_models(self.default_model, [self.models_dir])
        index = 0
        if select:
            index = next((i for i, m in enumerate(self.models) if m.path is not None and str(m.path) == select), 0)
        self.view.set_models(self.models, index)
        if problems:
            skipped = "Skipped unreadable model files: " + "; ".join(problems).rstrip(".") + "."
            self._status(f"{self._said} {skipped}" if add_to_status and self._said else skipped)
        self.select_model(index, reload=reload)

    def select_model(self, index: int, *, reload: bool = False) -> None:
        """Load the picker's entry `index`; `reload`: even if it is the model loaded (its size changed)."""
        if not 0 <= index < len(self.models):
            return
        info = self.models[index]
        if self.model is not None and self.model.path == info.path and self._model_job is None and not reload:
            return
        self.model = None
        self._model_job = self._ids.next()
        self.view.set_model_state(f"Loading {picker_labels(self.models)[index]}...", ready=False, warning=False)
        self._update_live()
        self.engine.submit(LoadModelRequest(self._model_job, info))
        if info.path is not None or self.settings.model_path:
            self.save_settings(model_path=str(info.path) if info.path and not info.is_default else "")

    def set_image_size(self, size: object) -> bool:
        """Run the loaded model at `size` px from now on, remembered for its file (catalog.SIZES_FILE).

        Only for a model whose file does not store its size (an imported official .pt, where the
        importer guessed): a size the network cannot run at is refused with the reason, as is
        a model that states its own. True if the size is (now) the model's.
        """
        info = self.model
        if info is None:
            self._status("The model is still loading; try again in a moment.")
            return False
        problem = image_size_problem(info, size)
        if problem:
            self.view.show_error("Cannot use that image size", problem)
            return False
        if info.size_chosen and size == info.resolution:
            return True
        try:
            remember_image_size(info, size)  # type: ignore[arg-type] - checked just above
        except CatalogError as e:
            self.view.show_error("Could not keep the image size", str(e))
            return False
        self.refresh_models(select=str(info.path), reload=True)
        self._status(f"{info.name} runs at {size} px from now on; it is loading again at that size.")
        return True

    @property
    def importing(self) -> bool:
        return bool(self._imports)

    def import_checkpoint(self, source: Path) -> None:
        job = self._ids.next()
        self._imports[job] = Path(source).name
        self.view.set_importing(True)
        # Esc reaches an import only when no task runs (it cancels the task first).
        self._status(f"Importing {source.name}...{'' if self.busy else ' (Esc cancels)'}")
        if self._job is None:
            self._show_imports()  # a running task keeps the bar: the import waits for it
        self.engine.submit(ImportRequest(job, Path(source), self.models_dir))

    def _show_imports(self) -> None:
        """The imports in flight on the progress bar: how many, and the current one's stage.

        The current one is the last to report (the engine runs one at a time, in order); before
        any has, the oldest, "waiting" (a model load or a task ahead of it in the engine's queue).
        """
        if not self._imports:
            return
        job = self._import_current if self._import_current in self._imports else next(iter(self._imports))
        done, total, stage = self._import_progress.get(job, (0, IMPORT_STAGES, "waiting"))
        n = len(self._imports)
        prefix = "Importing " if n == 1 else f"{n} imports \u00b7 "
        name = self._imports[job]
        room = max(12, PROGRESS_CHARS - len(prefix) - len(stage) - 2)
        if len(name) > room:  # the bar does not elide: the stage and the count must stay readable
            name = name[:room - 1] + "\u2026"
        self.view.set_progress(done, total, f"{prefix}{name}: {stage}")

    def _show_task_progress(self) -> None:
        """The task's bar again, once an import that ran ahead of it has ended."""
        label = TASK_LABELS[self._job_task or self.params.task]
        done, total, text = self._task_progress or (0, 0, f"{label}{' batch' if self._job_batch else ''}: starting")
        self.view.set_progress(done, total, text)

    def _progress_ended(self) -> None:
        """Something with a place on the progress bar ended: the bar shows what still runs, or goes.

        The engine runs requests in the order they came, and ids count up: of a task and imports in
        flight, the lowest id is the one running (or next to).
        """
        if self._job is not None and not (self._imports and min(self._imports) < self._job):
            self._show_task_progress()
        elif self._imports:
            self._show_imports()
        else:
            self.view.set_progress(0, 1, "")

    # -- running tasks --------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._job is not None

    def live_available(self) -> bool:
        return self.model is not None and self.model.one_step and self.params.task == Task.inpaint

    def _update_live(self) -> None:
        self.view.set_live_available(self.live_available())

    def run(self, *, live: bool = False) -> int | None:
        """Start the selected task; returns the job id, or None with the reason in the status bar."""
        # Every run starts here (Run button, shortcut, live re-run): a value still being typed counts.
        self.view.commit_edits()
        if self._job is not None:
            if live:
                self._live_pending = True  # coalesce: one re-run after the current job, with the newest mask
            else:
                self._status("A task is already running: cancel it first.")
            return None
        if self.model is None:
            self._status("The model is still loading; try again in a moment.")
            return None
        params = self.params.replace(task=Task.inpaint, steps=1) if live else self.params
        doc = self.document
        if params.task in NEEDS_MASK and not doc.mask.any():
            self._status("Paint over the area to replace first: the mask is empty.")
            return None
        if params.task in NEEDS_MASK and doc.mask.all():
            # The engine fills where the mask is nonzero and needs known pixels to fill from: a mask
            # over everything (e.g. an inverted empty one) gave a flat grey picture.
            self._status("The mask covers the whole picture: inpainting needs some of it kept to fill from. "
                         "Erase part of the mask, or choose Generate to make a new picture.")
            return None
        if params.task == Task.stroke_edit and not doc.mask.any():
            (w, h), (sh, sw) = doc.size, stroke_work_size(*doc.image.shape[:2], self.model.resolution)
            if sh < h or sw < w:
                # Run anyway, it redrew every pixel from a copy a few times smaller: parts never
                # painted came back blurred (17.8 dB on a 768x512 photo, faces gone), said only after.
                self._status(f"Stroke edit without a mask would redraw the whole photo from a copy of about "
                             f"{sw}x{sh} px, and all of it would come back soft: paint the mask over your strokes "
                             "to change only there (Mask > Invert masks everything, to redraw it all anyway).")
                return None
        if params.task == Task.upscale and self.model.resolution % params.upscale_factor:
            ok = ", ".join(f"{f}x" for f in (2, 4, 8) if self.model.resolution % f == 0)
            self._status(f"This model ({self.model.resolution} px) can upscale by {ok}.")
            return None
        if params.task == Task.upscale:
            (w, h), k = doc.size, params.upscale_factor
            if w * k * h * k > imageio.MAX_PIXELS:  # the command line says the same before any compute
                # Only what the user can do: this editor has no crop tool (and the command line has the
                # same limit), so a smaller factor is named only if one fits, else another editor's crop.
                fits = [f for f in UPSCALE_FACTORS if f < k and self.model.resolution % f == 0
                        and w * f * h * f <= imageio.MAX_PIXELS]
                way = (f"choose a smaller factor ({fits[-1]}x), or crop the picture in another image editor first"
                       if fits else "crop or shrink the picture in another image editor first")
                self._status(f"Upscaling {w}x{h} by {k} would make {w * k}x{h * k} ({w * k * h * k / 1e6:.0f} Mpx), "
                             f"over the {imageio.MAX_PIXELS / 1e6:.0f} Mpx this editor opens: {way}.")
                return None
        # Shared with the job, not copied (96 Mpx: 92 MB a run): frozen, so a stroke painted while it
        # runs copies it first (Document.editable_mask) and the job keeps the mask it started with.
        mask = doc.mask
        mask.flags.writeable = False
        job = JobRequest(self._ids.next(), params, doc.image, mask, doc.image_revision, live=live,
                         alpha=doc.alpha if params.task == Task.upscale else None)
        self._job, self._job_live, self._job_batch, self._job_task = job.job_id, live, False, params.task
        self._job_mask = mask if params.task in USES_MASK else None
        self._job_redo = self.history.redo_mark()
        self._live_pending = False
        self.view.set_busy(True)
        # Replaces what an earlier attempt said ("the mask is empty"), which no longer holds.
        running = f"{TASK_LABELS[params.task]}{' (live)' if live else ''} running"
        self._job_said = f"{running}{self._class_note()}; Esc cancels."
        self._status(self._job_said)
        self.view.set_progress(0, 0, f"{TASK_LABELS[params.task]}: starting")
        self._time_left = self._new_time_left()
        self.engine.submit(job)
        return job.job_id

    def _class_note(self) -> str:
        """', class N' when the loaded model is class-conditional: the class is part of what runs."""
        return f", class {self.params.class_label}" if self.model is not None and self.model.num_classes else ""

    def cancel(self) -> None:
        self._live_pending = False
        if self._job is None:
            # Nothing of the document runs: Esc (and Cancel) stop the imports instead.
            for job in self._imports:
                self.engine.cancel(job)
            if self._imports:
                n = len(self._imports)
                self._status("Cancelling the import..." if n == 1 else f"Cancelling {n} imports...")
            return
        self.engine.cancel(self._job)
        if self._held_result is not None:  # it finished already and only waits for the stroke to end
            self._held_result = None
            self._end_job()
            self._status("Cancelled.")
            return
        self._job_cancelled = True  # the engine may have sent its result already: it must not apply
        self._job_said = "Cancelling..."
        self._status(self._job_said)

    @staticmethod
    def _new_time_left() -> TimeLeft:
        return TimeLeft()

    def on_progress(self, p: Progress) -> None:
        if p.job_id == self._job:
            label = TASK_LABELS[self._job_task or self.params.task]
            # A share of the work, not "step 29/86": the engine counts every network evaluation of
            # the job (an inpaint's structure pass and its refinement at finer scales, each tile of
            # a large upscale), which is not the number of steps the Steps picker names ("Default
            # (80 steps)"), and the two numbers side by side looked like a bug.
            done = f"{100 * min(p.done, p.total) // p.total} %" if p.total > 0 else "working"
            text = f"{label}: {p.stage}" if p.stage else f"{label}: {done}"
            left = format_time_left(self._time_left.update(p.done, p.total)) if p.total else ""
            left = left if p.done < p.total else ""
            batch_file = re.fullmatch(r"(\d+/\d+) (.+)", p.stage) if self._job_batch else None
            if batch_file:
                text = _batch_progress_text(label, *batch_file.groups(), left)
            elif left:
                text = f"{label}: {done} \u00b7 {left}"  # once the rate is known, the time left is added
            self._task_progress = (p.done, p.total, text)
            self.view.set_progress(p.done, p.total, text)
        elif p.job_id in self._imports:
            self._import_progress[p.job_id] = (p.done, p.total, p.stage)
            self._import_current = p.job_id
            self._show_imports()
        elif p.job_id == self._model_job:
            self.view.set_progress(p.done, p.total, p.stage)

    def on_finished(self, msg: object) -> None:
        if isinstance(msg, ModelReady):
            self._on_model_ready(msg)
        elif isinstance(msg, ImportDone):
            self._on_import_done(msg)
        elif isinstance(msg, JobResult):
            self._on_result(msg)
        elif isinstance(msg, BatchDone):
            self._on_batch_done(msg)

    def on_failed(self, f: JobFailed) -> None:
        if f.job_id == self._model_job:
            self._model_job = None
            self.view.show_error("Could not load the model", f.message)
            self.view.set_model_state("No model loaded: pick another one.", ready=False, warning=True)
            self._progress_ended()
        elif f.job_id in self._imports:
            name = self._import_ended(f.job_id)
            # Replaces "Importing NAME...", which would otherwise stay as if the import still ran.
            if f.cancelled:
                self._status(f"Import of {name} cancelled; nothing was added.")
            else:
                self._status(f"Could not import {name}.")
                self.view.show_error("Could not import the checkpoint", f.message)
        elif f.job_id == self._job:
            if self._job_live:
                self._live_pending = False  # a failing live job would fail again: do not loop
            self._end_job()
            if f.cancelled:
                self._status("Cancelled.")
            else:
                self._status("The task failed.")
                self.view.show_error("The task failed", f.message)
            if self._live_pending:  # a stroke released since (after Esc, or while a Run failed)
                self.run(live=True)

    def _end_job(self, *, show: bool = True) -> None:
        """Forget the job in flight; `show=False` leaves the view busy until `_show_idle` (see `_apply_result`)."""
        self._job = None
        self._job_live = False
        self._job_task = None
        self._job_batch = False
        self._job_mask = None
        self._job_redo = frozenset()
        self._job_cancelled = False
        self._held_result = None
        self._task_progress = None
        if show:
            self._show_idle()

    def _show_idle(self) -> None:
        self.view.set_busy(False)
        if self._imports:
            self._show_imports()  # set_busy(False) leaves the bar to them

    def _on_model_ready(self, msg: ModelReady) -> None:
        if msg.job_id != self._model_job:
            return  # the user picked another model while this one loaded
        self._model_job = None
        self.model = msg.info
        label = msg.info.label
        for i, m in enumerate(self.models):
            if m.path == msg.info.path:
                self.models[i] = msg.info
                label = picker_labels(self.models)[i]  # as the picker names it
        if msg.info.untrained:
            self.view.set_model_state(MISSING_DEFAULT if self.default_model is None else
                                      f"Using {label}: results will look like noise.", ready=True, warning=True)
        elif msg.info.guessed:
            # The file stores no size: the Size row under this text (and Model > Image Size) states the
            # real one, as `--image-size` does on the command line.
            fix = (" If that is wrong, choose the size it was trained at under Size (as --image-size does "
                   "on the command line)." if "resolution" in msg.info.guessed else "")
            # The note's reason in brackets stays in the picker's tooltip: a longer text widened the panel.
            what = msg.info.guessed.split(" (", 1)[0]
            chosen = f" Runs at {msg.info.resolution} px, the size you chose." if msg.info.size_chosen else ""
            self.view.set_model_state(f"Model: {label}. Guessed on import: {what}.{fix}{chosen}",
                                      ready=True, warning=True)
        elif msg.info.size_chosen:
            self.view.set_model_state(f"Model: {label}. Runs at {msg.info.resolution} px, the size you chose "
                                      f"(the file does not store one; the importer guessed {msg.info.size_guess} px).",
                                      ready=True, warning=False)
        else:
            self.view.set_model_state(f"Model: {label}", ready=True, warning=False)
        self._progress_ended()
        classes = msg.info.num_classes
        if classes and self.params.class_label >= classes:
            # A class kept from a model with more classes: the nearest this one has, shown in the panel.
            self.set_params(class_label=classes - 1)
        self._update_live()

    def _import_ended(self, job: int) -> str:
        """Forget a finished import; returns its source's name. The bar moves on to the others."""
        name = self._imports.pop(job)
        self._import_progress.pop(job, None)
        self.view.set_importing(bool(self._imports))
        self._progress_ended()
        return name

    def _on_import_done(self, msg: ImportDone) -> None:
        if msg.job_id not in self._imports:
            return
        self._import_ended(msg.job_id)
        note = ""
        try:
            # A size kept for an earlier file of this name (deleted since) is not this import's.
            forget_image_size(msg.path)
        except CatalogError as e:
            note = f" A size kept for an earlier {msg.path.name} could not be dropped: {e}."
        self._status(f"Imported {msg.path.name} into {msg.path.parent}.{note}")
        # reload: the path may be the loaded model's (deleted, then imported again): this is a new file.
        self.refresh_models(select=str(msg.path), reload=True, add_to_status=True)

    def _on_result(self, r: JobResult) -> None:
        if r.job_id != self._job:
            return  # stale: a newer job replaced it
        if self._job_cancelled:  # sent before the engine saw the cancel: Esc still wins
            self._end_job()
            self._status("Cancelled.")
            if self._live_pending:
                self.run(live=True)
            return
        if self._stroke is not None:
            # Never inside a stroke: its undo step and its pixels are based on the image under the
            # brush. The stroke is committed first, then this result applied (PaintingMixin.end_stroke).
            self._held_result = r
            return
        self._apply_result(r)

    def _apply_result(self, r: JobResult, repaint: Stroke | None = None) -> None:
        """Put a result into the document as one undo step.

        `repaint`: a colour stroke committed after the result arrived, on the image the job started
        from; the result applies anyway and the stroke is painted again on top of it.
        """
        live, job_mask, job_redo = self._job_live, self._job_mask, self._job_redo
        # The job ends now, but the view stays busy (progress bar, Run off) until the result is shown:
        # putting a 96 Mpx result on screen freezes the window for 0.6 s (an x2 upscale of 24 Mpx,
        # 0.9 s), which looked like a hang once the bar was gone.
        self._end_job(show=False)
        try:
            self._put_result(r, repaint, live, job_mask, job_redo)
        finally:
            self._show_idle()
        if self._live_pending:
            self.run(live=True)

    def _put_result(self, r: JobResult, repaint: Stroke | None, live: bool, job_mask: np.ndarray | None,
                    job_redo: frozenset[int]) -> None:
        """`_apply_result`'s work: apply `r` (or say why it is discarded), with the job already ended."""
        # Steps the user undid while it ran: the result's new undo step would take their redo away.
        undone = self.history.redo_since(job_redo)
        task = TASK_LABELS[r.task]
        if r.image_revision != self.document.image_revision and repaint is None:
            self._status("Result discarded: the image changed while the task ran.")
        elif job_mask is not None and job_mask.shape == self.document.mask.shape \
                and bool((self.document.mask < job_mask).any()):
            # Part of the area it fills was undone or erased meanwhile, Run or Live alike. Applied, the
            # result would fill where the user has just taken the mask back, on a state it was not
            # computed for, and its undo step would wipe the redo of the stroke they undid: Ctrl+Z
            # right after Run lost both. Dropping it loses only compute time: the document, the undo
            # and the redo stay exactly as the user left them, and Redo + Run gets the result back.
            # (Applying it "on its own state" would mean redoing the stroke behind the user's back.)
            # Strokes only added since keep it: the area it filled is still wanted.
            # "Undone" only where a redo made since Run brings the lost part of the mask back: an
            # unrelated stroke undone meanwhile must not be offered as the way back to an erased area.
            lost = job_mask > self.document.mask
            back = any(s.mask.shape == job_mask.shape and bool((s.mask[lost] >= job_mask[lost]).all())
                       for s in self.history.redo_states_since(job_redo))
            self._status(f"Result discarded: the mask was undone while {task} ran; Redo brings it back, then Run "
                         "again." if back else
                         f"Result discarded: part of the mask was erased while {task} ran; Run again to fill "
                         "what is masked now.")
        else:
            # The filled area is cleared from the mask below (a new array): the undo step can take
            # the old mask as it is instead of a copy (96 Mpx: 92 MB less per result).
            clears = job_mask is not None and job_mask.shape == self.document.mask.shape == r.image.shape[:2]
            before = self.document.snapshot(mask_replaced=clears)
            image = r.image if repaint is None else brushes.repaint(r.image, repaint)
            self.document.set_image(image, alpha=r.alpha, opaque=r.task == Task.generate)
            if r.task == Task.generate:
                # A generated picture is not the opened photo: Save must not offer to write it over
                # that file, nor carry its EXIF or profile (undo attaches the photo again).
                self.document.detach("generated.png")
            if clears:
                # The filled area is done: clear it so the overlay does not hide the result (IOPaint does
                # the same). Only what this job used: strokes painted while it ran stay for the next run.
                self.document.set_mask(np.where(job_mask > 0, np.uint8(0), self.document.mask), adopt=True)
            dropped = self._record(before, TASK_LABELS[r.task] + (" (live)" if live else ""))
            self._show_document()
            # Undone while it ran, but nothing the result depends on (a stroke painted meanwhile, the
            # mask for an upscale): the result still fits the document and applies; the redo it ends
            # is named, never lost without a word.
            gone = (f"Redo of {', '.join(dict.fromkeys(undone))} is no longer available: the result is the newest "
                    "step." if undone else "")
            notes = "".join(f" {n}" for n in (*r.notes, gone, dropped) if n)
            self._status(f"{task} done in {r.elapsed_s:.2f} s.{notes}")
            self._autosave()  # an accepted result is the work most worth keeping

    # -- history --------------------------------------------------------------------------------

    def undo(self) -> None:
        self._step_history(self.history.undo, f"Undone: {self.history.undo_label}.")

    def redo(self) -> None:
        self._step_history(self.history.redo, f"Redone: {self.history.redo_label}.")

    def _step_history(self, step: object, done: str) -> None:
        if self._stroke is not None:
            return
        # The step's mask replaces the document's, so the current one goes into the other stack as
        # it is, not copied (nothing to step: the next stroke copies it once, `editable_mask`).
        snap = step(self.document.snapshot(mask_replaced=True))  # type: ignore[operator]
        if snap is not None:
            self.document.restore(snap)
            self._show_document()
            # Replaces what the step took back ("Upscale done"), which no longer describes the picture.
            self._status(done)
            self._history_said = True

    def _record(self, before: Snapshot, label: str) -> str:
        """Add an undo step; returns a note for the status bar when the oldest steps had to go.

        On a 96 Mpx photo the memory limit is reached after a few colour strokes or results: without
        a word, undo then stopped short of the original and the user found out only by trying.
        """
        if self._history_said:
            # "Undone: Generate." stayed up after the next stroke, as if that stroke had undone something.
            # A new step makes it stale: the bar goes back to what still holds (a task still runs).
            self._status(self._job_said if self._job is not None else "")
        h = self.history
        if not h.record(before, label):
            return ""
        n = len(h.entries()[0])
        return (f"Undo now goes back {n} step{'s' if n != 1 else ''}: the oldest were dropped to keep undo "
                f"within {h.max_bytes / 2**30:.1f} GB and {h.max_entries} steps.")

    def _show_history(self) -> None:
        self.view.set_history(self.history.undo_label, self.history.redo_label)
        self.view.set_title(self.document.name, self.document.dirty)

    def _show_document(self) -> None:
        doc = self.document
        # Undo and redo of a mask edit leave the image and 'before' as they were; converting and
        # copying them again took ~0.3 s each on a 96 Mpx photo, with the UI frozen for nothing.
        # Document arrays are read-only, so the same object still holds the pixels the view shows.
        shown = self._shown
        if shown is None or doc.image is not shown[0]:
            self.view.set_image(to_uint8(doc.image), alpha=None if doc.alpha is None else to_uint8(doc.alpha))
        self.view.set_mask(doc.mask)
        if shown is None or doc.before is not shown[1] or doc.before_alpha is not shown[2]:
            # With the transparency it had, not the image's now: compare showed its raw colours
            # (black where transparent) beside a result drawn over the checkerboard.
            alpha = None if doc.before is None or doc.before_alpha is None else to_uint8(doc.before_alpha)
            self.view.set_before(None if doc.before is None else to_uint8(doc.before), alpha)
        self._shown = (doc.image, doc.before, doc.before_alpha)
        self._show_history()


__all__ = ["EditorController", "EditorView", "EngineClient"]
