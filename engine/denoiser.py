"""Preconditioning of the raw network into a denoiser D(x, sigma) (Karras et al., 2022, Table 1).

Consistency models (Song et al., 2023, Appendix C) shift c_skip/c_out by sigma_min so that the
boundary condition D(x, sigma_min) = x holds exactly; EDM teachers use the plain scalings.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import DenoiserConfig
from .unet import UNet


def scalings(sigma: torch.Tensor, cfg: DenoiserConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_skip, c_out, c_in) for noise levels `sigma` (any shape)."""
    sd = cfg.sigma_data
    c_in = 1 / (sigma**2 + sd**2) ** 0.5
    if cfg.kind == "cm":
        c_skip = sd**2 / ((sigma - cfg.sigma_min) ** 2 + sd**2)
        c_out = (sigma - cfg.sigma_min) * sd / (sigma**2 + sd**2) ** 0.5
    else:
        c_skip = sd**2 / (sigma**2 + sd**2)
        c_out = sigma * sd / (sigma**2 + sd**2) ** 0.5
    return c_skip, c_out, c_in


def c_noise(sigma: torch.Tensor) -> torch.Tensor:
    """Network time input 1000 * 0.25 * ln(sigma), as in the released checkpoints (not EDM's ln(sigma)/4)."""
    return 1000 * 0.25 * torch.log(sigma + 1e-44)


class Denoiser(nn.Module):
    """D(x, sigma) = c_skip * x + c_out * F(c_in * x, c_noise(sigma), class_labels).

    x: (B, 3, H, W) in data units ([-1, 1] plus sigma-scaled noise); sigma: float or (B,).
    """

    def __init__(self, net: UNet, config: DenoiserConfig) -> None:
        super().__init__()
        self.net = net
        self.config = config

    @property
    def sigma_min(self) -> float:
        return self.config.sigma_min

    @property
    def sigma_max(self) -> float:
        return self.config.sigma_max

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.repeat(x.shape[0])
        c_skip, c_out, c_in = (s.view(-1, 1, 1, 1) for s in scalings(sigma, self.config))
        x32 = x.float()
        F_x = self.net(c_in * x32, c_noise(sigma), class_labels).float()
        return c_out * F_x + c_skip * x32
