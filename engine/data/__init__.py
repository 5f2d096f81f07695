"""Training-data tools: build the photo set from allow-listed Debian packages (``cstudio data build``)."""

from __future__ import annotations

from .build import add_cli, build_dataset
from .debian import DatasetError
from .images import colourfulness, dhash, load_manifest

__all__ = ["DatasetError", "add_cli", "build_dataset", "colourfulness", "dhash", "load_manifest"]
