"""App test fixtures: offscreen Qt, private settings/model folders, a synthetic photo (tiny_model: tests/conftest.py)."""

from __future__ import annotations

import os

# Before any Qt import: tests never need a display, and never open a real window on a desktop.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Two cores are shared: one torch thread keeps the UI thread responsive and the suite predictable.
os.environ.setdefault("CSTUDIO_THREADS", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings, imported models and autosaves go to a temp folder, never the developer's own."""
    monkeypatch.setenv("CSTUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CSTUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CSTUDIO_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def make_photo(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth synthetic picture (gradient sky, a disc, noise): something with structure to edit."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    img[..., 0] = 80 + 120 * yy / h
    img[..., 1] = 120 + 60 * xx / w
    img[..., 2] = 200 - 80 * yy / h
    disc = (yy - h * 0.6) ** 2 + (xx - w * 0.4) ** 2 < (min(h, w) * 0.25) ** 2
    img[disc] = (230, 190, 60)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def photo() -> np.ndarray:
    return make_photo()
