"""Painting intents of the controller: brush strokes and whole-mask operations.

A mixin of `EditorController` (kept apart only for size): it uses the host's `document`,
`history`, `brush`, `params` and `view`, and calls `_status`, `_show_history`, `live_available`, `run` and
`_autosave` (an autosave tick that came mid-stroke runs when the stroke ends), and `_apply_result`
(a task result that arrived mid-stroke is applied when the stroke ends, as the next undo step).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from .model import brush as brushes
from .model.brush import BrushTool, Stroke
from .model.document import Snapshot, to_uint8
from .model.params import TASK_LABELS, USES_MASK, Task

if TYPE_CHECKING:
    from .controller import EditorController


class _Copy:
    """A copy of an array made on a thread; `result()` waits for it."""

    def __init__(self, source: np.ndarray) -> None:
        self._out: list[np.ndarray] = []
        self._thread = threading.Thread(target=lambda: self._out.append(source.copy()), name="cstudio-stroke-copy",
                                        daemon=True)
        self._thread.start()

    def result(self) -> np.ndarray:
        self._thread.join()
        return self._out[0]


class PaintingMixin:
    _stroke: Stroke | None
    _stroke_base: _Copy | None
    _stroke_before: Snapshot | None
    _stroke_image: np.ndarray | None
    _stroke_display: np.ndarray | None
    _shown: tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None

    # -- brush ----------------------------------------------------------------------------------

    def begin_stroke(self: EditorController, x: float, y: float, *, erase: bool = False) -> None:
        if self._stroke is not None:
            return
        tool = BrushTool.erase if erase and self.brush.tool == BrushTool.mask else self.brush.tool
        if tool != BrushTool.colour and self.params.task not in USES_MASK:
            # This task ignores the mask: a stroke would change nothing the user can see the effect
            # of, and would turn up later as a surprise in Inpaint.
            names = " or ".join(TASK_LABELS[t] for t in sorted(USES_MASK, key=list(Task).index))
            self._status(f"{TASK_LABELS[self.params.task]} does not use a mask: choose {names} to paint one.")
            return
        self._stroke_before = self.document.snapshot()
        self._stroke = Stroke(self.document.mask.shape, self.brush.replace(tool=tool))
        if tool == BrushTool.colour:
            self._shown = None  # the canvas gets the stroke's pixels from now on
            # Uninitialised, so free until painted (the OS maps its pages on first write): each dab
            # writes its whole rectangle, blended from the snapshot, and that rectangle is all the
            # canvas reads back; the end takes the pixels the dabs covered. The picture the stroke ends in is copied meanwhile on a thread (numpy
            # lets go of the GIL), ready by the time the button is released: copying it here made
            # the first dab of a 96 Mpx photo wait 0.3-0.85 s, and at the release just as long.
            image = self.document.image
            self._stroke_image = np.empty_like(image)
            self._stroke_base = _Copy(image)
            # 16-bit documents: the canvas gets 8-bit pixels, converted only where the stroke paints.
            self._stroke_display = np.empty(image.shape, np.uint8) if image.dtype != np.uint8 else None
        self.extend_stroke(x, y)

    def extend_stroke(self: EditorController, x: float, y: float) -> None:
        stroke, before = self._stroke, self._stroke_before
        if stroke is None or before is None:
            return
        rect = stroke.add(x, y)
        if rect is None:
            return
        if stroke.settings.tool == BrushTool.colour and self._stroke_image is not None:
            x0, y0, x1, y1 = rect
            patch = brushes.apply_to_image(before.image[y0:y1, x0:x1], stroke.coverage[y0:y1, x0:x1],
                                           stroke.settings.colour, (0, 0, x1 - x0, y1 - y0))
            self._stroke_image[y0:y1, x0:x1] = patch
            if self._stroke_display is not None:
                self._stroke_display[y0:y1, x0:x1] = to_uint8(patch)
            self.view.set_image(self._stroke_image if self._stroke_display is None else self._stroke_display, rect)
        else:
            # Writable here: the mask may be shared with an undo step (after an undo or a whole-mask
            # operation), in which case it is copied once, at the stroke's first dab.
            brushes.apply_to_mask(self.document.editable_mask(), before.mask, stroke.coverage, rect,
                                  erase=stroke.settings.tool == BrushTool.erase)
            self.view.set_mask(self.document.mask, rect)

    def end_stroke(self: EditorController) -> None:
        stroke, before = self._stroke, self._stroke_before
        held = self._held_result  # a result that arrived while the button was down
        self._stroke = self._stroke_before = None
        if stroke is None or before is None or stroke.bounds is None:
            self._stroke_image = self._stroke_display = self._stroke_base = None
            if held is not None:
                self._apply_result(held)
            return
        tool = stroke.settings.tool
        if tool == BrushTool.colour and self._stroke_image is not None:
            x0, y0, x1, y1 = stroke.bounds
            painted = self._stroke_base.result() if self._stroke_base is not None else before.image.copy()
            # Only what a dab covered: the bounds box also holds pixels no dab's rectangle reached,
            # never written in the stroke's buffer (a dab leaves a pixel it does not cover as it was).
            covered = stroke.coverage[y0:y1, x0:x1, None] > 0
            np.copyto(painted[y0:y1, x0:x1], self._stroke_image[y0:y1, x0:x1], where=covered)
            self.document.set_image(painted, keep_before=False)
            # What the canvas shows: the stroke was drawn on it, and strokes never change 'before'.
            self._shown = (self.document.image, self.document.before, self.document.before_alpha)
        self._stroke_image = self._stroke_display = self._stroke_base = None
        labels = {BrushTool.mask: "Brush stroke", BrushTool.erase: "Erase stroke", BrushTool.colour: "Colour stroke"}
        dropped = self._record(before, labels[tool])
        self._show_history()
        if dropped:
            self._status(dropped)
        if self._autosave_pending:
            self._autosave()
        if self.params.live and self.live_available() and tool != BrushTool.colour:
            self.run(live=True)  # with a result held the job still counts as running: this queues a re-run
        if held is not None:
            # The stroke is its own undo step; the result follows as the next one. A colour stroke
            # changed the image the job started from, so it is painted again over the result.
            over = tool == BrushTool.colour and held.image_revision == before.image_revision
            self._apply_result(held, repaint=stroke if over else None)

    # -- whole-mask operations ------------------------------------------------------------------

    def _change_mask(self: EditorController, new: np.ndarray, label: str) -> None:
        # `new` is a fresh array (invert, grow, a file read...) and the current mask is replaced: the
        # undo step takes the old mask and the document the new one, neither copied. (That was two
        # copies of 96 MB, besides the new mask itself, per click on a 96 Mpx photo.)
        before = self.document.snapshot(mask_replaced=True)
        self.document.set_mask(new, adopt=True)
        dropped = self._record(before, label)
        self.view.set_mask(self.document.mask)
        self._show_history()
        if dropped:
            self._status(dropped)

    def clear_mask(self: EditorController) -> None:
        if self.document.mask.any():
            self._change_mask(np.zeros_like(self.document.mask), "Clear mask")

    def invert_mask(self: EditorController) -> None:
        self._change_mask(brushes.invert(self.document.mask), "Invert mask")

    def _edge_pixels(self: EditorController) -> int:
        # Scale grow/shrink/feather with the image so one click does something visible on any size.
        return max(2, round(max(self.document.size) / 100))

    def grow_mask(self: EditorController) -> None:
        self._change_mask(brushes.grow(self.document.mask, self._edge_pixels()), "Grow mask")

    def shrink_mask(self: EditorController) -> None:
        self._change_mask(brushes.shrink(self.document.mask, self._edge_pixels()), "Shrink mask")

    def feather_mask(self: EditorController) -> None:
        self._change_mask(brushes.feather(self.document.mask, 2 * self._edge_pixels()), "Feather mask")
