"""Where the bundled default model and sample images live (importlib.resources, then the repo)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

_REPO_RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def _resources_dir() -> Path | None:
    # A source checkout has `resources/` next to `app/`; an installed wheel ships it as package data.
    # The checkout wins so a stray package named `resources` elsewhere on sys.path is never picked.
    if _REPO_RESOURCES.is_dir():
        return _REPO_RESOURCES
    try:
        root = importlib.resources.files("resources")
    except (ModuleNotFoundError, TypeError):
        return None
    # Namespace packages give a MultiplexedPath; we need one real folder for torch and Qt to open.
    for candidate in getattr(root, "_paths", [root]):
        path = Path(str(candidate))
        if path.is_dir():
            return path
    return None


def default_model_path() -> Path | None:
    """resources/models/default.safetensors if it exists, else None (the app then uses a test model)."""
    root = _resources_dir()
    if root is None:
        return None
    path = root / "models" / "default.safetensors"
    return path if path.is_file() else None


def sample_image_paths() -> list[Path]:
    root = _resources_dir()
    if root is None or not (root / "samples").is_dir():
        return []
    return sorted(p for p in (root / "samples").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))


def sample_image_path() -> Path | None:
    """The image shown at first start, so there is something to try the tools on."""
    paths = sample_image_paths()
    return paths[0] if paths else None
