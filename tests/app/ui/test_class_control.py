"""The panel's Class row: shown, ranged and explained for a class-conditional model, hidden for the
others, and wired to the controller (the value it runs with and saves)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.model.settings import load_settings
from engine import Model, save_model

from ..test_class_label import CLASSES, cond_spec, write_cond_model
from .conftest import wait_idle


@pytest.fixture
def cond_in_models(tmp_path: Path) -> Path:
    return write_cond_model(tmp_path / "models")


@pytest.fixture
def cond_window(cond_in_models, window, qtbot):
    """The window with the class-conditional model picked (second in the picker, after the test model)."""
    c = window.controller
    window.panel.model.setCurrentIndex(1)
    qtbot.waitUntil(lambda: c.model is not None and c.model.num_classes == CLASSES, timeout=20000)
    QApplication.processEvents()
    return window


def test_the_class_row_shows_for_a_class_conditional_model_only(cond_window, qtbot):
    p, c = cond_window.panel, cond_window.controller
    assert p.class_row.isVisible() and p.class_title.isVisible()
    assert (p.class_label.minimum(), p.class_label.maximum()) == (0, CLASSES - 1)
    for tip in (p.class_label.toolTip(), p.class_title.toolTip()):
        # Its own range; ImageNet's examples (207 golden retriever) only for 1000-class models.
        assert "Class index the model conditions on, 0 to 9" in tip and "golden retriever" not in tip
    assert "class" in p.random_class.toolTip().lower()
    width = p.width()
    p.model.setCurrentIndex(0)  # the untrained test model: no classes
    qtbot.waitUntil(lambda: c.model is not None and c.model.num_classes is None, timeout=20000)
    QApplication.processEvents()
    assert not p.class_row.isVisible() and not p.class_title.isVisible()
    assert p.width() == width  # the panel was sized with the row: it does not jump


def test_the_class_row_is_hidden_while_another_model_loads(cond_in_models, window):
    p = window.panel
    assert not p.class_row.isVisible()  # the test model is loaded first


def test_the_class_reaches_the_controller_its_runs_and_the_settings(cond_window, qtbot, tmp_path: Path):
    p, c = cond_window.panel, cond_window.controller
    p.class_label.setValue(5)
    assert c.params.class_label == 5
    p.task.setCurrentIndex(p.task.findData("colorize"))
    # Typed without Enter: Run still runs with it (commit_edits).
    p.class_label.lineEdit().setText("8")
    cond_window.act_run.trigger()
    assert c.params.class_label == 8
    assert "class 8" in cond_window.status_text.text()
    wait_idle(qtbot, cond_window)
    c.autosave_tick()
    assert load_settings(tmp_path / "settings.json").class_label == 8


def test_random_picks_one_of_the_model_s_classes(cond_window):
    p, c = cond_window.panel, cond_window.controller
    seen = set()
    for _ in range(20):
        p.random_class.click()
        assert p.class_label.value() == c.params.class_label
        seen.add(c.params.class_label)
    assert seen <= set(range(CLASSES)) and len(seen) > 2


def test_screenshot_of_the_panel_with_a_class(cond_window):
    """Not an assertion of looks: writes the window for a person to check (CSTUDIO_SCREENSHOT=path)."""
    out = os.environ.get("CSTUDIO_SCREENSHOT")
    cond_window.panel.class_label.setValue(207 % CLASSES)
    QApplication.processEvents()
    image = cond_window.grab()
    assert not image.isNull()
    if out:
        image.save(out)


def test_an_imagenet_model_s_class_is_shown_and_typed_by_name(tmp_path: Path, window, qtbot):
    """A 1000-class model (as OpenAI's ImageNet 64 ones): the box reads "0 tench", and a name typed
    in is the class the controller runs with."""
    spec = cond_spec()
    spec = dataclasses.replace(spec, name="imagenet-like", unet=dataclasses.replace(spec.unet, num_classes=1000))
    folder = tmp_path / "models"  # the window's models folder
    folder.mkdir(exist_ok=True)
    net = Model.random(spec, seed=0, device="cpu", precision="fp32").denoiser.net
    save_model(folder / "in1000.safetensors", spec, net.state_dict())
    p, c = window.panel, window.controller
    c.refresh_models()
    p.model.setCurrentIndex(p.model.findText("imagenet-like", Qt.MatchFlag.MatchStartsWith))
    qtbot.waitUntil(lambda: c.model is not None and c.model.num_classes == 1000, timeout=20000)
    QApplication.processEvents()
    assert c.params.class_label == 0 and p.class_label.text() == "0 tench"
    p.class_label.lineEdit().selectAll()
    qtbot.keyClicks(p.class_label.lineEdit(), "tabby cat")
    qtbot.keyClick(p.class_label.lineEdit(), Qt.Key.Key_Return)
    assert c.params.class_label == 281 and p.class_label.text() == "281 tabby"
    assert "type a number or a name" in p.class_label.toolTip()
