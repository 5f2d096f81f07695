"""Exponential moving average of a network's parameters and buffers, for evaluation and export.

Two profiles:
  * fixed decay beta with the usual warm-up, beta_k = min(beta, (1 + k) / (10 + k)): the average
    forgets the random initialisation quickly, then settles to a half-life of ln(0.5) / ln(beta)
    steps (0.999: 693, 0.9993: 990, 0.9999: 6931). Good for runs resumed many times, since the
    window does not depend on where the run stops.
  * power function (Karras et al., 2024, "Analyzing and Improving the Training Dynamics of
    Diffusion Models", Eq. 3): beta_k = (1 - 1/k)^(gamma + 1). The window grows with the run (its
    width is a fixed fraction of the steps so far), so no half-life has to be guessed up front.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of `net` whose tensors track the live ones; `update(step)` after each optimiser step."""

    def __init__(self, net: nn.Module, decay: float = 0.9993, power: float = 0.0) -> None:
        if not (0.0 <= decay < 1.0):
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.power = power
        self.module = copy.deepcopy(net).eval().requires_grad_(False)

    def beta(self, step: int) -> float:
        """Decay applied at optimiser step `step` (1-based: the first update is step 1)."""
        if self.power > 0:
            return (1 - 1 / step) ** (self.power + 1) if step > 1 else 0.0
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        beta = self.beta(step)
        for e, p in zip(self.module.parameters(), net.parameters()):
            e.lerp_(p.detach().to(e.dtype), 1 - beta)
        for e, b in zip(self.module.buffers(), net.buffers()):
            e.copy_(b)

    @torch.no_grad()
    def reset(self, net: nn.Module) -> None:
        """Restart the average at `net`'s current weights (e.g. at a phase switch)."""
        self.module.load_state_dict(net.state_dict())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
