"""Fetching Debian packages and pulling image files out of them (plain files, Qt .rcc, Enlightenment .edj)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from .rcc import RccBundle, RccError

Fetch = Callable[[str, Path], Path]
INNER_SEP = "!"


class DatasetError(Exception):
    """The dataset cannot be built as the allow-list demands (missing package, file or checksum)."""


def _run(cmd: list[str], *, cwd: Path | None = None, what: str) -> subprocess.CompletedProcess:
    """Run a command, turning a missing tool or a failure into a DatasetError."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"{what}: '{cmd[0]}' is not installed ({exc})") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise DatasetError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return proc


def deb_field(deb: Path, field: str) -> str:
    """Read one control field (Package, Version, ...) of a .deb."""
    return _run(["dpkg-deb", "-f", str(deb), field], what=f"reading {field} of {deb.name}").stdout.strip()


class AptFetcher:
    """Default package fetcher: ``apt-get download NAME``, running ``apt-get update`` once first."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self._updated = False
        self._log = log

    def update(self) -> None:
        """Refresh apt's package lists once per fetcher."""
        if self._updated:
            return
        self._log("apt-get update (once, so that 'apt-get download' sees the current archive)")
        self._updated = True
        try:
            _run(["apt-get", "update", "-q"], what="apt-get update")
        except DatasetError as exc:
            # Not fatal: without root, or offline with a cache, the existing lists may still do.
            self._log(f"WARNING: {exc}; trying with the package lists as they are")

    def __call__(self, package: str, dest: Path) -> Path:
        """Download the archive's current version of *package* into *dest* and return the .deb path."""
        self.update()
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.glob("*.deb"))
        # As root, apt otherwise warns that its sandbox user cannot write the cache folder.
        cmd = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package]
        try:
            _run(cmd, cwd=dest, what=f"apt-get download {package}")
        except DatasetError as exc:
            raise DatasetError(f"package '{package}' could not be downloaded from the Debian archive: {exc}") from exc
        new = [p for p in set(dest.glob("*.deb")) - before if deb_field(p, "Package") == package]
        # apt-get leaves an already present file alone, so then look it up by name.
        deb = max(new, key=lambda p: p.stat().st_mtime) if new else find_cached_deb(package, dest)
        if deb is None:
            raise DatasetError(f"apt-get download {package} reported success but no .deb for it appeared")
        return deb


def find_cached_deb(package: str, deb_dir: Path) -> Path | None:
    """Return the newest cached .deb of *package* in *deb_dir*, if any."""
    hits = [p for p in deb_dir.glob(f"{package}_*.deb") if p.name.split("_", 1)[0] == package]
    return max(hits, key=lambda p: p.stat().st_mtime) if hits else None


def extract_deb(deb: Path, dest: Path) -> Path:
    """Unpack the data part of a .deb into *dest* with ``dpkg-deb -x``."""
    dest.mkdir(parents=True, exist_ok=True)
    _run(["dpkg-deb", "-x", str(deb), str(dest)], what=f"dpkg-deb -x {deb.name}")
    return dest


def ensure_edje_decc(log: Callable[[str], None] = print) -> str:
    """Return the edje_decc executable, installing Debian's libedje-bin when it is missing."""
    exe = shutil.which("edje_decc")
    if exe:
        return exe
    log("edje_decc not found: installing libedje-bin with apt-get (needed for Enlightenment .edj files)")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "libedje-bin"]
    if os.geteuid() != 0:
        raise DatasetError("edje_decc is missing and installing libedje-bin needs root: run 'apt-get install libedje-bin'")
    try:
        _run(install, what="apt-get install libedje-bin")
    except DatasetError:
        # A fresh machine may have empty package lists.
        _run(["apt-get", "update", "-q"], what="apt-get update")
        _run(install, what="apt-get install libedje-bin")
    exe = shutil.which("edje_decc")
    if not exe:
        raise DatasetError("libedje-bin was installed but edje_decc is still not on PATH")
    return exe


def decompile_edj(edj: Path, dest: Path, log: Callable[[str], None] = print) -> Path:
    """Decompile an Enlightenment .edj into *dest* with ``edje_decc`` (images come out as PNG)."""
    exe = ensure_edje_decc(log)
    out = dest / "edc"
    _run([exe, str(edj), "-output", str(out), "-no-build-sh", "-quiet"], what=f"edje_decc {edj.name}")
    return out


def largest_edj_image(decompiled: Path) -> Path:
    """Return the ``img*`` image with the most pixels in a decompiled .edj folder."""
    from PIL import Image

    best, best_px = None, -1
    for p in sorted(decompiled.glob("img*")):
        with Image.open(p) as im:
            px = im.size[0] * im.size[1]
        if px > best_px:
            best, best_px = p, px
    if best is None:
        raise DatasetError(f"no img* image inside {decompiled}")
    return best


def split_path(path: str) -> tuple[str, str | None]:
    """Split an allow-list path 'outer!inner' into (outer, inner or None)."""
    outer, sep, inner = path.partition(INNER_SEP)
    return outer, (inner if sep else None)


class PackageTree:
    """An unpacked package, with access to files and to members of .rcc / .edj containers."""

    def __init__(self, root: Path, log: Callable[[str], None] = print) -> None:
        self.root = root
        self._log = log
        self._rcc: dict[str, RccBundle] = {}
        self._edj: dict[str, Path] = {}

    def read(self, path: str) -> bytes:
        """Return the bytes of an allow-list path; raises KeyError when it is absent."""
        outer, inner = split_path(path)
        file = self.root / outer
        if not file.is_file():
            raise KeyError(outer)
        if inner is None:
            return file.read_bytes()
        if outer.endswith(".rcc"):
            if outer not in self._rcc:
                try:
                    self._rcc[outer] = RccBundle.open(file)
                except RccError as exc:
                    raise DatasetError(f"{outer}: {exc}") from exc
            return self._rcc[outer].read(inner)
        if outer.endswith(".edj"):
            if outer not in self._edj:
                tmp = Path(tempfile.mkdtemp(prefix="edj-", dir=self.root.parent))
                self._log(f"decompiling {Path(outer).name} with edje_decc (about 30 s each)")
                self._edj[outer] = decompile_edj(file, tmp, self._log)
            member = self._edj[outer] / inner
            if not member.is_file():
                raise KeyError(path)
            return member.read_bytes()
        raise DatasetError(f"{path}: don't know how to open members of '{Path(outer).suffix}' files")
