"""Batch processing of files and folders: output naming, skip-existing, and one bad file never stops the rest."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .imageio import SAVE_FORMATS
from .pipeline import Cancelled, upscale_task

# .jfif / .jpe: JPEGs as browsers and old cameras name them.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jfif", ".jpe", ".webp", ".tif", ".tiff", ".bmp", ".gif"}

# Every name `upscale_op`, colorize and inpaint give an output (any factor, with or without detail).
EARLIER_OUTPUT = re.compile(r"_(upscale_[248]x(_detail)?|colorize|inpaint)$")


def upscale_op(factor: int, detail: bool = False) -> str:
    """The output-name part of an upscale: `upscale_4x`, or `upscale_4x_detail` where the detail
    loop runs (not at x2), so a detail batch does not skip a plain batch's outputs."""
    return f"upscale_{factor}x" + ("_detail" if upscale_task(factor, detail) == "upscale_detail" else "")


@dataclass
class BatchReport:
    """What happened to each file of a batch."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.written)} written, {len(self.skipped)} skipped (output exists), {len(self.failed)} failed"


def collect_inputs(paths: Iterable[str | Path], recursive: bool = False,
                   skip_outputs: bool = False) -> list[tuple[Path, Path]]:
    """(file, path relative to the folder it came from) for every image named or found in a named folder.

    A file named twice (directly, or also found in a named folder) is listed once, where it first appears.
    `skip_outputs`: files found in a folder whose names are batch outputs (`EARLIER_OUTPUT`) are not
    inputs, so re-running a batch whose output folder lies in (or is) its input folder skips what is
    done instead of processing its own results again; a file named directly is always kept."""
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()

    def add(f: Path, rel: Path) -> None:
        key = Path(os.path.abspath(f))
        if key not in seen:
            seen.add(key)
            found.append((f, rel))

    for p in map(Path, paths):
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            for f in sorted(p.glob(pattern)):
                rel = f.relative_to(p)
                # Hidden files and whatever lies in hidden folders (.thumbnails, .git, .Trash-1000)
                # are not the user's photos.
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES \
                        and not any(part.startswith(".") for part in rel.parts) \
                        and not (skip_outputs and EARLIER_OUTPUT.search(f.stem)):
                    add(f, rel)
        else:
            add(p, Path(p.name))
    return found


def output_suffix(src: Path, suffix: str | None) -> str:
    """An output's extension: `suffix`, or with None the input's own where it can be written
    (`imageio.SAVE_FORMATS`), else .png (a GIF's result is not a GIF)."""
    if suffix is not None:
        return suffix
    own = src.suffix.lower()
    return own if own in SAVE_FORMATS else ".png"


def output_paths(items: list[tuple[Path, Path]], op: str, out_dir: Path | None = None,
                 suffix: str | None = ".png") -> list[Path]:
    """The output of each `collect_inputs` item: `out_dir/<sub-folders>/<name>_<op>.png`, keeping the
    sub-folders a named folder's files were found in, or next to each input when `out_dir` is None.
    `suffix` None: each output in its input's format (`output_suffix`).

    Names are unique within the batch (compared ignoring case, as Windows and macOS do), and the same
    on every run of the same batch, so a re-run skips what is done:
    - inputs that differ only by extension get it into the name: `img.png`, `img.jpg` ->
      `img_png_<op>.png`, `img_jpg_<op>.png`;
    - inputs still sharing a name (the same name in different folders given as files) are numbered
      in input order: `a/img.png`, `b/img.png` -> `img_<op>.png`, `img-2_<op>.png`, skipping any
      number whose name another input already has.
    """
    def folder(src: Path, rel: Path) -> Path:
        return src.parent if out_dir is None else out_dir / rel.parent

    def key(p: Path) -> str:
        return os.path.normcase(str(p)).casefold()

    # (folder, stem, extension tag, output extension)
    parts = [(folder(src, rel), rel.stem, "", output_suffix(src, suffix)) for src, rel in items]

    def path(folder_: Path, stem: str, tag: str, ext: str, number: int = 1) -> Path:
        return folder_ / f"{stem}{f'-{number}' if number > 1 else ''}{f'_{tag}' if tag else ''}_{op}{ext}"

    groups: dict[str, list[int]] = {}
    for i, part in enumerate(parts):
        groups.setdefault(key(path(*part)), []).append(i)
    for members in groups.values():
        exts = {items[i][0].suffix.lower() for i in members}
        if len(members) > 1 and len(exts) > 1:
            for i in members:
                f, stem, _, ext = parts[i]
                parts[i] = (f, stem, items[i][0].suffix.lower().lstrip("."), ext)
    natural = [path(*part) for part in parts]
    taken = {key(p) for p in natural}
    # An input already named like an output (`a.png` and `a_upscale_2x.png` in one batch, with
    # --overwrite) must not be replaced before it is read: its output gets a number instead.
    # Resolved: the same file spelled two ways (`../w/a.png`, `/tmp/w/a.png`, a symlink) is one file.
    inputs = {key(Path(os.path.realpath(src))) for src, _ in items}
    out: list[Path] = []
    used: set[str] = set()
    for part, p in zip(parts, natural):
        number = 1
        while key(p) in used or key(Path(os.path.realpath(p))) in inputs or (number > 1 and key(p) in taken):
            # A number never takes another output's natural name.
            number += 1
            p = path(*part, number)
        used.add(key(p))
        out.append(p)
    return out


def run_batch(items: list[tuple[Path, Path]], process: Callable[[Path, Path], None], out_dir: Path, op: str, *,
              suffix: str | None = ".png", skip_existing: bool = True, log: Callable[[str], None] = print,
              fail: Callable[[str], None] | None = None) -> BatchReport:
    """Run `process(src, dst)` for each item; errors are recorded per file and the batch goes on.

    `log` gets a line per file written or skipped, `fail` (default: `log`) one per file that failed.
    Sub-folders of `out_dir` made for an output that was then not written (its input failed, or the
    batch was stopped) are removed again when nothing else went into them."""
    report = BatchReport()
    fail = log if fail is None else fail
    made: list[Path] = []  # folders this batch created, in creation order (a parent before its children)
    try:
        for n, ((src, _), dst) in enumerate(zip(items, output_paths(items, op, out_dir, suffix)), 1):
            if dst.exists() and skip_existing:
                report.skipped.append(dst)
                log(f"[{n}/{len(items)}] {src}: skipped, {dst} exists")
                continue
            try:
                missing = [p for p in (dst.parent, *dst.parent.parents) if not p.exists()]
                try:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                finally:  # a mkdir that failed part-way still made the upper ones
                    made.extend(p for p in reversed(missing) if p.is_dir())
                process(src, dst)
            except Cancelled:
                raise  # the user stopped the whole batch, not this file
            except Exception as e:  # noqa: BLE001 - one bad file must not stop a batch; the reason is reported
                report.failed.append((src, str(e)))
                # Most reasons already start with the input's name (ImageError's "in/x.jpg: ..."): say it once.
                fail(f"[{n}/{len(items)}] {src}: FAILED: {str(e).removeprefix(f'{src}: ')}")
                continue
            report.written.append(dst)
            log(f"[{n}/{len(items)}] {src} -> {dst}")
    finally:
        for folder in reversed(made):  # children first
            try:
                folder.rmdir()  # only an empty folder goes
            except OSError:
                pass
    return report
