"""Samplers against an oracle denoiser, schedules, and randomness handling."""

from __future__ import annotations

import pytest
import torch

from engine import (Identity, Inpaint, SuperRes, karras_sigmas, replay, restore, sample_ddim, sample_euler, sample_heun,
                    sample_multistep, sample_onestep, sigmas_from_ts)
from engine.restore import BasePass, blend_bands, interpolate, restore_blended, spectral_lowpass, stroke_edit
from engine.sampling import gaussian, slerp, tint_free
from engine.schedules import even_ts

CLEAN = torch.linspace(-0.9, 0.9, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)


def oracle(x, sigma):
    """A perfect denoiser for a one-image data set: always answers the clean image."""
    return CLEAN.clone()


def test_karras_grid_values():
    grid = karras_sigmas(40)
    for i, s in {0: 80, 5: 38.27, 10: 16.78, 15: 6.590, 17: 4.366, 18: 3.520, 20: 2.240, 22: 1.382,
                 25: 0.6254, 30: 0.1312, 35: 0.0175, 39: 0.002}.items():
        assert grid[i] == pytest.approx(s, rel=2e-3)
    assert sigmas_from_ts((0, 106, 200), 201)[1] == pytest.approx(1.9128436206953614, rel=1e-12)


def test_ts_validation():
    with pytest.raises(ValueError, match="strictly increasing"):
        sigmas_from_ts((0, 20, 10), 40)
    with pytest.raises(ValueError, match="must lie in"):
        sigmas_from_ts((0, 40), 40)
    assert even_ts(1, 40) == (0, 39) and even_ts(3, 40) == (0, 13, 26, 39)


def test_every_sampler_reproduces_the_oracle():
    g = torch.Generator().manual_seed(0)
    x = 80 * torch.randn(CLEAN.shape, generator=g)
    torch.testing.assert_close(sample_onestep(oracle, x), CLEAN)
    torch.testing.assert_close(sample_multistep(oracle, x, sigmas_from_ts((0, 10, 22, 39), 40), noise=gaussian(g)), CLEAN)
    edm = karras_sigmas(12) + [0.0]
    torch.testing.assert_close(sample_euler(oracle, x, edm), CLEAN, atol=1e-4, rtol=0)
    torch.testing.assert_close(sample_heun(oracle, x, edm, noise=gaussian(g)), CLEAN, atol=1e-4, rtol=0)
    torch.testing.assert_close(sample_heun(oracle, x, edm, noise=gaussian(g), s_churn=5.0), CLEAN, atol=1e-4, rtol=0)
    for eta in (0.0, 0.5, 1.0):
        torch.testing.assert_close(sample_ddim(oracle, x, karras_sigmas(6), noise=gaussian(g), eta=eta), CLEAN)
    y = torch.zeros_like(CLEAN)
    out = restore(oracle, y, Identity(), sigmas_from_ts((0, 20, 39), 40), noise=gaussian(g))
    torch.testing.assert_close(out, CLEAN)


def test_restore_keeps_known_pixels_with_oracle():
    g = torch.Generator().manual_seed(1)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1
    y = torch.full_like(CLEAN, 0.25)
    out = restore(oracle, y, Inpaint(mask), [5.0, 1.0, 0.002], noise=gaussian(g))
    assert torch.equal(out[..., :4], y[..., :4])
    torch.testing.assert_close(out[..., 4:], CLEAN[..., 4:])


def test_same_seed_same_result_and_noise_order():
    def run(seed):
        g = torch.Generator().manual_seed(seed)
        x = 80 * torch.randn(CLEAN.shape, generator=g)
        return sample_multistep(lambda x, s: (x / (1 + s)).clamp(-1, 1), x, [80.0, 2.0, 0.5, 0.002], noise=gaussian(g))

    assert torch.equal(run(3), run(3)) and not torch.equal(run(3), run(4))
    # The loop asks for exactly one draw per evaluation, like the reference (x_T is drawn by the caller).
    draws = [torch.zeros(CLEAN.shape)] * 3
    sample_multistep(oracle, CLEAN, [80.0, 2.0, 0.5, 0.002], noise=replay(draws))
    with pytest.raises(RuntimeError, match="exhausted"):
        sample_multistep(oracle, CLEAN, [80.0, 2.0, 0.5, 0.002], noise=replay(draws[:2]))


def test_callback_reports_every_step_and_can_abort():
    seen = []
    sample_multistep(oracle, CLEAN, [80.0, 2.0, 0.002], noise=gaussian(None), callback=lambda i: seen.append((i.i, i.total)))
    assert seen == [(0, 2), (1, 2)]

    class Stop(Exception):
        pass

    def cb(info):
        raise Stop

    with pytest.raises(Stop):
        sample_multistep(oracle, CLEAN, [80.0, 2.0, 0.002], noise=gaussian(None), callback=cb)


def test_slerp_endpoints_and_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 3, 8, 8, generator=g)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert float(mid.flatten(1).norm(dim=1).mean()) == pytest.approx(float(a.flatten(1).norm(dim=1).mean()), rel=0.1)
    torch.testing.assert_close(slerp(a, a, 0.3), a)  # parallel latents: no NaN
    out = interpolate(oracle, a, b, [0.0, 0.5, 1.0])
    assert out.shape == (6, 3, 8, 8)


def test_stroke_edit_keeps_unmasked_region():
    g = torch.Generator().manual_seed(0)
    guide = torch.zeros_like(CLEAN)
    keep = torch.zeros(1, 1, 8, 8)
    keep[..., 6:, :] = 1
    out = stroke_edit(oracle, guide, [10.0, 1.0, 0.002], noise=gaussian(g), mask=keep)
    assert torch.equal(out[..., 6:, :], guide[..., 6:, :])


def linear_denoiser(x, sigma):
    """A posterior mean for Gaussian data N(0.3, 0.5^2): shrinks x towards the mean, more at high sigma."""
    return 0.3 + (x - 0.3) * (0.25 / (0.25 + sigma**2))


def test_ddim_with_eta_zero_is_the_euler_ode_path():
    """DDIM at eta = 0 is Euler on the probability-flow ODE (Song, Meng & Ermon, 2021, Sec. 4.3):
    its last clean estimate is where Euler lands when it takes the final step to sigma = 0."""
    g = torch.Generator().manual_seed(2)
    x = 10 * torch.randn(CLEAN.shape, generator=g)
    sig = karras_sigmas(7, sigma_max=10.0)
    ddim = sample_ddim(linear_denoiser, x, sig, noise=replay([]), clip=False)  # eta = 0 draws no noise
    euler = sample_euler(linear_denoiser, x, sig[:-1] + [0.0], clip=False)
    torch.testing.assert_close(ddim, euler, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="eta"):
        sample_ddim(linear_denoiser, x, sig, noise=gaussian(g), eta=1.5)


def test_ddim_noise_follows_eta_and_the_seed():
    def run(seed, eta):
        g = torch.Generator().manual_seed(seed)
        return sample_ddim(linear_denoiser, 10 * torch.randn(CLEAN.shape, generator=g), karras_sigmas(5, sigma_max=10.0),
                           noise=gaussian(g), eta=eta)

    assert torch.equal(run(3, 0.5), run(3, 0.5)) and not torch.equal(run(3, 0.5), run(3, 1.0))
    # One draw per step except the last (which returns the clean estimate).
    draws = [torch.zeros(CLEAN.shape)] * 3
    sample_ddim(linear_denoiser, CLEAN, [10.0, 2.0, 0.5, 0.002], noise=replay(draws), eta=1.0)
    with pytest.raises(RuntimeError, match="exhausted"):
        sample_ddim(linear_denoiser, CLEAN, [10.0, 2.0, 0.5, 0.002], noise=replay(draws[:1]), eta=1.0)


def test_projected_ddim_keeps_the_known_content_exactly():
    g = torch.Generator().manual_seed(4)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., ::3, :] = 1
    y = torch.rand(CLEAN.shape, generator=g) * 2 - 1
    sig = [4.0, 1.5, 0.4, 0.002]
    # Only the start is drawn with eta = 0: one noise tensor in all.
    out = restore(linear_denoiser, y, Inpaint(mask), sig, noise=replay([torch.randn(CLEAN.shape, generator=g)]), eta=0.0)
    known = mask.expand_as(y).bool()
    assert torch.equal(out[known], y[known])
    sr = restore(linear_denoiser, y, SuperRes(4), sig, noise=gaussian(g), eta=0.5)
    torch.testing.assert_close(torch.nn.functional.avg_pool2d(sr, 4), torch.nn.functional.avg_pool2d(y, 4))
    # The oracle fills the free pixels with the truth, as the consistency loop does.
    out = restore(oracle, y, Inpaint(mask), sig, noise=gaussian(g), eta=0.0)
    torch.testing.assert_close(out[~known], CLEAN[~known])


def test_tint_free_noise_has_no_colour_cast_but_keeps_the_rest():
    plain = gaussian(torch.Generator().manual_seed(5))(torch.zeros(4, 3, 12, 20))
    z = tint_free(gaussian(torch.Generator().manual_seed(5)))(torch.zeros(4, 3, 12, 20))
    means, plain_means = z.mean(dim=(2, 3)), plain.mean(dim=(2, 3))
    # Each image's channel means are equal (no cast); their average (the brightness offset) is kept.
    assert (means - means.mean(1, keepdim=True)).abs().max() < 1e-6
    assert torch.allclose(means.mean(1), plain_means.mean(1), atol=1e-6)
    assert (plain_means - plain_means.mean(1, keepdim=True)).abs().max() > 0.05  # plain draws do carry one
    # Only a constant per image and channel moved: the local noise is the same draw.
    assert torch.allclose(z - means[..., None, None], plain - plain_means[..., None, None], atol=1e-6)
    grey = gaussian(torch.Generator().manual_seed(5))(torch.zeros(2, 1, 8, 8))
    assert torch.equal(tint_free(gaussian(torch.Generator().manual_seed(5)))(torch.zeros(2, 1, 8, 8)), grey)


def test_blend_bands_takes_structure_from_the_mean_and_texture_from_the_first_sample():
    g = torch.Generator().manual_seed(6)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(24, 24), mode="bilinear")
    checker = ((torch.arange(24)[:, None] + torch.arange(24)[None, :]) % 2 * 2 - 1).float().expand(1, 3, 24, 24)
    # Samples that differ by an overall offset (pure structure) and by a +-checkerboard (pure texture).
    samples = [base + 0.2 * k + (0.1 if k == 0 else -0.1) * checker for k in range(4)]
    out = blend_bands(samples)
    # The offset is the mean's (0.3), the checkerboard the first sample's (+0.1): the split passes
    # all of a constant and none of the Nyquist frequency.
    torch.testing.assert_close(out, base + 0.3 + 0.1 * checker, atol=1e-4, rtol=0)
    assert torch.equal(blend_bands(samples[:1]), samples[0])
    torch.testing.assert_close(blend_bands([samples[0]] * 3), samples[0], atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        blend_bands([])


def test_restore_blended_keeps_known_pixels_counts_every_step_and_is_restore_for_one_sample():
    g = torch.Generator().manual_seed(7)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :, ::2] = 1
    y = torch.rand(CLEAN.shape, generator=g) * 2 - 1
    sig = [2.0, 0.7, 0.2, 0.002]
    steps = []
    out = restore_blended(linear_denoiser, y, Inpaint(mask), sig, noise=gaussian(torch.Generator().manual_seed(1)),
                          samples=3, eta=1.0, callback=lambda info: steps.append((info.i, info.total)))
    known = mask.expand_as(y).bool()
    assert torch.equal(out[known], y[known])
    assert steps == [(i, 9) for i in range(9)]
    # The free pixels move towards the data mean (0.3) with less spread than one sample's.
    one = [restore(linear_denoiser, y, Inpaint(mask), sig, noise=gaussian(torch.Generator().manual_seed(s)), eta=1.0)
           for s in range(8)]
    blended = [restore_blended(linear_denoiser, y, Inpaint(mask), sig, noise=gaussian(torch.Generator().manual_seed(s)),
                               samples=4, eta=1.0) for s in range(8)]
    spread = lambda xs: torch.stack(xs)[:, ~known].std(0).mean()
    assert spread(blended) < spread(one)
    single = restore_blended(linear_denoiser, y, Inpaint(mask), sig, noise=gaussian(torch.Generator().manual_seed(2)),
                             samples=1, eta=1.0)
    assert torch.equal(single, one[2])
    with pytest.raises(ValueError, match="samples"):
        restore_blended(linear_denoiser, y, Inpaint(mask), sig, noise=gaussian(g), samples=0)


def test_blend_bands_over_a_base_takes_its_structure_and_the_sample_texture():
    g = torch.Generator().manual_seed(9)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(24, 24), mode="bilinear")
    checker = ((torch.arange(24)[:, None] + torch.arange(24)[None, :]) % 2 * 2 - 1).float().expand(1, 3, 24, 24)
    sample = smooth + 0.5 + 0.1 * checker  # wrong offset, the texture
    fidelity = smooth - 0.2 * checker.abs()  # right structure (an offset of -0.2), no texture of its own
    out = blend_bands([sample], base=fidelity)
    torch.testing.assert_close(out, smooth - 0.2 + 0.1 * checker, atol=1e-4, rtol=0)
    torch.testing.assert_close(blend_bands([sample], base=sample), sample, atol=1e-6, rtol=0)


def _base_pass_problem() -> tuple[torch.Generator, torch.Tensor, torch.Tensor, list[float], list[float]]:
    """Every other column known, a reference y, a 3-step sample loop and a 1-step base loop."""
    g = torch.Generator().manual_seed(7)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :, ::2] = 1
    y = torch.rand(CLEAN.shape, generator=g) * 2 - 1
    return g, mask, y, [2.0, 0.7, 0.2, 0.002], [0.5, 0.002]


def test_restore_blended_over_a_base_loop_runs_it_first_and_keeps_known_pixels():
    g, mask, y, sig, base_sig = _base_pass_problem()
    steps = []
    out = restore_blended(linear_denoiser, y, Inpaint(mask), sig, noise=gaussian(torch.Generator().manual_seed(1)),
                          samples=1, eta=1.0, base=BasePass(base_sig), callback=lambda info: steps.append((info.i, info.total)))
    known = mask.expand_as(y).bool()
    assert torch.equal(out[known], y[known])
    assert steps == [(i, 4) for i in range(4)]
    # Same noise stream: the base answer first, then the sample; the result is the sample's
    # texture over the base's structure.
    n = gaussian(torch.Generator().manual_seed(1))
    b = restore(linear_denoiser, y, Inpaint(mask), base_sig, noise=n).clamp(-1, 1)
    s = restore(linear_denoiser, y, Inpaint(mask), sig, noise=n, eta=1.0).clamp(-1, 1)
    torch.testing.assert_close(out, Inpaint(mask).project(blend_bands([s], base=b), y))
    assert not torch.allclose(out, s)
    with pytest.raises(ValueError, match="base loop"):
        restore_blended(linear_denoiser, y, Inpaint(mask), sig, noise=gaussian(g), samples=2, base=BasePass(base_sig))


def test_spectral_lowpass_keeps_what_is_below_the_band_and_removes_what_is_above():
    H, W = 32, 48
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    wave = lambda f: torch.cos(2 * torch.pi * f * xx).expand(2, 3, H, W)  # noqa: E731
    low, mid, high = wave(1 / 16), wave(0.2), wave(0.375)
    # 1/16 cycles/px is under the pass frequency, 0.375 over the stop one. The mirrored edges keep
    # the FFT's wrap-around from joining unrelated sides; the mirror's kink costs a little at the
    # very edge only.
    torch.testing.assert_close(spectral_lowpass(low)[..., 8:-8], low[..., 8:-8], atol=0.02, rtol=0)
    torch.testing.assert_close(spectral_lowpass(low), low, atol=0.1, rtol=0)
    assert spectral_lowpass(high)[..., 8:-8].abs().max() < 0.03
    # Inside the band the gain is the raised cosine's: cos^2(pi/2 * (0.2 - 0.15) / 0.1) = 0.5.
    centre = spectral_lowpass(mid)[..., 8:-8, 12:-12]
    assert 0.4 < centre.abs().amax() / mid.abs().amax() < 0.6
    # A wider pass band keeps it; constants pass; half-precision inputs come back as they went in.
    assert (spectral_lowpass(mid, (0.25, 0.35))[..., 8:-8, 12:-12] - mid[..., 8:-8, 12:-12]).abs().max() < 0.05
    torch.testing.assert_close(spectral_lowpass(torch.full((1, 1, 5, 7), 0.7)), torch.full((1, 1, 5, 7), 0.7))
    assert spectral_lowpass(low.half()).dtype == torch.float16
    with pytest.raises(ValueError, match="band"):
        spectral_lowpass(low, (0.3, 0.2))


def test_restore_blended_averages_the_runs_of_a_base_pass():
    _, mask, y, sig, base_sig = _base_pass_problem()
    steps = []
    out = restore_blended(linear_denoiser, y, Inpaint(mask), sig, noise=gaussian(torch.Generator().manual_seed(1)),
                          samples=1, eta=1.0, base=BasePass(base_sig, runs=3), callback=lambda info: steps.append(info.total))
    assert steps == [6] * 6  # 3 base runs of one evaluation, then the sample's 3
    n = gaussian(torch.Generator().manual_seed(1))
    bases = [restore(linear_denoiser, y, Inpaint(mask), base_sig, noise=n).clamp(-1, 1) for _ in range(3)]
    s = restore(linear_denoiser, y, Inpaint(mask), sig, noise=n, eta=1.0).clamp(-1, 1)
    assert not torch.allclose(bases[0], bases[1])  # each run its own draw
    torch.testing.assert_close(out, Inpaint(mask).project(blend_bands([s], base=torch.stack(bases).mean(0)), y))
    assert BasePass(base_sig, runs=3).evaluations == 3
    with pytest.raises(ValueError, match="run"):
        BasePass(base_sig, runs=0)


def test_a_loop_takes_structure_from_a_base_or_from_blended_samples_not_both():
    from engine.pipeline import Loop

    base = Loop(0.3, 2)
    assert Loop(2.0, 40, "ancestral", base=base).evaluations == 42
    assert Loop(2.0, 40, "ancestral", blend=4).evaluations == 160
    with pytest.raises(ValueError, match="not both"):
        Loop(2.0, 40, "ancestral", blend=4, base=base)
    with pytest.raises(ValueError, match="not both"):
        Loop(2.0, 40, base=Loop(1.0, 2, base=base))
    assert Loop(10.0, 120, "ancestral", base=Loop(1.0, 2, runs=4)).evaluations == 128
    with pytest.raises(ValueError, match="runs"):
        Loop(1.0, 2, runs=0)
