"""Every modal dialog the app shows, as module functions.

Keeping them here gives tests one place to patch (`monkeypatch.setattr(dialogs, "show_error", ...)`),
so no test ever blocks on a modal box, and keeps QMessageBox/QFileDialog details out of the window.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QColorDialog, QDialog, QDialogButtonBox, QFileDialog, QInputDialog, QLabel,
                               QMessageBox, QVBoxLayout, QWidget)

from ..files import OPEN_SUFFIXES, SAVE_TYPES

IMAGE_FILTER = "Images ({})".format(" ".join(f"*{s}" for s in OPEN_SUFFIXES))
_TYPE_NAMES = {"WEBP": "WebP"}  # as the format calls itself; the others are acronyms
# One file type per format the app saves (BMP was saved but could not be picked), PNG first.
SAVE_FILTER_LIST = tuple(f"{_TYPE_NAMES.get(fmt, fmt)} ({' '.join('*' + s for s in suffixes)})"
                         for fmt, suffixes in SAVE_TYPES)
SAVE_FILTERS = ";;".join(SAVE_FILTER_LIST)
_SAVE_FILTER_OF = {s: f for (_, suffixes), f in zip(SAVE_TYPES, SAVE_FILTER_LIST) for s in suffixes}
CHECKPOINT_FILTER = "Checkpoints (*.pt *.pth *.safetensors *.bin);;All files (*)"


def show_error(parent: QWidget | None, title: str, message: str) -> None:
    QMessageBox.warning(parent, title, message)


def ask_unsaved(parent: QWidget | None, name: str) -> str:
    """'save', 'discard' or 'cancel'."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes",
                      f"Save the changes to {name} before closing it?", parent=parent)
    box.setInformativeText("Your changes will be lost if you don't save them.")
    box.setStandardButtons(QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                           | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    return {QMessageBox.StandardButton.Save: "save", QMessageBox.StandardButton.Discard: "discard"}.get(
        QMessageBox.StandardButton(answer), "cancel")


def confirm_overwrite(parent: QWidget | None, name: str, backup_name: str, loses: str = "") -> bool | None:
    """Replace an existing file (usually the original the user opened)? If so, it is kept as a backup.
    `loses`: what the saved file will not have that this one has (its other pages), said first.

    True: replace it; False: Save As (write a new file instead); None: cancel, save nothing.
    Esc and the window's close button mean Cancel: they used to answer Save As, so a box dismissed
    to back out opened a file dialog instead.
    """
    box = QMessageBox(QMessageBox.Icon.Question, "Replace the original?",
                      f"Save over {name}?", parent=parent)
    box.setInformativeText(f"{loses + ' ' if loses else ''}The current {name} will be kept as {backup_name}. "
                           "Choose Save As to write a new file instead.")
    replace = box.addButton("Replace", QMessageBox.ButtonRole.AcceptRole)
    save_as = box.addButton("Save As...", QMessageBox.ButtonRole.ActionRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(replace)
    box.setEscapeButton(cancel)
    box.exec()
    clicked = box.clickedButton()
    return True if clicked is replace else False if clicked is save_as else None


def ask_recover(parent: QWidget | None, description: str) -> str:
    """Recover the autosave of a session that ended in a crash: 'recover', 'discard' or 'later'.

    Only the Discard button deletes it. Esc and the window's close button mean Later (the escape
    button): a box dismissed without reading it must never cost the work.
    """
    box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved work?",
                      f"Consistency Studio did not close normally last time.\n\nRecover {description}?",
                      parent=parent)
    box.setInformativeText("Discard deletes this autosave. Later keeps it and asks again at the next start, "
                           "without opening it now.")
    recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    later = box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(recover)
    box.setEscapeButton(later)
    box.exec()
    clicked = box.clickedButton()
    return "recover" if clicked is recover else "discard" if clicked is discard else "later"


def pick_batch_folder(parent: QWidget | None, start: str) -> str | None:
    path = QFileDialog.getExistingDirectory(parent, "Folder for batch results", start)
    return path or None


def open_image_file(parent: QWidget | None, start: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, "Open image", start, f"{IMAGE_FILTER};;All files (*)")
    return path or None


def filter_suffix(name_filter: str) -> str:
    """The first extension a file-dialog filter names: "JPEG (*.jpg *.jpeg)" -> ".jpg"; "" if none."""
    match = re.search(r"\*(\.[A-Za-z0-9]+)", name_filter)
    return match.group(1).lower() if match else ""


def save_image_file(parent: QWidget | None, suggested: str) -> tuple[str, str] | None:
    """(path as typed, extension of the file type the user picked) or None if cancelled.

    Dialogs differ in whether they add the picked type's extension to a bare name, so the caller does.
    """
    path, chosen = QFileDialog.getSaveFileName(parent, "Save image as", suggested, SAVE_FILTERS,
                                               save_filter_for(suggested))
    return (path, filter_suffix(chosen)) if path else None


def save_filter_for(name: str) -> str:
    """The Save As file type of `name`'s extension ("x.jpg" -> JPEG), PNG for any other.

    Preselected in the dialog: it showed PNG for a suggested "photo.jpg", and a user who then
    typed a bare name got a PNG where the dialog had offered a JPEG's name.
    """
    return _SAVE_FILTER_OF.get(Path(name).suffix.lower(), SAVE_FILTER_LIST[0])


def open_mask_file(parent: QWidget | None, start: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, "Import mask", start, f"{IMAGE_FILTER};;All files (*)")
    return path or None


def save_mask_file(parent: QWidget | None, suggested: str) -> str | None:
    dialog = QFileDialog(parent, "Export mask", str(Path(suggested).parent), "PNG (*.png)")
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    # A name typed without an extension gets .png before the dialog asks whether to replace a file,
    # so its question covers the file actually written.
    dialog.setDefaultSuffix("png")
    dialog.selectFile(Path(suggested).name)
    if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.selectedFiles():
        return None
    return dialog.selectedFiles()[0]


def confirm_replace(parent: QWidget | None, name: str) -> bool:
    """Replace an existing file whose name the user did not type as such (an extension was added)?"""
    answer = QMessageBox.question(parent, "Replace the file?", f"{name} already exists. Replace it?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def open_checkpoint(parent: QWidget | None, start: str, folder: bool) -> str | None:
    if folder:
        path = QFileDialog.getExistingDirectory(parent, "Import a diffusers model folder", start)
    else:
        path, _ = QFileDialog.getOpenFileName(parent, "Import checkpoint", start, CHECKPOINT_FILTER)
    return path or None


def ask_image_size(parent: QWidget | None, name: str, sizes: list[int], current: int, guess: int,
                   step: int) -> str | None:
    """The image size for a model whose file does not store it: one of `sizes` or one typed; the text
    as entered ("128", "128 px"), for the controller to check, or None if cancelled."""
    items = [f"{s} px" + (" (guessed on import)" if s == guess else "") for s in sizes]
    text = (f"{name} does not store the image size its network was trained at; the importer guessed "
            f"{guess} px.\nPick the size it was trained at, or type one (multiples of {step} px):")
    index = sizes.index(current) if current in sizes else 0
    value, ok = QInputDialog.getItem(parent, "Image size", text, items, index, True)
    return value if ok else None


def pick_colour(parent: QWidget | None, current: tuple[int, int, int]) -> tuple[int, int, int] | None:
    c = QColorDialog.getColor(QColor(*current), parent, "Brush colour")
    return (c.red(), c.green(), c.blue()) if c.isValid() else None


def show_text(parent: QWidget | None, title: str, text: str) -> None:
    if "<table" not in text:
        QMessageBox.information(parent, title, text)
        return
    # A message box wraps its text to 400-500 px whatever is asked: the shortcuts table squeezed into
    # that broke bindings and actions over lines. A plain dialog lets the table take its own width.
    box = QDialog(parent)
    box.setWindowTitle(title)
    label = QLabel(text)
    label.setObjectName("text")
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(box.reject)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(18, 14, 18, 12)
    layout.addWidget(label)
    layout.addWidget(buttons)
    layout.setSizeConstraint(QVBoxLayout.SizeConstraint.SetFixedSize)
    box.exec()
