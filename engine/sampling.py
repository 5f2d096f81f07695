"""Samplers as pure functions of (denoiser, x, sigmas) with injected randomness.

A denoiser is any callable ``(x, sigma) -> x0``. Randomness comes from a `Noise` callable (unit
normal noise shaped like its argument), made from a `torch.Generator` by `gaussian()`, so a seed
reproduces an image and saved noise tensors reproduce the reference code draw for draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch

Denoise = Callable[[torch.Tensor, float], torch.Tensor]
Noise = Callable[[torch.Tensor], torch.Tensor]
Project = Callable[[torch.Tensor], torch.Tensor]


class StepInfo(NamedTuple):
    """Progress report handed to a sampler's callback after each network evaluation."""

    i: int  # 0-based index of the evaluation just finished
    total: int  # evaluations in this run
    sigma: float  # noise level the network just saw
    denoised: torch.Tensor  # its (clamped, projected) estimate of the clean image


Callback = Callable[[StepInfo], None]


def sub_seed(seed: int, *keys: int) -> int:
    """The seed of one part of a job (a tile, an inpainting window, a refinement level): a hash of
    (seed, keys). Plain sums collide: with seed + 1000 * window, seed 1000's first window drew seed
    0's second window's noise, so two seeds of one photo shared part of their result."""
    state = np.random.SeedSequence([int(seed) % 2**64, *(int(k) for k in keys)]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


def gaussian(generator: torch.Generator | None = None) -> Noise:
    """Unit-normal noise from `generator` (drawn on the generator's device, then moved)."""

    def draw(x: torch.Tensor) -> torch.Tensor:
        device = generator.device if generator is not None else x.device
        return torch.randn(x.shape, generator=generator, device=device, dtype=torch.float32).to(x.device, x.dtype)

    return draw


def gaussian_each(generators: Sequence[torch.Generator]) -> Noise:
    """Unit-normal noise for a batch whose item i is drawn from `generators[i]` alone.

    For work split into batches of varying size (tiles of a large upscale): each item's draws
    depend only on its own generator, so a seed gives the same result whether the items run
    one at a time or all together.
    """
    gens = list(generators)

    def draw(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != len(gens):
            raise ValueError(f"noise for a batch of {x.shape[0]} needs as many generators, got {len(gens)}")
        z = torch.stack([torch.randn(x.shape[1:], generator=g, device=g.device, dtype=torch.float32) for g in gens])
        return z.to(x.device, x.dtype)

    return draw


def tint_free(noise: Noise) -> Noise:
    """`noise` with each image's colour cast removed: the per-channel spatial mean of a (B, 3, H, W)
    draw is moved onto the grey axis (R = G = B), so the draw adds no overall tint; its brightness
    offset and all local colour noise stay. Other shapes pass through unchanged.

    For colorization. A few-step loop started at sigma from a grey photo sees the noise's channel
    means (std sigma / sqrt(HW)) as a global cast it cannot tell from the photo's own, and commits
    to it: every seed got a random overall tint, unrelated to the picture. On the 37 held-out whole
    photos with the default model (3 seeds, the loop then used: sigma 4, 3 evaluations), this
    raised the hue agreement with the truth from 0.12 to 0.32 and PSNR from 21.47 to 22.02 dB
    (the grey input: 21.90).
    """

    def draw(x: torch.Tensor) -> torch.Tensor:
        z = noise(x)
        if z.ndim != 4 or z.shape[1] != 3:
            return z
        mean = z.mean(dim=(2, 3), keepdim=True)
        return z - (mean - mean.mean(dim=1, keepdim=True))

    return draw


def replay(noises: Sequence[torch.Tensor] | Iterator[torch.Tensor]) -> Noise:
    """Noise that hands out the given tensors in order (parity tests against saved reference draws)."""
    it = iter(noises)

    def draw(x: torch.Tensor) -> torch.Tensor:
        try:
            z = next(it)
        except StopIteration:
            raise RuntimeError("replay noise exhausted: the sampler asked for more draws than were saved") from None
        return torch.as_tensor(z, dtype=x.dtype, device=x.device).reshape(x.shape)

    return draw


@torch.no_grad()
def sample_onestep(denoise: Denoise, x: torch.Tensor, sigma_max: float = 80.0, *, clip: bool = True,
                   callback: Callback | None = None) -> torch.Tensor:
    """One network evaluation: x0 = D(x_T, sigma_max) (Song et al., 2023, Sec. 3)."""
    x0 = denoise(x, sigma_max)
    if clip:
        x0 = x0.clamp(-1, 1)
    if callback is not None:
        callback(StepInfo(0, 1, sigma_max, x0))
    return x0


@torch.no_grad()
def sample_multistep(denoise: Denoise, x: torch.Tensor, sigmas: Sequence[float], *, noise: Noise,
                     project: Project | None = None, sigma_min: float = 0.002, sigma_max: float = 80.0,
                     clip: bool = True, callback: Callback | None = None) -> torch.Tensor:
    """Multistep consistency sampling (Song et al., 2023, Algorithm 1), with an optional projection.

    `sigmas` lists the visited noise levels including the final one (sigma(ts) in the reference
    code); the network runs at every entry but the last, so NFE = len(sigmas) - 1. `x` is the
    state at sigmas[0]. After each clamped denoise, `project` puts the known content back
    (Algorithm 4: zero-shot editing); then x = x0 + sqrt(sigma_next^2 - sigma_min^2) z. The last
    iteration draws z too (its scale is ~0) so the random stream matches the reference loop.
    Plain sampling clamps the result to [-1, 1]; with a projection the result is returned as
    projected (the reference editing loops do not clamp it: the known part may lie outside).
    """
    if len(sigmas) < 2:
        raise ValueError("sample_multistep needs at least two sigmas (start and end)")
    total = len(sigmas) - 1
    x0 = x
    for i in range(total):
        x0 = denoise(x, float(sigmas[i]))
        if clip:
            x0 = x0.clamp(-1, 1)
        if project is not None:
            x0 = project(x0)
        if callback is not None:
            callback(StepInfo(i, total, float(sigmas[i]), x0))
        sigma_next = min(max(float(sigmas[i + 1]), sigma_min), sigma_max)
        x = x0 + noise(x) * math.sqrt(sigma_next**2 - sigma_min**2)
    return x.clamp(-1, 1) if clip and project is None else x


@torch.no_grad()
def sample_ddim(denoise: Denoise, x: torch.Tensor, sigmas: Sequence[float], *, noise: Noise, eta: float = 0.0,
                project: Project | None = None, clip: bool = True, callback: Callback | None = None) -> torch.Tensor:
    """DDIM steps for a denoiser D(x, sigma) ~ E[x0 | x] (EDM models), optionally projected.

    In the variance-exploding form x = x0 + sigma * eps, DDIM (Song, Meng & Ermon, 2021, Eq. 12)
    moves from sigma to sigma' as x' = x0 + sqrt(sigma'^2 - c^2) * eps + c * z with
    eps = (x - D(x, sigma)) / sigma and c = eta * sigma' * sqrt(1 - sigma'^2 / sigma^2). eta = 0 is
    the probability-flow ODE's Euler step (`sample_euler`); eta = 1 re-draws the posterior noise.
    With `project`, the clean estimate is projected onto the known content before each step while
    eps stays the network's own (range-null-space sampling, Wang et al., 2023, DDNM, Eq. 13). Unlike
    the consistency loop (`sample_multistep`, which re-draws all noise and so averages detail away
    when D is a posterior mean), the deterministic path keeps the detail that each step committed to.
    The network runs at every sigma but the last (NFE = len(sigmas) - 1); the result is the final
    (clamped, projected) clean estimate, so the known content holds exactly.
    """
    if len(sigmas) < 2:
        raise ValueError("sample_ddim needs at least two sigmas (start and end)")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    total = len(sigmas) - 1
    x0 = x
    for i in range(total):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = denoise(x, sigma)
        if clip:
            denoised = denoised.clamp(-1, 1)
        eps = (x - denoised) / sigma
        x0 = denoised if project is None else project(denoised)
        if callback is not None:
            callback(StepInfo(i, total, sigma, x0))
        if i == total - 1:
            break
        c = eta * sigma_next * math.sqrt(max(0.0, 1 - (sigma_next / sigma) ** 2))
        x = x0 + math.sqrt(max(sigma_next**2 - c**2, 0.0)) * eps
        if c > 0:
            x = x + c * noise(x)
    return x0


def _to_d(x: torch.Tensor, sigma: float, denoised: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE derivative dx/dsigma = (x - D(x, sigma)) / sigma (Karras et al., 2022, Eq. 3)."""
    return (x - denoised) / sigma


@torch.no_grad()
def sample_euler(denoise: Denoise, x: torch.Tensor, sigmas: Sequence[float], *, clip: bool = True,
                 callback: Callback | None = None) -> torch.Tensor:
    """Euler steps over `sigmas` (ending in 0) for EDM teachers (Karras et al., 2022, Algorithm 1)."""
    total = len(sigmas) - 1
    for i in range(total):
        denoised = denoise(x, float(sigmas[i]))
        if clip:
            denoised = denoised.clamp(-1, 1)
        if callback is not None:
            callback(StepInfo(i, total, float(sigmas[i]), denoised))
        x = x + _to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
    return x.clamp(-1, 1) if clip else x


@torch.no_grad()
def sample_heun(denoise: Denoise, x: torch.Tensor, sigmas: Sequence[float], *, noise: Noise, clip: bool = True,
                s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float("inf"), s_noise: float = 1.0,
                callback: Callback | None = None) -> torch.Tensor:
    """Heun's 2nd-order method with optional churn (Karras et al., 2022, Algorithm 2); sigmas end in 0.

    Like the reference loop it draws one noise tensor per step even when churn is off.
    """
    total = len(sigmas) - 1
    for i in range(total):
        sigma = float(sigmas[i])
        gamma = min(s_churn / total, 2**0.5 - 1) if s_tmin <= sigma <= s_tmax else 0.0
        eps = noise(x) * s_noise
        sigma_hat = sigma * (gamma + 1)
        if gamma > 0:
            x = x + eps * (sigma_hat**2 - sigma**2) ** 0.5
        denoised = denoise(x, sigma_hat)
        if clip:
            denoised = denoised.clamp(-1, 1)
        if callback is not None:
            callback(StepInfo(i, total, sigma_hat, denoised))
        d = _to_d(x, sigma_hat, denoised)
        dt = sigmas[i + 1] - sigma_hat
        if sigmas[i + 1] == 0:
            x = x + d * dt  # Euler for the last step: the ODE is singular at sigma = 0
        else:
            x_2 = x + d * dt
            denoised_2 = denoise(x_2, float(sigmas[i + 1]))
            if clip:
                denoised_2 = denoised_2.clamp(-1, 1)
            d_2 = _to_d(x_2, sigmas[i + 1], denoised_2)
            x = x + (d + d_2) / 2 * dt
    return x.clamp(-1, 1) if clip else x


def slerp(z0: torch.Tensor, z1: torch.Tensor, alpha: float) -> torch.Tensor:
    """Spherical interpolation between two latents, per sample (Shoemake, 1985), as in the CM paper's Fig. 6."""
    a, b = z0.flatten(1), z1.flatten(1)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    theta = torch.arccos(cos.clamp(-1, 1)).view(-1, *([1] * (z0.ndim - 1)))
    sin = torch.sin(theta)
    # For (nearly) parallel latents slerp degenerates to lerp.
    safe = sin.abs() > 1e-6
    w0 = torch.where(safe, torch.sin((1 - alpha) * theta) / torch.where(safe, sin, 1), torch.full_like(theta, 1 - alpha))
    w1 = torch.where(safe, torch.sin(alpha * theta) / torch.where(safe, sin, 1), torch.full_like(theta, alpha))
    return w0 * z0 + w1 * z1


SAMPLERS = {
    "onestep": sample_onestep,
    "multistep": sample_multistep,
    "ddim": sample_ddim,
    "euler": sample_euler,
    "heun": sample_heun,
}
