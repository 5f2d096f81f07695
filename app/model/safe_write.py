"""Durable file writes: temporary file, flush and fsync, rename; optionally keep a backup of what is replaced.

Every file the app writes (images, masks, settings, autosaves) goes through `atomic_write`, so a
crash, a kill or a full disk at any moment leaves either the old file or the complete new one,
never a truncated mix. Temporary files are hidden siblings (`.name.<random>.cstudio-tmp`) so the
rename never crosses a file system.

Backups: when the user agrees to replace a file, the old version is kept once per session as
`<stem>.bak<suffix>` next to it (`photo.bak.jpg` stays openable by any viewer and sits where the
user will look for it), or `<stem>.bak-2<suffix>`, -3, ... when an earlier one exists (`backup_path`). It is made by hard link where possible (instant, no extra space) and
only after the new data is safely on disk.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Callable

TEMP_SUFFIX = ".cstudio-tmp"
STALE_TEMP_S = 600  # a temp file this old belongs to a writer that died; a live one finishes in seconds
# Test hook, "<file name>:<seconds>": sleep between fsync and rename when writing that file,
# announced on stderr, so a test can kill a real process at the worst moment. Unset in normal use.
PAUSE_ENV = "CSTUDIO_TEST_SAVE_PAUSE"


def _read_umask() -> int:
    # Read once, at import: os.umask can only be read by setting it, which is not thread-safe later.
    try:
        with open("/proc/self/status") as f:  # Linux: readable without changing it
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def backup_path(path: Path) -> Path:
    """Where the previous version of `path` would be kept now: `photo.jpg` -> `photo.bak.jpg`, or the
    first of `photo.bak-2.jpg`, `photo.bak-3.jpg`, ... that does not exist.

    An existing backup is never replaced: it is an earlier session's (often the untouched original
    the user first opened), or a file of the user's own that happens to have that name. The second
    session's save used to overwrite `photo.bak.jpg` with the first session's edit, and the original
    was gone.
    """
    path = Path(path)
    candidate = path.with_name(f"{path.stem}.bak{path.suffix}")
    n = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = path.with_name(f"{path.stem}.bak-{n}{path.suffix}")
        n += 1
    return candidate


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; POSIX only (Windows cannot open a directory).
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temps(path: Path) -> None:
    """Temp files of earlier writers of `path` that were killed before their rename."""
    now = time.time()
    try:
        candidates = list(path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"))
    except OSError:
        return
    for tmp in candidates:
        try:
            if now - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink()
        except OSError:
            pass  # gone already, or not ours to delete: harmless either way


def _pause_for_tests(path: Path, tmp: str) -> None:
    name, _, seconds = os.environ.get(PAUSE_ENV, "").rpartition(":")
    if seconds and name == path.name:
        sys.stderr.write(f"cstudio: paused before rename: {tmp}\n")
        sys.stderr.flush()
        time.sleep(float(seconds))


def _keep_backup(path: Path, backup: Path) -> Path:
    """Make `backup` a copy of `path` atomically (link or copy to a temp name, then link that to
    `backup`); returns the backup made. An existing file is never replaced: if one appeared at
    `backup` since it was chosen (another window or program saving the same photo), the next free
    name of `backup_path` is taken instead."""
    fd, tmp = tempfile.mkstemp(prefix=f".{backup.name}.", suffix=TEMP_SUFFIX, dir=backup.parent)
    os.close(fd)
    try:
        os.unlink(tmp)
        try:
            os.link(path, tmp)
        except OSError:  # no hard links here (FAT, some network shares): copy instead
            shutil.copy2(path, tmp)
        while True:
            try:
                os.link(tmp, backup)  # unlike a rename, fails on an existing name
                break
            except FileExistsError:
                backup = backup_path(path)
            except OSError:  # no hard links: rename, after checking the name is still free
                if backup.exists():
                    backup = backup_path(path)
                    continue
                os.replace(tmp, backup)
                break
        Path(tmp).unlink(missing_ok=True)
        return backup
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes, *, backup: Path | None = None, private: bool = False,
                 guard: Callable[[], AbstractContextManager[object]] | None = None) -> Path | None:
    """Replace `path` with `data` atomically; with `backup`, the previous file is kept there first
    (or at the next free backup name, if that one has been taken since: `_keep_backup`). Returns
    the backup made, None if none.

    The file gets the replaced file's permissions, or what a plain open() would give (umask);
    `private` keeps mkstemp's owner-only mode (autosaves). Raises OSError (ENOSPC, EROFS, EACCES,
    ...) with `path` unchanged and no temp file left.

    `guard`: a context manager entered around the rename only (not the write or the fsync), which
    may raise to leave `path` untouched: the autosave's manifest is renamed into place under its
    writer's lock, so a `clear` either comes first (no manifest) or after (and removes it).
    """
    path = Path(path)
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if not private and hasattr(os, "fchmod"):  # mkstemp made it 0600: saving must not hide a photo
                os.fchmod(f.fileno(), path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_UMASK)
            os.fsync(f.fileno())
        _pause_for_tests(path, tmp)
        kept = None
        with guard() if guard is not None else nullcontext():
            if backup is not None and path.exists():
                kept = _keep_backup(path, backup)
            try:
                os.replace(tmp, path)
            except BaseException:
                if kept is not None:  # the file was not replaced: its backup would only be a stray copy
                    kept.unlink(missing_ok=True)
                raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return kept
