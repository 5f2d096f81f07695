"""Presenting an evaluation: the Markdown table, a check against issue 3's targets, contact sheets."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..checkpoint import atomic_write_bytes
from .evaluate import EvalReport, Row

HEADER = ("task", "method", "PSNR dB", "HF energy vs truth", "Lab ab error", "colourfulness", "chroma vs truth",
          "hue agreement")


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{100 * value:.0f} %"
    return f"{value:.2f}" if kind in ("db", "cos") else f"{value:.1f}"


def markdown_table(report: EvalReport) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in report.rows:
        truth = r.method == "truth"
        cells = (r.task, r.method, "–" if truth else _fmt(r.psnr, "db"), _fmt(r.hf_ratio, "pct"),
                 "–" if truth else _fmt(r.ab_error, "f"), _fmt(r.colourfulness, "f"), _fmt(r.chroma_ratio, "pct"),
                 "–" if truth else _fmt(r.hue_agreement, "cos"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _row(rows: list[Row], method: str) -> Row | None:
    return next((r for r in rows if r.method == method), None)


def targets(report: EvalReport) -> list[str]:
    """Issue 3's bars: fidelity (best of our settings) and default setting vs the classical baseline."""
    out = []
    tasks = dict.fromkeys(r.task for r in report.rows)
    for task in tasks:
        rows = [r for r in report.rows if r.task == task]
        ours = [r for r in rows if r.method.startswith("ours")]
        if not ours:
            continue
        best = max(ours, key=lambda r: r.psnr or -1.0)
        if task.startswith("colorization"):
            d = _row(rows, report.defaults.get("colour", ""))
            g = _row(rows, "grey input")
            if d and g and d.psnr is not None and g.psnr is not None:
                ok = d.psnr >= g.psnr and d.chroma_ratio is not None and 0.5 <= d.chroma_ratio <= 1.5
                out.append(f"{task}: {'MET' if ok else 'NOT MET'}: {d.psnr:.2f} dB vs grey {g.psnr:.2f} dB, "
                           f"chroma {_fmt(d.chroma_ratio, 'pct')} of the truth (bar 50-150 %); hue agreement "
                           f"{_fmt(d.hue_agreement, 'cos')} (1: the truth's hues, 0: unrelated); "
                           "hues: look at the sheet")
            continue
        base_name = "bicubic" if "super" in task else ("OpenCV Telea" if _row(rows, "OpenCV Telea") else "mean fill")
        base = _row(rows, base_name)
        family = f"sr{task.split()[0].lstrip('×')}" if "super" in task else "fill"  # "×4 super-resolution" -> "sr4"
        d = _row(rows, report.defaults.get(family, ""))
        if base is None or d is None or base.psnr is None or d.psnr is None or best.psnr is None:
            continue
        fid = best.psnr >= base.psnr
        det = d.psnr >= base.psnr - 1 and d.hf_ratio is not None and 0.75 <= d.hf_ratio <= 1.25
        line = (f"{task}: fidelity {'MET' if fid else 'NOT MET'} ({best.method} {best.psnr:.2f} dB vs {base_name} "
                f"{base.psnr:.2f} dB); detail {'MET' if det else 'NOT MET'} ({d.method}: {d.psnr:.2f} dB, HF "
                f"{_fmt(d.hf_ratio, 'pct')} of the truth; {base_name} HF {_fmt(base.hf_ratio, 'pct')})")
        # x4 / x8 also have a slower opt-in detail loop (`cstudio upscale --detail`): judged by the same bar.
        x = _row(rows, report.defaults.get(family + "detail", ""))
        if x is not None and x is not d and x.psnr is not None:
            ok = x.psnr >= base.psnr - 1 and x.hf_ratio is not None and 0.75 <= x.hf_ratio <= 1.25
            line += (f"; with --detail {'MET' if ok else 'NOT MET'} ({x.method}: {x.psnr:.2f} dB, HF "
                     f"{_fmt(x.hf_ratio, 'pct')} of the truth)")
        out.append(line)
    return out


def label_lines(label: str, width: int, font: ImageFont.ImageFont | None = None) -> list[str]:
    """A column label in lines that fit `width` px, split at commas. Pillow's default font has no
    Greek, no "×" or "–" and an almost invisible space, hence "ours: sigma0=4, 4x40 NFE" for "ours σ0=4, 4×40 NFE"."""
    font = font or ImageFont.load_default()
    text = label.replace(" σ", ": sigma").replace("σ", "sigma").replace("×", "x").replace("–", "-")
    lines: list[str] = []
    for part in text.split(", "):
        joined = f"{lines[-1]}, {part}" if lines else part
        if lines and font.getlength(joined) <= width:
            lines[-1] = joined
            continue
        # A part wider than the column on its own is broken between words.
        words = part.split(" ")
        lines.append(words[0])
        for word in words[1:]:
            if font.getlength(f"{lines[-1]} {word}") <= width:
                lines[-1] += f" {word}"
            else:
                lines.append(word)
    return lines


def contact_sheet(labels: tuple[str, ...], columns: tuple[np.ndarray, ...], rows: int = 8, tile: int = 96) -> Image.Image:
    """Grid with one column per method (label on top), `rows` crops, each scaled to `tile` px (nearest)."""
    n = min(rows, len(columns[0]))
    font = ImageFont.load_default()
    wrapped = [label_lines(label, tile, font) for label in labels]
    head = 4 + 12 * max(2, max(len(w) for w in wrapped))
    img = Image.new("RGB", (len(columns) * (tile + 4), head + n * (tile + 4)), "white")
    draw = ImageDraw.Draw(img)
    for c, (lines, col) in enumerate(zip(wrapped, columns)):
        x = c * (tile + 4)
        for i, line in enumerate(lines):
            draw.text((x + 2, 2 + 12 * i), line, fill="black", font=font)
        for r in range(n):
            img.paste(Image.fromarray(col[r]).resize((tile, tile), Image.Resampling.NEAREST), (x, head + r * (tile + 4)))
    return img


def write_report(report: EvalReport, out: Path) -> dict[str, Path]:
    """eval.md (table, targets, notes), eval.json (rows) and one contact-sheet PNG per task."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for sheet in report.sheets:
        slug = sheet.task.replace("×", "x").replace(" ", "-").replace("(", "").replace(")", "")
        buf = io.BytesIO()
        contact_sheet(sheet.labels, sheet.columns).save(buf, format="PNG")
        paths[sheet.task] = out / f"sheet-{slug}.png"
        atomic_write_bytes(paths[sheet.task], buf.getvalue())
    text = [f"# Evaluation of {report.model}", "", markdown_table(report), "", "Targets (issue 3):", ""]
    text += [f"- {t}" for t in targets(report)] + ["", *[f"Note: {n}" for n in report.notes], ""]
    paths["markdown"] = out / "eval.md"
    atomic_write_bytes(paths["markdown"], "\n".join(text).encode())
    paths["json"] = out / "eval.json"
    data = {"model": report.model, "resolution": report.resolution, "n": report.n,
            "rows": [asdict(r) for r in report.rows], "notes": list(report.notes)}
    atomic_write_bytes(paths["json"], json.dumps(data, indent=1).encode())
    return paths
