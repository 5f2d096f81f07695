"""Shared fixtures: tiny models made by our own code, and the reference parity data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def tiny_model():
    """A 16-px random-weights model (fp32, CPU) for fast task tests."""
    from engine import Model, preset

    return Model.random(preset("tiny"), seed=0, device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory, tiny_model):
    """The tiny model saved in our native format."""
    from engine import save_model

    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_model(path, tiny_model.spec, tiny_model.denoiser.net.state_dict())
    return path


@pytest.fixture(scope="session")
def sample_photo():
    """The shipped sample photo (CC0) as a uint8 (H, W, 3) array."""
    import numpy as np
    from PIL import Image

    root = Path(__file__).resolve().parents[1]
    with Image.open(root / "resources" / "samples" / "italy.png") as im:
        return np.asarray(im.convert("RGB"))
