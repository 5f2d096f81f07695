"""Which models are available: native safetensors files described from their header alone.

Reading only the JSON header (no tensors, no torch) keeps listing a folder of multi-GB
checkpoints instant, so the picker can be filled on the UI thread.
"""

from __future__ import annotations

import json
import math
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
    edm_steps: int = 40  # an EDM model's Heun/Euler steps when it generates
    published_ts: tuple[int, ...] = (0, 22, 39)
    is_default: bool = False
    untrained: bool = False
    num_classes: int | None = None  # class-conditional models: how many classes (ImageNet: 1000); None = none
    # What the importer had to guess (an official file stores no resolution): the engine's "guessed"
    # note, kept in the imported file's metadata; "" = every setting came from the file.
    guessed: str = ""

    @property
    def one_step(self) -> bool:
        """Consistency models can produce a usable image in one evaluation; EDM teachers cannot."""
        return self.kind == "cm"

    @property
    def label(self) -> str:
        # A guessed size is not stated as a fact: "?" in the picker, the whole note in its tooltip.
        size = f"{self.resolution} px{'?' if 'resolution' in self.guessed else ''}"
        detail = f"{size}, {KIND_LABELS.get(self.kind, self.kind)}"
        if self.untrained:
            return f"Untrained test model ({detail})"
        return f"{self.name} ({detail}){' - default' if self.is_default else ''}"


def picker_labels(models: list[ModelInfo]) -> list[str]:
    """The models' labels, a label several files share followed by each one's file name.

    A checkpoint imported twice, or a damaged copy of a model, describes itself exactly like the
    original: the picker would list identical entries that load different files.
    """
    labels = [m.label for m in models]
    return [f"{label} [{m.path.name}]" if labels.count(label) > 1 and m.path is not None else label
            for label, m in zip(labels, models)]


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
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: absurdly nested JSON
        raise CatalogError(f"{path.name}: cannot read the header ({e})") from None
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    return meta if isinstance(meta, dict) else {}


def _section(spec: dict, key: str, required: bool = False) -> dict:
    """spec[key] as a JSON object; a missing optional section is empty, anything else not an object is an error."""
    if key not in spec and not required:
        return {}
    value = spec[key]
    if not isinstance(value, dict):
        raise TypeError(f"'{key}' is {type(value).__name__}, not an object")
    return value


def _whole(value: object, what: str, least: int) -> int:
    """A JSON number that is a whole number >= least (int(1e999) would raise OverflowError, int(True) pass)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or int(value) < least:
        raise ValueError(f"{what} is {value!r}, not a whole number >= {least}")
    return int(value)


def read_model_info(path: Path, *, is_default: bool = False) -> ModelInfo:
    """Describe a native model file without loading its weights.

    The header is untrusted input: any shape of it that is not a model description (a section that
    is a string, a size of 0 or 1e999, ...) raises CatalogError, so the picker lists the file as
    unreadable instead of the app failing to start.
    """
    path = Path(path)
    meta = read_safetensors_metadata(path)
    try:
        spec = json.loads(meta["spec"])
        if not isinstance(spec, dict):
            raise TypeError(f"the spec is {type(spec).__name__}, not an object")
        unet, den, sam = _section(spec, "unet", required=True), _section(spec, "denoiser"), _section(spec, "sampler")
        steps = _whole(sam.get("steps", 40), "sampler steps", 1)
        ts = sam.get("ts", (0, steps // 2, steps - 1))
        if not isinstance(ts, (list, tuple)) or not ts:
            raise TypeError(f"sampler ts is {ts!r}, not a list of steps")
        name = spec.get("name")
        return ModelInfo(
            path=path,
            name=name if isinstance(name, str) and name else path.stem,
            resolution=_whole(unet["image_size"], "image_size", 1),  # a 0 would divide by zero later
            kind=str(den.get("kind", "cm")),
            grid_steps=steps,
            edm_steps=_whole(sam.get("edm_steps", 40), "sampler edm_steps", 1),
            published_ts=tuple(_whole(t, "a published step", 0) for t in ts),
            is_default=is_default,
            num_classes=None if unet.get("num_classes") is None else _whole(unet["num_classes"], "num_classes", 1),
            guessed=meta["guessed"] if isinstance(meta.get("guessed"), str) else "",
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as e:
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
