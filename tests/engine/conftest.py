"""Fixtures of the engine tests: a small photo and a mask as files, a guard against compute, the shipped model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def read_image(path):
    """A written image file as an array, as it was stored (mode kept)."""
    with Image.open(path) as im:
        return np.asarray(im)


@pytest.fixture(scope="session")
def shipped_model():
    """The embedded default model, exact (fp32) on the CPU: the tests that judge its real output."""
    from engine import Model
    from engine.paths import default_model_path

    path = default_model_path()
    if path is None:
        pytest.fail("resources/models/default.safetensors is missing")
    return Model.load(path, device="cpu", precision="fp32", threads=2)


@pytest.fixture()
def images(tmp_path):
    """in.png (24x30 random RGB) and mask.png (a 10x15 box) in tmp_path; returns tmp_path."""
    rng = np.random.default_rng(0)
    img = (rng.random((24, 30, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    mask = np.zeros((24, 30), np.uint8)
    mask[5:15, 5:20] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path


@pytest.fixture()
def no_compute(monkeypatch):
    """Fail the test if a command gets as far as loading its model."""
    import engine.cli

    def load(args):
        raise AssertionError("the model was loaded before the arguments and the output were checked")

    monkeypatch.setattr(engine.cli, "_load", load)
