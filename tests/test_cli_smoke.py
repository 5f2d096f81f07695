"""CLI smoke test: every `cstudio` subcommand, run on the DEFAULT model through a real `python -m app` subprocess.

This is what a user's first commands do, end to end (argument parsing, the embedded model's lookup, image
reading and writing), so it runs in CI's default path. Inputs are tiny (48x40) and every task uses one network
evaluation on the CPU, so the whole module takes well under a minute on two cores with a 32-64 px model.

The model is `engine.paths.default_model_path()` (resources/models/default.safetensors), looked up by the
subprocess itself: the commands run without --model. Set CSTUDIO_SMOKE_MODEL=FILE to test another model file
instead (then --model FILE is passed). With neither, the module fails and says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
W, H = 48, 40
# Pixels farther than this from the mask are never touched by inpainting: grow (4) + feather (8), with margin.
FAR = 14
MASK_BOX = (4, 12, 6, 16)  # top, bottom, left, right (exclusive): a hole near the top-left corner


def _model() -> tuple[Path, list[str]]:
    """(model file, the --model arguments to pass: none for the default model)."""
    override = os.environ.get("CSTUDIO_SMOKE_MODEL")
    if override:
        path = Path(override)
        if not path.is_file():
            pytest.fail(f"CSTUDIO_SMOKE_MODEL={override} is not a file")
        return path, ["--model", str(path)]
    from engine.paths import default_model_path

    path = default_model_path()
    if path is None:
        pytest.fail("the default model is missing: resources/models/default.safetensors must exist for the CLI "
                    "smoke test (it is what `cstudio` uses without --model). Ship it, or set "
                    "CSTUDIO_SMOKE_MODEL=FILE to test another model.")
    return path, []


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    work = tmp_path_factory.mktemp("cli-smoke")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               PYTHONDONTWRITEBYTECODE="1", QT_QPA_PLATFORM="offscreen")
    timings = []

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "app", *args], cwd=work, env=env, capture_output=True, text=True,
                              timeout=300)
        timings.append((args[0], time.perf_counter() - t0))
        if ok:
            assert proc.returncode == 0, f"cstudio {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    run.work = work
    yield run
    print("\ncli smoke timings: " + ", ".join(f"{name} {secs:.1f}s" for name, secs in timings))


@pytest.fixture(scope="module")
def info(cli, model) -> dict:
    """`cstudio info MODEL --json`, run once."""
    return json.loads(cli("info", str(model[0]), "--json").stdout)


def _task(model_args: list[str]) -> list[str]:
    return [*model_args, "--device", "cpu", "--precision", "fp32", "--steps", "1", "--seed", "3", "--quiet"]


def _image(path: Path, seed: int = 0, grey: bool = False) -> np.ndarray:
    """A smooth test picture (gradients plus a little noise), so nothing is at the edges of the gamut."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([60 + 100 * x / W, 80 + 90 * y / H, 150 - 60 * x / W], -1) + rng.normal(0, 6, (H, W, 3))
    rgb = np.clip(rgb, 0, 255).round().astype(np.uint8)
    if grey:
        rgb = np.repeat(np.asarray(Image.fromarray(rgb).convert("L"))[..., None], 3, -1)
    Image.fromarray(rgb).save(path)
    return rgb


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im.load()  # a truncated or corrupt file fails here
        return np.asarray(im.convert("RGB"))


def _luma(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def test_info_and_convert(cli, model, info):
    path, _ = model
    assert info["parameters"] > 0 and info["kind"] in ("cm", "edm")
    res = info["resolution"]
    out = cli.work / "model_fp16.safetensors"
    cli("convert", str(path), str(out), "--fp16", "--name", "smoke-fp16")
    info16 = json.loads(cli("info", str(out), "--json").stdout)
    assert info16["dtype"] == "float16" and info16["name"] == "smoke-fp16"
    assert (info16["resolution"], info16["parameters"], info16["tensors"]) == (res, info["parameters"], info["tensors"])
    # fp32 -> fp16 halves the file; a 16-bit (bf16/fp16) source keeps its size.
    assert out.stat().st_size <= path.stat().st_size * (0.6 if info["dtype"] == "float32" else 1.01)
    # The fp16 copy is a working model: it generates.
    img = cli.work / "from_fp16.png"
    cli("generate", *_task(["--model", str(out)]), "--out", str(img))
    assert _read(img).shape == (res, res, 3)


def test_generate(cli, model, info):
    _, margs = model
    res = info["resolution"]
    out = cli.work / "gen.png"
    proc = cli("generate", *_task(margs), "-n", "2", "--out", str(out))
    files = [cli.work / "gen_000.png", cli.work / "gen_001.png"]
    assert proc.stdout.split() == [str(f) for f in files]
    a, b = (_read(f) for f in files)
    assert a.shape == b.shape == (res, res, 3)
    assert not np.array_equal(a, b) and a.std() > 0  # two different, non-blank samples


def test_inpaint_keeps_far_pixels(cli, model):
    _, margs = model
    src = _image(cli.work / "photo.png", seed=1)
    top, bottom, left, right = MASK_BOX
    mask = np.zeros((H, W), np.uint8)
    mask[top:bottom, left:right] = 255
    Image.fromarray(mask).save(cli.work / "mask.png")
    out = cli.work / "photo_inpainted.png"
    cli("inpaint", str(cli.work / "photo.png"), "--mask", str(cli.work / "mask.png"), *_task(margs), "--out", str(out))
    res = _read(out)
    assert res.shape == src.shape
    yy, xx = np.mgrid[0:H, 0:W]
    dist = np.maximum(np.maximum(top - yy, yy - (bottom - 1)), np.maximum(left - xx, xx - (right - 1)))  # to the box
    far = dist > FAR
    assert far.sum() > 0.3 * H * W
    assert np.array_equal(res[far], src[far]), "inpainting changed pixels far away from the mask"
    assert not np.array_equal(res[mask > 0], src[mask > 0]), "the masked region was not filled"


def test_colorize_keeps_luma(cli, model):
    _, margs = model
    grey = _image(cli.work / "grey.png", seed=2, grey=True)
    out = cli.work / "grey_colour.png"
    cli("colorize", str(cli.work / "grey.png"), *_task(margs), "--out", str(out))
    res = _read(out)
    assert res.shape == grey.shape
    diff = np.abs(_luma(res) - _luma(grey))
    # Rounding each channel to 8 bits moves luma by at most 0.5; pixels whose colour left the gamut are clipped.
    assert np.median(diff) <= 0.5 and np.mean(diff <= 1.0) > 0.95, f"luma moved: max {diff.max():.2f}, mean {diff.mean():.2f}"


def test_upscale_x2(cli, model):
    _, margs = model
    factor = 2
    _image(cli.work / "small.png", seed=3)
    out = cli.work / f"small_x{factor}.png"
    cli("upscale", str(cli.work / "small.png"), "--factor", str(factor), *_task(margs), "--out", str(out))
    assert _read(out).shape == (H * factor, W * factor, 3)


def test_batch_upscale_folder(cli, model):
    _, margs = model
    folder = cli.work / "batch_in"
    folder.mkdir()
    _image(folder / "a.png", seed=4)
    small = _image(folder / "b.png", seed=5)[:20, :24]
    Image.fromarray(small).save(folder / "b.jpg", quality=95)
    (folder / "b.png").unlink()
    (folder / "notes.txt").write_text("not an image")
    dst = cli.work / "batch_out"
    proc = cli("upscale", str(folder), "--factor", "2", *_task(margs), "--out", str(dst))
    outs = sorted(p.name for p in dst.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    assert len(outs) == 2, f"expected two outputs, got {outs}\n{proc.stdout}"
    sizes = sorted(_read(dst / name).shape for name in outs)
    assert sizes == sorted([(2 * H, 2 * W, 3), (40, 48, 3)])
    # A second run skips what exists (no --overwrite) and still succeeds.
    again = cli("upscale", str(folder), "--factor", "2", *_task(margs), "--out", str(dst))
    assert "skip" in (again.stdout + again.stderr).lower()
