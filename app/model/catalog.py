"""Which models are available: native safetensors files described from their header alone.

Reading only the JSON header (no tensors, no torch) keeps listing a folder of multi-GB
checkpoints instant, so the picker can be filled on the UI thread.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

KIND_LABELS = {"cm": "consistency", "edm": "EDM teacher"}
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit; anything bigger is not a real header


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the model picker."""

    path: Path | None  # None = an untrained tiny model built in memory (tests, and until a default ships)
    name: str
    resolution: int  # native image side in pixels
    kind: str  # "cm" (few-step consistency model) or "edm" (many-step teacher)
    grid_steps: int = 40  # N of the Karras grid the ts index into
    published_ts: tuple[int, ...] = (0, 22, 39)
    is_default: bool = False
    untrained: bool = False

    @property
    def one_step(self) -> bool:
        """Consistency models can produce a usable image in one evaluation; EDM teachers cannot."""
        return self.kind == "cm"

    @property
    def label(self) -> str:
        detail = f"{self.resolution} px, {KIND_LABELS.get(self.kind, self.kind)}"
        if self.untrained:
            return f"Untrained test model ({detail})"
        return f"{self.name} ({detail}){' - default' if self.is_default else ''}"


TEST_MODEL = ModelInfo(path=None, name="tiny", resolution=16, kind="cm", untrained=True)


class CatalogError(Exception):
    """A file that is not a native model; the message names the file."""


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    """The `__metadata__` dict of a safetensors file: 8-byte little-endian length, then JSON."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise CatalogError(f"{path.name}: too short to be a safetensors file")
            (n,) = struct.unpack("<Q", head)
            if n > _MAX_HEADER:
                raise CatalogError(f"{path.name}: not a safetensors file")
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CatalogError(f"{path.name}: cannot read the header ({e})") from None
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    return meta if isinstance(meta, dict) else {}


def read_model_info(path: Path, *, is_default: bool = False) -> ModelInfo:
    """Describe a native model file without loading its weights."""
    path = Path(path)
    meta = read_safetensors_metadata(path)
    try:
        spec = json.loads(meta["spec"])
        unet, den, sam = spec["unet"], spec.get("denoiser", {}), spec.get("sampler", {})
        steps = int(sam.get("steps", 40))
        return ModelInfo(
            path=path,
            name=spec.get("name") or path.stem,
            resolution=int(unet["image_size"]),
            kind=str(den.get("kind", "cm")),
            grid_steps=steps,
            published_ts=tuple(int(t) for t in sam.get("ts", (0, steps // 2, steps - 1))),
            is_default=is_default,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CatalogError(f"{path.name}: no Consistency Studio model description in the file ({e})") from None


def scan_models(default: Path | None, folders: list[Path]) -> tuple[list[ModelInfo], list[str]]:
    """The default model first (or the test model if there is none), then every readable file.

    Returns (models, problems): unreadable files are reported, never fatal.
    """
    models: list[ModelInfo] = []
    problems: list[str] = []
    seen: set[Path] = set()
    if default is not None and default.is_file():
        try:
            models.append(read_model_info(default, is_default=True))
            seen.add(default.resolve())
        except CatalogError as e:
            problems.append(str(e))
    if not models:
        models.append(TEST_MODEL)
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.safetensors")):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                models.append(read_model_info(path))
            except CatalogError as e:
                problems.append(str(e))
    return models, problems
