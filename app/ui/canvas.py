"""CanvasView: the image, its mask overlay and a before/after split; zoom, pan and brush input.

It knows nothing about documents: it shows arrays it is given (`set_*`) and reports input as
image-space coordinates (`stroke_*` signals), which the controller turns into mask edits.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import (QGraphicsEllipseItem, QGraphicsItem, QGraphicsLineItem, QGraphicsRectItem,
                               QGraphicsScene, QGraphicsView, QStyleOptionGraphicsItem, QWidget)

from .qimage import SharedImage, overlay_pixels, to_qimage

MIN_ZOOM, MAX_ZOOM = 0.02, 64.0
ZOOM_STEP = 1.25


class _ImageLayer(QGraphicsItem):
    """Paints a QImage stretched over (0, 0, w, h): 'before' may have another size than the result."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._rect = QRectF()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def set_image(self, image: QImage | None, w: int, h: int) -> None:
        self.prepareGeometryChange()
        self._image = image
        self._rect = QRectF(0, 0, w, h)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._image is None or self._image.isNull():
            return
        # Smooth up to 4x (photos look like photos); nearest beyond, so single pixels can be judged,
        # and at exactly one image pixel per device pixel (100 %), where smoothing could only blur.
        # The world transform is in logical pixels: the screen's scale makes it device pixels.
        dpr = widget.devicePixelRatioF() if widget is not None else 1.0
        zoom = option.levelOfDetailFromTransform(painter.worldTransform()) * dpr
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, zoom < 4.0 and abs(zoom - 1.0) > 1e-6)
        target = option.exposedRect.intersected(self._rect)
        if target.isEmpty():
            return
        sx = self._image.width() / self._rect.width()
        sy = self._image.height() / self._rect.height()
        source = QRectF(target.x() * sx, target.y() * sy, target.width() * sx, target.height() * sy)
        painter.drawImage(target, self._image, source)


class CanvasView(QGraphicsView):
    stroke_started = Signal(float, float, bool)  # x, y in image pixels; True = erase (right button)
    stroke_moved = Signal(float, float)
    stroke_finished = Signal()
    files_dropped = Signal(list)  # list[str] of local paths
    zoom_changed = Signal(float)  # device pixels per image pixel (1.0 = "100 %"), what the zoom label shows

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        # Empty, not 1x1: the first image must always take set_image's new-size path (scene rect,
        # layers, fit), or a 1x1 picture opened first would never be shown.
        self._image = SharedImage(0, 0, 3)
        self._overlay = SharedImage(0, 0, 4)
        self._image_layer = _ImageLayer()
        self._mask_layer = _ImageLayer()
        self._clip = QGraphicsRectItem()  # shows 'before' left of the split line only
        self._clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
        self._clip.setPen(Qt.PenStyle.NoPen)
        self._before_layer = _ImageLayer(self._clip)
        self._split_line = QGraphicsLineItem()
        pen = QPen(QColor(255, 255, 255, 220), 2)
        pen.setCosmetic(True)
        self._split_line.setPen(pen)
        self._cursor_outer = QGraphicsEllipseItem()
        self._cursor_inner = QGraphicsEllipseItem()
        for item, colour, width in ((self._cursor_outer, QColor(0, 0, 0, 200), 3), (self._cursor_inner, QColor(255, 255, 255, 230), 1)):
            p = QPen(colour, width)
            p.setCosmetic(True)  # the outline stays one screen pixel wide at any zoom
            item.setPen(p)
            item.setVisible(False)
        for z, item in enumerate((self._image_layer, self._clip, self._mask_layer, self._split_line,
                                  self._cursor_outer, self._cursor_inner)):
            item.setZValue(z)
            self.scene().addItem(item)
        self._before: QImage | None = None
        self._split = 0.0  # fraction of the width showing 'before'
        self._compare_held = False
        self._brush_diameter = 48.0
        self._fit_mode = True
        self._space_held = False
        self._pan_from: QPointF | None = None
        self._pan_button = Qt.MouseButton.NoButton
        self._painting = False
        self._paint_button = Qt.MouseButton.NoButton
        self._apply_palette()
        # Zoom, pan and resize change the part of the image in view, which the split line follows.
        self.horizontalScrollBar().valueChanged.connect(self._place_split)
        self.horizontalScrollBar().rangeChanged.connect(self._place_split)

    # -- model -> view --------------------------------------------------------------------------

    def set_image(self, image: np.ndarray, rect: tuple[int, int, int, int] | None = None) -> None:
        h, w = image.shape[:2]
        if self._image.size != (w, h):
            self._image = SharedImage(w, h, 3)
            self._overlay = SharedImage(w, h, 4)
            self._mask_layer.set_image(self._overlay.qimage, w, h)
            self.scene().setSceneRect(QRectF(0, 0, w, h))
            self._image_layer.set_image(self._image.qimage, w, h)
            self._update_split()
            rect = None
            if self._fit_mode:
                self.zoom_fit()
        if rect is None:
            self._image.array[...] = image
            self._image_layer.update()
        else:
            x0, y0, x1, y1 = rect
            self._image.array[y0:y1, x0:x1] = image[y0:y1, x0:x1]
            self._image_layer.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def set_mask(self, mask: np.ndarray, rect: tuple[int, int, int, int] | None = None) -> None:
        if mask.shape[::-1] != self._overlay.size:
            return  # a mask for another image size: set_image comes first and will be followed by one
        if rect is None:
            # Only the rows and columns the mask touches are converted: undo, open and a result all
            # show the whole mask, and on a 96 Mpx photo the few strokes it holds are a small part.
            self._overlay.array[...] = 0
            rows = np.flatnonzero(mask.any(axis=1))
            if rows.size:
                cols = np.flatnonzero(mask.any(axis=0))
                y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                self._overlay.array[y0:y1, x0:x1] = overlay_pixels(mask[y0:y1, x0:x1])
            self._mask_layer.update()
        else:
            x0, y0, x1, y1 = rect
            self._overlay.array[y0:y1, x0:x1] = overlay_pixels(mask[y0:y1, x0:x1])
            self._mask_layer.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def set_before(self, image: np.ndarray | None) -> None:
        self._before = None if image is None else to_qimage(image)
        self._update_split()

    def set_split(self, fraction: float) -> None:
        self._split = min(max(fraction, 0.0), 1.0)
        self._update_split()

    def set_compare(self, held: bool) -> None:
        """While the compare key is held the whole canvas shows 'before'."""
        if held != self._compare_held:
            self._compare_held = held
            self._update_split()

    def comparing(self) -> bool:
        return self._compare_held

    def set_pan_key(self, held: bool) -> None:
        """While the pan key (Space) is held a left-button drag pans instead of painting."""
        if held == self._space_held:
            return
        self._space_held = held
        if held:
            self._cursor_outer.setVisible(False)
            self._cursor_inner.setVisible(False)
        if self._pan_from is None:  # mid-pan the closed hand stays until the button is released
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if held else Qt.CursorShape.CrossCursor)

    def pan_key_held(self) -> bool:
        return self._space_held

    def release_keys(self) -> None:
        """Forget held keys whose release this view may never see (the window lost the keyboard)."""
        self.set_compare(False)
        self.set_pan_key(False)

    def set_brush_size(self, diameter: float) -> None:
        self._brush_diameter = diameter
        self._place_cursor(self.mapFromGlobal(self.cursor().pos()).toPointF())

    def has_before(self) -> bool:
        return self._before is not None

    def _update_split(self) -> None:
        w, h = self._image.size
        self._before_layer.set_image(self._before, w, h)
        # Hide the mask while comparing: it would cover exactly the part being compared.
        self._mask_layer.setVisible(not self._compare_held)
        self._place_split()

    def _place_split(self) -> None:
        """Put the split line at the slider's fraction of the part of the image in view.

        Of the whole image's width, a zoomed-in view showed only 'before' or only the result, and
        the slider seemed to do nothing until its line happened to cross the visible part.
        """
        w, h = self._image.size
        fraction = 1.0 if self._compare_held else self._split
        show = self._before is not None and fraction > 0
        seen = self.mapToScene(self.viewport().rect()).boundingRect().intersected(QRectF(0, 0, w, h))
        left, width = (seen.left(), seen.width()) if seen.width() > 0 else (0.0, float(w))
        x = w if fraction >= 1 else left + width * fraction  # all of it: also what is scrolled out of view
        self._clip.setRect(0, 0, x, h)
        self._clip.setVisible(show)
        self._split_line.setLine(x, 0, x, h)
        self._split_line.setVisible(show and 0 < fraction < 1)

    # -- zoom -----------------------------------------------------------------------------------

    def zoom(self) -> float:
        """Logical (device-independent) pixels per image pixel: the view's own scale."""
        return self.transform().m11()

    def device_zoom(self) -> float:
        """Device pixels per image pixel: what "100 %" means on a scaled (150 %, 200 %) screen."""
        return self.zoom() * self.devicePixelRatioF()

    def set_zoom(self, zoom: float) -> None:
        # Fit may lie outside the limits (a tiny image, a huge one): from there zooming in must not
        # jump out to MAX_ZOOM (nor out jump in to MIN_ZOOM); it stays put instead.
        current = self.zoom()
        zoom = min(max(zoom, min(MIN_ZOOM, current)), max(MAX_ZOOM, current))
        self._fit_mode = False
        self.setTransform(self.transform().fromScale(zoom, zoom))
        self._place_split()
        self.zoom_changed.emit(self.device_zoom())

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def zoom_actual(self) -> None:
        # One image pixel per device pixel: at 200 % screen scaling a logical pixel is two device
        # pixels, so a zoom of 1.0 would spread (and smooth) each image pixel over 2x2.
        self.set_zoom(1.0 / self.devicePixelRatioF())

    def zoom_fit(self) -> None:
        self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self._fit_mode = True
        self._place_split()
        self.zoom_changed.emit(self.device_zoom())

    def wheelEvent(self, event) -> None:  # noqa: ANN001 - Qt event types
        # Continuous factor: trackpads send many small deltas, mouse wheels 120 per notch (= x1.25).
        steps = event.angleDelta().y() / 120
        if steps:
            self.set_zoom(self.zoom() * ZOOM_STEP ** steps)
        event.accept()

    def resizeEvent(self, event) -> None:  # noqa: ANN001
        super().resizeEvent(event)
        if self._fit_mode:
            self.zoom_fit()
        else:
            self._place_split()

    # -- pointer input: pan with middle button or Space+drag, paint with left (erase with right) --

    def _image_pos(self, pos: QPointF) -> QPointF:
        return self.mapToScene(pos.toPoint())

    def _place_cursor(self, view_pos: QPointF) -> None:
        p = self._image_pos(view_pos)
        r = self._brush_diameter / 2
        for item in (self._cursor_outer, self._cursor_inner):
            item.setRect(p.x() - r, p.y() - r, 2 * r, 2 * r)

    def mousePressEvent(self, event) -> None:  # noqa: ANN001
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space_held):
            self._pan_from, self._pan_button = event.position(), button
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        elif button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton) and not self._painting \
                and not self._compare_held:  # the mask is hidden while comparing: no painting blind
            self._painting, self._paint_button = True, button
            p = self._image_pos(event.position())
            self.stroke_started.emit(p.x(), p.y(), button == Qt.MouseButton.RightButton)
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: ANN001
        pos = event.position()
        # The button that started the drag is up, yet no release came (a modal dialog, another
        # window or the window manager took it): end the drag here, before this move paints.
        if self._painting and not event.buttons() & self._paint_button:
            self.finish_input()
        if self._pan_from is not None and not event.buttons() & self._pan_button:
            self.finish_input()
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
        elif self._painting:
            p = self._image_pos(pos)
            self.stroke_moved.emit(p.x(), p.y())
        self._place_cursor(pos)
        show = self._pan_from is None and not self._space_held
        self._cursor_outer.setVisible(show)
        self._cursor_inner.setVisible(show)
        event.accept()

    def mouseReleaseEvent(self, event) -> None:  # noqa: ANN001
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._end_pan()
        elif self._painting:
            self._painting = False
            self.stroke_finished.emit()
        event.accept()

    def _end_pan(self) -> None:
        self._pan_from = None
        self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space_held else Qt.CursorShape.CrossCursor)

    def finish_input(self) -> None:
        """End a drag whose release this view may never see (call before a modal dialog opens).

        A stroke ends as if the button had been released where it last was: it is committed to the
        history, and nothing paints until the next press.
        """
        if self._pan_from is not None:
            self._end_pan()
        if self._painting:
            self._painting = False
            self.stroke_finished.emit()

    def focusOutEvent(self, event) -> None:  # noqa: ANN001
        self.finish_input()  # another window or a popup took over mid-drag
        self.release_keys()  # the release of a held C or Space goes elsewhere too
        super().focusOutEvent(event)

    def enterEvent(self, event) -> None:  # noqa: ANN001
        self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: ANN001
        self._cursor_outer.setVisible(False)
        self._cursor_inner.setVisible(False)
        super().leaveEvent(event)

    # The main window's event filter handles Space wherever the focus is; these cover the view on its own.
    def keyPressEvent(self, event) -> None:  # noqa: ANN001
        if event.key() == Qt.Key.Key_Space:
            self.set_pan_key(True)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: ANN001
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self.set_pan_key(False)
            event.accept()
            return
        super().keyReleaseEvent(event)

    # -- drag and drop: the scene has no drop targets, so the view accepts files itself ----------

    @staticmethod
    def _local_files(event) -> list[str]:  # noqa: ANN001
        md = event.mimeData()
        if not md.hasUrls():
            return []
        return [u.toLocalFile() for u in md.urls() if u.isLocalFile()]

    def dragEnterEvent(self, event) -> None:  # noqa: ANN001
        if self._local_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: ANN001
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: ANN001
        files = self._local_files(event)
        if files:
            event.acceptProposedAction()
            self.files_dropped.emit(files)
        else:
            event.ignore()

    # -- palette --------------------------------------------------------------------------------

    def _apply_palette(self) -> None:
        # A canvas slightly darker than the window in both light and dark themes frames the image.
        base = self.palette().color(QPalette.ColorRole.Window)
        self.setBackgroundBrush(base.darker(125) if base.lightness() > 80 else base.darker(150))

    def changeEvent(self, event) -> None:  # noqa: ANN001
        if event.type() == event.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)


def zoom_label(zoom: float) -> str:
    """`zoom` in device pixels per image pixel (CanvasView.zoom_changed), so 100 % is pixel for pixel."""
    return f"{round(zoom * 100)} %" if zoom >= 0.1 else f"{zoom * 100:.1f} %"


__all__ = ["CanvasView", "zoom_label"]
