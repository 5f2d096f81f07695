"""CanvasView: the image, its mask overlay and a before/after split; zoom, pan and brush input.

It knows nothing about documents: it shows arrays it is given (`set_*`) and reports input as
image-space coordinates (`stroke_*` signals), which the controller turns into mask edits.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import (QGraphicsEllipseItem, QGraphicsItem, QGraphicsLineItem, QGraphicsRectItem,
                               QGraphicsScene, QGraphicsView, QStyleOptionGraphicsItem, QWidget)

from .qimage import SharedImage, overlay_pixels, to_qimage

MIN_ZOOM, MAX_ZOOM = 0.02, 64.0
ZOOM_STEP = 1.25
CHECK_SIZE = 8  # transparency checkerboard squares, in screen pixels at any zoom
_BAND_ROWS = 256  # rows premultiplied at a time: bounds the uint16 temporaries on a huge photo


def _write_premultiplied(dst: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> None:
    """(H, W, 3) RGB and (H, W) alpha -> `dst` (H, W, 4) premultiplied BGRA (Qt's ARGB32 in memory)."""
    for y in range(0, rgb.shape[0], _BAND_ROWS):
        a = alpha[y:y + _BAND_ROWS]
        dst[y:y + _BAND_ROWS, :, 2::-1] = (rgb[y:y + _BAND_ROWS].astype(np.uint16) * a[..., None] + 127) // 255
        dst[y:y + _BAND_ROWS, :, 3] = a


def _checker_brush(light: bool) -> QBrush:
    """Two-tone checks, as image editors show transparency: light greys in a light theme, mid greys in a dark one."""
    a, b = (QColor(255, 255, 255), QColor(204, 204, 204)) if light else (QColor(153, 153, 153), QColor(102, 102, 102))
    tile = QImage(2 * CHECK_SIZE, 2 * CHECK_SIZE, QImage.Format.Format_RGB32)
    tile.fill(a)
    p = QPainter(tile)
    p.fillRect(CHECK_SIZE, 0, CHECK_SIZE, CHECK_SIZE, b)
    p.fillRect(0, CHECK_SIZE, CHECK_SIZE, CHECK_SIZE, b)
    p.end()
    return QBrush(tile)


class _ImageLayer(QGraphicsItem):
    """Paints a QImage stretched over (0, 0, w, h): 'before' may have another size than the result."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._rect = QRectF()
        self._checker: QBrush | None = None  # set while the image has transparency: painted under it
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def set_image(self, image: QImage | None, w: int, h: int) -> None:
        self.prepareGeometryChange()
        self._image = image
        self._rect = QRectF(0, 0, w, h)
        self.update()

    def set_checker(self, brush: QBrush | None) -> None:
        self._checker = brush
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
        if self._checker is not None:
            # In screen pixels, so the checks keep their size at any zoom; anchored at the image's
            # corner, so they pan with it (the view scrolls by copying pixels, and a pattern fixed to
            # the window would tear at the newly exposed strip).
            painter.save()
            world = painter.worldTransform()
            painter.resetTransform()
            painter.setBrushOrigin(world.map(QPointF(0, 0)))
            painter.fillRect(world.mapRect(target), self._checker)
            painter.restore()
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
        self._image = SharedImage(0, 0, 3)  # RGB, or premultiplied BGRA while the picture has transparency
        self._alpha: np.ndarray | None = None  # the picture's transparency, kept for `rect` updates
        self._checker = _checker_brush(True)
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
        self._before_pixels: SharedImage | None = None  # 'before' with transparency: premultiplied BGRA
        self._split = 0.0  # fraction of the width showing 'before'
        self._compare_held = False
        self._mask_shown = True  # False while the task ignores the mask (set_mask_visible)
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

    def set_image(self, image: np.ndarray, rect: tuple[int, int, int, int] | None = None,
                  alpha: np.ndarray | None = None) -> None:
        """Show `image` (H, W, 3) uint8; `alpha` (H, W) uint8 is its transparency (None: opaque).

        Transparent pixels are shown over a checkerboard, not as their raw colour (often black). A
        `rect` update writes those pixels only and keeps the transparency given with the whole image.
        """
        h, w = image.shape[:2]
        resized = self._image.size != (w, h)
        if resized:
            rect = None
            self._overlay = SharedImage(w, h, 4)
            self._mask_layer.set_image(self._overlay.qimage, w, h)
            self.scene().setSceneRect(QRectF(0, 0, w, h))
        if rect is None:
            if alpha is not None and alpha.shape != (h, w):
                alpha = None  # not this picture's: show it opaque rather than fail
            channels = 3 if alpha is None else 4
            if resized or self._image.array.shape[2] != channels:
                # Opaque pictures keep the plain RGB buffer; only a transparent one pays for a
                # premultiplied BGRA copy (a third more memory and a multiply per pixel).
                self._image = SharedImage(w, h, channels)
                self._image_layer.set_image(self._image.qimage, w, h)
            self._alpha = alpha
            self._image_layer.set_checker(None if alpha is None else self._checker)
        if resized:
            self._update_split()
            if self._fit_mode:
                self.zoom_fit()
        x0, y0, x1, y1 = (0, 0, w, h) if rect is None else rect
        if self._alpha is None:
            self._image.array[y0:y1, x0:x1] = image[y0:y1, x0:x1]
        else:
            _write_premultiplied(self._image.array[y0:y1, x0:x1], image[y0:y1, x0:x1], self._alpha[y0:y1, x0:x1])
        if rect is None:
            self._image_layer.update()
        else:
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

    def set_before(self, image: np.ndarray | None, alpha: np.ndarray | None = None) -> None:
        """Show `image` (H, W, 3) uint8 as 'before' (None: nothing to compare); `alpha` (H, W) uint8 is
        the transparency it had (None: opaque), drawn over the checkerboard as the picture itself is.

        Its own alpha, not the picture's now: an upscale's 'before' is smaller, a generate's result has
        none at all. An alpha of another size is not this image's: 'before' is then shown opaque.
        """
        self._before_pixels = None
        if image is None:
            self._before = None
        elif alpha is None or alpha.shape != image.shape[:2]:
            self._before = to_qimage(image)
        else:
            h, w = image.shape[:2]
            self._before_pixels = SharedImage(w, h, 4)  # holds the pixels the QImage reads
            _write_premultiplied(self._before_pixels.array, image, alpha)
            self._before = self._before_pixels.qimage
        self._before_layer.set_checker(None if self._before_pixels is None else self._checker)
        self._update_split()

    def set_split(self, fraction: float) -> None:
        self._split = min(max(fraction, 0.0), 1.0)
        self._update_split()

    def set_mask_visible(self, shown: bool) -> None:
        """Show or hide the mask overlay; the mask itself is kept (it returns with a task that uses it).

        A task that ignores the mask (Colorize, Upscale, Generate) left the red overlay over its
        result, as if it had been limited to it, and there the Mask actions are off so it could not
        even be cleared.
        """
        if shown != self._mask_shown:
            self._mask_shown = shown
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
        self._mask_layer.setVisible(self._mask_shown and not self._compare_held)
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
        self._checker = _checker_brush(base.lightness() > 128)
        if self._alpha is not None:
            self._image_layer.set_checker(self._checker)
        if self._before_pixels is not None:
            self._before_layer.set_checker(self._checker)

    def changeEvent(self, event) -> None:  # noqa: ANN001
        if event.type() == event.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)


def zoom_label(zoom: float) -> str:
    """`zoom` in device pixels per image pixel (CanvasView.zoom_changed), so 100 % is pixel for pixel."""
    return f"{round(zoom * 100)} %" if zoom >= 0.1 else f"{zoom * 100:.1f} %"


__all__ = ["CanvasView", "zoom_label"]
