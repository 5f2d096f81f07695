"""Autosave and crash recovery of the open document: image, mask, alpha, metadata and undo history.

One folder per running app under the state directory (`<state>/autosave/<session>/`):

    lock            held with flock by the running app; the kernel frees it when the process dies
    session.json    the manifest: document name, path and metadata, and which blobs make each snapshot
    blobs/<key>.z   one array each, raw bytes compressed with zlib; named by a hash of the content

Nothing is pickled: the manifest names each blob's dtype and shape, and loading checks both. Blobs
are content-addressed and written once, so after a brush stroke only the new mask is written,
however long the history. A clean exit removes the folder; a folder whose lock is free therefore
belongs to an app that crashed or was killed, and the next start offers it for recovery.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import threading
import time
import weakref
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator
from pathlib import Path

import numpy as np

from .document import Document, Snapshot, new_revision
from .history import History
from .safe_write import atomic_write

try:  # POSIX: a lock the kernel releases on kill -9
    import fcntl
except ImportError:  # Windows: fall back to the age of the heartbeat file
    fcntl = None  # type: ignore[assignment]

FORMAT = "consistency-studio-autosave"
VERSION = 1
_DTYPES = {"uint8": np.dtype(np.uint8), "uint16": np.dtype(np.uint16)}
HEARTBEAT_STALE_S = 120.0  # without flock: a session untouched this long has no live owner
_MAX_SIDE = 1 << 17
# Bytes hashed or compressed between two looks at whether the write was abandoned (`clear`): a 96 Mpx
# 16-bit picture is 576 MB, seconds of work a closed document has no use for.
CHUNK_BYTES = 32 << 20


class AutosaveError(Exception):
    """An autosave that cannot be read back; the message says why."""


class _Abandoned(Exception):
    """The write in progress was given up: `clear` has dropped the session it was writing."""


@dataclass(frozen=True)
class Orphan:
    """The autosave of an app that did not exit cleanly."""

    folder: Path
    name: str  # the document's name, for the question to the user
    saved_at: float  # seconds since the epoch
    edits: int  # undo steps it holds

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))
        return f"{self.name}, autosaved {when} ({self.edits} undo step{'s' if self.edits != 1 else ''})"


@dataclass(frozen=True, eq=False)
class Recovered:
    document: Document
    undo: list[tuple[Snapshot, str]]
    redo: list[tuple[Snapshot, str]]


def _encode_info(info: object) -> object:
    # EXIF and ICC are bytes: base64 in JSON; tuples (DPI) come back as lists and are re-tupled on load.
    if isinstance(info, bytes):
        return {"b64": base64.b64encode(info).decode("ascii")}
    if isinstance(info, dict):
        return {str(k): _encode_info(v) for k, v in info.items()}
    if isinstance(info, (list, tuple)):
        return [_encode_info(v) for v in info]
    if isinstance(info, (str, int, float, bool)) or info is None:
        return info
    return str(info)


def _decode_info(data: object) -> object:
    if isinstance(data, dict):
        if set(data) == {"b64"}:
            return base64.b64decode(data["b64"])
        return {k: _decode_info(v) for k, v in data.items()}
    if isinstance(data, list):
        return tuple(_decode_info(v) for v in data)
    return data


@dataclass(frozen=True, eq=False)
class _State:
    """What one autosave writes, captured on the UI thread; every array in it is read-only."""

    current: Snapshot
    undo: list[tuple[Snapshot, str]]
    redo: list[tuple[Snapshot, str]]
    meta: dict[str, object]


class Autosave:
    """The running app's autosave, plus finding and reading those left behind by crashed ones.

    `save` only captures the state (immutable snapshots) and hands it to a writer thread, so the
    UI never waits for hashing, compression or fsync; a newer state replaces one not yet started.
    A failed write is kept for `take_error`; `flush` waits until everything queued is on disk.
    `clear` does not wait for a write in progress: the writer abandons it and removes what it left.
    """

    def __init__(self, root: Path, *, background: bool = True) -> None:
        self.root = Path(root)
        self.background = background
        self._folder: Path | None = None
        self._lock: int | None = None  # fd holding the flock while this app runs
        # id(array) -> (weak reference to it, key): snapshot arrays are read-only, so a key once computed
        # stays valid while the array lives; the reference tells a live array from a new one given a
        # dead one's id. Weak: holding the arrays kept a closed 96 Mpx document (900 MB) and the undo
        # steps History had dropped alive until the next write, up to AUTOSAVE_INTERVAL_S later.
        self._keys: dict[int, tuple[weakref.ref[np.ndarray], str]] = {}
        self._cv = threading.Condition()
        # Bumped by `clear`: a write started under an older value is abandoned (see `_write`).
        self._generation = 0
        self._pending: _State | None = None
        self._writing = False
        self._error: OSError | None = None
        self._thread: threading.Thread | None = None

    # -- this app's session ---------------------------------------------------------------------

    def _session(self) -> Path:
        if self._folder is None:
            # Built under a hidden name and renamed once locked: another app scanning for crashed
            # sessions never sees this folder without its lock held. On a failure nothing stays
            # behind (no open lock, no hidden folder), so the next autosave simply tries again.
            name = f"{os.getpid()}-{time.time_ns()}"
            making = self.root / f".{name}"
            folder = self.root / name
            lock: int | None = None
            try:
                (making / "blobs").mkdir(parents=True, exist_ok=True)
                if fcntl is not None:
                    # POSIX renames a folder with an open file in it; the lock must be held before the
                    # folder gets a name scanners look at.
                    lock = os.open(making / "lock", os.O_RDWR | os.O_CREAT, 0o600)
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                else:
                    # No flock (Windows): liveness is the lock file's age (the heartbeat), so nothing
                    # needs to stay open, and Windows refuses to rename a folder holding an open file.
                    (making / "lock").touch()
                os.rename(making, folder)
            except BaseException:
                if lock is not None:
                    os.close(lock)
                shutil.rmtree(making, ignore_errors=True)
                raise
            self._folder, self._lock = folder, lock
        return self._folder

    def _key(self, a: np.ndarray, check: Callable[[], None]) -> str:
        cached = self._keys.get(id(a))
        if cached is not None and cached[0]() is a:
            return cached[1]
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{a.dtype.name}{a.shape}".encode())
        for chunk in _chunks(a):  # the same digest as in one piece
            check()
            h.update(chunk)
        return h.hexdigest()

    def save(self, doc: Document, history: History) -> None:
        """Autosave the document and its history (in the background unless `background=False`).

        Raises OSError only when writing synchronously; a background failure is kept for `take_error`.
        The previous autosave stays valid until the new one is complete.
        """
        undo, redo = history.entries()
        meta = {"name": doc.name, "path": str(doc.path) if doc.path is not None else None,
                "saved_revision": doc.saved_revision, "info": _encode_info(dict(doc.info)), "notes": list(doc.notes)}
        state = _State(doc.snapshot(), undo, redo, meta)
        if not self.background:
            self._write(state, self._generation)
            return
        with self._cv:
            self._pending = state
            if self._thread is None:
                self._thread = threading.Thread(target=self._writer, name="autosave", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def _writer(self) -> None:
        # Lives while there is work: a thread per burst of saves, none idling between them.
        while True:
            with self._cv:
                if self._pending is None:
                    self._thread = None
                    self._cv.notify_all()
                    return
                state, self._pending, self._writing = self._pending, None, True
                generation = self._generation
            try:
                self._write(state, generation)
            except _Abandoned:
                pass  # cleared meanwhile: nothing was lost, so nothing to report
            except OSError as e:
                # Without its traceback, whose frames hold the state's arrays until `take_error`.
                self._error = e.with_traceback(None)
            finally:
                with self._cv:
                    self._writing = False
                    self._cv.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued autosave is written (or failed)."""
        with self._cv:
            self._cv.wait_for(lambda: self._pending is None and not self._writing, timeout)

    def take_error(self) -> OSError | None:
        """The error of the last failed background write, once."""
        error, self._error = self._error, None
        return error

    def _write(self, state: _State, generation: int) -> None:
        """Write `state` unless `clear` bumps the generation first; then raise _Abandoned, leaving nothing.

        `clear` removes the session folder without waiting; the writer looks between chunks of work
        and gives up, and its manifest is renamed into place only under the lock `clear` takes, so
        a folder `clear` dropped never gets a manifest that recovery would offer. What the writer
        added to the folder after `clear` removed it, it removes itself.
        """

        def check() -> None:
            if self._generation != generation:
                raise _Abandoned

        with self._cv:  # `clear` cannot drop the session between this check and its creation
            check()
            folder = self._session()
        try:
            self._write_to(folder, state, check, generation)
        except BaseException:
            if self._generation != generation:
                shutil.rmtree(folder, ignore_errors=True)
                raise _Abandoned from None  # a failure in a folder `clear` removed is no failure
            raise

    @contextmanager
    def _unless_abandoned(self, generation: int) -> Iterator[None]:
        with self._cv:
            if self._generation != generation:
                raise _Abandoned
            yield

    def _write_to(self, folder: Path, state: _State, check: Callable[[], None], generation: int) -> None:
        blobs: dict[str, np.ndarray] = {}

        def ref(a: np.ndarray | None) -> str | None:
            if a is None:
                return None
            key = self._key(a, check)
            blobs[key] = a
            return key

        def snap(s: Snapshot) -> dict[str, object]:
            return {"image": ref(s.image), "mask": ref(s.mask), "before": ref(s.before), "alpha": ref(s.alpha),
                    "before_alpha": ref(s.before_alpha), "revision": s.image_revision}

        manifest = {
            "format": FORMAT, "version": VERSION, "saved_at": time.time(), "pid": os.getpid(), **state.meta,
            "current": snap(state.current),
            "undo": [{"label": label, **snap(s)} for s, label in state.undo],
            "redo": [{"label": label, **snap(s)} for s, label in state.redo],
            "blobs": {k: {"dtype": a.dtype.name, "shape": list(a.shape)} for k, a in blobs.items()},
        }
        for key, a in blobs.items():
            path = folder / "blobs" / f"{key}.z"
            if not path.exists():  # content-addressed: an existing blob already holds these bytes
                atomic_write(path, _compress(a, check), private=True)
        atomic_write(folder / "session.json", json.dumps(manifest).encode("utf-8"), private=True,
                     guard=lambda: self._unless_abandoned(generation))
        # Only after the manifest points at the new set may unreferenced blobs go.
        for path in (folder / "blobs").glob("*.z"):
            if path.stem not in blobs:
                path.unlink(missing_ok=True)
        self._keys = {id(a): (weakref.ref(a), k) for k, a in blobs.items()}
        os.utime(folder / "lock")  # heartbeat for systems without flock

    def heartbeat(self) -> None:
        if self._folder is not None:
            try:
                os.utime(self._folder / "lock")
            except OSError:
                pass

    def clear(self) -> None:
        """Drop this app's autosave (nothing left to lose, or a clean exit).

        Never waits for a write in progress (a 16-bit 50 Mpx one takes up to 20 s, and closing the
        window right after a result froze it that long): the writer abandons it (`_write`).
        """
        with self._cv:
            self._pending = None  # a queued state is moot now
            self._generation += 1
            folder, lock = self._folder, self._lock
            self._folder, self._lock, self._keys = None, None, {}
        if folder is not None:
            # The manifest first: without it no start offers the folder for recovery, whatever else
            # stays (Windows cannot remove the writer's open temp file; the writer removes it later).
            (folder / "session.json").unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
        if lock is not None:
            os.close(lock)

    # -- sessions left behind -------------------------------------------------------------------

    def _owner_alive(self, folder: Path) -> bool:
        lock = folder / "lock"
        if fcntl is None:
            try:
                return time.time() - lock.stat().st_mtime < HEARTBEAT_STALE_S
            except OSError:
                return False
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # closing releases the probe's lock
        return False

    def orphans(self) -> list[Orphan]:
        """Autosaves of apps that are no longer running, newest first."""
        found: list[Orphan] = []
        if not self.root.is_dir():
            return found
        for folder in self.root.iterdir():
            if folder.name.startswith(".") and folder.is_dir():
                # A session still being set up, or one whose app was killed while setting it up
                # (it never held an autosave): only the latter is old.
                try:
                    if time.time() - folder.stat().st_mtime > HEARTBEAT_STALE_S:
                        shutil.rmtree(folder, ignore_errors=True)
                except OSError:
                    pass
                continue
            if not folder.is_dir() or folder == self._folder or self._owner_alive(folder):
                continue
            manifest = folder / "session.json"
            if not manifest.is_file():  # killed before its first autosave: nothing to offer
                shutil.rmtree(folder, ignore_errors=True)
                continue
            try:
                m = json.loads(manifest.read_text("utf-8"))
                found.append(Orphan(folder, str(m["name"]), float(m["saved_at"]), len(m["undo"])))
            except (OSError, ValueError, KeyError, TypeError):
                found.append(Orphan(folder, "an unreadable autosave", manifest.stat().st_mtime, 0))
        return sorted(found, key=lambda o: o.saved_at, reverse=True)

    def discard(self, orphan: Orphan) -> None:
        shutil.rmtree(orphan.folder, ignore_errors=True)

    def load(self, orphan: Orphan) -> Recovered:
        """Rebuild the document and its history; AutosaveError if anything is missing or inconsistent."""
        try:
            m = json.loads((orphan.folder / "session.json").read_text("utf-8"))
            if m.get("format") != FORMAT or int(m.get("version", 0)) > VERSION:
                raise AutosaveError(f"{orphan.folder.name}: not an autosave this version can read")
            return self._rebuild(orphan.folder, m)
        except AutosaveError:
            raise
        except (OSError, ValueError, KeyError, TypeError, zlib.error) as e:
            raise AutosaveError(f"the autosave in {orphan.folder} is damaged ({type(e).__name__}: {e})") from None

    def _rebuild(self, folder: Path, m: dict) -> Recovered:
        arrays: dict[str, np.ndarray] = {}

        def array(key: str | None) -> np.ndarray | None:
            if key is None:
                return None
            if key not in arrays:
                arrays[key] = _read_blob(folder / "blobs" / f"{key}.z", m["blobs"][key])
            return arrays[key]

        # Revision numbers are per process: map the old ones to fresh ones, keeping which are equal.
        revisions: dict[int, int] = {}

        def revision(old: int) -> int:
            return revisions.setdefault(int(old), new_revision())

        def snap(d: dict) -> Snapshot:
            image, mask = array(d["image"]), array(d["mask"])
            if image is None or mask is None or image.ndim != 3 or mask.shape != image.shape[:2]:
                raise AutosaveError(f"the autosave in {folder} is damaged: a snapshot's mask does not fit its image")
            # "before_alpha" is missing from autosaves written before it was kept: 'before' shows opaque.
            return Snapshot(image, mask, array(d["before"]), array(d["alpha"]), revision(d["revision"]),
                            before_alpha=array(d.get("before_alpha")))

        current = snap(m["current"])
        undo = [(snap(d), str(d["label"])) for d in m["undo"]]
        redo = [(snap(d), str(d["label"])) for d in m["redo"]]
        info = _decode_info(m.get("info") or {})
        path = Path(m["path"]) if m.get("path") else None
        doc = Document(current.image, path, alpha=current.alpha, info=info if isinstance(info, dict) else {},
                       notes=tuple(str(n) for n in m.get("notes", ())), name=str(m["name"]))
        doc.restore(current)
        saved = int(m.get("saved_revision", -1))
        doc.saved_revision = revisions.get(saved, -1)
        return Recovered(doc, undo, redo)


def _read_blob(path: Path, desc: dict) -> np.ndarray:
    dtype = _DTYPES.get(str(desc["dtype"]))
    shape = tuple(int(n) for n in desc["shape"])
    if dtype is None or len(shape) not in (2, 3) or not all(0 < n <= _MAX_SIDE for n in shape):
        raise AutosaveError(f"the autosave is damaged: {path.name} describes an unexpected array {desc}")
    expected = int(np.prod(shape)) * dtype.itemsize
    d = zlib.decompressobj()
    raw = d.decompress(path.read_bytes(), expected + 1)  # bounded: a bad blob cannot balloon memory
    if len(raw) != expected or d.unconsumed_tail:
        raise AutosaveError(f"the autosave is damaged: {path.name} holds {len(raw)} bytes, "
                            f"the manifest says {expected}")
    a = np.frombuffer(raw, dtype).reshape(shape)
    a.flags.writeable = False  # like every snapshot array (frombuffer on bytes is read-only anyway)
    return a


def _chunks(a: np.ndarray) -> Iterator[np.ndarray]:
    """`a`'s bytes in pieces of CHUNK_BYTES, in memory order."""
    flat = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    for start in range(0, flat.size, CHUNK_BYTES):
        yield flat[start:start + CHUNK_BYTES]


def _compress(a: np.ndarray, check: Callable[[], None]) -> bytes:
    """zlib level 1 of `a`'s bytes (what `_read_blob` reads), calling `check` between pieces."""
    z = zlib.compressobj(1)
    parts = []
    for chunk in _chunks(a):
        check()
        parts.append(z.compress(chunk))
    parts.append(z.flush())
    return b"".join(parts)
