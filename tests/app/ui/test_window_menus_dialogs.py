"""The main window and its dialogs: paste keeps transparency, Esc on "Replace the
original?" cancels, long status messages elide, menus show tooltips and tell files and choices apart,
Save As offers the right file types, and the Help dialogs are readable and carry the version."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QTextDocument
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QMenu

from app.__main__ import version
from app.files import ImageError, save_as_path
from app.ui import dialogs
from app.ui.dialogs import confirm_overwrite as REAL_CONFIRM_OVERWRITE  # before any test patches it
from app.ui.dialogs import save_image_file as REAL_SAVE_IMAGE_FILE
from app.ui.dialogs import show_text as REAL_SHOW_TEXT
from app.ui.main_window import SHORTCUTS, SHORTCUTS_HELP, recent_labels
from app.ui.qimage import from_qimage_alpha

from ..conftest import make_photo


def _answer_modal(qtbot, answer) -> list:  # noqa: ANN001
    """Calls `answer(dialog)` once the next modal dialog is up (a real one, not a patched function)."""
    seen: list = []

    def poll() -> None:
        w = QApplication.activeModalWidget()
        if w is not None and not seen:
            seen.append(w)
            answer(w)
            QTimer.singleShot(5000, lambda: unstick(w))
        else:
            QTimer.singleShot(20, poll)

    def unstick(w) -> None:  # noqa: ANN001
        # An answer that did not close the dialog would leave its exec() waiting forever (the whole
        # run hangs until the faulthandler's timeout): close it, and fail the test instead
        # (pytest-qt reports exceptions raised in Qt callbacks).
        try:
            open_ = w.isVisible()
        except RuntimeError:  # deleted with its dialog function's frame: long closed
            return
        if open_:
            w.close()
            raise AssertionError(f"{type(w).__name__} still open 5 s after the answer")

    QTimer.singleShot(20, poll)
    return seen


# -- 3: paste keeps transparency ----------------------------------------------------------------------


def _transparent_clip() -> QImage:
    """200x100, transparent but for an opaque orange rectangle in the middle (what s19 pasted)."""
    img = QImage(200, 100, QImage.Format.Format_ARGB32)
    img.fill(QColor(0, 0, 0, 0))
    p = QPainter(img)
    p.fillRect(50, 25, 100, 50, QColor(255, 200, 0, 255))
    p.end()
    return img


def test_qimage_alpha_comes_back_straight_not_premultiplied() -> None:
    img = QImage(4, 2, QImage.Format.Format_ARGB32)
    img.fill(QColor(255, 0, 0, 128))  # half-transparent red: premultiplied it would read (128, 0, 0)
    rgb, alpha = from_qimage_alpha(img)
    assert rgb.shape == (2, 4, 3) and rgb[0, 0].tolist() == [255, 0, 0]
    assert alpha is not None and alpha.shape == (2, 4) and abs(int(alpha[0, 0]) - 128) <= 1
    # An alpha channel with nothing transparent in it (how most apps copy a photo) is no transparency.
    img.fill(QColor(10, 20, 30, 255))
    rgb, alpha = from_qimage_alpha(img)
    assert alpha is None and rgb[1, 3].tolist() == [10, 20, 30]


def test_pasting_a_transparent_image_keeps_its_transparency(window, dialog_log, tmp_path: Path) -> None:
    c = window.controller
    QGuiApplication.clipboard().setImage(_transparent_clip())
    window.act_paste.trigger()
    doc = c.document
    assert doc.size == (200, 100) and doc.name == "Pasted image" and doc.dirty
    # The transparent border stays transparent (it was dropped: the pasted image was opaque black).
    assert doc.alpha is not None and doc.alpha[0, 0] == 0 and doc.alpha[50, 100] == 255
    assert doc.image[50, 100].tolist() == [255, 200, 0]
    assert "transparency kept" in window.status_text.text()
    # ...and is written out like an opened file's: a PNG with the same alpha.
    dialog_log.save_path = str(tmp_path / "pasted.png")
    assert window._on_save()
    saved = Image.open(tmp_path / "pasted.png")
    assert saved.mode == "RGBA" and saved.getpixel((0, 0))[3] == 0 and saved.getpixel((100, 50)) == (255, 200, 0, 255)


def test_pasting_an_opaque_image_adds_no_transparency(window) -> None:
    img = QImage(20, 10, QImage.Format.Format_ARGB32)
    img.fill(QColor(1, 2, 3, 255))
    QGuiApplication.clipboard().setImage(img)
    window.act_paste.trigger()
    assert window.controller.document.alpha is None
    assert window.status_text.text() == "Pasted image (20x10)."


def test_copy_keeps_transparency_so_a_paste_gets_it_back(window, tmp_path: Path) -> None:
    # Soft alpha (0..255 across the picture) with colour under it: a copy used to be RGB only, so
    # the paste came back opaque, its transparent parts their raw colour.
    rgb = make_photo(30, 40, seed=7)
    alpha = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (30, 1))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "cut.png")
    c = window.controller
    assert window._open(tmp_path / "cut.png")
    window.act_copy.trigger()
    clip = QGuiApplication.clipboard().image()
    assert clip.hasAlphaChannel() and clip.pixelColor(0, 0).alpha() == 0 and clip.pixelColor(39, 0).alpha() == 255
    assert window.status_text.text() == "Image copied to the clipboard, transparency kept."
    window.act_paste.trigger()
    doc = c.document
    assert doc.name == "Pasted image" and doc.alpha is not None
    assert np.array_equal(doc.alpha, alpha)
    seen = alpha > 0  # a fully transparent pixel's colour need not survive (premultiplied clipboards)
    assert np.array_equal(doc.image[seen], rgb[seen])


def test_copying_an_opaque_picture_puts_no_alpha_on_the_clipboard(window) -> None:
    window.act_copy.trigger()
    assert not QGuiApplication.clipboard().image().hasAlphaChannel()
    assert window.status_text.text() == "Image copied to the clipboard."


# -- 6: Esc on "Replace the original?" cancels ----------------------------------------------------------


def test_esc_and_the_close_button_on_replace_the_original_mean_cancel(qtbot) -> None:
    buttons: list[list[str]] = []

    def esc(box) -> None:  # noqa: ANN001
        buttons.append([b.text() for b in box.buttons()])
        QTest.keyClick(box, Qt.Key.Key_Escape)

    _answer_modal(qtbot, esc)
    assert REAL_CONFIRM_OVERWRITE(None, "photo.png", "photo.bak.png") is None  # was False: Save As
    assert sorted(buttons[0]) == ["Cancel", "Replace", "Save As..."]
    _answer_modal(qtbot, lambda box: box.close())  # the window's close button
    assert REAL_CONFIRM_OVERWRITE(None, "photo.png", "photo.bak.png") is None
    _answer_modal(qtbot, lambda box: next(b for b in box.buttons() if b.text() == "Save As...").click())
    assert REAL_CONFIRM_OVERWRITE(None, "photo.png", "photo.bak.png") is False
    _answer_modal(qtbot, lambda box: next(b for b in box.buttons() if b.text() == "Replace").click())
    assert REAL_CONFIRM_OVERWRITE(None, "photo.png", "photo.bak.png") is True


def _edited(window) -> bytes:  # noqa: ANN001
    """Colour a stroke on the opened photo.png so that Ctrl+S has something to save; its bytes before."""
    from app.model.brush import BrushTool

    c = window.controller
    before = c.document.path.read_bytes()
    c.set_brush(tool=BrushTool.colour, size=8)
    c.begin_stroke(10, 10)
    c.extend_stroke(30, 20)
    c.end_stroke()
    assert c.document.dirty
    return before


def test_cancel_on_replace_the_original_saves_nothing_and_opens_no_save_as(window, dialog_log,
                                                                          tmp_path: Path) -> None:
    before = _edited(window)
    dialog_log.overwrite_answer = None  # Cancel, Esc or the close button
    dialog_log.save_path = str(tmp_path / "elsewhere.png")  # what a Save As dialog would answer
    assert window._on_save() is False
    assert dialog_log.overwrite_asked == ["photo.png"]
    assert not (tmp_path / "elsewhere.png").exists()  # Save As was opened (and saved) before
    assert window.controller.document.path.read_bytes() == before and window.controller.document.dirty


def test_save_as_on_replace_the_original_still_goes_to_save_as(window, dialog_log, tmp_path: Path) -> None:
    before = _edited(window)
    dialog_log.overwrite_answer = False
    dialog_log.save_path = str(tmp_path / "elsewhere.png")
    assert window._on_save() is True
    assert (tmp_path / "elsewhere.png").exists() and window.controller.document.path == tmp_path / "elsewhere.png"
    assert (tmp_path / "photo.png").read_bytes() == before


def test_closing_the_window_is_abandoned_when_replace_is_cancelled(window, dialog_log, tmp_path: Path) -> None:
    _edited(window)
    dialog_log.unsaved_answer, dialog_log.overwrite_answer = "save", None
    dialog_log.save_path = str(tmp_path / "elsewhere.png")  # Save As (opened before) saved here and closed
    window.close()
    assert window.isVisible() and window.controller.document.dirty
    assert not (tmp_path / "elsewhere.png").exists()


# -- 7: long status messages elide, with the rest in the tooltip ---------------------------------------

LONG = ("Stroke edit done in 3.46 s. Without a mask the whole photo is redrawn at 228x128 px, so all of it "
        "comes back soft: paint a mask over your strokes to change only there.")


def test_a_long_status_message_ends_in_an_ellipsis_and_the_tooltip_has_all_of_it(window, qtbot) -> None:
    window.resize(900, 600)
    window.set_status(LONG)
    qtbot.waitUntil(lambda: window.width() == 900)
    label = window.status_text
    shown = label.displayed_text()
    assert label.text() == LONG  # the text itself is whole
    assert shown.endswith("\u2026") and LONG.startswith(shown[:-1])  # it was cut at "...over your", unmarked
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert label.toolTip() == LONG
    # Room for all of it: no ellipsis and no tooltip repeating what is in plain view.
    window.set_status("Saved photo.png.")
    assert label.displayed_text() == "Saved photo.png." and label.toolTip() == ""
    # A long message never makes the window wider than the user made it.
    window.set_status(LONG * 3)
    assert window.minimumSizeHint().width() < 900


# -- 9: menus show tooltips; Open Recent and the batch choice say which is which -----------------------


def test_every_menu_shows_its_tooltips(window) -> None:
    menus = [a.menu() for a in window.menuBar().actions()] + [window.recent_menu]
    assert len(menus) == 8 and all(isinstance(m, QMenu) for m in menus)
    assert [m.title() for m in menus if not m.toolTipsVisible()] == []


def test_open_recent_tells_files_of_the_same_name_apart(window, tmp_path: Path) -> None:
    paths = []
    for folder in ("holiday", "edits"):
        (tmp_path / folder).mkdir()
        paths.append(tmp_path / folder / "swans.png")
        Image.fromarray(make_photo(20, 30)).save(paths[-1])
        assert window._open(paths[-1])
    actions = window.recent_menu.actions()
    texts = [a.text() for a in actions]
    assert texts[:2] == ["swans.png \u2014 edits", "swans.png \u2014 holiday"]  # were both "swans.png"
    assert [a.toolTip() for a in actions[:2]] == [str(paths[1].resolve()), str(paths[0].resolve())]
    assert "photo.png" in texts  # a name listed once stays just its name


def test_recent_labels_use_as_many_folders_as_it_takes() -> None:
    assert recent_labels(["/a/x/s.jpg", "/b/x/s.jpg", "/c/t.png"]) == ["s.jpg \u2014 a/x", "s.jpg \u2014 b/x", "t.png"]
    assert recent_labels(["/a/s.jpg", "/b/s.jpg"]) == ["s.jpg \u2014 a", "s.jpg \u2014 b"]


def test_the_batch_results_menu_shows_the_current_choice(window, dialog_log, tmp_path: Path) -> None:
    folder, beside = window.act_batch_folder, window.act_batch_beside
    assert beside.isCheckable() and beside.isChecked() and not folder.isChecked()  # the default
    dialog_log.batch_folder = str(tmp_path / "results")
    folder.trigger()
    assert folder.isChecked() and not beside.isChecked()
    assert "results" in folder.text() and str(tmp_path / "results") in folder.toolTip()
    dialog_log.batch_folder = None  # a picker cancelled: the folder stays the choice
    folder.trigger()
    assert folder.isChecked() and window.controller.settings.batch_out_dir == str(tmp_path / "results")
    beside.trigger()
    assert beside.isChecked() and not folder.isChecked() and "results" not in folder.text()
    dialog_log.batch_folder = None  # cancelled while next-to-inputs is the choice: it stays checked
    folder.trigger()
    assert beside.isChecked() and not folder.isChecked()


def test_the_batch_file_type_menu_shows_the_current_choice(window, tmp_path: Path, qtbot) -> None:
    from app.gui import build
    from app.model.jobs import BATCH_FORMATS

    actions, menu = window.batch_format_actions, window.batch_format_menu
    assert list(actions) == list(BATCH_FORMATS)  # every format the controller takes, none it refuses
    assert [a.text() for a in actions.values()] == [
        "&PNG (keeps 16 bits and transparency)", "&JPEG", "&WebP (lossless)", "&TIFF", "&BMP", "&Same as each input"]
    assert all(a.isCheckable() for a in actions.values())
    assert actions["png"].isChecked() and menu.title().endswith(": PNG")  # the default: what batches wrote
    assert menu.menuAction() in window.menuBar().actions()[0].menu().actions()  # in the File menu
    actions["jpg"].trigger()
    assert [k for k, a in actions.items() if a.isChecked()] == ["jpg"]  # exclusive, like the folder choice
    assert menu.title().endswith(": JPEG") and window.controller.settings.batch_format == "jpg"
    actions["same"].trigger()
    assert [k for k, a in actions.items() if a.isChecked()] == ["same"] and "same as input" in menu.title()
    # A restart (a new window on the same settings file) shows the choice it left.
    w2 = build(settings_file=tmp_path / "settings.json", models_dir=tmp_path / "models")
    qtbot.addWidget(w2)
    try:
        assert [k for k, a in w2.batch_format_actions.items() if a.isChecked()] == ["same"]
        assert "same as input" in w2.batch_format_menu.title()
    finally:
        w2.close()
        w2.engine.shutdown()


# -- 13: Save As file types ------------------------------------------------------------------------------


@pytest.mark.parametrize("suggested, selected", [("photo.jpg", "JPEG (*.jpg *.jpeg)"), ("a/b.BMP", "BMP (*.bmp)"),
                                                 ("x.tiff", "TIFF (*.tif *.tiff)"),
                                                 ("Pasted image.png", "PNG (*.png)")])
def test_save_as_preselects_the_file_type_of_the_suggested_name(monkeypatch, suggested: str, selected: str) -> None:
    asked = []

    class FileDialog:  # stands in for QFileDialog
        @staticmethod
        def getSaveFileName(parent, caption, name, filters, selected_filter=""):
            asked.append((filters.split(";;"), selected_filter))
            return "", ""

    monkeypatch.setattr(dialogs, "QFileDialog", FileDialog)
    assert REAL_SAVE_IMAGE_FILE(None, suggested) is None
    filters, preselected = asked[0]
    assert preselected == selected and preselected in filters  # PNG was preselected for every name
    assert "BMP (*.bmp)" in filters  # BMP is saved, so it is offered


def test_a_typed_name_of_a_format_that_cannot_be_saved_is_refused(window, dialog_log, tmp_path: Path) -> None:
    dialog_log.save_path = str(tmp_path / "anim.gif")
    assert window._on_save_as() is False
    assert not (tmp_path / "anim.gif.png").exists() and not (tmp_path / "anim.gif").exists()
    (title, message), = dialog_log.errors
    assert "anim.gif" in message and all(t in message for t in ("png", "jpg", "webp", "tif", "bmp"))


def test_save_as_path_adds_the_picked_type_only_to_names_without_one(tmp_path: Path) -> None:
    assert save_as_path(tmp_path / "photo", ".bmp") == tmp_path / "photo.bmp"
    assert save_as_path(tmp_path / "photo.JPG", ".png") == tmp_path / "photo.JPG"
    assert save_as_path(tmp_path / "v1.2", ".png") == tmp_path / "v1.2.png"  # not an image type: a name
    for name in ("anim.gif", "scan.heic", "icon.ico"):
        with pytest.raises(ImageError, match="cannot save as"):
            save_as_path(tmp_path / name, ".png")


# -- 15: Help dialogs -----------------------------------------------------------------------------------


def test_about_names_the_version_the_command_line_prints(window, monkeypatch) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(dialogs, "show_text", lambda parent, title, text: shown.append((title, text)))
    window.act_about.trigger()
    window.act_shortcuts.trigger()
    (about_title, about), (_, shortcuts) = shown
    assert version() != "unknown" and version() in about
    # One row per binding, keys | action (it was one paragraph wrapped mid-binding).
    assert shortcuts == SHORTCUTS_HELP and shortcuts.startswith("<table")
    for _, bindings in SHORTCUTS:
        for keys, action in bindings:
            assert f">{escape(keys)}</td><td>{escape(action)}</td></tr>" in shortcuts


def test_the_shortcuts_table_is_shown_without_wrapping_a_row(qtbot) -> None:
    sizes: list[tuple[float, float, float, float, float]] = []

    def look(box) -> None:  # noqa: ANN001
        for label in box.findChildren(QLabel):
            if "<table" in label.text():
                ideal = QTextDocument()
                ideal.setDefaultFont(label.font())
                ideal.setDocumentMargin(0)
                ideal.setHtml(label.text())  # laid out at its natural width: every row on one line
                sizes.append((label.width(), label.height(), ideal.idealWidth(), ideal.size().height(),
                              label.fontMetrics().lineSpacing()))
        box.reject()

    _answer_modal(qtbot, look)
    REAL_SHOW_TEXT(None, "Keyboard shortcuts", SHORTCUTS_HELP)
    (width, height, ideal_width, ideal_height, line), = sizes
    # In the 400 px message box four rows wrapped, each a line taller than this.
    assert width >= ideal_width and height < ideal_height + line / 2
