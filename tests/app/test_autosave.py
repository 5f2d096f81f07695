"""Autosave and crash recovery: what is written, when, and what the next start offers after a kill -9."""

from __future__ import annotations

import gc
import os
import sys
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.model.autosave import Autosave
from app.model.document import Document

from .conftest import make_photo
from .fakes import kill_after_autosave, make_controller, scripted_view

ROOT = Path(__file__).resolve().parents[2]


def _stroke(c, *points, **kw) -> None:
    c.begin_stroke(*points[0], **kw)
    for p in points[1:]:
        c.extend_stroke(*p)
    c.end_stroke()


def _crash(c) -> None:
    """What kill -9 does to the autosave: the lock goes with the process, the files stay."""
    c.autosave.flush()
    os.close(c.autosave._lock)
    c.autosave._lock = c.autosave._folder = None


def _sessions(tmp_path: Path) -> list[Path]:
    root = tmp_path / "state" / "autosave"
    return sorted(p for p in root.iterdir()) if root.is_dir() else []


@pytest.fixture
def photo_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(make_photo(48, 64)).save(path)
    return path


def test_work_is_recovered_with_its_history_after_a_crash(tmp_path: Path, photo_file: Path) -> None:
    c, _, engine = make_controller(tmp_path, start=[str(photo_file)])
    _stroke(c, (10, 10), (30, 12))
    c.run()
    engine.process()  # an accepted inpaint result: autosaved at once
    _stroke(c, (40, 30), (50, 35))
    c.set_brush(tool="colour", colour=(0, 0, 255))
    _stroke(c, (5, 40), (20, 40))
    c.undo()  # one redo step must survive too
    c.autosave_tick()
    image, mask, labels = c.document.image.copy(), c.document.mask.copy(), []
    while c.history.can_undo:
        labels.append(c.history.undo_label)
        c.undo()
    first = c.document.image.copy()
    for _ in labels:
        c.redo()
    _crash(c)

    c2, view2, _ = make_controller(tmp_path)
    view2.ask_recover.assert_called_once()
    assert "photo.png" in view2.ask_recover.call_args.args[0] and "3 undo steps" in view2.ask_recover.call_args.args[0]
    d = c2.document
    assert d.path == photo_file and d.dirty and np.array_equal(d.image, image) and np.array_equal(d.mask, mask)
    assert c2.history.redo_label == "Colour stroke"
    got = []
    while c2.history.can_undo:
        got.append(c2.history.undo_label)
        c2.undo()
    assert got == labels == ["Brush stroke", "Inpaint", "Brush stroke"]
    assert np.array_equal(c2.document.image, first)
    assert len(_sessions(tmp_path)) == 1  # the recovered work lives in the new session only


def test_an_accepted_result_is_autosaved_at_once(tmp_path: Path, photo_file: Path) -> None:
    c, _, engine = make_controller(tmp_path, start=[str(photo_file)])
    _stroke(c, (10, 10), (30, 12))
    c.autosave.flush()
    c.run()
    engine.process()  # no timer tick: the result itself triggers the autosave
    _crash(c)
    c2, _, _ = make_controller(tmp_path, load_model=False)
    assert np.array_equal(c2.document.image, c.document.image) and c2.history.undo_label == "Inpaint"


def test_declining_discards_the_autosave(tmp_path: Path, photo_file: Path) -> None:
    c, _, _ = make_controller(tmp_path, start=[str(photo_file)], load_model=False)
    _stroke(c, (10, 10), (30, 12))
    c.autosave_tick()
    _crash(c)
    c2, view2, _ = make_controller(tmp_path, start=[str(photo_file)], load_model=False,
                                   view=scripted_view(recover="discard"))
    view2.ask_recover.assert_called_once()
    assert not c2.document.mask.any() and _sessions(tmp_path) == []
    c3, view3, _ = make_controller(tmp_path, load_model=False)
    view3.ask_recover.assert_not_called()


def test_a_running_app_is_not_offered_to_another(tmp_path: Path, photo_file: Path) -> None:
    c, _, _ = make_controller(tmp_path, start=[str(photo_file)], load_model=False)
    _stroke(c, (10, 10), (30, 12))
    c.autosave_tick()
    c.autosave.flush()
    assert len(_sessions(tmp_path)) == 1
    _, view2, _ = make_controller(tmp_path, load_model=False)
    view2.ask_recover.assert_not_called()  # the first app still holds its lock
    assert len(_sessions(tmp_path)) == 1
    c.shutdown()  # a clean exit leaves nothing behind
    assert _sessions(tmp_path) == []


def test_autosave_writes_only_changes_and_only_when_there_is_work(tmp_path: Path, photo_file: Path,
                                                                   monkeypatch) -> None:
    c, _, _ = make_controller(tmp_path, start=[str(photo_file)], load_model=False)
    saves = []
    real = Autosave.save
    monkeypatch.setattr(Autosave, "save", lambda self, d, h: (saves.append(1), real(self, d, h)))
    c.autosave_tick()
    assert saves == [] and _sessions(tmp_path) == []  # a freshly opened file: nothing to lose
    _stroke(c, (10, 10), (30, 12))
    c.autosave_tick()
    c.autosave_tick()
    assert len(saves) == 1
    c.autosave.flush()
    blobs = {p.name for p in next(iter(_sessions(tmp_path))).glob("blobs/*.z")}
    _stroke(c, (40, 30), (50, 35))
    c.autosave_tick()
    c.autosave.flush()
    new = {p.name for p in next(iter(_sessions(tmp_path))).glob("blobs/*.z")}
    assert len(saves) == 2 and len(new - blobs) == 1  # only the new mask was written
    c.begin_stroke(5, 5)  # a tick mid-stroke waits for the stroke to end
    c.autosave_tick()
    assert len(saves) == 2
    c.end_stroke()
    assert len(saves) == 3


def test_autosave_writes_on_its_own_thread(tmp_path: Path, photo_file: Path, monkeypatch) -> None:
    """The UI thread only captures the state: a slow disk must not freeze the canvas."""
    import time

    from app.model import autosave as module

    real = module.atomic_write

    def slow_disk(path, data, **kw):
        time.sleep(0.2)
        real(path, data, **kw)

    monkeypatch.setattr(module, "atomic_write", slow_disk)
    c, _, _ = make_controller(tmp_path, start=[str(photo_file)], load_model=False)
    _stroke(c, (10, 10), (30, 12))
    t0 = time.perf_counter()
    c.autosave_tick()
    assert time.perf_counter() - t0 < 0.15
    c.autosave.flush()
    assert any((tmp_path / "state" / "autosave").glob("*/session.json"))


def test_sixteen_bit_alpha_and_metadata_survive_recovery(tmp_path: Path) -> None:
    rgb = (np.arange(24 * 32 * 3, dtype=np.uint32).reshape(24, 32, 3) * 23 % 65536).astype(np.uint16)
    alpha = np.full((24, 32), 40000, np.uint16)
    info = {"exif": b"Exif\x00\x00MM", "icc_profile": b"\x00icc", "text": {"parameters": "seed 7"},
            "dpi": (300.0, 300.0)}
    c, _, _ = make_controller(tmp_path, load_model=False)
    c._replace_document(Document(rgb, tmp_path / "scan.png", alpha=alpha, info=info, notes=("16-bit scan",)))
    _stroke(c, (10, 10), (20, 12))
    c.autosave_tick()
    _crash(c)
    c2, _, _ = make_controller(tmp_path, load_model=False)
    d = c2.document
    assert d.image.dtype == np.uint16 and np.array_equal(d.image, rgb) and np.array_equal(d.alpha, alpha)
    assert dict(d.info) == info and d.notes == ("16-bit scan",) and not d.dirty  # the image itself was unchanged


def test_before_keeps_its_transparency_through_recovery(tmp_path: Path) -> None:
    # A generate drops the picture's alpha; compare shows 'before' with the alpha it had
    # (Document.before_alpha), which a recovered session must still have, in its undo steps too.
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[:, 16:] = (200, 50, 30, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    c, _, engine = make_controller(tmp_path, start=[str(tmp_path / "cut.png")])
    alpha = c.document.alpha
    c.set_params(task="generate", steps=1)
    c.run()
    engine.process()
    c.set_params(task="colorize")
    c.run()
    engine.process()
    assert c.document.alpha is None and c.document.before_alpha is None  # the generated picture's, opaque
    _crash(c)
    c2, view2, _ = make_controller(tmp_path, load_model=False)
    assert c2.document.before_alpha is None
    c2.undo()  # back to the generated picture, whose 'before' is the transparent original
    assert np.array_equal(c2.document.before_alpha, alpha)
    assert np.array_equal(view2.set_before.call_args.args[1], alpha)


def test_a_damaged_autosave_gives_a_message_and_is_discarded(tmp_path: Path, photo_file: Path) -> None:
    c, _, _ = make_controller(tmp_path, start=[str(photo_file)], load_model=False)
    _stroke(c, (10, 10), (30, 12))
    c.autosave_tick()
    c.autosave.flush()
    session = c.autosave._folder
    _crash(c)
    for blob in session.glob("blobs/*.z"):
        blob.write_bytes(blob.read_bytes()[:10])  # a disk error ate the data
    c2, view2, _ = make_controller(tmp_path, start=[str(photo_file)], load_model=False)
    title, message = view2.show_error.call_args.args
    assert title == "Could not recover the autosave" and "damaged" in message
    assert c2.document.path == photo_file and _sessions(tmp_path) == []


CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.app.fakes import make_controller
tmp, photo = Path(sys.argv[1]), sys.argv[2]
c, view, _ = make_controller(tmp, start=[photo], load_model=False)
for y in (10, 20, 30):
    c.begin_stroke(5, y); c.extend_stroke(50, y + 3); c.end_stroke()
c.autosave_tick()
c.autosave.flush()  # the writer thread has put it on disk
print("autosaved", int(c.document.mask.astype(int).sum()), flush=True)
time.sleep(120)
"""


def test_kill_9_then_the_next_start_offers_recovery(tmp_path: Path, photo_file: Path) -> None:
    env = {**os.environ, "CSTUDIO_STATE_DIR": str(tmp_path / "state")}
    line = kill_after_autosave([sys.executable, "-c", CHILD.format(root=str(ROOT)), str(tmp_path / "child"),
                                str(photo_file)], env)
    c, view, _ = make_controller(tmp_path, load_model=False)
    view.ask_recover.assert_called_once()
    assert int(c.document.mask.astype(int).sum()) == int(line[1]) > 0
    assert c.history.undo_label == "Brush stroke" and c.document.path == photo_file


# -- a session folder that cannot be set up: no leaked handles, no hidden leftovers ---------------


def _open_files_under(folder: Path) -> list[str]:
    """Files this process holds open under `folder` (Linux: /proc/self/fd)."""
    fds = Path("/proc/self/fd")
    found = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


linux_only = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files via /proc")


def _doc_and_history():
    from app.model.history import History

    doc = Document(make_photo(8, 8), name="x")
    doc.mask[2:4, 2:4] = 255
    return doc, History()


@linux_only
@pytest.mark.parametrize("fails", ["rename", "flock"])
def test_a_failed_session_setup_leaks_no_handle_and_no_folder(tmp_path: Path, monkeypatch, fails: str) -> None:
    from app.model import autosave as module

    if fails == "flock" and module.fcntl is None:
        pytest.skip("no flock here")

    def refuse(*args, **kwargs):
        raise OSError(13, "refused")

    if fails == "rename":
        monkeypatch.setattr(module.os, "rename", refuse)
    else:
        monkeypatch.setattr(module.fcntl, "flock", refuse)
    root = tmp_path / "autosave"
    a = Autosave(root, background=False)
    doc, history = _doc_and_history()
    for _ in range(3):  # every attempt (one per autosave tick) fails the same way
        with pytest.raises(OSError):
            a.save(doc, history)
    assert _open_files_under(root) == []
    assert list(root.iterdir()) == []  # no `.pid-time` folder that orphans() would skip forever
    monkeypatch.undo()
    a.save(doc, history)  # the next attempt works, with nothing left over from the failed ones
    assert [p.name.startswith(".") for p in root.iterdir()] == [False]
    a.clear()
    assert _open_files_under(root) == [] and list(root.iterdir()) == []


@linux_only
def test_without_flock_no_file_is_open_when_the_session_folder_is_renamed(tmp_path: Path, monkeypatch) -> None:
    """Windows has no flock and refuses to rename a folder with an open file inside."""
    from app.model import autosave as module

    real_rename = module.os.rename

    def windows_rename(src, dst):
        if _open_files_under(Path(src)):
            raise PermissionError(13, "The process cannot access the file because it is being used", str(src))
        real_rename(src, dst)

    monkeypatch.setattr(module, "fcntl", None)
    monkeypatch.setattr(module.os, "rename", windows_rename)
    root = tmp_path / "autosave"
    a = Autosave(root, background=False)
    doc, history = _doc_and_history()
    a.save(doc, history)
    (folder,) = root.iterdir()
    assert (folder / "session.json").is_file() and (folder / "lock").is_file()
    assert a.orphans() == []  # its heartbeat is fresh: a running app, not a crashed one
    a.clear()
    assert list(root.iterdir()) == []


def test_a_half_made_session_left_by_a_killed_app_is_swept(tmp_path: Path) -> None:
    import time

    from app.model.autosave import HEARTBEAT_STALE_S

    root = tmp_path / "autosave"
    old, new = root / ".111-1", root / ".222-2"
    for folder in (old, new):
        (folder / "blobs").mkdir(parents=True)
        (folder / "lock").touch()
    past = time.time() - 2 * HEARTBEAT_STALE_S
    os.utime(old, (past, past))
    assert Autosave(root).orphans() == []
    assert not old.exists() and new.exists()  # a fresh one may be another app setting up right now


def test_a_recovery_that_drops_old_steps_says_so(tmp_path: Path, photo_file: Path, monkeypatch) -> None:
    """An autosave made under a larger limit: the steps that do not fit now go, and the user is told."""
    from app.model.history import History

    c, _, _ = make_controller(tmp_path, start=[str(photo_file)])
    for y in (10, 20, 30):
        _stroke(c, (10, y), (30, y))
    c.autosave_tick()
    _crash(c)
    monkeypatch.setattr(History.__init__, "__defaults__", (2, History().max_bytes))  # a 2-step limit
    c2, view2, _ = make_controller(tmp_path)
    status = view2.set_status.call_args.args[0]
    assert "Recovered" in status and "Undo goes back 2 steps: the oldest were dropped" in status
    assert "and 2 steps" in status and len(c2.history.entries()[0]) == 2


class _HeldWrite:
    """Stands in for `atomic_write`: the first write of `which` ("blob" or "manifest") waits for `release`,
    like the seconds a 16-bit 50 Mpx autosave spends compressing and writing."""

    def __init__(self, module, monkeypatch, which: str) -> None:
        self.real, self.which = module.atomic_write, which
        self.started, self.release, self.ended = threading.Event(), threading.Event(), threading.Event()
        monkeypatch.setattr(module, "atomic_write", self)

    def __call__(self, path: Path, data: bytes, **kw) -> None:
        held = not self.started.is_set() and (Path(path).name == "session.json") == (self.which == "manifest")
        if held:
            self.started.set()
            self.release.wait(30)  # only a safety valve: the test releases it
        try:
            self.real(path, data, **kw)
        finally:
            if held:
                self.ended.set()


@pytest.mark.parametrize("removable", [True, False], ids=["removed", "windows-open-file"])
@pytest.mark.parametrize("which", ["blob", "manifest"])
def test_clear_does_not_wait_for_a_write_and_leaves_no_autosave(tmp_path: Path, monkeypatch, which: str,
                                                                  removable: bool) -> None:
    """Closing the window right after a result waited for its autosave (5 s at 50 Mpx): clear() now
    returns at once, and the write it abandons never leaves anything recovery would offer."""
    from app.model import autosave as module

    held = _HeldWrite(module, monkeypatch, which)
    root = tmp_path / "autosave"
    a = Autosave(root)
    doc, history = _doc_and_history()
    a.save(doc, history)
    assert held.started.wait(30)
    with monkeypatch.context() as m:
        if not removable:  # the folder cannot go yet (Windows, a file open in it): the writer removes it
            m.setattr(module.shutil, "rmtree", lambda *args, **kw: None)
        a.clear()
        assert not held.ended.is_set()  # clear() returned while the write was still in progress
        assert list(root.glob("*/session.json")) == []
    held.release.set()
    a.flush()
    assert a.take_error() is None  # an abandoned write is no failure to report
    assert list(root.iterdir()) == []
    assert Autosave(root).orphans() == []


def test_a_save_after_clear_is_written_while_the_abandoned_one_is_dropped(tmp_path: Path, monkeypatch) -> None:
    from app.model import autosave as module

    held = _HeldWrite(module, monkeypatch, "blob")
    root = tmp_path / "autosave"
    a = Autosave(root)
    doc, history = _doc_and_history()
    a.save(doc, history)
    assert held.started.wait(30)
    a.clear()
    other = Document(make_photo(8, 8, seed=3), name="y")
    other.mask[:] = 255
    a.save(other, history)
    held.release.set()
    a.flush()
    assert a.take_error() is None
    (manifest,) = root.glob("*/session.json")
    assert '"name": "y"' in manifest.read_text()


def _alive(refs: list[weakref.ref]) -> int:
    gc.collect()
    return sum(r() is not None for r in refs)


def test_opening_another_picture_frees_the_autosaved_one(tmp_path: Path, photo_file: Path) -> None:
    """The autosave's cache of blob keys held the last written arrays: a closed 96 Mpx photo stayed in
    memory (+900 MB) until the next autosave tick."""
    c, view, _ = make_controller(tmp_path, start=[str(photo_file)], load_model=False)
    _stroke(c, (10, 10), (30, 12))
    c.autosave_tick()
    c.autosave.flush()
    undo, _ = c.history.entries()
    refs = [weakref.ref(a) for a in (c.document.image, c.document.mask, undo[0][0].mask)]
    del undo
    other = tmp_path / "other.png"
    Image.fromarray(make_photo(40, 56, seed=1)).save(other)
    assert c.open_path(other)
    view.reset_mock()  # the mock view remembers every array it was shown
    assert _alive(refs) == 0
    c.autosave_tick()  # the cache still works: an unchanged state is not written again
    c.autosave.flush()
    assert c.autosave.take_error() is None


def test_undo_steps_dropped_by_the_cap_are_freed_before_the_next_autosave(tmp_path: Path, photo_file: Path) -> None:
    c, view, _ = make_controller(tmp_path, start=[str(photo_file)], load_model=False)
    c.history.max_entries = 1
    _stroke(c, (10, 10), (30, 12))
    c.autosave_tick()
    c.autosave.flush()
    (oldest,) = c.history.entries()[0]
    ref = weakref.ref(oldest[0].mask)
    del oldest
    _stroke(c, (10, 30), (30, 32))  # the cap drops the first step
    view.reset_mock()
    assert _alive([ref]) == 0
