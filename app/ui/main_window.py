"""MainWindow: layout, menus and actions, and the one block (`bind`) that wires widgets to the controller.

The window implements the controller's `EditorView` (`set_*`); everything the user does becomes
a controller call in an `_on_*` handler or a direct connection in `bind`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html import escape
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QEvent, QEventLoop, QObject, QSize, Qt, QTimer
from PySide6.QtGui import (QAction, QActionGroup, QCloseEvent, QGuiApplication, QIcon, QKeyEvent, QKeySequence,
                           QPainter, QPaintEvent, QResizeEvent)
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QComboBox, QHBoxLayout, QLabel, QLineEdit, QMainWindow,
                               QMenu, QMenuBar, QPlainTextEdit, QProgressBar, QScrollArea, QSlider, QStyle, QTextEdit,
                               QVBoxLayout, QWidget)

from ..model.brush import BrushSettings, BrushTool, Rect
from ..model.catalog import ModelInfo, size_choices
from ..model.jobs import DEFAULT_BATCH_FORMAT
from ..model.document import to_uint8
from .._documents import AUTOSAVE_INTERVAL_S
from ..files import SAVE_SUFFIXES, ImageError, save_as_path
from ..model.params import USES_MASK, GenerationParams
from . import dialogs
from .canvas import CanvasView, zoom_label
from .control_panel import ControlPanel
from .qimage import from_qimage_alpha, to_qimage, to_qimage_alpha

APP_TITLE = "Consistency Studio"
COMPARE_KEY = Qt.Key.Key_C  # hold to see the image before the last result
PROGRESS_LONGEST = "Stroke edit: 99 % \u00b7 about 12 h 55 min left"
# Imports in flight, as long as the controller makes it (controller.PROGRESS_CHARS: a long name is cut).
PROGRESS_IMPORTS_LONGEST = "12 imports \u00b7 cd_imagenet\u2026: Reading checkpoint"
PAN_KEY = Qt.Key.Key_Space  # hold and drag with the left button to pan the canvas
# File > Batch Results File Type: (menu entry, what the submenu's title calls it, tooltip) per
# `BATCH_FORMATS` key, in the order offered. What each keeps is what `engine.imageio.encode_picture` does.
BATCH_FORMAT_CHOICES = {
    "png": ("&PNG (keeps 16 bits and transparency)", "PNG",
            "Lossless; 16-bit pictures stay 16-bit, transparency is kept"),
    "jpg": ("&JPEG", "JPEG", "Quality 95, 8 bits; no transparency: transparent parts are flattened onto white"),
    "webp": ("&WebP (lossless)", "WebP", "Lossless, 8 bits; transparency is kept"),
    "tif": ("&TIFF", "TIFF", "Lossless; 16-bit pictures stay 16-bit, transparency is kept"),
    "bmp": ("&BMP", "BMP", "8 bits; no transparency (flattened onto white), no colour profile or EXIF"),
    "same": ("&Same as each input", "same as input", "Each result in its input's file type (a GIF's as PNG)"),
}
# A file step (open, save, mask file) that ends within this long runs no event loop while it works:
# most do (a 12 Mpx JPEG save), and they stay as atomic as a step on the UI thread.
FILE_STEP_WAIT_S = 0.15
# What the user can do, held off while a file step works off the UI thread (see `_in_background`).
HELD_INPUT = frozenset({
    QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick,
    QEvent.Type.MouseMove, QEvent.Type.Wheel, QEvent.Type.KeyPress, QEvent.Type.KeyRelease,
    QEvent.Type.ShortcutOverride, QEvent.Type.Shortcut, QEvent.Type.ContextMenu, QEvent.Type.DragEnter,
    QEvent.Type.DragMove, QEvent.Type.Drop, QEvent.Type.TabletPress, QEvent.Type.TabletRelease,
    QEvent.Type.TabletMove, QEvent.Type.TouchBegin, QEvent.Type.TouchUpdate, QEvent.Type.TouchEnd,
    QEvent.Type.InputMethod})
NOTHING_TO_COMPARE = "Nothing to compare yet: hold C after a Run to see the image as it was before."
# Mask menu steps that take a second on a large photo: (controller method, what the status bar says meanwhile).
MASK_STEPS = {"invert": ("invert_mask", "Inverting the mask..."), "grow": ("grow_mask", "Growing the mask..."),
              "shrink": ("shrink_mask", "Shrinking the mask..."), "feather": ("feather_mask", "Feathering the mask...")}

# (section, [(keys or mouse, what it does)]): Help > Keyboard Shortcuts shows them as a two-column table.
SHORTCUTS = [
    ("Canvas", [("Wheel, Ctrl+= / Ctrl+-", "Zoom in / out"), ("Ctrl+0", "Fit to window"),
                ("Ctrl+1", "Actual size (100 %)"), ("Middle button or Space+drag", "Pan")]),
    ("Brush", [("Left button", "Paint the mask"), ("Right button", "Erase the mask"),
               ("[ / ]", "Smaller / bigger brush")]),
    ("Compare", [("Hold C", "See the image before the last result (or drag the Before slider)")]),
    ("Mask", [("Ctrl+Shift+A", "Clear"), ("Ctrl+I", "Invert"), ("Ctrl+Alt+=", "Grow"), ("Ctrl+Alt+-", "Shrink"),
              ("Ctrl+Alt+F", "Feather")]),
    ("Run", [("Ctrl+Enter", "Run"), ("Esc", "Cancel"), ("Ctrl+R", "Random seed")]),
    ("Edit", [("Ctrl+Z", "Undo"), ("Ctrl+Shift+Z", "Redo")]),
]


def _shortcuts_table(sections: list[tuple[str, list[tuple[str, str]]]]) -> str:
    """Rich text: one row per binding, keys | action, under a bold heading per section.

    It was one paragraph in a 400 px box, wrapped mid-binding ("Ctrl+Alt+" at a line's end). The keys
    column never wraps ("nowrap"), so a binding always reads as one piece.
    """
    rows = []
    for title, bindings in sections:
        pad = "" if not rows else " style='padding-top: 8px'"
        rows.append(f"<tr><td colspan='2'{pad}><b>{escape(title)}</b></td></tr>")
        rows += [f"<tr><td nowrap style='padding-right: 16px'>{escape(keys)}</td><td>{escape(action)}</td></tr>"
                 for keys, action in bindings]
    return "<table cellspacing='0' cellpadding='2'>" + "".join(rows) + "</table>"


SHORTCUTS_HELP = _shortcuts_table(SHORTCUTS)


def about_text() -> str:
    """Help > About: with the version `cstudio --version` prints (what a bug report needs first)."""
    from ..__main__ import version  # stdlib only; its guard keeps it from running the app

    return (f"<b>{APP_TITLE}</b> {escape(version())}<br>An image editor built on consistency models.<br>"
            "Licensed under the GNU GPL, version 3 or later.")


def recent_labels(paths: list[str]) -> list[str]:
    """Open Recent's entries: the file's name, and for names listed more than once the folders that tell
    them apart ("swans.jpg \u2014 holiday", "swans.jpg \u2014 edits"); two identical "swans.jpg" left
    the user guessing. Each name gets as many of its closest folders as it takes, up to the full path.
    """
    parts = [Path(p).parts for p in paths]
    labels = [Path(p).name for p in paths]
    for name in {n for n in labels if labels.count(n) > 1}:
        same = [i for i, n in enumerate(labels) if n == name]
        where = {i: str(Path(paths[i]).parent) for i in same}
        for depth in range(1, max(len(parts[i]) for i in same)):
            where = {i: str(Path(*parts[i][-1 - depth:-1])) for i in same}
            if len(set(where.values())) == len(same):
                break
        for i in same:
            labels[i] = f"{name} \u2014 {where[i]}"
    return labels


def _types_text(widget: QWidget | None) -> bool:
    """True for widgets where a letter or Space is text being typed."""
    if isinstance(widget, QComboBox):
        return widget.isEditable()
    return isinstance(widget, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit))


class ElidedLabel(QLabel):
    """One line of plain text that ends in "\u2026" when it does not fit, with all of it in the tooltip.

    A plain QLabel in the status bar was cut off mid-word at the window's edge ("...paint a mask over
    your") with nothing to say more was there, and no way to read the rest. `text()` stays the full text.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setTextFormat(Qt.TextFormat.PlainText)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self._update_tip()

    def displayed_text(self) -> str:
        """What the label shows: its text, elided to its width."""
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width())

    def _update_tip(self) -> None:
        self.setToolTip(self.text() if self.displayed_text() != self.text() else "")

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        # Any width will do (the text elides): a long message must never widen the window.
        return QSize(0, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(0, super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._update_tip()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        self.style().drawItemText(painter, self.contentsRect(), int(self.alignment()), self.palette(),
                                  self.isEnabled(), self.displayed_text(), self.foregroundRole())


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.controller = None  # set by bind(); the view never acts before that
        self._busy = self._importing = False  # a task runs; an import runs (either can be cancelled)
        self._save_cancelled = False  # the last "Replace the original?" was cancelled (see `_on_save`)
        self._compare_refused = False  # C is down but there was no "before" image to show
        self._working_depth = 0  # `_working` steps in progress: a dialog asked inside one gets the pointer back
        self._file_step = False  # a file step works on a thread (`_in_background`): input is held off
        self._held_messages: list[tuple[Callable[[object], None], object]] = []  # the engine's, meanwhile
        self._close_after_step = False  # the window was asked to close during a file step
        self._step_fraction: float | None = None  # how far it has come, set from its thread
        self.canvas = CanvasView()
        self.panel = ControlPanel()
        self.split = QSlider(Qt.Orientation.Horizontal)
        self.split.setRange(0, 100)
        self.split.setToolTip("Drag to compare with the image before the last result (or hold C)")
        self.split_label = QLabel("Before")
        scroll = QScrollArea()
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Not a Tab stop of its own: it showed no focus and did nothing, one silent press between the
        # canvas and the Task box. It still scrolls to whichever of its controls Tab reaches.
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        scroll.setMinimumWidth(self.panel.minimumWidth() + 20)
        self.scroll = scroll
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.canvas, 1)
        split_row = QHBoxLayout()
        split_row.addWidget(self.split_label)
        split_row.addWidget(self.split, 1)
        right.addLayout(split_row)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(4, 4, 4, 4)
        row.addWidget(scroll)
        row.addLayout(right, 1)
        self.setCentralWidget(central)

        self.status_text = ElidedLabel()
        self.progress = QProgressBar()
        # Fixed: a status bar gives permanent widgets only their size hint, a few digits wide, which
        # clipped the step text ("npaint: step 12/84") however much room the bar had.
        # Wide enough, in this font, for the longest texts it shows (a stroke edit's share and time
        # left; the imports in flight).
        metrics = self.progress.fontMetrics()
        longest = max(metrics.horizontalAdvance(t) for t in (PROGRESS_LONGEST, PROGRESS_IMPORTS_LONGEST))
        self.progress.setFixedWidth(longest + 24)
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        self.zoom_text = QLabel()
        self.statusBar().addWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.zoom_text)
        self._make_actions()
        self._make_menus()
        self.mask_actions = [self.act_clear_mask, self.act_invert_mask, self.act_grow_mask, self.act_shrink_mask,
                             self.act_feather_mask, self.act_import_mask, self.act_export_mask]
        self.panel.set_actions(self.act_run, self.act_cancel, self.act_import, self.mask_actions)
        # The Random button is the panel's own; its tooltip names the action's shortcut like the others.
        seed_keys = self.act_seed.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        self.panel.randomise.setToolTip(f"Pick a new random seed ({seed_keys})")
        self.set_busy(False)
        self.set_history("", "")
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_INTERVAL_S * 1000)
        self.resize(1200, 800)

    # -- actions and menus ----------------------------------------------------------------------

    def _action(self, text: str, keys: object = None, icon: str | None = None,
                std_icon: QStyle.StandardPixmap | None = None) -> QAction:
        a = QAction(text, self)
        if isinstance(keys, QKeySequence.StandardKey):
            a.setShortcuts(keys)
        elif isinstance(keys, list):
            # Standard binding first, then ours if the platform lacks it (Redo is Ctrl+Y on Windows).
            seqs: list[QKeySequence] = []
            for k in keys:
                for s in (QKeySequence.keyBindings(k) if isinstance(k, QKeySequence.StandardKey) else [QKeySequence(k)]):
                    if s not in seqs:
                        seqs.append(s)
            a.setShortcuts(seqs)
        elif isinstance(keys, str):
            a.setShortcut(QKeySequence(keys))
        if icon or std_icon is not None:
            fallback = self.style().standardIcon(std_icon) if std_icon is not None else QIcon()
            a.setIcon(QIcon.fromTheme(icon, fallback) if icon else fallback)
        if a.shortcut().toString():
            # Without the mnemonic's "&": a tooltip shows it as is ("&Run (Ctrl+Return)").
            name = text.replace("&", "").rstrip(".")
            a.setToolTip(f"{name} ({a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})")
        self.addAction(a)  # shortcuts work even when the menu bar is hidden
        return a

    def _make_actions(self) -> None:
        SP = QStyle.StandardPixmap
        K = QKeySequence.StandardKey
        self.act_open = self._action("&Open...", K.Open, "document-open", SP.SP_DialogOpenButton)
        self.act_save = self._action("&Save", K.Save, "document-save", SP.SP_DialogSaveButton)
        self.act_save_as = self._action("Save &As...", K.SaveAs, "document-save-as")
        self.act_copy = self._action("&Copy Image", K.Copy, "edit-copy")
        self.act_paste = self._action("&Paste as New Image", K.Paste, "edit-paste")
        self.act_quit = self._action("&Quit", [K.Quit, "Ctrl+Q"], "application-exit")
        self.act_undo = self._action("&Undo", K.Undo, "edit-undo", SP.SP_ArrowBack)
        self.act_redo = self._action("&Redo", [K.Redo, "Ctrl+Shift+Z"], "edit-redo", SP.SP_ArrowForward)
        self.act_zoom_in = self._action("Zoom &In", [K.ZoomIn, "Ctrl+="], "zoom-in")
        self.act_zoom_out = self._action("Zoom &Out", K.ZoomOut, "zoom-out")
        self.act_zoom_fit = self._action("&Fit to Window", "Ctrl+0", "zoom-fit-best")
        self.act_zoom_100 = self._action("&Actual Size (100 %)", "Ctrl+1", "zoom-original")
        self.act_run = self._action("&Run", ["Ctrl+Return", "Ctrl+Enter"], "media-playback-start", SP.SP_MediaPlay)
        self.act_cancel = self._action("&Cancel", "Esc", "process-stop", SP.SP_MediaStop)
        self.act_seed = self._action("Random &Seed", "Ctrl+R")
        self.act_import = self._action("&Import Checkpoint...", None, "document-import", SP.SP_DirOpenIcon)
        self.act_import.setToolTip("Import a model: an OpenAI .pt or a .safetensors file "
                                   "(a diffusers folder: Model menu)")
        self.act_import_folder = self._action("Import &Diffusers Folder...")
        self.act_image_size = self._action("Image &Size...")
        self.act_image_size.setToolTip("The image size the model was trained at, for an imported OpenAI .pt "
                                       "(those files do not store it)")
        self.act_batch_folder = self._action("Batch Results to a &Folder...")
        self.act_batch_beside = self._action("Batch Results &Next to Inputs")
        self.act_batch_beside.setToolTip("Batches (several files or a folder dropped on the window) write each "
                                         "result next to its input")
        # Checkable and exclusive: the menu shows which of the two batches use now (it showed neither).
        batch_group = QActionGroup(self)
        for a in (self.act_batch_folder, self.act_batch_beside):
            a.setCheckable(True)
            batch_group.addAction(a)
        self._show_batch_choice("")
        # Off by default: a batch dropped again skips what exists, so a stopped batch resumes. On, it
        # redoes everything (after a change of seed, steps or model), as the CLI's --overwrite does.
        self.act_batch_overwrite = self._action("Batch: Over&write Existing Results")
        self.act_batch_overwrite.setCheckable(True)
        self.act_batch_overwrite.setToolTip("Batches replace results that exist already (each written whole, "
                                            "never half). Off: those files are skipped, so a batch resumes")
        # Which file type batches write: exclusive and checkable like the folder choice above.
        format_group = QActionGroup(self)
        self.batch_format_actions: dict[str, QAction] = {}
        for key, (text, _, tip) in BATCH_FORMAT_CHOICES.items():
            a = QAction(text, self)
            a.setCheckable(True)
            a.setToolTip(tip)
            format_group.addAction(a)
            self.batch_format_actions[key] = a
        self.act_clear_mask = self._action("Clear", "Ctrl+Shift+A")
        self.act_invert_mask = self._action("Invert", "Ctrl+I")
        self.act_grow_mask = self._action("Grow", "Ctrl+Alt+=")
        self.act_shrink_mask = self._action("Shrink", "Ctrl+Alt+-")
        self.act_feather_mask = self._action("Feather", "Ctrl+Alt+F")
        self.act_import_mask = self._action("Import...")
        self.act_import_mask.setToolTip("Import a mask from an image file (white = regenerate)")
        self.act_export_mask = self._action("Export...")
        self.act_export_mask.setToolTip("Save the mask as a PNG file")
        self.act_bigger = self._action("Bigger Brush", "]")
        self.act_smaller = self._action("Smaller Brush", "[")
        self.act_shortcuts = self._action("&Keyboard Shortcuts", K.HelpContents)
        self.act_about = self._action("&About")

    def _make_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addActions([self.act_open])
        self.recent_menu = m.addMenu("Open &Recent")
        m.addActions([self.act_save, self.act_save_as])
        m.addSeparator()
        m.addActions([self.act_batch_folder, self.act_batch_beside, self.act_batch_overwrite])
        # A submenu: six more entries would have doubled the File menu's length.
        self.batch_format_menu = m.addMenu("")
        self.batch_format_menu.addActions(list(self.batch_format_actions.values()))
        self._show_batch_format(DEFAULT_BATCH_FORMAT)
        m.addSeparator()
        m.addActions([self.act_copy, self.act_paste])
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Edit")
        m.addActions([self.act_undo, self.act_redo])
        m = mb.addMenu("&View")
        m.addActions([self.act_zoom_in, self.act_zoom_out, self.act_zoom_fit, self.act_zoom_100])
        m = mb.addMenu("&Mask")
        m.addActions([self.act_clear_mask, self.act_invert_mask, self.act_grow_mask, self.act_shrink_mask,
                      self.act_feather_mask])
        m.addSeparator()
        m.addActions([self.act_import_mask, self.act_export_mask, self.act_smaller, self.act_bigger])
        m = mb.addMenu("&Run")
        m.addActions([self.act_run, self.act_cancel, self.act_seed])
        m = mb.addMenu("M&odel")
        m.addActions([self.act_import, self.act_import_folder])
        m.addSeparator()
        m.addAction(self.act_image_size)
        m = mb.addMenu("&Help")
        m.addActions([self.act_shortcuts, self.act_about])
        # A QMenu hides its actions' tooltips unless told: the ones written for the menus (what Import
        # Checkpoint takes, a recent file's full path, the batch folder) were never seen.
        for menu in self.findChildren(QMenu):
            menu.setToolTipsVisible(True)

    def _show_batch_choice(self, folder: str) -> None:
        """Check where batches write (`folder`, or next to the inputs if empty) and name the folder."""
        (self.act_batch_folder if folder else self.act_batch_beside).setChecked(True)
        if folder:
            name = (Path(folder).name or folder).replace("&", "&&")  # "&" would be a mnemonic
            self.act_batch_folder.setText(f"Batch Results to &Folder \u201c{name}\u201d...")
            self.act_batch_folder.setToolTip(f"Batches write to {folder}. Click to pick another folder.")
        else:
            self.act_batch_folder.setText("Batch Results to a &Folder...")
            self.act_batch_folder.setToolTip("Pick a folder for what batches (several files or a folder dropped "
                                             "on the window) write")

    def _show_batch_format(self, fmt: str) -> None:
        """Check the file type batches write; the submenu's title names it, seen without opening it."""
        self.batch_format_actions[fmt].setChecked(True)
        self.batch_format_menu.setTitle(f"Batch Results File &Type: {BATCH_FORMAT_CHOICES[fmt][1]}")

    def _on_batch_format(self, fmt: str) -> None:
        self.controller.set_batch_format(fmt)
        self._show_batch_format(self.controller.batch_format)

    # -- the one wiring block -------------------------------------------------------------------

    def bind(self, controller, engine) -> None:  # noqa: ANN001 - EditorController, EngineClient
        self.controller = c = controller
        self.engine = engine
        engine.progress.connect(lambda m: self._engine_message(c.on_progress, m))
        engine.finished.connect(lambda m: self._engine_message(c.on_finished, m))
        engine.failed.connect(lambda m: self._engine_message(c.on_failed, m))
        c.offload = self._in_background
        c.step_progress = self._set_step_fraction
        p = self.panel
        p.task_changed.connect(lambda t: c.set_params(task=t))
        p.model_selected.connect(c.select_model)
        p.model_size_selected.connect(self._on_model_size)
        p.steps_changed.connect(lambda n: c.set_params(steps=n))
        p.seed_changed.connect(lambda n: c.set_params(seed=n))
        p.randomise_requested.connect(c.randomise_seed)
        p.class_changed.connect(lambda n: c.set_params(class_label=n))
        p.random_class_requested.connect(c.randomise_class)
        p.strength_changed.connect(lambda v: c.set_params(strength=v))
        p.factor_changed.connect(lambda f: c.set_params(upscale_factor=f))
        p.detail_toggled.connect(lambda on: c.set_params(upscale_detail=on))
        p.live_toggled.connect(lambda on: c.set_params(live=on))
        p.context_changed.connect(lambda v: c.set_params(context=v))
        p.min_context_changed.connect(lambda v: c.set_params(min_context=v))
        p.grow_changed.connect(lambda v: c.set_params(grow=v))
        p.feather_changed.connect(lambda v: c.set_params(feather=v))
        p.grain_toggled.connect(lambda on: c.set_params(grain=on))
        p.render_size_changed.connect(lambda v: c.set_params(render_size=v))
        p.brush_tool_changed.connect(lambda t: c.set_brush(tool=t))
        p.brush_size_changed.connect(lambda v: c.set_brush(size=v))
        p.brush_hardness_changed.connect(lambda v: c.set_brush(hardness=v))
        p.brush_colour_requested.connect(self._on_colour_requested)
        self.canvas.stroke_started.connect(lambda x, y, erase: c.begin_stroke(x, y, erase=erase))
        self.canvas.stroke_moved.connect(c.extend_stroke)
        self.canvas.stroke_finished.connect(c.end_stroke)
        self.canvas.files_dropped.connect(self._on_files_dropped)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_text.setText(zoom_label(z)))
        self.split.valueChanged.connect(lambda v: self.canvas.set_split(v / 100))
        self.act_open.triggered.connect(self._on_open)
        self.act_save.triggered.connect(self._on_save)
        self.act_save_as.triggered.connect(self._on_save_as)
        self.act_copy.triggered.connect(self._on_copy)
        self.act_paste.triggered.connect(self._on_paste)
        self.act_quit.triggered.connect(self.close)
        self.act_undo.triggered.connect(c.undo)
        self.act_redo.triggered.connect(c.redo)
        self.act_zoom_in.triggered.connect(self.canvas.zoom_in)
        self.act_zoom_out.triggered.connect(self.canvas.zoom_out)
        self.act_zoom_fit.triggered.connect(self.canvas.zoom_fit)
        self.act_zoom_100.triggered.connect(self.canvas.zoom_actual)
        self.act_run.triggered.connect(lambda: c.run())
        self.act_cancel.triggered.connect(c.cancel)
        self.act_seed.triggered.connect(c.randomise_seed)
        self.act_import.triggered.connect(lambda: self._on_import(folder=False))
        self.act_import_folder.triggered.connect(lambda: self._on_import(folder=True))
        self.act_image_size.triggered.connect(lambda: self._on_model_size(0))
        self.act_batch_folder.triggered.connect(self._on_batch_folder)
        self.act_batch_beside.triggered.connect(self._on_batch_beside)
        self._show_batch_choice(c.settings.batch_out_dir)
        self.act_batch_overwrite.setChecked(c.batch_overwrite)
        self.act_batch_overwrite.triggered.connect(c.set_batch_overwrite)
        for key, a in self.batch_format_actions.items():
            a.triggered.connect(lambda _=False, key=key: self._on_batch_format(key))
        self._show_batch_format(c.batch_format)
        self.autosave_timer.timeout.connect(c.autosave_tick)
        self.autosave_timer.start()
        self.act_clear_mask.triggered.connect(c.clear_mask)
        for name, action in (("invert", self.act_invert_mask), ("grow", self.act_grow_mask),
                             ("shrink", self.act_shrink_mask), ("feather", self.act_feather_mask)):
            action.triggered.connect(lambda _=False, name=name: self._on_mask_step(name))
        self.act_import_mask.triggered.connect(self._on_import_mask)
        self.act_export_mask.triggered.connect(self._on_export_mask)
        self.act_bigger.triggered.connect(c.brush_bigger)
        self.act_smaller.triggered.connect(c.brush_smaller)
        self.act_shortcuts.triggered.connect(lambda: self._modal(dialogs.show_text, "Keyboard shortcuts",
                                                                 SHORTCUTS_HELP))
        self.act_about.triggered.connect(lambda: self._modal(dialogs.show_text, f"About {APP_TITLE}", about_text()))
        QApplication.instance().installEventFilter(self)
        geometry = c.settings.window_geometry
        if geometry:
            self.restoreGeometry(QByteArray.fromHex(geometry.encode()))

    # -- EditorView: controller -> view ---------------------------------------------------------

    def set_image(self, image: np.ndarray, rect: Rect | None = None, alpha: np.ndarray | None = None) -> None:
        self.canvas.set_image(image, rect, alpha)

    def set_mask(self, mask: np.ndarray, rect: Rect | None = None) -> None:
        self.canvas.set_mask(mask, rect)

    def set_before(self, image: np.ndarray | None, alpha: np.ndarray | None = None) -> None:
        self.canvas.set_before(image, alpha)
        for w in (self.split, self.split_label):
            w.setEnabled(image is not None)

    def set_params(self, params: GenerationParams) -> None:
        model = self.controller.model if self.controller is not None else None
        self.panel.set_params(params, model.published_ts if model is not None else None,
                              model.kind if model is not None else "cm",
                              model.num_classes if model is not None else None,
                              model.edm_steps if model is not None else None,
                              model.class_names if model is not None else None)
        # The actions, not only the panel's greyed buttons: Ctrl+I or the Mask menu in Colorize
        # changed a mask nobody could see, which then turned up in Inpaint.
        for a in self.mask_actions:
            a.setEnabled(params.task in USES_MASK)
        self.canvas.set_mask_visible(params.task in USES_MASK)  # kept, shown again in a task that uses it

    def set_brush(self, brush: BrushSettings) -> None:
        self.panel.set_brush(brush)
        self.canvas.set_brush_size(brush.size)

    def set_models(self, models: list[ModelInfo], selected: int) -> None:
        self.panel.set_models(models, selected)

    def set_model_state(self, text: str, ready: bool, warning: bool) -> None:
        self.panel.set_model_state(text, warning)
        self.act_run.setEnabled(ready and not self._busy)
        self._model_ready = ready
        if self.controller is not None:
            self.set_params(self.controller.params)  # "Default (n steps)" depends on the model
            self._show_model_sizes()
        if warning:
            # The warning stays in the panel, in full and in colour, for as long as it holds. Not in
            # the status bar too: the model loads just after the image opens, so it replaced the
            # "Opened ..." line and its notes (an animated image's first frame) before anyone read them.
            self.scroll.ensureWidgetVisible(self.panel.model_state)

    def _show_model_sizes(self) -> None:
        """The Size row and Model > Image Size for the loaded model (kept but greyed while one loads)."""
        model = self.controller.model if self.controller is not None else None
        if model is None:
            self.panel.model_size.setEnabled(False)
            self.act_image_size.setEnabled(False)
            return
        sizes = size_choices(model)
        self.panel.set_model_sizes(sizes, model.resolution, model.size_guess, model.size_step)
        self.act_image_size.setEnabled(bool(sizes))

    def set_live_available(self, available: bool) -> None:
        self.panel.set_live_available(available)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.act_run.setEnabled(not busy and getattr(self, "_model_ready", False))
        self.act_cancel.setEnabled(busy or self._importing)
        if not busy and not self._importing:  # an import in flight keeps the bar (the controller fills it)
            self.progress.setVisible(False)

    def set_importing(self, importing: bool) -> None:
        # An import (seconds to minutes for a 2 GB checkpoint) can be cancelled like a task.
        self._importing = importing
        self.act_cancel.setEnabled(self._busy or importing)

    def set_progress(self, done: int, total: int, text: str) -> None:
        if not text:
            self.progress.setVisible(self._busy)
            return
        self.progress.setVisible(True)
        self.progress.setRange(0, total)  # total 0 = busy indicator until the first step reports
        self.progress.setValue(done)
        self.progress.setFormat(text)

    def set_status(self, text: str) -> None:
        self.status_text.setText(text)

    def set_title(self, name: str, dirty: bool) -> None:
        self.setWindowTitle(f"{name}[*] - {APP_TITLE}")
        self.setWindowModified(dirty)

    def set_history(self, undo_label: str, redo_label: str) -> None:
        self.act_undo.setEnabled(bool(undo_label))
        self.act_undo.setText(f"&Undo {undo_label}" if undo_label else "&Undo")
        self.act_redo.setEnabled(bool(redo_label))
        self.act_redo.setText(f"&Redo {redo_label}" if redo_label else "&Redo")

    def set_recent_files(self, paths: list[str]) -> None:
        self.recent_menu.clear()
        for p, label in zip(paths, recent_labels(paths)):
            a = self.recent_menu.addAction(label.replace("&", "&&"))  # "&" would be a mnemonic
            a.setToolTip(p)
            a.triggered.connect(lambda _=False, p=p: self._open(Path(p)))
        self.recent_menu.setEnabled(bool(paths))

    def show_error(self, title: str, message: str) -> None:
        self._modal(dialogs.show_error, title, message)

    def confirm_overwrite(self, name: str, backup_name: str, loses: str = "") -> bool:
        answer = self._modal(dialogs.confirm_overwrite, name, backup_name, *((loses,) if loses else ()))
        # None is Cancel (or Esc): `_on_save` must then stop, where False (Save As...) goes on to Save As.
        self._save_cancelled = answer is None
        return answer is True

    def ask_recover(self, description: str) -> str:
        return self._modal(dialogs.ask_recover, description)

    def commit_edits(self) -> None:
        self.panel.commit_edits()

    def _modal(self, dialog, *args):  # noqa: ANN001, ANN202 - a function of app.ui.dialogs and its arguments
        """Every modal dialog goes through here: it takes the mouse, so a drag on the canvas ends first.

        Otherwise the canvas never sees the button's release: the brush would stay down (hovering
        after the dialog would paint) and undo and autosave would wait for a stroke that never ends.
        """
        self.canvas.finish_input()
        self.canvas.release_keys()  # the dialog takes the keyboard: a held C or Space is released there
        # One asked while a file step works (by a timer) must get the user's input, or nothing could
        # answer it; its modality keeps that input off the window behind it.
        held, self._file_step = self._file_step, False
        try:
            if not self._working_depth:
                return dialog(self, *args)
            # Asked in the middle of a `_working` step ("Replace the original?", an error): the dialog
            # waits for the user, so it gets the normal pointer, not the wait cursor of the step around it.
            QApplication.setOverrideCursor(Qt.CursorShape.ArrowCursor)
            try:
                return dialog(self, *args)
            finally:
                QApplication.restoreOverrideCursor()
        finally:
            self._file_step = held

    @contextmanager
    def _working(self, text: str) -> Iterator[None]:
        """A step that takes seconds on a large photo (open, save, mask files and edits): a wait cursor
        and `text` ("Saving photo.png...") in the status bar while it runs.

        Without them a 96 Mpx save froze the window for 16 s with nothing to tell a hang from work.
        The text is painted at once with `repaint`, which paints that label and nothing else:
        processing events instead would let clicks, keys, the autosave timer and the engine's results
        run in the middle of the step. (The file work inside such a step goes on a thread with the
        window painting, `_in_background`, which holds those off itself; the mask edits stay here.)
        The cursor is always restored, also when the step raises; the text is put back unless the
        step said something of its own (the controller's "Saved ...").
        """
        before = self.status_text.text()
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        self._working_depth += 1
        try:
            self.status_text.setText(text)
            self.status_text.repaint()
            yield
        finally:
            self._working_depth -= 1
            QApplication.restoreOverrideCursor()
            if self.status_text.text() == text:
                self.status_text.setText(before)

    # -- file steps off the UI thread -----------------------------------------------------------

    def _in_background(self, work: Callable[[], object]) -> object:
        """Run `work` (decode, or encode and write, a file: seconds on a large photo) on a thread while
        the window keeps painting; return its result or raise its exception here. The controller's
        `offload`.

        A 24 Mpx PNG save held the UI thread for 8-10 s: nothing repainted, and desktops offer to kill
        a window that long unresponsive. The step stays modal: a stroke being drawn ends first (as
        before a dialog), the user's input is held off (`HELD_INPUT`), the engine's messages wait
        until the step is over (a result applied mid-save would change the picture being written, and
        the controller's bookkeeping after the write), and a close waits for the end of the step.
        A step done within FILE_STEP_WAIT_S runs no event loop at all.
        """
        if self._file_step or threading.current_thread() is not threading.main_thread():
            return work()  # a step inside a step (a dialog's, a timer's): nothing to gain from another thread
        self.canvas.finish_input()
        self.canvas.release_keys()
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["value"] = work()
            except BaseException as e:  # noqa: BLE001 - re-raised on the UI thread below
                outcome["error"] = e

        thread = threading.Thread(target=run, name="cstudio-file-step", daemon=True)
        said = self.status_text.text()  # "Saving photo.png...": a percentage goes after it
        shown = [said]

        def poll_step() -> None:
            fraction = self._step_fraction
            if fraction is not None and self.status_text.text() == shown[0]:
                shown[0] = f"{said} {min(99, int(100 * fraction))} %"
                self.status_text.setText(shown[0])
            if not thread.is_alive():
                loop.quit()

        self._step_fraction = None
        self._file_step = True
        try:
            thread.start()
            thread.join(FILE_STEP_WAIT_S)
            if thread.is_alive():
                loop = QEventLoop()
                poll = QTimer()
                poll.setInterval(20)
                poll.timeout.connect(poll_step)
                poll.start()
                loop.exec()
                poll.stop()
            thread.join()
        finally:
            self._file_step = False
            if self.status_text.text() == shown[0]:
                self.status_text.setText(said)  # the percentage was ours; what the caller says comes next
            if self._held_messages:
                # After the caller has finished with the step (a save marks the document saved first).
                QTimer.singleShot(0, self._release_messages)
            if self._close_after_step:
                self._close_after_step = False
                QTimer.singleShot(0, self._close_when_idle)
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["value"]

    def _close_when_idle(self) -> None:
        """The close asked for during a file step, once what the step led to is over.

        The step's caller may still show a dialog (the save failed: an error box, then Save As):
        a close run inside that dialog's event loop asked "Save changes?" over the error box and
        shut the window down under the rest of the save. So it waits until no dialog or step is
        up; a window closed meanwhile (the step was the save a close asked for) is not closed again.
        """
        if not self.isVisible():
            return
        if self._file_step or self._working_depth or QApplication.activeModalWidget() is not None:
            QTimer.singleShot(50, self._close_when_idle)
            return
        self.close()

    def _set_step_fraction(self, fraction: float) -> None:
        self._step_fraction = fraction  # on the file step's thread: a plain attribute, read by its poll

    def _engine_message(self, handler: Callable[[object], None], message: object) -> None:
        if self._file_step or self._held_messages:
            self._held_messages.append((handler, message))  # in order, behind any still held
        else:
            handler(message)

    def _release_messages(self) -> None:
        while self._held_messages and not self._file_step:
            handler, message = self._held_messages.pop(0)
            handler(message)

    # -- user input -> controller ---------------------------------------------------------------

    def _maybe_save(self) -> bool:
        """True if the current document may be replaced or closed (saved, discarded or clean)."""
        doc = self.controller.document
        if not doc.dirty:
            return True
        answer = self._modal(dialogs.ask_unsaved, doc.name)
        if answer == "save":
            return self._on_save()
        return answer == "discard"

    def _open(self, path: Path) -> bool:
        if not self._maybe_save():
            return False
        with self._working(f"Opening {path.name}..."):
            opened = self.controller.open_path(path)
        if not opened:
            return False
        self.canvas.zoom_fit()  # a new picture starts whole, not at the zoom the last one was left at
        return True

    def _on_open(self) -> None:
        path = self._modal(dialogs.open_image_file, self.controller.settings.last_dir)
        if path:
            self._open(Path(path))

    def _on_files_dropped(self, files: list[str]) -> None:
        paths = [Path(f) for f in files]
        if len(paths) == 1 and not paths[0].is_dir():
            self._open(paths[0])
        else:  # several files or a folder: a batch of the current task; the open document stays
            self.controller.run_batch(paths)

    def _on_batch_folder(self) -> None:
        start = self.controller.settings.batch_out_dir or self.controller.settings.last_dir
        folder = self._modal(dialogs.pick_batch_folder, start)
        if folder:
            self.controller.set_batch_out_dir(Path(folder))
        # Also when cancelled: clicking the action checked it, but nothing changed.
        self._show_batch_choice(self.controller.settings.batch_out_dir)

    def _on_batch_beside(self) -> None:
        self.controller.set_batch_out_dir(None)
        self._show_batch_choice(self.controller.settings.batch_out_dir)

    def _on_save(self) -> bool:
        path = self.controller.document.path
        if path is not None and path.suffix.lower() not in SAVE_SUFFIXES:
            # Opened from a format the app reads but cannot write (GIF): saving over it could only end
            # in an error box before Save As, so go to Save As straight away.
            return self._on_save_as()
        self._save_cancelled = False
        if path is not None:
            with self._working(f"Saving {path.name}..."):
                saved = self.controller.save()
            if saved:
                return True
        # Not saved: no file yet, a failed write, or "Save As..." in "Replace the original?". Cancel
        # there (Esc, the close button) means save nothing: it used to open Save As all the same.
        return not self._save_cancelled and self._on_save_as()

    def _on_save_as(self) -> bool:
        doc = self.controller.document
        start = Path(self.controller.settings.last_dir or Path.home()) / (Path(doc.name).stem + ".png")
        suggested = doc.path or start
        if suggested.suffix.lower() not in SAVE_SUFFIXES:
            # "anim.gif" would come back as "anim.gif.png"; offer the name the file will really get.
            suggested = suggested.with_suffix(".png")
        chosen = self._modal(dialogs.save_image_file, str(suggested))
        if not chosen:
            return False
        path, suffix = chosen
        try:
            # A bare name gets the picked file type's extension; "anim.gif" is refused (it was saved as
            # "anim.gif.png" without a word), the message naming the types that can be saved.
            target = save_as_path(Path(path), suffix)
        except ImageError as e:
            self.show_error("Could not save the image", f"{e}\nNothing was saved; your work is still open.")
            return False
        # The file dialog asked before choosing an existing file; not for a name we extended ourselves.
        with self._working(f"Saving {target.name}..."):
            return self.controller.save(target, confirmed=str(target) == path)

    def _on_copy(self) -> None:
        with self._working("Copying the image..."):
            self._copy()

    def _copy(self) -> None:
        doc = self.controller.document
        rgb = to_uint8(doc.image)
        if doc.alpha is None:
            QGuiApplication.clipboard().setImage(to_qimage(rgb))
            self.set_status("Image copied to the clipboard.")
            return
        # With its alpha, as paste reads it (`from_qimage_alpha`): an RGB copy turned the transparent
        # parts into their raw colour (often black), in other apps and in a paste back here alike.
        QGuiApplication.clipboard().setImage(to_qimage_alpha(rgb, to_uint8(doc.alpha)))
        self.set_status("Image copied to the clipboard, transparency kept.")

    def _on_paste(self) -> None:
        clip = QGuiApplication.clipboard()
        md = clip.mimeData()
        if md is not None and md.hasUrls() and any(u.isLocalFile() for u in md.urls()):
            self._open(Path(next(u.toLocalFile() for u in md.urls() if u.isLocalFile())))
            return
        image = clip.image()
        if image.isNull():
            self.set_status("The clipboard holds no image.")
            return
        if not self._maybe_save():
            return
        with self._working("Pasting the image..."):
            rgb, alpha = from_qimage_alpha(image)
            # Transparency is kept as when a file is opened: it was dropped, transparent areas saved black.
            self.controller.open_array(rgb, alpha=alpha)
        self.canvas.zoom_fit()

    def _on_import(self, folder: bool) -> None:
        path = self._modal(dialogs.open_checkpoint, self.controller.settings.last_dir, folder)
        if path:
            self.controller.import_checkpoint(Path(path))

    def _on_model_size(self, size: int) -> None:
        """A size from the Size row, or 0 ("Other...", Model > Image Size): ask for one."""
        model = self.controller.model
        if model is None:
            return
        value: object = size
        if not size and not size_choices(model):
            value = model.resolution  # a model that states its size: the controller says so
        elif not size:
            text = self._modal(dialogs.ask_image_size, model.name, list(size_choices(model)), model.resolution,
                               model.size_guess, model.size_step)
            if text is None:
                self._show_model_sizes()  # "Other..." stays picked in the row otherwise
                return
            number = re.fullmatch(r"\s*(\d{1,9})\s*(px)?(\s*\(.*\))?\s*", text, re.IGNORECASE)
            value = int(number.group(1)) if number else text  # the controller says why text is no size
        self.controller.set_image_size(value)
        self._show_model_sizes()  # a refused size: the row shows the model's size again

    def _on_import_mask(self) -> None:
        path = self._modal(dialogs.open_mask_file, self.controller.settings.last_dir)
        if path:
            with self._working(f"Importing the mask from {Path(path).name}..."):
                self.controller.import_mask(Path(path))

    def _on_export_mask(self) -> None:
        doc = self.controller.document
        # An empty last_dir would make the suggestion relative: the dialog would open in the process's
        # working folder (wherever the app was started from). The image's own folder, else home.
        start = self.controller.settings.last_dir or (doc.path.parent if doc.path is not None else Path.home())
        path = self._modal(dialogs.save_mask_file, str(Path(start) / f"{Path(doc.name).stem}-mask.png"))
        if path:
            # Masks are always written as PNG (lossless); a name typed with another extension
            # ("mask.jpg") gets .png added, so the file's name never lies about its contents.
            target = Path(path)
            if target.suffix.lower() != ".png":
                target = target.with_name(target.name + ".png")
                # The file dialog asked about the name it returned, not this one.
                if target.exists() and not self._modal(dialogs.confirm_replace, target.name):
                    return
            with self._working(f"Saving the mask to {target.name}..."):
                self.controller.export_mask(target)

    def _on_mask_step(self, name: str) -> None:
        """Mask > Invert, Grow, Shrink or Feather (`MASK_STEPS`): a second each on a 96 Mpx photo."""
        method, text = MASK_STEPS[name]
        with self._working(text):
            getattr(self.controller, method)()

    def _on_colour_requested(self) -> None:
        colour = self._modal(dialogs.pick_colour, self.controller.brush.colour)
        if colour is not None:
            # A colour is picked to paint with it: the mask brushes would ignore it.
            self.controller.set_brush(colour=colour, tool=BrushTool.colour)

    # -- window events --------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if self._file_step and event.type() in HELD_INPUT:
            return True
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and isinstance(event, QKeyEvent) \
                and event.key() in (COMPARE_KEY, PAN_KEY) and self._held_key(event):
            return True
        return super().eventFilter(watched, event)

    def _held_key(self, event: QKeyEvent) -> bool:
        """Hold C (compare) and Space (pan) wherever the focus is; True if the event is consumed.

        The key is left alone where it is being typed (a text field, a spin box, an editable combo) and
        while a menu is open (C is the mnemonic of &Copy Image and &Cancel). Everywhere else it is
        consumed, auto-repeats included: a focused non-editable combo would otherwise search its items
        (holding C on the Task combo would pick Colorize, on the Model combo load another model).
        Space only pans with the pointer over the canvas (or the canvas focused): elsewhere it keeps its
        usual meaning for the focused checkbox or button.
        """
        compare = event.key() == COMPARE_KEY
        if compare and self._compare_refused:
            # C went down with nothing to compare: its repeats and release are consumed like a held
            # key's (a focused combo would search by them), and nothing else happens.
            if event.type() == QEvent.Type.KeyRelease or event.isAutoRepeat():
                if not event.isAutoRepeat():
                    self._compare_refused = False
                return True
            self._compare_refused = False  # a new press: the release went elsewhere (another window)
        held = self.canvas.comparing() if compare else self.canvas.pan_key_held()
        if event.type() == QEvent.Type.KeyRelease:
            if not held:
                return False
            if not event.isAutoRepeat():
                (self.canvas.set_compare if compare else self.canvas.set_pan_key)(False)
            return True
        if held:
            return True  # auto-repeat of a key we hold
        if event.isAutoRepeat() or event.modifiers() != Qt.KeyboardModifier.NoModifier or not self.isActiveWindow():
            return False
        focus = QApplication.focusWidget()
        # An open menu, or the menu bar in keyboard mode (after Alt): letters are its mnemonics.
        if QApplication.activePopupWidget() is not None or isinstance(focus, (QMenu, QMenuBar)) or _types_text(focus):
            return False
        if not compare and not (self.canvas.underMouse() or focus is self.canvas):
            return False
        if compare and not self.canvas.has_before():
            # Comparing would hide the mask (and stop the brush) to show the same picture: an artist
            # holding C on a fresh image would see the mask vanish and painting stop for no reason.
            self._compare_refused = True
            self.set_status(NOTHING_TO_COMPARE)
            return True
        (self.canvas.set_compare if compare else self.canvas.set_pan_key)(True)
        return True

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.WindowDeactivate:
            # A dialog or another window (Alt+Tab) takes the keyboard while C or Space is down: the
            # release goes there, so end the hold now rather than leave compare on and the mask hidden.
            self.canvas.release_keys()
        return super().event(event)

    def showEvent(self, event) -> None:  # noqa: ANN001
        super().showEvent(event)
        if not getattr(self, "_panel_fitted", False):
            self._panel_fitted = True
            # Room for the widest task and a vertical scroll bar, so no task is clipped in a short window.
            bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
            self.scroll.setMinimumWidth(self.panel.fit_widest_task() + bar + 2 * self.scroll.frameWidth())

    def dragEnterEvent(self, event) -> None:  # noqa: ANN001
        self.canvas.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: ANN001
        self.canvas.dropEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._file_step:
            # A file is being written or read on another thread: close once it is done (`_in_background`).
            self._close_after_step = True
            event.ignore()
            return
        if self.controller is not None:
            if not self._maybe_save():
                event.ignore()
                return
            self.autosave_timer.stop()
            self.controller.shutdown()
            self.controller.save_settings(window_geometry=bytes(self.saveGeometry().toHex()).decode())
            QApplication.instance().removeEventFilter(self)
            # The engine may be inside a step that cannot stop (loading a model, reading a batch
            # file): the window goes now, the process once that step ends (never aborting it).
            self.hide()
            self.engine.shutdown()
        event.accept()
