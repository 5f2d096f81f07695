"""Held-out evaluation: zero-shot super-resolution, colorization and inpainting against classical baselines."""

from .evaluate import EvalReport, Row, Setting, default_settings, evaluate, settings_for
from .report import markdown_table, targets, write_report

__all__ = ["EvalReport", "Row", "Setting", "default_settings", "evaluate", "settings_for", "markdown_table", "targets", "write_report"]
