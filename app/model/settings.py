"""User settings: a frozen value saved as JSON under platformdirs, written atomically.

Environment overrides (CSTUDIO_CONFIG_DIR, CSTUDIO_DATA_DIR, CSTUDIO_STATE_DIR) give tests and
portable installs their own folders without touching the user's.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from .safe_write import atomic_write

APP_NAME = "consistency-studio"
MAX_RECENT = 10


def config_dir() -> Path:
    return Path(os.environ.get("CSTUDIO_CONFIG_DIR") or platformdirs.user_config_dir(APP_NAME))


def user_models_dir() -> Path:
    base = os.environ.get("CSTUDIO_DATA_DIR") or platformdirs.user_data_dir(APP_NAME)
    return Path(base) / "models"


def state_dir() -> Path:
    """Where autosaves live: machine state, not configuration (kept out of synced config folders)."""
    return Path(os.environ.get("CSTUDIO_STATE_DIR") or platformdirs.user_state_dir(APP_NAME))


def settings_path() -> Path:
    return config_dir() / "settings.json"


@dataclass(frozen=True)
class Settings:
    recent_files: tuple[str, ...] = ()
    last_dir: str = ""  # where the open/save dialogs start
    model_path: str = ""  # last chosen model; "" = the default
    task: str = "inpaint"
    steps: int = 0
    brush_size: float = 48.0
    brush_hardness: float = 0.6
    live: bool = False
    upscale_factor: int = 4
    upscale_detail: bool = False
    class_label: int = 0  # class-conditional models: the class tasks condition on (GenerationParams.class_label)
    batch_out_dir: str = ""  # where batch results go; "" = next to each input
    batch_format: str = "png"  # the file type batches write (a `jobs.BATCH_FORMATS` key; "same" = each input's)
    batch_overwrite: bool = False  # batches replace existing results; off: they are skipped (a dropped batch resumes)
    window_geometry: str = ""  # Qt's saveGeometry() as hex; opaque here
    extra: dict[str, str] = field(default_factory=dict)  # forward compatibility: keys we do not know yet

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_recent(self, path: str | Path) -> Settings:
        p = str(Path(path).resolve())
        recent = (p,) + tuple(r for r in self.recent_files if r != p)
        return self.replace(recent_files=recent[:MAX_RECENT], last_dir=str(Path(p).parent))


def load_settings(path: Path | None = None) -> Settings:
    """Never fails: a missing, corrupt or foreign file gives defaults for what cannot be read."""
    path = path or settings_path()
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return Settings()
    if not isinstance(data, dict):
        return Settings()
    defaults = Settings()
    known = {f.name for f in dataclasses.fields(Settings)} - {"extra"}
    values: dict[str, object] = {}
    for name in known:
        if name in data:
            want = type(getattr(defaults, name))
            value = data[name]
            if want is tuple and isinstance(value, list):
                values[name] = tuple(str(v) for v in value)
            elif want is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):  # json reads NaN and Infinity; neither is a size or a fraction
                    values[name] = float(value)
            elif isinstance(value, want) and not (want is int and isinstance(value, bool)):
                values[name] = value
    values["extra"] = {k: str(v) for k, v in data.items() if k not in known}
    return Settings(**values)  # type: ignore[arg-type]


def save_settings(settings: Settings, path: Path | None = None) -> None:
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in dataclasses.asdict(settings).items() if k != "extra"}
    data = {**settings.extra, **data}
    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
