"""Where models live: the embedded default in `resources/models/`, and the user's models folder."""

from __future__ import annotations

from importlib import resources as importlib_resources
from pathlib import Path

from platformdirs import user_data_dir

APP_NAME = "consistency-studio"
DEFAULT_MODEL_NAME = "default.safetensors"


_CHECKOUT_RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def resources_dir() -> Path:
    """The shipped `resources/` folder (works from a checkout, an installed wheel and a frozen bundle).

    The folder next to `engine/` wins, so a stray package named `resources` elsewhere on sys.path is
    never picked; an installed wheel has it there too.
    """
    if _CHECKOUT_RESOURCES.is_dir():
        return _CHECKOUT_RESOURCES
    try:
        root = importlib_resources.files("resources")
    except (ModuleNotFoundError, TypeError):
        return _CHECKOUT_RESOURCES
    # Namespace packages give a MultiplexedPath; torch and Qt need one real folder.
    for candidate in getattr(root, "_paths", [root]):
        if Path(str(candidate)).is_dir():
            return Path(str(candidate))
    return _CHECKOUT_RESOURCES


def default_model_path() -> Path | None:
    """The embedded default model, or None when this build ships none."""
    p = resources_dir() / "models" / DEFAULT_MODEL_NAME
    return p if p.is_file() else None


def user_models_dir(create: bool = False) -> Path:
    """Per-user folder for imported checkpoints (platformdirs, e.g. ~/.local/share/consistency-studio/models)."""
    p = Path(user_data_dir(APP_NAME, appauthor=False)) / "models"
    if create:
        p.mkdir(parents=True, exist_ok=True)
    return p


def list_models() -> list[Path]:
    """The default model first, then every native model in the user's folder, sorted by name."""
    found = []
    d = default_model_path()
    if d is not None:
        found.append(d)
    udir = user_models_dir()
    if udir.is_dir():
        found.extend(sorted(udir.glob("*.safetensors")))
    return found
