"""The engine on accelerators (CUDA, Apple MPS): run where one is present, skipped elsewhere.

`bash bench/device_check.sh` runs these together with the GPU benchmark in one short go.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine import Denoiser, DenoiserConfig, Model, UNet, preset, replay, sample_multistep, sigmas_from_ts
from engine.checkpoint import infer_unet_config
from engine.device import exact_fp32
from engine.inpaint import InpaintOptions
from engine.training.trainer import Trainer
from tests.conftest import FIXTURES
from tests.engine.test_pipeline import photo
from tests.engine.test_training import make_photoset, tiny_config


def _accelerators() -> list[str]:
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


ACCEL = _accelerators()
pytestmark = pytest.mark.skipif(not ACCEL, reason="no CUDA or MPS device on this machine")
REF = FIXTURES / "refcheck"


@pytest.fixture(params=ACCEL or ["none"])
def dev(request) -> torch.device:
    return torch.device(request.param)


@pytest.mark.parametrize("name", ["small", "small_lsun"])
def test_reference_parity_in_fp32_on_device(dev, name):
    """The refcheck probes and the two-step sample, on the device, to the same 1e-4 as on the CPU."""
    meta = json.loads((REF / "meta.json").read_text())
    sd = torch.load(REF / name / "state_dict.pt", map_location="cpu", weights_only=True)
    net = UNet(infer_unet_config(sd, image_size=32, num_head_channels=32))
    net.load_state_dict(sd, strict=True)
    net = net.eval().to(dev)

    def arr(f: str) -> torch.Tensor:
        return torch.from_numpy(np.load(REF / name / f"{f}.npy")).to(dev)

    labels = arr("labels") if net.config.num_classes else None
    den = Denoiser(net, DenoiserConfig())
    sigmas, xs, want = np.load(REF / name / "probe_sigmas.npy"), arr("probe_x"), arr("probe_denoised_cm")
    with torch.no_grad(), exact_fp32(dev):
        for i, s in enumerate(sigmas):
            torch.testing.assert_close(den(xs[i], float(s), labels), want[i], atol=1e-4, rtol=0)
        m = meta["multistep_cd"]
        got = sample_multistep(lambda x, s: den(x, s, labels), 80 * arr("noise_xT"), sigmas_from_ts(m["ts"], m["steps"]),
                               noise=replay([arr("noise_step1"), arr("noise_step2")]))
    torch.testing.assert_close(got, arr("sample_multistep_cd"), atol=1e-4, rtol=0)


def test_exact_fp32_restores_the_tf32_flags(dev):
    if dev.type != "cuda":
        pytest.skip("TF32 is a CUDA setting")
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    with exact_fp32(dev):
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


def test_half_precisions_stay_close_to_fp32(dev):
    spec = preset("tiny")
    models = {p: Model.random(spec, seed=0, device=dev.type, precision=p) for p in ("fp32", "bf16", "fp16")}
    cpu = Model.random(spec, seed=0, device="cpu", precision="fp32")
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    for sigma in (0.05, 1.0, 80.0):
        ref = cpu.denoise(sigma * x, sigma)
        torch.testing.assert_close(models["fp32"].denoise(sigma * x, sigma).cpu(), ref, atol=1e-4, rtol=0)
        for p in ("bf16", "fp16"):
            assert (models[p].denoise(sigma * x, sigma).cpu() - ref).abs().max() < 0.1, (p, sigma)


def test_seeded_tasks_give_the_cpu_images(dev):
    """Noise is drawn on the CPU, so a seed gives the same picture on every device (up to rounding)."""
    spec = preset("tiny")
    cpu = Model.random(spec, seed=0, device="cpu", precision="fp32")
    gpu = Model.random(spec, seed=0, device=dev.type, precision="fp32")
    img = photo(40, 56)
    mask = np.zeros(img.shape[:2], bool)
    mask[10:25, 15:35] = True
    opts = InpaintOptions(min_context=16)
    for run in (lambda m: m.generate(2, seed=3), lambda m: m.upscale(img, 2, seed=1),
                lambda m: m.colorize(img, seed=1), lambda m: m.inpaint(img, mask, seed=1, options=opts)):
        a, b = run(cpu).astype(int), run(gpu).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 2


def test_training_steps_on_device_lower_the_loss(dev, tmp_path):
    """Mixed precision on the device (bf16, or fp16 with a gradient scaler) trains the tiny net."""
    data = make_photoset(tmp_path / "photos")
    for precision in ("bf16", "fp16"):
        cfg = tiny_config(data, recipe="edm", total_steps=1000, dropout=0.0, lr=1e-3, optimizer="adam",
                          precision=precision)
        trainer = Trainer(cfg, tmp_path / precision, device=dev.type)
        trainer.enter_phase(0, switching=False)
        x = trainer.sampler.batch(8)

        def fixed_loss() -> float:
            with torch.no_grad(), torch.autocast(dev.type, dtype=trainer.dtype):
                return float(trainer.loss(trainer.students["edm"], x.to(trainer.device), 0,
                                          torch.Generator(device=trainer.device).manual_seed(7)))

        before = fixed_loss()
        for _ in range(30):
            trainer.train_step(x)
        assert fixed_loss() < 0.8 * before, precision
