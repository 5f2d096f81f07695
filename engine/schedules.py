"""Noise-level schedules. Pure functions returning Python floats (float64), like the reference code."""

from __future__ import annotations

from collections.abc import Sequence


def karras_sigma(i: float, n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> float:
    """sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho (Karras et al., 2022, Eq. 5)."""
    if n < 2:
        raise ValueError(f"a Karras grid needs at least 2 points, got {n}")
    hi, lo = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return (hi + i / (n - 1) * (lo - hi)) ** rho


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> list[float]:
    """The whole N-point grid, from sigma_max down to sigma_min (no trailing zero)."""
    return [karras_sigma(i, n, sigma_min, sigma_max, rho) for i in range(n)]


def sigmas_from_ts(ts: Sequence[int], steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> list[float]:
    """Map multistep `ts` indices on an N=`steps` grid to noise levels (consistency_models `stochastic_iterative_sampler`)."""
    if any(t < 0 or t > steps - 1 for t in ts):
        raise ValueError(f"ts {tuple(ts)} must lie in 0..{steps - 1}")
    if any(b <= a for a, b in zip(ts, ts[1:])):
        raise ValueError(f"ts {tuple(ts)} must be strictly increasing")
    return [karras_sigma(t, steps, sigma_min, sigma_max, rho) for t in ts]


def even_ts(num_steps: int, steps: int) -> tuple[int, ...]:
    """`num_steps` network evaluations spread evenly over the N-point grid: ts = round(k (N-1) / num_steps)."""
    if num_steps < 1:
        raise ValueError("need at least one step")
    ts = sorted({round(k * (steps - 1) / num_steps) for k in range(num_steps + 1)})
    return tuple(ts)
