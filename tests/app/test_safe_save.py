"""Safe saves: atomic replacement, a question before replacing the original, a backup when it is,
and nothing lost when the disk is full, the folder read-only, or the process killed mid-save."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.model import safe_write
from engine.imageio import Picture, load_picture, save_picture

from .conftest import make_photo
from .fakes import make_controller, scripted_view

ROOT = Path(__file__).resolve().parents[2]


def _edited(tmp_path: Path, *, overwrite: bool = True):
    """A controller with photo.png open and changed by a colour stroke (dirty)."""
    original = tmp_path / "photo.png"
    Image.fromarray(make_photo(48, 64)).save(original)
    c, view, engine = make_controller(tmp_path, start=[str(original)], load_model=False,
                                      view=scripted_view(overwrite=overwrite))
    c.set_brush(tool="colour", colour=(255, 0, 255), size=8)
    c.begin_stroke(10, 10)
    c.extend_stroke(40, 30)
    c.end_stroke()
    assert c.document.dirty
    return c, view, original, original.read_bytes()


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_replacing_the_original_asks_first(tmp_path: Path) -> None:
    c, view, original, before = _edited(tmp_path, overwrite=False)
    assert not c.save()  # declined: the window then offers Save As
    view.confirm_overwrite.assert_called_once_with("photo.png", "photo.bak.png")
    assert original.read_bytes() == before and c.document.dirty
    assert not (tmp_path / "photo.bak.png").exists()


def test_a_replaced_original_is_kept_as_a_backup_once(tmp_path: Path) -> None:
    c, view, original, before = _edited(tmp_path)
    assert c.save()
    backup = tmp_path / "photo.bak.png"
    assert backup.read_bytes() == before  # the original, byte for byte
    assert "photo.bak.png" in view.set_status.call_args.args[0]
    assert load_picture(original).rgb[20, 25].tolist() == [255, 0, 255] and not c.document.dirty
    # Saving again in this session replaces our own file: no question, and the backup keeps the original.
    c.set_brush(colour=(0, 255, 0))
    c.begin_stroke(5, 40)
    c.end_stroke()
    assert c.save()
    assert view.confirm_overwrite.call_count == 1 and backup.read_bytes() == before
    assert _hidden(tmp_path) == []


def test_save_as_over_an_existing_file_keeps_a_backup_without_asking_again(tmp_path: Path) -> None:
    c, view, _, _ = _edited(tmp_path)
    other = tmp_path / "other.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(other)
    old = other.read_bytes()
    assert c.save(other, confirmed=True)  # the file dialog asked already
    view.confirm_overwrite.assert_not_called()
    assert (tmp_path / "other.bak.png").read_bytes() == old and load_picture(other).size == (64, 48)


def test_saved_files_get_normal_permissions_and_replaced_ones_keep_theirs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(safe_write, "_UMASK", 0o022)
    new = tmp_path / "new.png"
    safe_write.atomic_write(new, b"x")
    assert new.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
    os.chmod(new, 0o640)
    safe_write.atomic_write(new, b"y", backup=safe_write.backup_path(new))
    assert new.stat().st_mode & 0o777 == 0o640 and (tmp_path / "new.bak.png").read_bytes() == b"x"
    safe_write.atomic_write(tmp_path / "autosave.json", b"{}", private=True)
    assert (tmp_path / "autosave.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("where, code", [("replace", errno.ENOSPC), ("mkstemp", errno.EROFS),
                                         ("write", errno.ENOSPC), ("link", errno.EACCES)])
def test_disk_full_or_read_only_is_reported_and_nothing_is_lost(tmp_path: Path, monkeypatch, where: str,
                                                               code: int) -> None:
    # Tests run as root, where chmod does not stop writes: the failing calls are simulated instead.
    c, view, original, before = _edited(tmp_path)
    c.autosave_tick()
    c.autosave.flush()
    err = OSError(code, os.strerror(code))

    def fail(*a, **k):
        raise err

    if where == "replace":
        monkeypatch.setattr(safe_write.os, "replace", fail)
    elif where == "mkstemp":
        monkeypatch.setattr(safe_write.tempfile, "mkstemp", fail)
    elif where == "write":
        monkeypatch.setattr(safe_write.os, "fsync", fail)
    else:  # the backup cannot be made (neither link nor copy): the save must not go ahead without it
        monkeypatch.setattr(safe_write.os, "link", fail)
        monkeypatch.setattr(safe_write.shutil, "copy2", fail)
    image = c.document.image
    assert not c.save()
    title, message = view.show_error.call_args.args
    assert title == "Could not save the image" and os.strerror(code) in message and "not changed" in message
    assert original.read_bytes() == before  # the file on disk
    assert c.document.image is image and c.document.dirty  # the work in the editor
    assert _hidden(tmp_path) == [] and not (tmp_path / "photo.bak.png").exists()
    assert c.autosave.orphans() == [] and list((tmp_path / "state" / "autosave").glob("*/session.json"))


def test_a_failing_autosave_is_reported_without_a_dialog(tmp_path: Path, monkeypatch) -> None:
    c, view, _, _ = _edited(tmp_path)

    def disk_full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safe_write.os, "replace", disk_full)
    c.autosave_tick()  # queued; the writer thread fails
    c.autosave.flush()
    c.autosave_tick()  # reported now, and retried
    assert "Autosave failed (No space left on device)" in view.set_status.call_args.args[0]
    view.show_error.assert_not_called()


KILL_MID_SAVE = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.app.fakes import make_controller
tmp, original = Path(sys.argv[1]), Path(sys.argv[2])
c, view, _ = make_controller(tmp, start=[str(original)], load_model=False)
c.set_brush(tool="colour", colour=(255, 0, 255), size=30)
c.begin_stroke(100, 100); c.extend_stroke(900, 700); c.end_stroke()
c.save()  # CSTUDIO_TEST_SAVE_PAUSE holds it between fsync and rename: the parent kills it there
print("save returned", flush=True)
"""


def test_a_process_killed_mid_save_leaves_the_original_intact(tmp_path: Path) -> None:
    original = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (1000, 1200, 3), dtype=np.uint8)).save(original, compress_level=1)
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    env = {**os.environ, safe_write.PAUSE_ENV: "big.png:60", "CSTUDIO_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-c", KILL_MID_SAVE.format(root=str(ROOT)), str(tmp_path), str(original)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "paused before rename" not in line:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, f"the writer exited early: {proc.stderr.read()}"
        temp = Path(line.split("rename: ", 1)[1].strip())
        assert temp.stat().st_size > 3_000_000  # the new file is fully written, only not renamed yet
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        proc.kill()
    assert hashlib.sha256(original.read_bytes()).hexdigest() == digest
    assert not (tmp_path / "big.bak.png").exists()  # killed before the backup step: nothing half-made


WRITER_LOOP = """
import os, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from app.model.safe_write import atomic_write, backup_path
target = Path(sys.argv[1])
payloads = [bytes([i]) * (8 << 20) for i in (1, 2)]
print("ready", flush=True)
n = 0
while True:
    atomic_write(target, payloads[n % 2], backup=backup_path(target))
    n += 1
"""


def test_random_kills_during_repeated_saves_never_leave_a_partial_file(tmp_path: Path) -> None:
    """Kill a process that saves an 8 MB file over and over at random moments: every file stays whole."""
    target = tmp_path / "doc.png"
    original = b"\x00" * (8 << 20)
    whole = {hashlib.sha256(bytes([i]) * (8 << 20)).hexdigest() for i in (0, 1, 2)}
    rnd = random.Random(0)
    runs = int(os.environ.get("CSTUDIO_KILL_RUNS", "8"))  # more for a longer campaign
    for _ in range(runs):
        target.write_bytes(original)
        proc = subprocess.Popen([sys.executable, "-c", WRITER_LOOP.format(root=str(ROOT)), str(target)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rnd.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert hashlib.sha256(target.read_bytes()).hexdigest() in whole
        backup = target.with_name("doc.bak.png")
        if backup.exists():
            assert hashlib.sha256(backup.read_bytes()).hexdigest() in whole
    # Killed writers leave hidden temp files; a later save of the same file clears those gone stale.
    for temp in tmp_path.glob(".doc.png.*"):
        os.utime(temp, (time.time() - 2 * safe_write.STALE_TEMP_S,) * 2)
    safe_write.atomic_write(target, b"final")
    assert [p.name for p in tmp_path.glob(".doc.png.*")] == []


@pytest.mark.parametrize("name, depth, alpha, said", [
    ("out.jpg", 8, True, ["JPEG keeps no transparency"]),
    ("out.bmp", 8, True, ["BMP keeps no transparency"]),
    ("out.jpg", 16, False, ["JPEG keeps 8 bits per channel"]),
    ("out.webp", 16, True, ["WebP keeps 8 bits per channel"]),
    ("out.png", 16, True, []),
    ("out.jpg", 8, False, []),
])
def test_saving_says_what_the_format_leaves_out(tmp_path: Path, name: str, depth: int, alpha: bool,
                                                said: list[str]) -> None:
    rgb = make_photo(24, 32).astype(np.uint16) * (257 if depth == 16 else 1)
    a = np.full(rgb.shape[:2], 65535 if depth == 16 else 255, rgb.dtype)
    a[:, :8] = 0  # a transparent strip
    src = save_picture(tmp_path / "src.png", Picture(rgb if depth == 16 else rgb.astype(np.uint8),
                                                     (a if depth == 16 else a.astype(np.uint8)) if alpha else None))
    c, view, _ = make_controller(tmp_path, start=[str(src)], load_model=False)
    assert c.document.image.dtype == (np.uint16 if depth == 16 else np.uint8)
    assert (c.document.alpha is not None) == alpha
    assert c.save(tmp_path / name, confirmed=True)
    status = view.set_status.call_args.args[0]
    assert status.startswith(f"Saved {name}.")
    for words in said:
        assert words in status
    if not said:
        assert status == f"Saved {name}."


def _paint(c, colour) -> None:
    c.set_brush(tool="colour", colour=colour, size=8)
    c.begin_stroke(10, 10)
    c.extend_stroke(40, 30)
    c.end_stroke()


def test_a_later_session_keeps_the_earlier_backup_and_numbers_its_own(tmp_path: Path) -> None:
    c, view, original, before = _edited(tmp_path)
    assert c.save()
    first_edit = original.read_bytes()
    # The next session opens the edited photo and saves over it again: photo.bak.png holds the
    # untouched original and must stay; this session's backup gets the next free name.
    (tmp_path / "s2").mkdir()  # its own settings: another session of the app
    c2, view2, _ = make_controller(tmp_path / "s2", start=[str(original)], load_model=False)
    _paint(c2, (0, 255, 0))
    assert c2.save()
    view2.confirm_overwrite.assert_called_once_with("photo.png", "photo.bak-2.png")
    assert (tmp_path / "photo.bak.png").read_bytes() == before
    assert (tmp_path / "photo.bak-2.png").read_bytes() == first_edit
    assert "kept as photo.bak-2.png" in view2.set_status.call_args.args[0]


def test_a_file_opened_again_is_asked_about_and_backed_up_again(tmp_path: Path) -> None:
    c, view, original, _ = _edited(tmp_path)
    assert c.save()
    # Another program rewrites the photo; the user opens it again in the same session and edits it.
    Image.fromarray(np.full((48, 64, 3), 200, np.uint8)).save(original)
    theirs = original.read_bytes()
    assert c.open_path(original)
    _paint(c, (0, 0, 255))
    assert c.save()
    assert view.confirm_overwrite.call_count == 2
    assert (tmp_path / "photo.bak-2.png").read_bytes() == theirs


def test_saving_over_a_multi_page_tiff_says_the_other_pages_stay_only_in_the_backup(tmp_path: Path) -> None:
    scan = tmp_path / "scan.tif"
    pages = [Image.fromarray(np.full((48, 64, 3), v, np.uint8)) for v in (40, 120, 200)]
    pages[0].save(scan, save_all=True, append_images=pages[1:])
    before = scan.read_bytes()
    c, view, _ = make_controller(tmp_path, start=[str(scan)], load_model=False)
    _paint(c, (255, 0, 0))
    assert c.save()
    view.confirm_overwrite.assert_called_once_with(
        "scan.tif", "scan.bak.tif", "It holds 3 pages: the saved file will hold only the first, the one you edited.")
    assert (tmp_path / "scan.bak.tif").read_bytes() == before
    with Image.open(scan) as im:
        assert im.n_frames == 1
    # Save As to a new name is no replacement: nothing to say.
    assert c.save(tmp_path / "copy.tif")
    assert view.confirm_overwrite.call_count == 1


def test_a_backup_name_taken_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    c, view, original, before = _edited(tmp_path)
    theirs = tmp_path / "photo.bak.png"

    def another_program_saves_first(name, backup_name, *loses):
        theirs.write_bytes(b"another window's backup")  # between the question and the write
        return True

    view.confirm_overwrite.side_effect = another_program_saves_first
    assert c.save()
    assert theirs.read_bytes() == b"another window's backup"
    assert (tmp_path / "photo.bak-2.png").read_bytes() == before
    assert "kept as photo.bak-2.png" in view.set_status.call_args.args[0]


def test_save_as_over_the_opened_multi_page_file_still_says_what_it_drops(tmp_path: Path) -> None:
    scan = tmp_path / "scan.tif"
    pages = [Image.fromarray(np.full((48, 64, 3), v, np.uint8)) for v in (40, 120, 200)]
    pages[0].save(scan, save_all=True, append_images=pages[1:])
    c, view, _ = make_controller(tmp_path, start=[str(scan)], load_model=False)
    _paint(c, (255, 0, 0))
    assert c.save(scan, confirmed=True)  # picked in Save As, whose own question knows nothing of pages
    view.confirm_overwrite.assert_called_once()
    assert "3 pages" in view.confirm_overwrite.call_args.args[2]
