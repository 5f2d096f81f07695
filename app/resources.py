"""Where the bundled default model, sample images and icons live (shared with the engine's lookup)."""

from __future__ import annotations

from pathlib import Path

from engine.paths import default_model_path, resources_dir

__all__ = ["APP_ID", "default_model_path", "resources_root", "sample_image_path", "sample_image_paths"]

# Reverse-DNS id: the .desktop file, the AppStream metainfo and the icon are all named after it.
APP_ID = "io.github.consistency_studio.ConsistencyStudio"


def resources_root() -> Path:
    return resources_dir()


def sample_image_paths() -> list[Path]:
    folder = resources_dir() / "samples"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))


def sample_image_path() -> Path | None:
    """The image shown at first start, so there is something to try the tools on."""
    paths = sample_image_paths()
    return paths[0] if paths else None
