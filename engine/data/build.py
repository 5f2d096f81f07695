"""``cstudio data build``: turn allow-listed photos from Debian packages into the training set."""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import images
from .debian import AptFetcher, DatasetError, Fetch, PackageTree, deb_field, extract_deb, split_path

Log = Callable[[str], None]

DEFAULT_OUT = Path("data-cache/photos")
DEFAULT_ALLOWLIST = Path(__file__).with_name("allowlist.tsv")
ALLOWLIST_COLUMNS = ("package", "version", "path", "sha256", "licence", "author", "source_group")
MAX_SHORT_SIDE = 512
JPEG_QUALITY = 95
GREY_BELOW = 3.0  # Hasler-Süsstrunk M; photos of any colour score well above 10
DUP_MAX_BITS = 24  # of 256 dHash bits: copies in the real set differ by <= 3, distinct photos by >= 41
# Weights trained on the set are GPL-3.0-or-later, so every photo must be under a licence that
# can flow into that (tier C): no GFDL, no GPL-2.0-only, no NC/ND terms.
TIER_C_LICENCES = frozenset({
    "public-domain", "CC0-1.0", "MIT", "BSD-2-Clause",
    "CC-BY-1.0", "CC-BY-2.0", "CC-BY-2.5", "CC-BY-3.0", "CC-BY-4.0",
    "CC-BY-SA-2.0", "CC-BY-SA-2.5", "CC-BY-SA-3.0", "CC-BY-SA-4.0",
    "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later",
    "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later",
})
_GENERIC_NAME = re.compile(r"^(img(-\d+x\d+)?|\d+x\d+|images|contents|resource)$", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One allow-listed photo."""

    package: str
    version: str
    path: str
    sha256: str
    licence: str
    author: str
    source_group: str

    @property
    def key(self) -> str:
        return f"{self.package}/{self.path}"

    @property
    def split(self) -> str:
        """'heldout' for about one file in ten, chosen by a hash of package and path; else 'train'."""
        return "heldout" if int(hashlib.sha256(self.key.encode()).hexdigest(), 16) % 10 == 0 else "train"

    @property
    def image_id(self) -> str:
        """Stable, readable file id: group, a meaningful name from the path, and a short hash."""
        names = [Path(p).stem for p in reversed(re.split(r"[/!]", self.path)) if p]
        name = next((n for n in names if not _GENERIC_NAME.match(n)), names[0] if names else "image")
        slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "image"
        return f"{self.source_group}-{slug}-{hashlib.sha256(self.key.encode()).hexdigest()[:8]}"

    @property
    def ext(self) -> str:
        return Path(split_path(self.path)[1] or self.path).suffix.lower()


def read_allowlist(path: Path) -> list[Entry]:
    """Parse and sanity-check the allow-list TSV."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"allow-list {path} does not exist")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in ALLOWLIST_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DatasetError(f"allow-list {path} lacks columns: {', '.join(missing)}")
        entries = [Entry(**{c: (row[c] or "").strip() for c in ALLOWLIST_COLUMNS}) for row in reader]
    seen: set[str] = set()
    for n, e in enumerate(entries, start=2):
        where = f"allow-list {path.name} line {n} ({e.package}: {e.path})"
        if not re.fullmatch(r"[0-9a-f]{64}", e.sha256):
            raise DatasetError(f"{where}: sha256 must be 64 lowercase hex digits")
        if e.licence not in TIER_C_LICENCES:
            raise DatasetError(f"{where}: licence '{e.licence}' is not allowed in GPL-3.0-or-later weights")
        if not (e.package and e.path and e.author and e.source_group):
            raise DatasetError(f"{where}: package, path, author and source_group must not be empty")
        if e.key in seen:
            raise DatasetError(f"{where}: listed twice")
        seen.add(e.key)
    return entries


class Cache:
    """On-disk cache: downloaded .debs, verified original bytes, and resized JPEGs with their statistics."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.debs = root / "debs"
        self.originals = root / "originals"
        self.resized = root / f"resized-s{MAX_SHORT_SIDE}-q{JPEG_QUALITY}"
        self._checked: dict[str, bool] = {}  # sha256 -> resized copy verified whole (once per build)

    def original(self, e: Entry) -> Path:
        return self.originals / f"{e.sha256}{e.ext}"

    def jpeg(self, e: Entry) -> Path:
        return self.resized / f"{e.sha256}.jpg"

    def stats(self, e: Entry) -> Path:
        return self.resized / f"{e.sha256}.json"

    def is_done(self, e: Entry) -> bool:
        """The resized JPEG and its statistics are cached and whole: the JPEG's bytes match the
        sha256 its statistics recorded. A damaged one (a disk error, a cache copied in part) is made
        again from the original instead of being copied into the training set."""
        if e.sha256 not in self._checked:
            self._checked[e.sha256] = self._resized_whole(e)
        return self._checked[e.sha256]

    def _resized_whole(self, e: Entry) -> bool:
        try:
            stats = json.loads(self.stats(e).read_text())
            data = self.jpeg(e).read_bytes()
        except (OSError, ValueError):
            return False
        if not isinstance(stats, dict):
            return False
        digest = hashlib.sha256(data).hexdigest()
        if "jpeg_sha256" in stats:
            return stats["jpeg_sha256"] == digest
        # A cache from before the JPEG's hash was recorded: trust it only if it decodes whole, then
        # record the hash so later builds check the bytes alone.
        try:
            images.decode_rgb(data).load()
        except Exception:  # noqa: BLE001 - any decoding failure means the file is damaged
            return False
        _write_atomic(self.stats(e), json.dumps({**stats, "jpeg_sha256": digest}, sort_keys=True).encode())
        return True

    def forget(self, e: Entry) -> None:
        self._checked.pop(e.sha256, None)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace_atomic(path: Path, fill: Callable[[Path], None]) -> None:
    """Let `fill` write a temporary file next to `path`, then rename it over `path`: readers see
    the old file or the whole new one, never part of one. A failure leaves no temporary behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    os.close(fd)
    tmp = Path(name)
    try:
        fill(tmp)
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_atomic(path: Path, data: bytes) -> None:
    _replace_atomic(path, lambda tmp: tmp.write_bytes(data))


def _write_if_changed(path: Path, text: str) -> bool:
    """Write text unless the file already holds exactly it (keeps re-runs from touching outputs)."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    _write_atomic(path, text.encode("utf-8"))
    return True


def _deb_for(package: str, version: str, cache: Cache, fetch: Fetch, log: Log) -> Path:
    """Return a .deb of *package*: a cached one of the allow-listed version, else a fresh download."""
    cached = sorted(cache.debs.glob(f"{package}_*.deb")) if cache.debs.is_dir() else []
    for deb in cached:
        if deb.name.split("_", 1)[0] == package and deb_field(deb, "Version") == version:
            return deb
    log(f"downloading {package}")
    deb = Path(fetch(package, cache.debs))
    if not deb.is_file():
        raise DatasetError(f"package '{package}': the fetcher returned {deb}, which does not exist")
    got = deb_field(deb, "Package")
    if got != package:
        raise DatasetError(f"package '{package}': downloaded {deb.name} is package '{got}'")
    return deb


def _collect_package(package: str, todo: list[Entry], cache: Cache, fetch: Fetch, log: Log) -> list[str]:
    """Verify and cache the originals of *todo* from one package; return problem descriptions."""
    version = todo[0].version
    try:
        deb = _deb_for(package, version, cache, fetch, log)
    except DatasetError as exc:
        return [f"{package} ({len(todo)} files): {exc}"]
    got_version = deb_field(deb, "Version")
    if got_version != version:
        log(f"WARNING: {package}: allow-list was made from version {version}, the archive has "
            f"{got_version}; checking every file by sha256")
    problems = []
    with tempfile.TemporaryDirectory(prefix=f"{package}-", dir=cache.root) as tmp:
        log(f"extracting {deb.name}")
        tree = PackageTree(extract_deb(deb, Path(tmp) / "root"), log)
        for e in todo:
            try:
                data = tree.read(e.path)
            except KeyError:
                problems.append(f"{package} {got_version}: file {e.path} is not in the package")
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest != e.sha256:
                problems.append(f"{package} {got_version}: file {e.path} has sha256 {digest}, "
                                f"the allow-list expects {e.sha256}")
                continue
            _write_atomic(cache.original(e), data)
    return problems


def collect_originals(entries: list[Entry], cache: Cache, fetch: Fetch, log: Log) -> list[str]:
    """Make sure every entry's verified original is cached; return what could not be verified."""
    need: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        if cache.is_done(e):
            continue
        original = cache.original(e)
        if original.is_file() and hashlib.sha256(original.read_bytes()).hexdigest() != e.sha256:
            # A damaged cached copy (a disk error, a cache copied in part) is taken from the package
            # again rather than stopping the build later with "delete it and re-run".
            log(f"cached original {original.name} does not match its sha256: extracting it again")
            original.unlink()
        if not original.is_file():
            need[e.package].append(e)
    problems: list[str] = []
    for package in sorted(need):
        problems += _collect_package(package, need[package], cache, fetch, log)
    return problems


def process_original(e: Entry, cache: Cache) -> dict:
    """Resize one verified original into the cache and return its statistics."""
    if cache.is_done(e):
        return json.loads(cache.stats(e).read_text())
    data = cache.original(e).read_bytes()
    if hashlib.sha256(data).hexdigest() != e.sha256:
        raise DatasetError(f"cached original {cache.original(e)} is corrupt: delete it and re-run")
    im = images.decode_rgb(data)
    small = images.resize_short_side(im, MAX_SHORT_SIDE)
    stats = {
        "orig_width": im.size[0], "orig_height": im.size[1],
        "width": small.size[0], "height": small.size[1],
        "colourfulness": round(images.colourfulness(np.asarray(small)), 3),
        "dhash": f"{images.dhash(small):064x}",
    }
    buf = io.BytesIO()
    # 4:4:4 chroma: the colour prior should not learn JPEG's halved chroma resolution.
    small.save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=True)
    jpeg = buf.getvalue()
    stats["jpeg_sha256"] = hashlib.sha256(jpeg).hexdigest()
    _write_atomic(cache.jpeg(e), jpeg)
    _write_atomic(cache.stats(e), json.dumps(stats, sort_keys=True).encode())
    cache.forget(e)
    return stats


def select(entries: list[Entry], stats: dict[str, dict], log: Log) -> tuple[list[Entry], list[tuple[Entry, str]]]:
    """Drop grey images, then near-duplicates (keeping the larger original); return (kept, dropped)."""
    dropped: list[tuple[Entry, str]] = []
    colour = []
    for e in entries:
        m = stats[e.sha256]["colourfulness"]
        if m < GREY_BELOW:
            dropped.append((e, f"grey (colourfulness {m:.2f} < {GREY_BELOW})"))
        else:
            colour.append(e)

    def rank(e: Entry) -> tuple:
        s = stats[e.sha256]
        return (-s["orig_width"] * s["orig_height"], e.package, e.path)

    kept: list[Entry] = []
    hashes: list[int] = []
    for e in sorted(colour, key=rank):
        h = int(stats[e.sha256]["dhash"], 16)
        twin = next((k for k, kh in zip(kept, hashes) if images.hamming(h, kh) <= DUP_MAX_BITS), None)
        if twin is not None:
            dropped.append((e, f"near-duplicate of {twin.package}: {twin.path}"))
        else:
            kept.append(e)
            hashes.append(h)
    for e, why in dropped:
        log(f"dropped {e.package}: {e.path}: {why}")
    return sorted(kept, key=lambda e: (e.source_group, e.package, e.path)), dropped


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def attribution_text(rows: list[dict], versions: dict[str, str]) -> str:
    """Markdown listing package, file, author and licence of every image."""
    lines = [
        "# Attribution: Consistency Studio photo training set",
        "",
        "Every image here is a resized copy (short side at most "
        f"{MAX_SHORT_SIDE} px, JPEG quality {JPEG_QUALITY}) of a photo shipped in a Debian package.",
        "Each stays under the licence given for it below; authors are as recorded in the package's",
        "copyright file or upstream metadata. Built by `cstudio data build` from `engine/data/allowlist.tsv`.",
        "Licence texts: the GNU licences are in /usr/share/common-licenses on Debian; the Creative Commons",
        "licences at https://creativecommons.org/licenses/; BSD-2-Clause in each package's copyright file.",
        "",
        "## Licences",
        "",
    ]
    for lic, n in sorted(Counter(r["licence"] for r in rows).items()):
        lines.append(f"- {lic}: {n} image{'s' if n != 1 else ''}")
    lines += ["", "## Images", "", "| file | package | path in package | author | licence |", "|---|---|---|---|---|"]
    for r in rows:
        pkg = f"{r['package']} {versions[r['package']]}"
        lines.append(f"| {_md(r['file'])} | {_md(pkg)} | {_md(r['path'])} | {_md(r['author'])} | {_md(r['licence'])} |")
    return "\n".join(lines) + "\n"


def _sync_images(kept: list[Entry], cache: Cache, out_dir: Path) -> int:
    """Copy the kept JPEGs into out_dir/images; return how many were written.

    Each copy is atomic (temporary file, then rename), so an interrupted build leaves every file
    the current manifest names whole. Stale files are not removed here: the current manifest may
    still name them until the new one is in place (`_remove_stale_images`).
    """
    img_dir = out_dir / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for e in kept:
        src, dst = cache.jpeg(e), img_dir / f"{e.image_id}.jpg"
        if dst.is_file() and dst.stat().st_size == src.stat().st_size and dst.read_bytes() == src.read_bytes():
            continue
        _replace_atomic(dst, lambda tmp, src=src: shutil.copyfile(src, tmp))
        written += 1
    return written


def _remove_stale_images(kept: list[Entry], out_dir: Path) -> None:
    """Delete images no kept entry has; only once the manifest without them is written."""
    wanted = {f"{e.image_id}.jpg" for e in kept}
    for stale in (out_dir / "images").glob("*.jpg"):
        if stale.name not in wanted:
            stale.unlink()


def build_dataset(
    out_dir: Path,
    *,
    cache_dir: Path | None = None,
    allowlist: Path | None = None,
    allow_missing: bool = False,
    log: Log = print,
    fetch: Fetch | None = None,
) -> Path:
    """Build (or bring up to date) the photo set in out_dir and return the path of its manifest.tsv."""
    out_dir = Path(out_dir)
    cache = Cache(Path(cache_dir) if cache_dir else out_dir.parent / "debian-cache")
    cache.root.mkdir(parents=True, exist_ok=True)
    entries = read_allowlist(Path(allowlist) if allowlist else DEFAULT_ALLOWLIST)
    problems = collect_originals(entries, cache, fetch or AptFetcher(log), log)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        if not allow_missing:
            raise DatasetError(
                f"{len(problems)} allow-listed package(s)/file(s) could not be verified:\n{listing}\n"
                "Fix the allow-list (engine/data/allowlist.tsv) or re-run with --allow-missing."
            )
    usable = [e for e in entries if cache.is_done(e) or cache.original(e).is_file()]
    if problems:
        log(f"WARNING: --allow-missing: building WITHOUT {len(entries) - len(usable)} of {len(entries)} "
            f"allow-listed photos:\n{listing}")
    if not usable:
        raise DatasetError("no allow-listed photo could be verified; nothing to build")
    fresh = sum(not cache.is_done(e) for e in usable)
    if fresh:
        log(f"resizing {fresh} verified originals to short side <= {MAX_SHORT_SIDE}")
    stats = {e.sha256: process_original(e, cache) for e in usable}
    kept, dropped = select(usable, stats, log)
    rows = [
        {
            "file": f"images/{e.image_id}.jpg", "source_group": e.source_group, "package": e.package,
            "path": e.path, "licence": e.licence, "author": e.author, "split": e.split,
            "width": stats[e.sha256]["width"], "height": stats[e.sha256]["height"], "sha256": e.sha256,
        }
        for e in kept
    ]
    # Order matters for a build that is interrupted (or fails) part way: first every image the new
    # manifest names (each copy atomic), then the manifest and attribution (each atomic), and only
    # then the removal of images the old manifest named; at every point the manifest on disk names
    # only whole files.
    written = _sync_images(kept, cache, out_dir)
    manifest = out_dir / "manifest.tsv"
    changed = _write_if_changed(manifest, images.format_manifest(rows))
    versions = {e.package: e.version for e in kept}
    changed |= _write_if_changed(out_dir / "ATTRIBUTION.md", attribution_text(rows, versions))
    _remove_stale_images(kept, out_dir)
    splits = Counter(r["split"] for r in rows)
    if written or changed:
        log(f"wrote {len(rows)} images ({splits['train']} train, {splits['heldout']} heldout; "
            f"{len(dropped)} dropped, {written} image files updated) to {out_dir}")
    else:
        log(f"{out_dir} is up to date: {len(rows)} images ({splits['train']} train, {splits['heldout']} heldout)")
    return manifest


def _cmd_build(ns: argparse.Namespace) -> int:
    try:
        manifest = build_dataset(ns.out, cache_dir=ns.cache, allowlist=ns.allowlist, allow_missing=ns.allow_missing)
    except DatasetError as exc:
        print(f"cstudio data build: error: {exc}", file=sys.stderr)
        return 1
    print(manifest)
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Register ``data build`` on the cstudio command line."""
    data = subparsers.add_parser("data", help="training data tools")
    sub = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    b = sub.add_parser("build", help="build the photo training set from allow-listed Debian packages")
    b.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"output folder (default: {DEFAULT_OUT}, in the current folder; `cstudio eval --data` and a "
                   "training config's data.path name it the same way)")
    b.add_argument("--cache", type=Path, default=None,
                   help="cache for .debs and verified originals (default: OUT/../debian-cache)")
    b.add_argument("--allowlist", type=Path, default=None, help="allow-list TSV (default: the one shipped in engine/data)")
    b.add_argument("--allow-missing", action="store_true",
                   help="build even if some allow-listed packages or files are missing or changed (warns loudly)")
    b.set_defaults(func=_cmd_build)
