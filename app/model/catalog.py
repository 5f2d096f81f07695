"""Which models are available: native safetensors files described from their header alone.

Reading only the JSON header (no tensors, no torch) keeps listing a folder of multi-GB
checkpoints instant, so the picker can be filled on the UI thread.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .safe_write import atomic_write

KIND_LABELS = {"cm": "consistency", "edm": "EDM teacher"}
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit; anything bigger is not a real header
# Image sizes the user may give a model whose file does not store one (an imported official .pt):
# a separate file next to the models, so the model files (and what older versions read) stay as
# imported. Keyed by file name, with the file's byte count: a different file under that name later
# (deleted, then another imported) does not inherit the choice.
SIZES_FILE = "image-sizes.json"
SIZES_FORMAT = "cstudio-image-sizes"
COMMON_SIZES = (32, 64, 128, 256, 512)  # what released pixel-space models were trained at
MAX_IMAGE_SIZE = 4096  # beyond this one generated image alone outgrows any GPU


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
    # Their names when known (engine.classes.class_names: ImageNet's lemma lines), for the Class box.
    class_names: tuple[str, ...] | None = field(default=None, repr=False, compare=False)
    # What the importer had to guess (an official file stores no resolution): the engine's "guessed"
    # note, kept in the imported file's metadata; "" = every setting came from the file.
    guessed: str = ""
    # A file whose size was guessed: the network runs at any multiple of `size_step` px (2 to the
    # number of levels - 1), so the user may state the real one; 0 = the file states its size.
    size_step: int = 0
    size_guess: int = 0  # the importer's guess, kept in the file (0 = nothing was guessed)
    size_chosen: bool = False  # `resolution` is the user's choice (SIZES_FILE), not the guess

    @property
    def one_step(self) -> bool:
        """Consistency models can produce a usable image in one evaluation; EDM teachers cannot."""
        return self.kind == "cm"

    @property
    def label(self) -> str:
        # A guessed size or kind is not stated as a fact: "?" in the picker, the whole note in its tooltip.
        guesses = _guessed_parts(self.guessed)
        size = f"{self.resolution} px{'?' if any(g.startswith('resolution') for g in guesses) else ''}"
        kind = f"{KIND_LABELS.get(self.kind, self.kind)}{'?' if any(g.startswith('kind ') for g in guesses) else ''}"
        detail = f"{size}, {kind}"
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


def size_choices(info: ModelInfo) -> tuple[int, ...]:
    """The sizes offered for a model whose size was guessed: the common ones this network runs at,
    the guess and the current size; () when the file states its own size."""
    step = info.size_step
    if not step:
        return ()
    sizes = {s for s in COMMON_SIZES if s % step == 0} | {info.size_guess, info.resolution}
    if not any(s % step == 0 for s in COMMON_SIZES):
        sizes.add(step)  # a network deeper than every common size still runs at its smallest
    return tuple(sorted(s for s in sizes if s > 0))


def image_size_problem(info: ModelInfo, size: object) -> str:
    """Why `size` cannot be this model's image size, in words for the user; "" if it can."""
    if not info.size_step or info.path is None:
        return (f"{info.name} states its own image size ({info.resolution} px); only a size the importer "
                "had to guess can be changed.")
    step = info.size_step
    examples = ", ".join(f"{s} px" for s in size_choices(info)[:4])
    if isinstance(size, bool) or not isinstance(size, int):
        return f"{str(size).strip() or 'Nothing'!r} is not an image size: give a whole number of pixels, e.g. {examples}."
    if size <= 0:
        return f"{size} px is not an image size: give a positive number of pixels, e.g. {examples}."
    if size % step:
        halvings = step.bit_length() - 1
        times = "once" if halvings == 1 else f"{halvings} times"
        return (f"{size} px does not fit {info.name}: its network halves the image {times}, "
                f"so it runs at multiples of {step} px only (e.g. {examples}).")
    if size > MAX_IMAGE_SIZE:
        return f"{size} px is more than the app runs a model at ({MAX_IMAGE_SIZE} px)."
    return ""


def _guessed_parts(guessed: str) -> list[str]:
    """The settings an importer's note names ('resolution 256 px and 64 channels per attention head
    (why)' -> both parts); engine.checkpoint writes them so."""
    return [part.strip() for part in guessed.partition(" (")[0].split(" and ") if part.strip()]


def _without_resolution(guessed: str) -> str:
    """The importer's note less its resolution: 'resolution 256 px and 64 channels per attention head (why)'
    -> '64 channels per attention head (why)'; "" when the resolution was the only guess."""
    head, sep, why = guessed.partition(" (")
    rest = [part for part in head.split(" and ") if not part.startswith("resolution")]
    return " and ".join(rest) + sep + why if rest else ""


def read_chosen_sizes(folder: Path) -> dict[str, dict]:
    """SIZES_FILE of `folder` as {file name: {"image_size", "bytes"}}; missing or damaged: {} (the
    guesses apply again, nothing fails)."""
    try:
        data = json.loads((folder / SIZES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return {}
    models = data.get("models") if isinstance(data, dict) else None
    return {k: v for k, v in models.items() if isinstance(v, dict)} if isinstance(models, dict) else {}


def _write_chosen_sizes(folder: Path, models: dict[str, dict]) -> None:
    text = json.dumps({"format": SIZES_FORMAT, "version": 1, "models": models}, indent=2, sort_keys=True) + "\n"
    try:
        atomic_write(folder / SIZES_FILE, text.encode("utf-8"))
    except OSError as e:
        raise CatalogError(f"cannot write {folder / SIZES_FILE} ({e.strerror or e})") from None


def remember_image_size(info: ModelInfo, size: int) -> None:
    """Keep `size` as the image size of `info`'s file (checked with image_size_problem first)."""
    problem = image_size_problem(info, size)
    if problem:
        raise CatalogError(problem)
    assert info.path is not None
    try:
        nbytes = info.path.stat().st_size
    except OSError as e:
        raise CatalogError(f"{info.path.name}: cannot read the model file ({e.strerror or e})") from None
    models = read_chosen_sizes(info.path.parent)
    models[info.path.name] = {"image_size": size, "bytes": nbytes}
    _write_chosen_sizes(info.path.parent, models)


def forget_image_size(path: Path) -> None:
    """Drop a size kept for `path` (a new import under an old name starts from its own guess)."""
    models = read_chosen_sizes(path.parent)
    if models.pop(path.name, None) is not None:
        _write_chosen_sizes(path.parent, models)


def _chosen_size(path: Path, step: int, sizes: dict[str, dict]) -> int:
    """The size kept for this file, or 0: none, another file's (byte count), or one it cannot run at."""
    entry = sizes.get(path.name)
    if not entry:
        return 0
    size, nbytes = entry.get("image_size"), entry.get("bytes")
    try:
        same_file = isinstance(nbytes, int) and path.stat().st_size == nbytes
    except OSError:
        return 0
    fits = isinstance(size, int) and not isinstance(size, bool) and 0 < size <= MAX_IMAGE_SIZE and size % step == 0
    return size if same_file and fits else 0


def read_model_info(path: Path, *, is_default: bool = False, sizes: dict[str, dict] | None = None) -> ModelInfo:
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
        resolution = _whole(unet["image_size"], "image_size", 1)  # a 0 would divide by zero later
        channels = (unet.get("in_channels", 3), unet.get("out_channels", 3))
        if channels != (3, 3):
            # A latent (4 in) or learn_sigma (6 out) network: listed as unreadable, with the reason,
            # rather than offered as a model whose every task fails (the engine refuses it too).
            raise CatalogError(f"{path.name}: the network has {channels[0]} channels in and {channels[1]} out; only "
                               "RGB pixel-space models (3 in, 3 out) can be used")
        guessed = meta["guessed"] if isinstance(meta.get("guessed"), str) else ""
        step = guess = chosen = 0
        if "resolution" in guessed:
            mult = unet.get("channel_mult")
            if not isinstance(mult, list) or not mult:
                raise TypeError(f"channel_mult is {mult!r}, not a list of levels")
            step, guess = 2 ** (len(mult) - 1), resolution
            chosen = _chosen_size(path, step, read_chosen_sizes(path.parent) if sizes is None else sizes)
            if chosen:
                resolution, guessed = chosen, _without_resolution(guessed)
        return ModelInfo(
            path=path,
            name=name if isinstance(name, str) and name else path.stem,
            resolution=resolution,
            kind=str(den.get("kind", "cm")),
            grid_steps=steps,
            edm_steps=_whole(sam.get("edm_steps", 40), "sampler edm_steps", 1),
            published_ts=tuple(_whole(t, "a published step", 0) for t in ts),
            is_default=is_default,
            num_classes=None if unet.get("num_classes") is None else _whole(unet["num_classes"], "num_classes", 1),
            guessed=guessed,
            size_step=step,
            size_guess=guess,
            size_chosen=bool(chosen),
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
        sizes = read_chosen_sizes(folder)
        for path in sorted(folder.glob("*.safetensors")):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                models.append(read_model_info(path, sizes=sizes))
            except CatalogError as e:
                problems.append(str(e))
    return models, problems
