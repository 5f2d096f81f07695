"""ControlPanel: task, model, steps, seed, class (class-conditional models), strength, brush and mask tools,
Run and Cancel.

Widgets report changes through signals; `set_*` methods show the controller's state with the
signals blocked, so a value the controller corrected never loops back as a new user change.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import (QAbstractSpinBox, QButtonGroup, QCheckBox, QComboBox, QFormLayout, QGridLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLayout, QPushButton, QRadioButton, QSizePolicy, QSlider,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

from ..model.brush import MAX_SIZE, MIN_SIZE, BrushSettings, BrushTool
from ..model.catalog import ModelInfo, picker_labels
from ..model.params import (STEP_CHOICES, TASK_HINTS, TASK_LABELS, UPSCALE_FACTORS, USES_MASK, GenerationParams, Task,
                            default_steps, steps_label)
from .class_spin import ClassSpin


CLASS_TIP = ("ImageNet class the model conditions on: type a number or a name (207, golden retriever, tabby cat). "
             "Every task uses it: for an edit, pick the class of what the photo shows.")


def _spin(lo: int, hi: int, suffix: str, step: int, tip: str) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setSuffix(suffix)
    s.setSingleStep(step)
    s.setToolTip(tip)
    s.setKeyboardTracking(False)  # one change per edit, not one per digit typed
    return s


def _row(*widgets: QWidget) -> QWidget:
    """Several controls on one form row, shown and hidden together."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        layout.addWidget(w)
    return row


def _slider(lo: int, hi: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    return s


# The brush size slider is logarithmic: linear over 1-1000 px, 1-100 px took the first tenth of its
# travel (6 px of brush per pixel of slider). Each slider position is a fixed factor of size, like
# [ and ]; SIZE_STEPS positions span the whole range.
SIZE_STEPS = 1000
_SIZE_SPAN = math.log(MAX_SIZE / MIN_SIZE)


def size_to_slider(px: float) -> int:
    """Slider position of a brush of `px` pixels."""
    px = min(max(px, MIN_SIZE), MAX_SIZE)
    return round(SIZE_STEPS * math.log(px / MIN_SIZE) / _SIZE_SPAN)


def slider_to_size(pos: int) -> int:
    """Whole pixels at slider position `pos` (the size shown and used)."""
    return round(MIN_SIZE * math.exp(_SIZE_SPAN * pos / SIZE_STEPS))


ICON_SIZES = (16, 20, 24, 32, 48, 64)


def _shape_icon(shape: str, palette: QPalette) -> QIcon:
    """A play triangle or a stop square in the palette's button text colour (and its disabled one).

    The style's standard pixmaps (the fallback without an icon theme) are black: invisible on a dark
    palette's buttons. Drawn here they follow the palette, as the button's text does.
    """
    icon = QIcon()
    for mode, group in ((QIcon.Mode.Normal, QPalette.ColorGroup.Active),
                        (QIcon.Mode.Active, QPalette.ColorGroup.Active),
                        (QIcon.Mode.Disabled, QPalette.ColorGroup.Disabled)):
        colour = palette.color(group, QPalette.ColorRole.ButtonText)
        for n in ICON_SIZES:
            pm = QPixmap(n, n)
            pm.fill(Qt.GlobalColor.transparent)
            p = QPainter(pm)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            if shape == "play":
                path = QPainterPath(QPointF(0.25 * n, 0.15 * n))
                path.lineTo(0.85 * n, 0.5 * n)
                path.lineTo(0.25 * n, 0.85 * n)
                path.closeSubpath()
                p.drawPath(path)
            else:
                p.drawRect(QRectF(0.22 * n, 0.22 * n, 0.56 * n, 0.56 * n))
            p.end()
            icon.addPixmap(pm, mode)
    return icon


class ControlPanel(QWidget):
    task_changed = Signal(str)
    model_selected = Signal(int)
    model_size_selected = Signal(int)  # a size picked in the Size row; 0 = "Other..." (ask for one)
    steps_changed = Signal(int)
    seed_changed = Signal(int)
    randomise_requested = Signal()
    class_changed = Signal(int)
    random_class_requested = Signal()
    strength_changed = Signal(float)
    factor_changed = Signal(int)
    detail_toggled = Signal(bool)
    live_toggled = Signal(bool)
    context_changed = Signal(float)
    min_context_changed = Signal(int)
    grow_changed = Signal(int)
    feather_changed = Signal(int)
    grain_toggled = Signal(bool)
    render_size_changed = Signal(int)
    brush_tool_changed = Signal(str)
    brush_size_changed = Signal(float)
    brush_hardness_changed = Signal(float)
    brush_colour_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(300)
        layout = QVBoxLayout(self)

        # Task and its parameters.
        task_box = QGroupBox("Task")
        form = QFormLayout(task_box)
        self.task = QComboBox()
        self.task.setToolTip("What Run does")
        for task, label in TASK_LABELS.items():
            self.task.addItem(label, task.value)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.model = QComboBox()
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.setMinimumContentsLength(18)
        self.import_button = QToolButton()
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.import_button)
        self.model_state = QLabel()
        self.model_state.setWordWrap(True)
        # Only for a model whose file does not store its image size (an imported OpenAI .pt): the
        # importer guessed, and the user states the size the network was trained at.
        self.model_size = QComboBox()
        self.model_size_label = QLabel("Size")
        self.steps = QComboBox()
        self.steps.setToolTip("Network evaluations. Edits with an EDM-trained model (such as the default) "
                              "gain detail with more steps; each step takes about as long as the first.")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Same seed, same image.")
        self.randomise = QPushButton("Random")
        self.randomise.setToolTip("Pick a new random seed")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.randomise)
        # Class-conditional models only (the ImageNet 64 px checkpoints): the class every task conditions on.
        self.class_label = ClassSpin(CLASS_TIP)  # "207 golden retriever"; takes a number or a name
        self.random_class = QPushButton("Random")
        self.random_class.setAccessibleName("Random class")  # the seed's button reads "Random" too
        self.random_class.setToolTip("Pick a random class: see what the model makes of the image as something else")
        self.class_row = _row(self.class_label, self.random_class)
        self.class_row.layout().setStretch(0, 1)
        self.class_title = QLabel("Class")
        self.class_title.setToolTip(CLASS_TIP)
        self.strength = _slider(0, 100)
        # What the ends mean: the slider sets the noise level the guide is redrawn from (SDEdit).
        self.strength.setToolTip("How far the result may move away from your strokes: low keeps the photo and "
                                 "your colours nearly as painted (only blended in); high lets the model redraw, "
                                 "keeping only the rough layout of the colours")
        self.strength_value = QLabel()
        self.strength_value.setMinimumWidth(self.strength_value.fontMetrics().horizontalAdvance("100 %"))
        self.strength_row = _row(self.strength, self.strength_value)
        self.strength_row.layout().setStretch(0, 1)
        self.strength_label = QLabel("Strength")
        self.factor = QComboBox()
        for f in UPSCALE_FACTORS:
            self.factor.addItem(f"{f}x", f)
        self.factor.setToolTip("How many times wider and taller the result is")
        self.factor_label = QLabel("Factor")
        self.detail = QCheckBox("Fine detail (much slower)")
        self.detail.setToolTip("4x and 8x: invent fine texture with a longer loop. Sharper-looking, a little "
                               "less faithful on average, and many times slower; the model card has the figures.")
        # Inpainting on big photos: how much surrounding image the model sees, and how the fill is pasted.
        self.context = _spin(0, 400, " %", 10, "Context around each painted area, as a share of its size")
        self.min_context = _spin(0, 4096, " px", 16, "... but at least this many pixels on each side")
        self.context_row = _row(self.context, QLabel("at least"), self.min_context)
        self.context_label = QLabel("Context")
        self.grow = _spin(0, 256, " px", 1, "Grow the painted area before filling (tight masks leave halos)")
        self.feather = _spin(0, 512, " px", 1, "Soft blend of the fill into its surroundings")
        self.grain = QCheckBox("Grain")
        self.grain.setToolTip("Give a fill smoother than its surroundings the photo's own grain (up to 3 levels)")
        self.edge_row = _row(self.grow, QLabel("feather"), self.feather, self.grain)
        self.edge_label = QLabel("Grow")
        self.render_size = _spin(0, 2048, " px", 16, "Short side of the view the model colours (aspect kept): smaller gives bolder, coarser colour")
        self.render_size.setSpecialValueText("Model's own")
        self.render_size_label = QLabel("Render size")
        self.live = QCheckBox("Live: re-run after each stroke")
        self.live.setToolTip("Inpaint again whenever you release the brush (one-step models only)")
        form.addRow(self.task)
        form.addRow(self.hint)
        self.model_label = QLabel("Model")
        form.addRow(self.model_label, model_row)
        form.addRow(self.model_state)
        form.addRow(self.model_size_label, self.model_size)
        self.steps_label = QLabel("Steps")
        form.addRow(self.steps_label, self.steps)
        self.seed_label = QLabel("Seed")
        form.addRow(self.seed_label, seed_row)
        form.addRow(self.class_title, self.class_row)
        # The task's own rows, in a block of one height for every task (see `_reserve_option_rows`):
        # with them inline, Run, Brush and Mask moved up and down by up to 80 px with each task.
        self.options = QWidget()
        options = QFormLayout(self.options)
        options.setContentsMargins(0, 0, 0, 0)
        options.addRow(self.strength_label, self.strength_row)
        options.addRow(self.factor_label, self.factor)
        options.addRow(self.detail)
        options.addRow(self.context_label, self.context_row)
        options.addRow(self.edge_label, self.edge_row)
        options.addRow(self.render_size_label, self.render_size)
        options.addRow(self.live)
        form.addRow(self.options)
        # One label column for both forms and every task: sized to the rows shown, it was 35 px
        # wider in Colorize ("Render size") than in Generate, and every field moved sideways.
        self._labels = [self.model_label, self.model_size_label, self.steps_label, self.seed_label, self.class_title,
                        self.strength_label, self.factor_label, self.context_label, self.edge_label,
                        self.render_size_label]
        # The hint is one line for some tasks, two or three for others: it keeps the height of the
        # longest at the panel's width (`eventFilter`), top-aligned.
        self.hint.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.hint.installEventFilter(self)
        layout.addWidget(task_box)

        run_row = QHBoxLayout()
        self.run_button = QToolButton()
        self.cancel_button = QToolButton()
        for b in (self.run_button, self.cancel_button):
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            b.setMinimumHeight(32)
            run_row.addWidget(b)
        layout.addLayout(run_row)

        # Brush.
        brush_box = QGroupBox("Brush")
        grid = QGridLayout(brush_box)
        self.tools = QButtonGroup(self)
        for col, (tool, label, tip) in enumerate((
                (BrushTool.mask, "Mask", "Paint what to regenerate (left button); right button erases"),
                (BrushTool.erase, "Erase", "Remove from the mask"),
                (BrushTool.colour, "Colour", "Paint colour into the image, e.g. guides for Stroke edit"))):
            rb = QRadioButton(label)
            rb.setToolTip(tip)
            rb.setProperty("tool", tool.value)
            self.tools.addButton(rb, col)
            grid.addWidget(rb, 0, col)
        self.colour = QPushButton()
        # Always enabled: greyed out under the mask brushes it was out of reach (mouse and Tab alike)
        # until the Colour brush was picked; picking a colour picks that brush too.
        self.colour.setToolTip("Brush colour: pick one to paint with the Colour brush")
        self.colour.setAccessibleName("Brush colour")
        self.colour.setFixedWidth(36)
        grid.addWidget(self.colour, 0, 3)
        # The brush module's own limits: ] can reach MAX_SIZE, and the slider must be able to show it.
        # Logarithmic (size_to_slider): a step is about 7 %, a page 25 % like [ and ].
        self.size = _slider(0, SIZE_STEPS)
        self.size.setSingleStep(10)
        self.size.setPageStep(round(SIZE_STEPS * math.log(1.25) / _SIZE_SPAN))  # x1.25, as [ and ] step
        self._brush_px = 0  # the size last shown (set_brush), in whole pixels
        self.size_label = QLabel()
        self.size.setToolTip("Brush size: [ and ] change it")
        grid.addWidget(QLabel("Size"), 1, 0)
        grid.addWidget(self.size, 1, 1, 1, 2)
        grid.addWidget(self.size_label, 1, 3)
        self.hardness = _slider(0, 100)
        # Said here because the two tasks differ: an artist expected a soft rim to blend the fill in.
        self.hardness.setToolTip("Brush edge: low is soft, 100 % is a hard edge. Inpaint replaces every pixel the "
                                 "brush touched (its soft rim too, so an object's faint edge goes with it; "
                                 "Feather blends the fill in); Stroke edit blends by the mask's softness")
        self.hardness_label = QLabel()
        grid.addWidget(QLabel("Hardness"), 2, 0)
        grid.addWidget(self.hardness, 2, 1, 1, 2)
        grid.addWidget(self.hardness_label, 2, 3)
        layout.addWidget(brush_box)
        # Tab goes through the brush box in reading order: tool, colour, size, hardness.
        chain = [*self.tools.buttons(), self.colour, self.size, self.hardness]
        for a, b in zip(chain, chain[1:]):
            QWidget.setTabOrder(a, b)

        self.mask_box = QGroupBox("Mask")
        self._mask_grid = QGridLayout(self.mask_box)
        layout.addWidget(self.mask_box)
        layout.addStretch(1)
        self._bind()
        self._shown = (Task.inpaint, 4)  # the task and upscale factor whose rows are shown
        self._show_class(None)  # until a class-conditional model has loaded
        self.set_model_sizes((), 0, 0, 0)
        self._icon_actions: tuple[QAction, QAction] | None = None  # Run and Cancel, drawn by `_paint_icons`
        self._align_labels()
        self._reserve_option_rows()

    def _bind(self) -> None:
        self.task.currentIndexChanged.connect(self._on_task_index_changed)
        self.model.currentIndexChanged.connect(self._show_model_tip)
        self.model.currentIndexChanged.connect(self._on_model_changed)
        self.model.activated.connect(self._on_model_activated)
        # activated, not currentIndexChanged: picking the guess that is shown confirms it.
        self.model_size.activated.connect(lambda i: self.model_size_selected.emit(int(self.model_size.itemData(i))))
        self.steps.currentIndexChanged.connect(lambda i: self.steps_changed.emit(int(self.steps.itemData(i))))
        self.seed.valueChanged.connect(self.seed_changed)
        self.randomise.clicked.connect(self.randomise_requested)
        self.class_label.valueChanged.connect(self.class_changed)
        self.random_class.clicked.connect(self.random_class_requested)
        self.strength.valueChanged.connect(lambda v: self.strength_changed.emit(v / 100))
        self.strength.valueChanged.connect(lambda v: self.strength_value.setText(f"{v} %"))
        self.factor.currentIndexChanged.connect(lambda i: self.factor_changed.emit(int(self.factor.itemData(i))))
        self.live.toggled.connect(self.live_toggled)
        self.detail.toggled.connect(self.detail_toggled)
        self.context.valueChanged.connect(lambda v: self.context_changed.emit(v / 100))
        self.min_context.valueChanged.connect(self.min_context_changed)
        self.grow.valueChanged.connect(self.grow_changed)
        self.feather.valueChanged.connect(self.feather_changed)
        self.grain.toggled.connect(self.grain_toggled)
        self.render_size.valueChanged.connect(self.render_size_changed)
        self.tools.idClicked.connect(lambda i: self.brush_tool_changed.emit(self.tools.button(i).property("tool")))
        self.size.valueChanged.connect(self._on_size_slider)
        self.hardness.valueChanged.connect(lambda v: self.brush_hardness_changed.emit(v / 100))
        self.colour.clicked.connect(self.brush_colour_requested)

    def _on_task_index_changed(self, index: int) -> None:
        self.task_changed.emit(self.task.itemData(index))

    def _on_size_slider(self, pos: int) -> None:
        px = slider_to_size(pos)
        home = size_to_slider(self._brush_px)
        if px == self._brush_px and pos != home and not self.size.isSliderDown():
            # A key, the wheel or a click on the groove moved less than a whole pixel (small brushes:
            # 1 to 2 px is 100 positions): move by one pixel, or the slider would snap back and stick.
            px += 1 if pos > home else -1
        if px != self._brush_px:
            self.brush_size_changed.emit(float(min(max(px, MIN_SIZE), MAX_SIZE)))

    # -- layout that stays put across tasks --------------------------------------------------------

    def _align_labels(self) -> None:
        width = max(label.sizeHint().width() for label in self._labels)
        for label in self._labels:
            label.setMinimumWidth(width)

    def _measure_tasks(self) -> tuple[int, int]:
        """(panel width, height of the task's own rows) of the widest and tallest task, each shown in
        turn (upscale at every factor); the rows shown before come back."""
        shown, widest, tallest = self._shown, 0, 0
        self.options.setMinimumHeight(0)
        for task in Task:
            for factor in UPSCALE_FACTORS if task == Task.upscale else (4,):
                self._show_task(task, factor)
                for layout in self.findChildren(QLayout):
                    layout.invalidate()
                widest = max(widest, self.sizeHint().width())
                tallest = max(tallest, self.options.sizeHint().height())
        self._show_task(*shown)
        return widest, tallest

    def _reserve_option_rows(self) -> None:
        """Give the task's own rows the height of the tallest task's, so what follows never moves."""
        self.options.setMinimumHeight(self._measure_tasks()[1])

    def _reserve_hint_lines(self) -> None:
        width = self.hint.width()
        if width <= 0:
            return
        fm = self.hint.fontMetrics()
        flags = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop) | int(Qt.TextFlag.TextWordWrap)
        m = self.hint.contentsMargins()
        inner = max(1, width - m.left() - m.right() - 2 * self.hint.margin())
        tallest = max(fm.boundingRect(0, 0, inner, 10_000, flags, text).height() for text in TASK_HINTS.values())
        self.hint.setMinimumHeight(tallest + m.top() + m.bottom() + 2 * self.hint.margin())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.hint and event.type() == QEvent.Type.Resize:
            self._reserve_hint_lines()  # its width is only known once laid out
        return super().eventFilter(watched, event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self._paint_icons()
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._align_labels()
            self._reserve_option_rows()
            self._reserve_hint_lines()
        super().changeEvent(event)

    def _paint_icons(self) -> None:
        if self._icon_actions is not None:
            run, cancel = self._icon_actions
            run.setIcon(_shape_icon("play", self.palette()))
            cancel.setIcon(_shape_icon("stop", self.palette()))

    def commit_edits(self) -> None:
        """Send a value typed into a spin box but not yet confirmed (no Enter, focus still there).

        The spin boxes report on Enter or focus-out only (keyboard tracking is off), and neither comes
        before Run: the Run button takes no focus and its shortcut fires first. interpretText() reads
        the typed text and emits valueChanged if it differs, so the usual signal carries it.
        """
        for spin in self.findChildren(QAbstractSpinBox):
            spin.interpretText()

    # -- actions owned by the main window (so menus, shortcuts and buttons share one object) ----

    def set_actions(self, run: QAction, cancel: QAction, import_model: QAction, mask_actions: list[QAction]) -> None:
        self.run_button.setDefaultAction(run)
        self.cancel_button.setDefaultAction(cancel)
        # Drawn in this panel's palette and redrawn when it changes (changeEvent); the menu shares them.
        self._icon_actions = (run, cancel)
        self._paint_icons()
        self.import_button.setDefaultAction(import_model)
        self.import_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        previous: QWidget = self.hardness
        for i, action in enumerate(mask_actions):
            b = QToolButton()
            b.setDefaultAction(action)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self._mask_grid.addWidget(b, i // 3, i % 3)
            # Made after the window placed the canvas: Tab would go from the brush to the canvas
            # and only then back to these buttons.
            QWidget.setTabOrder(previous, b)
            previous = b

    # -- controller -> view ---------------------------------------------------------------------

    def set_params(self, p: GenerationParams, published_ts: tuple[int, ...] | None = None, kind: str = "cm",
                   num_classes: int | None = None, edm_steps: int | None = None,
                   class_names: tuple[str, ...] | None = None) -> None:
        """Show `p`; `num_classes`: the loaded model's class count (None: it takes no class, the row hides),
        `class_names` their names when known (ImageNet's)."""
        with QSignalBlocker(self.task):
            self.task.setCurrentIndex(self.task.findData(p.task.value))
        with QSignalBlocker(self.steps):
            self.steps.clear()
            for n in STEP_CHOICES:
                self.steps.addItem(steps_label(n, default_steps(p.task, published_ts, kind, p.upscale_factor,
                                                                p.upscale_detail, edm_steps)), n)
            self.steps.setCurrentIndex(max(0, self.steps.findData(p.steps)))
        with QSignalBlocker(self.seed):
            self.seed.setValue(min(p.seed, self.seed.maximum()))
        self._show_class(num_classes, class_names)
        with QSignalBlocker(self.class_label):
            self.class_label.setValue(p.class_label)
        with QSignalBlocker(self.strength):
            self.strength.setValue(round(p.strength * 100))
        self.strength_value.setText(f"{self.strength.value()} %")
        with QSignalBlocker(self.factor):
            self.factor.setCurrentIndex(max(0, self.factor.findData(p.upscale_factor)))
        with QSignalBlocker(self.live):
            self.live.setChecked(p.live)
        with QSignalBlocker(self.detail):
            self.detail.setChecked(p.upscale_detail)
        with QSignalBlocker(self.grain):
            self.grain.setChecked(p.grain)
        for spin, value in ((self.context, round(p.context * 100)), (self.min_context, p.min_context),
                            (self.grow, p.grow), (self.feather, p.feather), (self.render_size, p.render_size)):
            with QSignalBlocker(spin):
                spin.setValue(value)
        self._show_task(p.task, p.upscale_factor)

    def fit_widest_task(self) -> int:
        """Make the panel as wide as its widest task needs; returns that width. Call once it is shown.

        Sized to the rows shown, the panel (and Run and Cancel with it) changed width with every task.
        Measured only once shown: before that the widgets' size hints are not yet those of the screen.
        """
        self._align_labels()  # the labels' own widths, now on the screen's fonts
        # With the class row too, so loading a class-conditional model later does not widen the panel.
        class_shown = self.class_row.isVisibleTo(self)
        for w in (self.class_title, self.class_row):
            w.setVisible(True)
        widest, tallest = self._measure_tasks()
        widest = max(widest, self.minimumWidth())
        for w in (self.class_title, self.class_row):
            w.setVisible(class_shown)
        self.setMinimumWidth(widest)
        self.options.setMinimumHeight(tallest)
        return widest

    def _show_task(self, task: Task, factor: int) -> None:
        """Show the hint and the rows of this task's parameters, hide the others."""
        self._shown = (task, factor)
        self.hint.setText(TASK_HINTS[task])
        inpaint = task == Task.inpaint
        for w in (self.context_row, self.context_label, self.edge_row, self.edge_label):
            w.setVisible(inpaint)
        for w in (self.render_size, self.render_size_label):
            w.setVisible(task == Task.colorize)
        for w in (self.strength_row, self.strength_label):
            w.setVisible(task == Task.stroke_edit)
        for w in (self.factor, self.factor_label):
            w.setVisible(task == Task.upscale)
        self.detail.setVisible(task == Task.upscale and factor != 2)  # x2's default has the detail
        self.live.setVisible(task == Task.inpaint)
        self.mask_box.setEnabled(task in USES_MASK)

    def _show_class(self, num_classes: int | None, names: tuple[str, ...] | None = None) -> None:
        """The class row, ranged to the model's classes; hidden for models that take none (the value is kept)."""
        for w in (self.class_title, self.class_row):
            w.setVisible(bool(num_classes))
        if num_classes:
            with QSignalBlocker(self.class_label):
                self.class_label.set_classes(num_classes, names)
            # ImageNet's names only where the classes have them: a 10-class model's box stops at 9.
            tip = CLASS_TIP if names else (
                f"Class index the model conditions on, 0 to {num_classes - 1}. "
                "Every task uses it: for an edit, pick the class of what the photo shows.")
            for w in (self.class_label, self.class_title):
                w.setToolTip(tip)
            self.random_class.setToolTip(f"Pick a random class of the model's {num_classes}: see what it makes "
                                         "of the image as something else")

    def set_models(self, models: list[ModelInfo], selected: int) -> None:
        with QSignalBlocker(self.model):
            self.model.clear()
            for m, label in zip(models, picker_labels(models)):
                self.model.addItem(label)
                where = str(m.path) if m.path else "built in"
                if m.size_chosen:
                    where += f"\nImage size {m.resolution} px: your choice (the importer guessed {m.size_guess} px)"
                self.model.setItemData(self.model.count() - 1, f"{where}\nGuessed: {m.guessed}" if m.guessed else where,
                                       Qt.ItemDataRole.ToolTipRole)
            self.model.setCurrentIndex(selected)
        self._show_model_tip(self.model.currentIndex())

    def _on_model_changed(self, index: int) -> None:
        # The `activated` Qt sends right after a user's pick (same event) is the same choice; a later
        # one, once the event loop has run, is a new pick.
        self._model_changed = True
        QTimer.singleShot(0, self._forget_model_change)
        self.model_selected.emit(index)

    def _forget_model_change(self) -> None:
        self._model_changed = False

    def _on_model_activated(self, index: int) -> None:
        # Picking the entry already shown changes no index, so only `activated` tells of it: the way
        # to retry a model that failed to load (the controller ignores a pick of the loaded one).
        if getattr(self, "_model_changed", False):
            self._model_changed = False
            return
        self.model_selected.emit(index)

    def _show_model_tip(self, index: int) -> None:
        # The combo is narrower than most labels: the tooltip gives the whole name and its file.
        where = self.model.itemData(index, Qt.ItemDataRole.ToolTipRole)
        self.model.setToolTip(f"{self.model.itemText(index)}\n{where}" if index >= 0 else "")

    def set_model_sizes(self, sizes: tuple[int, ...], current: int, guess: int, step: int) -> None:
        """The Size row: `sizes` to pick from plus "Other..."; hidden when the model states its size."""
        for w in (self.model_size_label, self.model_size):
            w.setVisible(bool(sizes))
        self.model_size.setEnabled(True)  # greyed only while a model loads (MainWindow)
        with QSignalBlocker(self.model_size):
            self.model_size.clear()
            for size in sizes:
                self.model_size.addItem(f"{size} px" + (" (guessed)" if size == guess else ""), size)
            if sizes:
                self.model_size.addItem("Other...", 0)
            self.model_size.setCurrentIndex(max(0, self.model_size.findData(current)))
        tip = (f"The image size the model's network was trained at. Its file does not store it: the importer "
               f"guessed {guess} px, and results at a wrong size come out wrong. The network runs at multiples "
               f"of {step} px." if sizes else
               "The image size the model was trained at, for a file that does not store it (an imported OpenAI .pt)")
        for w in (self.model_size_label, self.model_size):
            w.setToolTip(tip)

    def set_model_state(self, text: str, warning: bool) -> None:
        self.model_state.setText(text)
        # The palette's link/negative colours adapt to dark mode; a hard-coded red would not.
        role = self.model_state.foregroundRole()
        pal = self.model_state.palette()
        pal.setColor(role, QColor(200, 120, 0) if warning else self.palette().color(role))
        self.model_state.setPalette(pal)

    def set_live_available(self, available: bool) -> None:
        self.live.setEnabled(available)

    def set_brush(self, b: BrushSettings) -> None:
        for button in self.tools.buttons():
            with QSignalBlocker(button):
                button.setChecked(button.property("tool") == b.tool.value)
        self._brush_px = round(b.size)
        # Left where it is if it already shows this size: during a drag, several positions round to
        # the same pixel, and snapping to one of them would make the handle jitter under the mouse.
        if slider_to_size(self.size.value()) != self._brush_px:
            with QSignalBlocker(self.size):
                self.size.setValue(size_to_slider(b.size))
        self.size_label.setText(f"{self._brush_px} px")
        with QSignalBlocker(self.hardness):
            self.hardness.setValue(round(b.hardness * 100))
        self.hardness_label.setText(f"{round(b.hardness * 100)} %")
        r, g, bl = b.colour
        # A style sheet's background hides the style's focus frame: draw one, or Tab seems to vanish here.
        self.colour.setStyleSheet(f"QPushButton {{ background-color: rgb({r}, {g}, {bl}); }}"
                                  "QPushButton:focus { border: 2px solid palette(highlight); border-radius: 2px; }")
