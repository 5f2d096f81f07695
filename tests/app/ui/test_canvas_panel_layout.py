"""The canvas and the control panel: the mask overlay in tasks that ignore the mask,
transparency on the canvas, a panel that stays put across tasks, the brush size slider, and Run and
Cancel icons that follow the palette."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QWidget

from app.model import Task
from app.model.brush import MAX_SIZE, MIN_SIZE, BrushSettings
from app.ui.control_panel import ControlPanel, size_to_slider

from ..conftest import make_photo
from ..fakes import make_controller
from .conftest import canvas_image, wait_idle
from .test_main_window import drag


def _set_task(w, task: Task, factor: int | None = None) -> None:
    w.panel.task.setCurrentIndex(w.panel.task.findData(task.value))
    if factor is not None:
        w.panel.factor.setCurrentIndex(w.panel.factor.findData(factor))
    assert w.controller.params.task == task


def _rendered(w, points: list[tuple[float, float]]) -> list[tuple[int, int, int]]:
    """What the canvas shows at these image pixels (their centres), as the screen gets it."""
    shot = w.canvas.viewport().grab().toImage()
    out = []
    for x, y in points:
        p = w.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))
        c = shot.pixelColor(p.x(), p.y())
        out.append((c.red(), c.green(), c.blue()))
    return out


# -- 4: the mask overlay only where the task uses the mask ----------------------------------------

def test_the_mask_overlay_hides_in_tasks_that_ignore_the_mask_and_returns_in_inpaint(window, qtbot) -> None:
    c, cv = window.controller, window.canvas
    _set_task(window, Task.inpaint)
    c.set_brush(size=8)
    drag(window, [(10, 20), (40, 20)])
    painted = c.document.mask.copy()
    assert painted.any() and cv._mask_layer.isVisible()
    with_overlay = _rendered(window, [(25, 20)])
    for task in (Task.colorize, Task.upscale, Task.generate):
        _set_task(window, task, 2 if task == Task.upscale else None)
        # Hidden, not cleared: the red over a colorized photo said "only here", and the Mask actions
        # (greyed in these tasks) could not even clear it.
        assert not cv._mask_layer.isVisible(), task
        assert (c.document.mask == painted).all()
    _set_task(window, Task.colorize)
    no_overlay = _rendered(window, [(25, 20)])
    assert no_overlay != with_overlay  # the screen really lost the red tint
    with qtbot.waitSignal(window.engine.finished, timeout=20000):
        window.act_run.trigger()
    wait_idle(qtbot, window)
    assert not cv._mask_layer.isVisible()  # the result does not bring it back either
    for task in (Task.inpaint, Task.stroke_edit):  # the tasks that use the mask show it again
        _set_task(window, task)
        assert cv._mask_layer.isVisible(), task
        assert (c.document.mask == painted).all()


def test_comparing_still_hides_the_overlay_and_ending_it_in_colorize_keeps_it_hidden(window) -> None:
    cv = window.canvas
    _set_task(window, Task.colorize)
    cv.set_compare(True)
    cv.set_compare(False)
    assert not cv._mask_layer.isVisible()  # the compare key's release does not show it in Colorize
    _set_task(window, Task.inpaint)
    cv.set_compare(True)
    assert not cv._mask_layer.isVisible()
    cv.set_compare(False)
    assert cv._mask_layer.isVisible()


# -- 5: transparency over a checkerboard ----------------------------------------------------------

RED = (200, 50, 30)


def _transparent_file(path: Path) -> Path:
    """64x48: the left half fully transparent (raw colour black), the right half opaque RED."""
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[:, 32:, :3] = RED
    rgba[:, 32:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def _is_checker(colours: list[tuple[int, int, int]]) -> bool:
    greys = {c for c in colours if max(c) - min(c) <= 2}
    return len(greys) == len(set(colours)) and len(greys) >= 2 and min(min(c) for c in greys) >= 90


def test_transparent_pixels_show_a_checkerboard_not_their_raw_colour(window, tmp_path: Path) -> None:
    assert window.controller.open_path(_transparent_file(tmp_path / "half.png"))
    assert window.controller.document.alpha is not None
    clear = [(x, y) for x in range(2, 30, 3) for y in range(2, 46, 3)]
    shown = _rendered(window, clear)
    assert (0, 0, 0) not in shown  # it was all black: the transparent pixels' raw colour
    assert _is_checker(shown), sorted(set(shown))
    for colour in _rendered(window, [(40, 10), (50, 30), (60, 44)]):  # opaque pixels as they are
        assert max(abs(a - b) for a, b in zip(colour, RED)) <= 2, colour


def test_a_colour_stroke_on_a_transparent_picture_keeps_the_checkerboard(window, tmp_path: Path) -> None:
    c = window.controller
    assert c.open_path(_transparent_file(tmp_path / "half.png"))
    c.set_brush(tool="colour", colour=(0, 0, 255), size=8, hardness=1.0)
    drag(window, [(8, 24), (56, 24)])  # through both halves: the canvas updates only that band
    assert (c.document.image[24, 8:56] == (0, 0, 255)).all()
    opaque, clear = _rendered(window, [(48, 24), (16, 24)])
    assert opaque[2] > 200 and opaque[0] < 30  # painted blue where the picture is opaque
    # Where it is transparent the paint stays as invisible as it will be in the saved file.
    assert max(clear) - min(clear) <= 2 and min(clear) >= 90, clear
    assert _is_checker(_rendered(window, [(x, y) for x in range(2, 30, 3) for y in range(2, 16, 3)]))


def test_an_opaque_picture_after_a_transparent_one_is_shown_as_plain_rgb(window, tmp_path: Path) -> None:
    c = window.controller
    assert c.open_path(_transparent_file(tmp_path / "half.png"))
    path = tmp_path / "opaque.png"
    Image.fromarray(make_photo(48, 64, seed=3)).save(path)
    assert c.open_path(path)
    assert (canvas_image(window) == c.document.image).all()  # back to the RGB buffer, no checks
    assert window.canvas._image_layer._checker is None


def test_the_controller_gives_the_view_the_picture_transparency(tmp_path: Path) -> None:
    path = _transparent_file(tmp_path / "half.png")
    c, view, _ = make_controller(tmp_path, start=[str(path)], load_model=False)
    alpha = view.set_image.call_args.kwargs["alpha"]
    assert alpha.dtype == np.uint8 and alpha.shape == (48, 64)
    assert (alpha[:, :32] == 0).all() and (alpha[:, 32:] == 255).all()
    opaque = tmp_path / "opaque.png"
    Image.fromarray(make_photo(48, 64)).save(opaque)
    assert c.open_path(opaque)
    assert view.set_image.call_args.kwargs["alpha"] is None


def _shown_at(w, fractions: list[tuple[float, float]]) -> list[tuple[int, int, int]]:
    """What the canvas shows at these points, as fractions of the picture's width and height."""
    shot = w.canvas.viewport().grab().toImage()
    width, height = w.controller.document.size
    out = []
    for fx, fy in fractions:
        p = w.canvas.mapFromScene(QPointF(fx * width, fy * height))
        c = shot.pixelColor(p.x(), p.y())
        out.append((c.red(), c.green(), c.blue()))
    return out


@pytest.mark.parametrize("task, factor", [(Task.colorize, None), (Task.upscale, 2), (Task.generate, None)])
def test_before_view_shows_the_checkerboard_where_before_was_transparent(window, qtbot, tmp_path: Path,
                                                                         task: Task, factor: int | None) -> None:
    # 'before' used to be drawn in its raw colours: the transparent half black, beside a result drawn
    # over the checkerboard. Colorize keeps the alpha, upscale resizes it (its 'before' is smaller)
    # and generate drops it (its result is opaque): 'before' needs the alpha it had, in each case.
    c = window.controller
    assert c.open_path(_transparent_file(tmp_path / "half.png"))
    _set_task(window, task, factor)
    with qtbot.waitSignal(window.engine.finished, timeout=20000):
        window.act_run.trigger()
    wait_idle(qtbot, window)
    assert c.document.before is not None and (c.document.alpha is None) == (task == Task.generate)
    window.canvas.set_compare(True)  # hold C
    clear = [(fx / 40, fy / 40) for fx in range(1, 19, 2) for fy in range(1, 40, 3)]  # before's left half
    shown = _shown_at(window, clear)
    assert (0, 0, 0) not in shown and _is_checker(shown), sorted(set(shown))
    for colour in _shown_at(window, [(0.7, 0.2), (0.8, 0.5), (0.95, 0.9)]):  # before's opaque half as it was
        assert max(abs(a - b) for a, b in zip(colour, RED)) <= 2, colour
    window.canvas.set_compare(False)
    window.split.setValue(50)  # the Before slider shows it the same way, left of its line
    shown = _shown_at(window, [(fx / 40, fy / 40) for fx in range(1, 12, 2) for fy in range(1, 40, 3)])
    assert _is_checker(shown), sorted(set(shown))


def test_the_controller_gives_before_the_transparency_it_had(tmp_path: Path) -> None:
    c, view, engine = make_controller(tmp_path, start=[str(_transparent_file(tmp_path / "half.png"))])
    original = c.document.alpha
    c.set_params(task="generate", steps=1)
    c.run()
    engine.process()
    assert c.document.alpha is None  # a generated picture is opaque...
    image, alpha = view.set_before.call_args.args
    assert image.shape == (48, 64, 3) and alpha is not None  # ...but 'before' had transparency
    assert np.array_equal(alpha, original) and alpha.dtype == np.uint8
    c.undo()
    assert view.set_before.call_args.args == (None, None)
    c.redo()
    assert np.array_equal(view.set_before.call_args.args[1], original)  # restored with the step
    c.undo()
    c.set_params(task="upscale", upscale_factor=2)
    c.run()
    engine.process()
    assert c.document.alpha.shape == (96, 128)
    image, alpha = view.set_before.call_args.args
    assert image.shape == (48, 64, 3) and np.array_equal(alpha, original)  # its own size: no resize


def test_a_before_alpha_of_another_size_shows_before_opaque(qtbot) -> None:
    from app.ui.canvas import CanvasView

    cv = CanvasView()
    qtbot.addWidget(cv)
    image = np.full((8, 8, 3), 90, np.uint8)
    cv.set_image(image)
    cv.set_before(image, np.zeros((4, 4), np.uint8))  # not this image's: no crash, no checkerboard
    assert cv.has_before() and cv._before_layer._checker is None
    cv.set_before(image, np.zeros((8, 8), np.uint8))
    assert cv._before_layer._checker is not None
    cv.set_before(None)
    assert not cv.has_before() and cv._before_layer._checker is None


# -- 10: the panel stays put across tasks ---------------------------------------------------------

def _where(w: QWidget, panel: QWidget) -> tuple[int, int]:
    p = w.mapTo(panel, w.rect().topLeft())
    return p.x(), p.y()


def test_fields_run_and_brush_keep_their_place_in_every_task(window, qtbot) -> None:
    p = window.panel
    seen = {}
    for task in Task:
        for factor in (2, 4) if task == Task.upscale else (None,):
            _set_task(window, task, factor)
            qtbot.wait(1)  # the layouts run
            seen[(task, factor)] = (_where(p.model, p)[0], _where(p.steps, p)[0], _where(p.run_button, p)[1],
                                    _where(p.size, p)[1])
    # The Model combo moved between x=63 and x=97, Run between y=219 and y=302.
    assert len(set(seen.values())) == 1, seen
    # The task's own fields start where the shared ones do: one label column.
    for task, field in ((Task.colorize, p.render_size), (Task.upscale, p.factor), (Task.inpaint, p.context_row),
                        (Task.stroke_edit, p.strength_row)):
        _set_task(window, task)
        qtbot.wait(1)
        assert _where(field, p)[0] == _where(p.steps, p)[0], task


# -- 11: a logarithmic brush size slider ----------------------------------------------------------

def test_small_brush_sizes_get_most_of_the_slider(qtbot) -> None:
    panel = ControlPanel()
    qtbot.addWidget(panel)
    s = panel.size

    def fraction(px: float) -> float:
        panel.set_brush(BrushSettings(size=px))
        return (s.value() - s.minimum()) / (s.maximum() - s.minimum())

    # Linear, 1-100 px had a tenth of the travel (15 of 155 px); now two thirds, even steps of size.
    assert fraction(100) > 0.6
    assert abs(fraction(10) - 1 / 3) < 0.01
    assert fraction(MIN_SIZE) == 0 and fraction(MAX_SIZE) == 1
    assert panel.size_label.text() == f"{round(MAX_SIZE)} px"
    sizes: list[float] = []
    panel.brush_size_changed.connect(sizes.append)
    panel.brush_size_changed.connect(lambda px: panel.set_brush(BrushSettings(size=px)))  # as the controller does
    s.setValue(s.minimum())
    s.setValue(s.maximum())
    assert sizes == [MIN_SIZE, MAX_SIZE]


def test_keys_on_the_slider_and_brackets_change_the_size_by_whole_pixels(window, qtbot) -> None:
    c, s = window.controller, window.panel.size
    c.set_brush(size=1)
    s.setFocus()
    for want in (2, 3, 4):  # 1 -> 2 px is 100 positions: a step must still move a pixel, not snap back
        qtbot.keyClick(s, Qt.Key.Key_Right)
        assert c.brush.size == want
    qtbot.keyClick(s, Qt.Key.Key_Left)
    assert c.brush.size == 3
    c.set_brush(size=100)
    qtbot.keyClick(s, Qt.Key.Key_PageUp)  # a page is x1.25, like ]
    assert c.brush.size == 125
    window.act_bigger.trigger()  # ]
    for _ in range(40):
        window.act_bigger.trigger()
    assert c.brush.size == MAX_SIZE and s.value() == s.maximum()
    window.act_smaller.trigger()  # [
    assert s.value() == size_to_slider(c.brush.size)
    assert window.panel.size_label.text() == f"{round(c.brush.size)} px"  # the exact size, not the position's


def test_dragging_the_slider_within_one_pixel_leaves_the_handle_where_it_is(window) -> None:
    c, s = window.controller, window.panel.size
    c.set_brush(size=2)
    s.setSliderDown(True)
    try:
        s.setValue(size_to_slider(2) + 3)  # still 2 px
        assert c.brush.size == 2 and s.value() == size_to_slider(2) + 3
        s.setValue(size_to_slider(3))
        assert c.brush.size == 3
    finally:
        s.setSliderDown(False)


# -- 12: Run and Cancel icons in the palette's colour ---------------------------------------------

def _icon_colour(icon: QIcon, mode: QIcon.Mode = QIcon.Mode.Normal) -> tuple[float, float, float]:
    """Mean colour of the icon's opaque pixels."""
    img = icon.pixmap(32, 32, mode).toImage()
    opaque = [img.pixelColor(x, y) for x in range(img.width()) for y in range(img.height())
              if img.pixelColor(x, y).alpha() > 200]
    assert opaque, "the icon is empty"
    return tuple(sum(getattr(c, k)() for c in opaque) / len(opaque) for k in ("red", "green", "blue"))


def _palette(text: QColor, disabled: QColor, button: QColor) -> QPalette:
    pal = QPalette()
    pal.setColor(QPalette.ColorRole.Button, button)
    pal.setColor(QPalette.ColorRole.Window, button)
    pal.setColor(QPalette.ColorRole.ButtonText, text)
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, disabled)
    return pal


def test_run_and_cancel_icons_follow_the_palette(window) -> None:
    p = window.panel
    p.setPalette(_palette(QColor(220, 220, 220), QColor(110, 110, 110), QColor(45, 45, 45)))  # a dark theme
    # The style's fallback pixmaps were black on the dark grey buttons (Run) or invisible (Cancel).
    for icon in (window.act_run.icon(), p.run_button.icon(), window.act_cancel.icon()):
        assert min(_icon_colour(icon)) > 180
    assert 90 < _icon_colour(window.act_cancel.icon(), QIcon.Mode.Disabled)[0] < 130
    p.setPalette(_palette(QColor(0, 0, 0), QColor(160, 160, 160), QColor(240, 240, 240)))  # back to light
    for icon in (window.act_run.icon(), window.act_cancel.icon()):
        assert max(_icon_colour(icon)) < 40
