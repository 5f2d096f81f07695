"""Training losses as callable classes: iCT, consistency distillation, and the EDM denoiser loss.

References:
  Song, Dhariwal, Chen, Sutskever, "Consistency Models", ICML 2023 (CM; Algorithms 2 and 3).
  Song & Dhariwal, "Improved Techniques for Training Consistency Models", arXiv 2310.14189 (iCT).
  Karras, Aittala, Aila, Laine, "Elucidating the Design Space of Diffusion-Based Generative
  Models", NeurIPS 2022 (EDM).

Every loss is called as ``loss(denoise, x, step, generator) -> scalar`` where `denoise(x, sigma)`
is the network being trained (train mode), x: (B, 3, H, W) clean images in [-1, 1], `step` counts
optimiser updates within the loss's phase, and all noise comes from `generator`. Dropout draws on
torch's global RNG; student and teacher replay the same state so they share dropout masks.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from ..config import DenoiserConfig
from ..denoiser import Denoiser
from ..schedules import karras_sigmas
from ..unet import UNet

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------------------------
# Pieces shared by the consistency losses.


def pseudo_huber(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """Per-sample sqrt(||x - y||^2 + c^2) - c over all pixels (iCT, Sec. 3.3)."""
    sq = (x.float() - y.float()).pow(2).flatten(1).sum(1)
    return torch.sqrt(sq + c * c) - c


def huber_c(shape: torch.Size | tuple[int, ...]) -> float:
    """iCT's c = 0.00054 * sqrt(d) with d the per-sample data dimension (Sec. 3.3)."""
    return 0.00054 * math.sqrt(math.prod(shape[1:]))


def ict_num_scales(k: int, K: int, s0: int = 10, s1: int = 1280) -> int:
    """N(k) = min(s0 * 2^floor(k / K'), s1) + 1, K' = floor(K / (log2 floor(s1 / s0) + 1)) (iCT, Eq. 6)."""
    K_prime = max(1, math.floor(K / (math.log2(math.floor(s1 / s0)) + 1)))
    return min(s0 * 2 ** math.floor(k / K_prime), s1) + 1


def ascending_sigmas(n: int, cfg: DenoiserConfig, device: torch.device | None = None) -> torch.Tensor:
    """The N-point Karras grid from sigma_min up to sigma_max (iCT's indexing), float64."""
    return torch.tensor(karras_sigmas(n, cfg.sigma_min, cfg.sigma_max, cfg.rho)[::-1], dtype=torch.float64, device=device)


def lognormal_index_probs(sigmas: torch.Tensor, p_mean: float, p_std: float) -> torch.Tensor:
    """p(i) proportional to erf((ln s_{i+1} - P_mean)/(sqrt2 P_std)) - erf((ln s_i - P_mean)/(sqrt2 P_std)) (iCT, Eq. 7)."""
    cdf = torch.erf((sigmas.log() - p_mean) / (math.sqrt(2) * p_std))
    p = cdf[1:] - cdf[:-1]
    return p / p.sum()


def mps_rng_available() -> bool:
    """Whether torch has the Apple MPS backend and its default generator's get/set_rng_state."""
    mps = getattr(torch, "mps", None)
    backend = getattr(torch.backends, "mps", None)
    return (mps is not None and hasattr(mps, "get_rng_state") and hasattr(mps, "set_rng_state")
            and backend is not None and backend.is_available())


class _RNGState:
    """The global RNG state(s) that dropout draws from, so a second forward can replay the same masks.

    Dropout on an accelerator draws from that device's default generator (CUDA's per device,
    MPS's single one), so those are saved along with the CPU's.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self.mps = torch.mps.get_rng_state() if device.type == "mps" and mps_rng_available() else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)
        if self.mps is not None:
            torch.mps.set_rng_state(self.mps)


def _per_sample(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return sigma.to(x.dtype).view(-1, *([1] * (x.ndim - 1)))


# ----------------------------------------------------------------------------------------------
# Improved consistency training.


class ICTLoss:
    """Consistency training with iCT's improvements (Song & Dhariwal, 2023, Eq. 5 with Secs. 3.1-3.5).

    L = lambda(s_i) d(f(x + s_{i+1} z, s_{i+1}), sg[f(x + s_i z, s_i)]), lambda = 1/(s_{i+1} - s_i),
    d pseudo-Huber, i from the discretised lognormal, N(k) from the doubling curriculum. The teacher
    is the student itself under stop-gradient (no EMA target), with the same dropout masks and z.
    """

    def __init__(self, denoiser: DenoiserConfig, total_steps: int, *, s0: int = 10, s1: int = 1280,
                 p_mean: float = -1.1, p_std: float = 2.0, c: float = 0.0) -> None:
        self.cfg = denoiser
        self.total_steps = total_steps
        self.s0, self.s1 = s0, s1
        self.p_mean, self.p_std = p_mean, p_std
        self.c = c
        self._grid: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def num_scales(self, step: int) -> int:
        return ict_num_scales(step, self.total_steps, self.s0, self.s1)

    def grid(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(ascending sigmas, index probabilities) for an N-point grid, cached per N."""
        key = (n, str(device))
        if key not in self._grid:
            sig = ascending_sigmas(n, self.cfg)
            self._grid[key] = (sig.to(device), lognormal_index_probs(sig, self.p_mean, self.p_std).to(device))
        return self._grid[key]

    def __call__(self, denoise: Denoise, x: torch.Tensor, step: int, generator: torch.Generator) -> torch.Tensor:
        sig, probs = self.grid(self.num_scales(step), x.device)
        i = torch.multinomial(probs, x.shape[0], replacement=True, generator=generator)
        sigma, sigma_next = sig[i], sig[i + 1]
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        rng = _RNGState(x.device)
        with torch.no_grad():
            target = denoise(x + _per_sample(sigma, x) * z, sigma.float())
        rng.restore()
        pred = denoise(x + _per_sample(sigma_next, x) * z, sigma_next.float())
        weight = (1 / (sigma_next - sigma)).float()
        c = self.c or huber_c(x.shape)
        return (weight * pseudo_huber(pred, target, c)).mean()


# ----------------------------------------------------------------------------------------------
# Consistency distillation.


class CDLoss:
    """Consistency distillation (Song et al., 2023, Algorithm 2) from an EDM teacher, Heun ODE step.

    n ~ U{0..N-2} on the ascending N-point Karras grid; x_next = x + s_{n+1} z; the teacher's Heun
    step (Karras et al., 2022, Algorithm 1) takes it to s_n; the loss compares the student at
    (x_next, s_{n+1}) with the EMA target network at (x_hat, s_n), lambda = 1.
    """

    def __init__(self, teacher: Denoise, net: UNet, denoiser: DenoiserConfig, *, steps: int = 40,
                 target_decay: float = 0.95, distance: str = "l2") -> None:
        self.teacher = teacher
        self.cfg = denoiser
        self.steps = steps
        self.target_decay = target_decay
        self.distance = distance
        # The target network theta^- starts as a copy of the student and follows it by EMA.
        self.target_net = copy.deepcopy(net).requires_grad_(False)
        self.target = Denoiser(self.target_net, denoiser)

    def num_scales(self, step: int) -> int:
        return self.steps

    @torch.no_grad()
    def heun_step(self, x: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """One Heun step of the teacher's probability-flow ODE from sigma to sigma_next (> 0), per sample."""
        s, s2 = _per_sample(sigma, x), _per_sample(sigma_next, x)
        d = (x - self.teacher(x, sigma.float())) / s
        x_euler = x + (s2 - s) * d
        d_2 = (x_euler - self.teacher(x_euler, sigma_next.float())) / s2
        return x + (s2 - s) * (d + d_2) / 2

    def __call__(self, denoise: Denoise, x: torch.Tensor, step: int, generator: torch.Generator) -> torch.Tensor:
        sig = ascending_sigmas(self.steps, self.cfg, x.device)
        n = torch.randint(self.steps - 1, (x.shape[0],), generator=generator, device=x.device)
        sigma, sigma_next = sig[n], sig[n + 1]
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_next = x + _per_sample(sigma_next, x) * z
        x_hat = self.heun_step(x_next, sigma_next, sigma)
        rng = _RNGState(x.device)
        with torch.no_grad():
            target = self.target(x_hat, sigma.float())
        rng.restore()
        pred = denoise(x_next, sigma_next.float())
        if self.distance == "huber":
            return pseudo_huber(pred, target, huber_c(x.shape)).mean()
        return (pred.float() - target.float()).pow(2).mean()

    @torch.no_grad()
    def update_target(self, net: nn.Module) -> None:
        """theta^- <- mu theta^- + (1 - mu) theta, after each optimiser step."""
        for t, s in zip(self.target_net.parameters(), net.parameters()):
            t.lerp_(s.detach(), 1 - self.target_decay)


# ----------------------------------------------------------------------------------------------
# EDM denoiser pre-training.


def colour_weighted_sq(r: torch.Tensor, chroma_weight: float) -> torch.Tensor:
    """Per-pixel squared norm of an RGB residual r (B, 3, H, W) with its chroma part weighted.

    Split r into its grey component g = (r . 1) 1 / 3 and chroma c = r - g (orthogonal, so
    |r|^2 = |g|^2 + |c|^2); returns (|g|^2 + w |c|^2) * 3 / (1 + 2 w), normalised so that a residual
    with equal energy in the three opponent directions keeps its plain value. w = 1 is |r|^2.
    """
    sq = r.pow(2).sum(1, keepdim=True)
    if chroma_weight == 1.0:
        return sq
    grey = r.sum(1, keepdim=True).pow(2) / 3
    w = float(chroma_weight)
    return (grey + w * (sq - grey)) * (3 / (1 + 2 * w))


class EDMLoss:
    """lambda(s) ||D(x + s z, s) - x||^2 with ln s ~ N(P_mean, P_std^2), lambda = (s^2 + sd^2)/(s sd)^2 (EDM, Table 1).

    `chroma_weight` != 1 weights the residual's chroma against its grey part (`colour_weighted_sq`).
    A denoiser's residual carries a quarter to a half as much energy in chroma as in grey (the
    default model on held-out crops, sigma 0.1-10), so the plain loss spends most of a small
    network's effort on brightness.
    """

    def __init__(self, denoiser: DenoiserConfig, *, p_mean: float = -1.2, p_std: float = 1.2,
                 chroma_weight: float = 1.0) -> None:
        if chroma_weight <= 0:
            raise ValueError(f"chroma_weight must be positive, got {chroma_weight}")
        self.sigma_data = denoiser.sigma_data
        self.p_mean, self.p_std = p_mean, p_std
        self.chroma_weight = chroma_weight

    def num_scales(self, step: int) -> int:
        return 0  # continuous noise levels

    def __call__(self, denoise: Denoise, x: torch.Tensor, step: int, generator: torch.Generator) -> torch.Tensor:
        rnd = torch.randn(x.shape[0], generator=generator, device=x.device)
        sigma = (rnd * self.p_std + self.p_mean).exp()
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        sd = self.sigma_data
        weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
        D_x = denoise(x + _per_sample(sigma, x) * z, sigma)
        sq = colour_weighted_sq(D_x.float() - x.float(), self.chroma_weight)
        # Mean over the C*H*W values, as the plain loss.
        return (weight * sq.flatten(1).mean(1) / x.shape[1]).mean()
