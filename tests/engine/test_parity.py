"""Number-for-number parity with the reference implementation (fixtures in tests/fixtures/refcheck)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine import Colorize, Denoiser, DenoiserConfig, SuperRes, UNet, replay, sample_multistep, sample_onestep, sigmas_from_ts
from engine.checkpoint import infer_unet_config
from engine.unet import count_parameters
from tests.conftest import FIXTURES

REF = FIXTURES / "refcheck"
META = json.loads((REF / "meta.json").read_text())
CONFIGS = ["small", "small_lsun"]
TOL = 1e-4


def arr(name: str, f: str) -> torch.Tensor:
    return torch.from_numpy(np.load(REF / name / f"{f}.npy"))


@pytest.fixture(scope="module", params=CONFIGS)
def ref(request):
    name = request.param
    sd = torch.load(REF / name / "state_dict.pt", map_location="cpu", weights_only=True)
    cfg = infer_unet_config(sd, image_size=32, num_head_channels=32)
    net = UNet(cfg)
    net.load_state_dict(sd, strict=True)
    labels = arr(name, "labels") if cfg.num_classes else None
    return name, net.eval(), labels


def test_parameter_counts_match_reference(ref):
    name, net, _ = ref
    assert count_parameters(net) == META["configs"][name]["num_parameters"]
    assert len(net.state_dict()) == META["configs"][name]["num_state_dict_tensors"]


def test_raw_network_and_denoisers(ref):
    name, net, labels = ref
    sigmas, xs = np.load(REF / name / "probe_sigmas.npy"), arr(name, "probe_x")
    for kind, f in (("cm", "probe_denoised_cm"), ("edm", "probe_denoised_edm")):
        den = Denoiser(net, DenoiserConfig(kind=kind))
        want = arr(name, f)
        for i, s in enumerate(sigmas):
            with torch.no_grad():
                got = den(xs[i], float(s), labels)
            torch.testing.assert_close(got, want[i], atol=TOL, rtol=0)
    raw = arr(name, "probe_unet_out")
    for i, s in enumerate(sigmas):
        s_t = torch.full((xs.shape[1],), float(s))
        with torch.no_grad():
            got = net(xs[i] / (s_t**2 + 0.25).sqrt().view(-1, 1, 1, 1), 250 * torch.log(s_t), labels)
        torch.testing.assert_close(got, raw[i], atol=TOL, rtol=0)


def test_onestep_and_multistep_samples(ref):
    name, net, labels = ref
    den = Denoiser(net, DenoiserConfig())

    def D(x, s):
        return den(x, s, labels)

    x_T = 80 * arr(name, "noise_xT")
    torch.testing.assert_close(sample_onestep(D, x_T), arr(name, "sample_onestep"), atol=TOL, rtol=0)
    for tag in ("cd", "ct"):
        m = META[f"multistep_{tag}"]
        sig = sigmas_from_ts(m["ts"], m["steps"])
        assert sig == pytest.approx(m["sigmas"], rel=1e-12)
        got = sample_multistep(D, x_T, sig, noise=replay([arr(name, "noise_step1"), arr(name, "noise_step2")]))
        torch.testing.assert_close(got, arr(name, f"sample_multistep_{tag}"), atol=TOL, rtol=0)


@pytest.mark.parametrize("task", ["colorize", "superres"])
def test_editing_loops(ref, task):
    name, net, labels = ref
    den = Denoiser(net, DenoiserConfig())
    op = Colorize() if task == "colorize" else SuperRes(META["edit"]["superres_patch"])
    images = arr(name, "edit_images")
    y = op.known(images)
    torch.testing.assert_close(y, arr(name, f"edit_{task}_ref"), atol=TOL, rtol=0)
    sig = sigmas_from_ts(META["edit"]["ts"], META["edit"]["steps"])
    got = sample_multistep(lambda x, s: den(x, s, labels), arr(name, "edit_x_init"), sig,
                           noise=replay(list(arr(name, "edit_noises"))), project=lambda x0: op.project(x0, y))
    torch.testing.assert_close(got, arr(name, f"edit_{task}_out"), atol=TOL, rtol=0)
