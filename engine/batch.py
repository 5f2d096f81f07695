"""Batch processing of files and folders: output naming, skip-existing, and one bad file never stops the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .pipeline import Cancelled, upscale_task

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}


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


def collect_inputs(paths: Iterable[str | Path], recursive: bool = False) -> list[tuple[Path, Path]]:
    """(file, path relative to the folder it came from) for every image named or found in a named folder."""
    found: list[tuple[Path, Path]] = []
    for p in map(Path, paths):
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            for f in sorted(p.glob(pattern)):
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
                    found.append((f, f.relative_to(p)))
        else:
            found.append((p, Path(p.name)))
    return found


def output_name(rel: Path, op: str, suffix: str = ".png") -> Path:
    """`name_<op>.png` next to where `rel` sits in the output tree (Upscayl-style names, lossless by default)."""
    return rel.with_name(f"{rel.stem}_{op}{suffix}")


def run_batch(items: list[tuple[Path, Path]], process: Callable[[Path, Path], None], out_dir: Path, op: str, *,
              suffix: str = ".png", skip_existing: bool = True, log: Callable[[str], None] = print) -> BatchReport:
    """Run `process(src, dst)` for each item; errors are recorded per file and the batch goes on."""
    report = BatchReport()
    for n, (src, rel) in enumerate(items, 1):
        dst = out_dir / output_name(rel, op, suffix)
        if dst.exists() and skip_existing:
            report.skipped.append(dst)
            log(f"[{n}/{len(items)}] {src}: skipped, {dst} exists")
            continue
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            process(src, dst)
        except Cancelled:
            raise  # the user stopped the whole batch, not this file
        except Exception as e:  # noqa: BLE001 - one bad file must not stop a batch; the reason is reported
            report.failed.append((src, str(e)))
            log(f"[{n}/{len(items)}] {src}: FAILED: {e}")
            continue
        report.written.append(dst)
        log(f"[{n}/{len(items)}] {src} -> {dst}")
    return report
