"""Held-out evaluation: zero-shot super-resolution, colorization and inpainting against classical baselines."""

from .evaluate import SETTINGS, EvalReport, Row, Setting, evaluate
from .report import markdown_table, targets, write_report

__all__ = ["SETTINGS", "EvalReport", "Row", "Setting", "evaluate", "markdown_table", "targets", "write_report"]
