"""The shipped default model on a real photo: its default editing loops do what the model card says.

These run the real weights (resources/models/default.safetensors) on the shipped sample photo, so a
change of sampler, default or weights that loses detail or fidelity shows up here, not only in
`cstudio eval`.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine import Model
from engine.eval import baselines as B
from engine.eval.metrics import hf_energy, psnr
from engine.inpaint import InpaintOptions
from engine.paths import resources_dir


@pytest.fixture(scope="module")
def model(shipped_model: Model) -> Model:
    return shipped_model


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """The sample photo (CC0) scaled to 192x128: real structure at the size the model works at."""
    with Image.open(resources_dir() / "samples" / "italy.png") as im:
        return np.asarray(im.convert("RGB").resize((192, 128), Image.Resampling.BOX))


def test_default_upscale_adds_detail_and_stays_near_bicubic(model: Model, truth: np.ndarray) -> None:
    if model.kind != "edm":
        pytest.skip("the DDIM default applies to EDM-trained models")
    low = B.area_downsample(truth, 4)
    bicubic = B.upscale(low, 4, "bicubic")
    ddim = model.upscale(low, 4, seed=0)  # the default loop: DDIM steps
    loop = model.upscale(low, 4, seed=0, sampler="consistency")
    hf_truth = hf_energy(truth)
    hf = {name: hf_energy(x) / hf_truth for name, x in (("bicubic", bicubic), ("ddim", ddim), ("loop", loop))}
    db = {name: psnr(x, truth) for name, x in (("bicubic", bicubic), ("ddim", ddim), ("loop", loop))}
    assert hf["ddim"] > 1.5 * hf["loop"] and hf["ddim"] > 2 * hf["bicubic"], hf
    assert db["ddim"] >= db["bicubic"] - 1.0, db


def _crops(truth: np.ndarray, R: int, n: int) -> list[np.ndarray]:
    """The `n` model-size tiles of the photo with the most texture (its top row is a flat dark
    backdrop, where every fill scores alike and HF ratios divide by almost nothing)."""
    tiles = [truth[i:i + R, j:j + R] for i in range(0, truth.shape[0] - R + 1, R)
             for j in range(0, truth.shape[1] - R + 1, R)]
    return sorted(tiles, key=hf_energy, reverse=True)[:n]


def _fill_scores(model: Model, crops: list[np.ndarray], holes: list[np.ndarray], **kw) -> tuple[float, float]:
    """Mean PSNR inside the holes and HF energy relative to the truth's there; checks known pixels stay."""
    # The painted pixels themselves, the model's fill alone (no grain added from the surroundings).
    exact = InpaintOptions(grow=0, feather=0, grain=False)
    db, hf, hf_truth = [], 0.0, 0.0
    for k, (crop, hole) in enumerate(zip(crops, holes)):
        out = model.inpaint(crop, hole.astype(np.uint8) * 255, seed=k, options=exact, **kw)
        assert np.array_equal(out[~hole], crop[~hole])
        db.append(psnr(out, crop, hole))
        hf, hf_truth = hf + hf_energy(out, hole), hf_truth + hf_energy(crop, hole)
    return float(np.mean(db)), hf / hf_truth


def test_default_inpaint_fills_strokes_with_texture(model: Model, truth: np.ndarray) -> None:
    """Stroke holes in 6 crops of the photo at the model's size: the default fill (an ancestral
    sample over a structure pass) carries more texture than the consistency loop's and stays a plausible fill."""
    if model.kind != "edm":
        pytest.skip("the ancestral default applies to EDM-trained models")
    R = model.resolution
    crops = _crops(truth, R, 6)
    holes = [B.stroke_mask(R, seed=k) for k in range(len(crops))]
    default = _fill_scores(model, crops, holes)
    loop = _fill_scores(model, crops, holes, sampler="consistency", sigma_start=1.0, num_steps=3, blend=1)
    mean_fill = np.mean([psnr(B.mean_fill(c, h), c, h) for c, h in zip(crops, holes)])
    assert default[1] > 1.3 * loop[1], (default, loop)
    assert default[0] > mean_fill + 3.0, (default, mean_fill)


def test_blended_fill_keeps_one_sample_texture_and_is_closer(model: Model, truth: np.ndarray) -> None:
    """Box holes: blending 4 samples' structure under the first one's texture (the default) scores
    closer to the truth than that sample alone and keeps most of its high-frequency energy."""
    if model.kind != "edm":
        pytest.skip("the blended default applies to EDM-trained models")
    R = model.resolution
    crops = _crops(truth, R, 6)
    holes = [B.box_mask(R)] * len(crops)
    blended = _fill_scores(model, crops, holes)
    single = _fill_scores(model, crops, holes, blend=1)
    assert blended[0] > single[0] + 0.3, (blended, single)
    assert blended[1] > 0.8 * single[1], (blended, single)


def test_default_stroke_edit_turns_blocks_into_texture(model: Model, truth: np.ndarray) -> None:
    """SDEdit from a blocky colour sketch at the model's size: the default (DDIM) result has texture
    where the consistency loop's is a blur, and it strays no further from the sketch's layout."""
    if model.kind != "edm":
        pytest.skip("the DDIM default applies to EDM-trained models")
    R = model.resolution
    small = np.asarray(Image.fromarray(truth[:, 32:160]).resize((R, R), Image.Resampling.BOX))
    sketch = np.asarray(Image.fromarray(small).resize((R // 8, R // 8), Image.Resampling.BOX)
                        .resize((R, R), Image.Resampling.NEAREST))
    ddim = model.stroke_edit(sketch, strength=0.5, seed=0)
    loop = model.stroke_edit(sketch, strength=0.5, seed=0, sampler="consistency")
    ratio = {name: hf_energy(x) / hf_energy(small) for name, x in (("ddim", ddim), ("loop", loop))}
    assert ratio["ddim"] > 2 * ratio["loop"], ratio
    # Layout: mean distance of the 8x8 block colours from the sketch's (this model moves both a lot
    # at strength 0.5; measured 18-30 levels over seeds).
    drift = {name: float(np.abs(B.area_downsample(x, 8).astype(np.float32) - B.area_downsample(sketch, 8)).mean())
             for name, x in (("ddim", ddim), ("loop", loop))}
    assert drift["ddim"] < drift["loop"] + 5, drift


def test_stroke_edit_keeps_the_guide_aspect(model: Model) -> None:
    """A 3:1 guide is edited at its own aspect ratio: the invented texture is as fine across as
    down (squeezing it into the model's square and stretching back gave 0.17-0.34)."""
    guide = np.full((32, 96, 3), 120, np.uint8)
    for seed in range(2):
        out = model.stroke_edit(guide, strength=0.7, seed=seed).astype(np.float32)
        assert out.shape == guide.shape
        across, down = np.abs(np.diff(out, axis=1)).mean(), np.abs(np.diff(out, axis=0)).mean()
        assert 0.6 < across / down < 1.6, (seed, across / down)
