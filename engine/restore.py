"""Zero-shot editing: one projected multistep loop serves inpainting, colorization and super-resolution.

Song et al. (2023), Algorithm 4: start from the known content at a noise level, then alternate a
clamped denoise, a projection of the known content (see `engine.operators`) and re-noising. For
denoisers trained as EDM models the same projection drives DDIM steps instead (`eta`, see
`engine.sampling.sample_ddim`), which keep the detail the consistency loop averages away. Also
the paper's other zero-shot uses: stroke-guided editing (SDEdit, Meng et al., 2022: start from a
noised guide at an intermediate sigma), latent interpolation and one-step denoising.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .operators import Identity, Inpaint, Operator
from .sampling import Callback, Denoise, Noise, sample_ddim, sample_multistep, sample_onestep, slerp


@torch.no_grad()
def restore(denoise: Denoise, y: torch.Tensor, operator: Operator, sigmas: Sequence[float], *, noise: Noise,
            x_start: torch.Tensor | None = None, sigma_min: float = 0.002, sigma_max: float = 80.0,
            eta: float | None = None, callback: Callback | None = None) -> torch.Tensor:
    """Fill in what `operator` leaves free so that the result keeps `y`'s known part exactly.

    y: (B, 3, H, W) reference in [-1, 1] (only its known part matters). The loop starts at
    x = project(x_start, y) + sigmas[0] * z: with sigmas[0] = sigma_max the start hardly matters;
    a low start (2-10) keeps the low frequencies of `x_start` (e.g. a bicubic upscale) and gives a
    cleaner result from a weak model. `x_start` defaults to y itself. `eta` None runs the
    consistency loop (Algorithm 4); a number in [0, 1] runs projected DDIM steps with that eta.
    """
    start = y if x_start is None else operator.project(x_start, y)
    x = start + float(sigmas[0]) * noise(start)
    if eta is not None:
        return sample_ddim(denoise, x, sigmas, noise=noise, eta=eta, project=lambda x0: operator.project(x0, y),
                           callback=callback)
    return sample_multistep(denoise, x, sigmas, noise=noise, project=lambda x0: operator.project(x0, y),
                            sigma_min=sigma_min, sigma_max=sigma_max, callback=callback)


@torch.no_grad()
def stroke_edit(denoise: Denoise, guide: torch.Tensor, sigmas: Sequence[float], *, noise: Noise,
                sigma_min: float = 0.002, sigma_max: float = 80.0, mask: torch.Tensor | None = None,
                callback: Callback | None = None) -> torch.Tensor:
    """SDEdit-style editing: noise a rough guide (e.g. coloured strokes) to sigmas[0] and run the loop.

    With `mask` (1 = keep), the pixels outside the edited region are projected back at every step.
    """

    op: Operator = Identity() if mask is None else Inpaint(mask)
    return restore(denoise, guide, op, sigmas, noise=noise, sigma_min=sigma_min, sigma_max=sigma_max, callback=callback)


@torch.no_grad()
def denoise_image(denoise: Denoise, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """One-step denoising of an image that carries Gaussian noise of std `sigma` (in [-1, 1] units)."""
    return sample_onestep(denoise, noisy, sigma)


@torch.no_grad()
def interpolate(denoise: Denoise, z0: torch.Tensor, z1: torch.Tensor, alphas: Sequence[float],
                sigma_max: float = 80.0) -> torch.Tensor:
    """One-step samples along the slerp between two unit-normal latents (Song et al., 2023, Fig. 6)."""
    outs = [sample_onestep(denoise, sigma_max * slerp(z0, z1, a), sigma_max) for a in alphas]
    return torch.cat(outs)
