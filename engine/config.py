"""Frozen configuration records for the network, the denoiser and the sampler, plus named presets.

The presets reproduce the hyper-parameters of OpenAI's released Consistency Model checkpoints
(Song et al., 2023, `scripts/launch.sh` of openai/consistency_models), so that a checkpoint built
from a preset accepts the official state_dict with ``strict=True``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters of the ADM UNet (Dhariwal & Nichol, 2021) as used by consistency models."""

    image_size: int = 64  # the resolution the model was trained at (pixels, square)
    in_channels: int = 3
    out_channels: int = 3  # learn_sigma=False in every released model
    model_channels: int = 192  # C: width of the first level; time embedding is 4*C wide
    channel_mult: tuple[int, ...] = (1, 2, 3, 4)  # width of each level as a multiple of C
    num_res_blocks: int = 3  # ResBlocks per level on the way down (one more on the way up)
    attention_resolutions: tuple[int, ...] = (32, 16, 8)  # feature-map sizes (px) that get attention
    num_head_channels: int = 64  # channels per attention head (heads = width / this)
    use_scale_shift_norm: bool = True  # FiLM-style GN(h)*(1+scale)+shift instead of h+emb
    resblock_updown: bool = True  # resample with ResBlocks (all released models) or plain pool/nearest
    dropout: float = 0.0  # only active in training
    num_classes: int | None = 1000  # class-conditional label embedding, None = unconditional

    def __post_init__(self) -> None:
        # A config read from a file may carry anything: name the field before arithmetic on it fails.
        for name in ("image_size", "in_channels", "out_channels", "model_channels", "num_res_blocks", "num_head_channels"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"{name} must be an integer, got {v!r}")
        for name in ("channel_mult", "attention_resolutions"):
            v = getattr(self, name)
            if not isinstance(v, (list, tuple)) or not all(isinstance(m, int) and not isinstance(m, bool) for m in v):
                raise ValueError(f"{name} must be a list of integers, got {v!r}")
        # Accept lists (from JSON) but store tuples so the record stays hashable and frozen.
        object.__setattr__(self, "channel_mult", tuple(int(m) for m in self.channel_mult))
        object.__setattr__(self, "attention_resolutions", tuple(int(r) for r in self.attention_resolutions))
        if self.model_channels % 32:
            raise ValueError(f"model_channels must be a multiple of 32 (GroupNorm groups), got {self.model_channels}")
        if not self.channel_mult:
            raise ValueError("channel_mult must name at least one level")
        if self.image_size % (2 ** (len(self.channel_mult) - 1)):
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2**{len(self.channel_mult) - 1} "
                f"(needed for {len(self.channel_mult)} levels)"
            )

    @property
    def attention_ds(self) -> tuple[int, ...]:
        """Downsample factors that get attention (the official code's `attention_ds`)."""
        return tuple(self.image_size // r for r in self.attention_resolutions)

    @property
    def size_step(self) -> int:
        """Image sides must be multiples of this: the network halves them once per level after the first."""
        return 2 ** (len(self.channel_mult) - 1)

    def at_size(self, size: int) -> UNetConfig:
        """This network for images of `size` px (an official file whose training size had to be guessed).

        The weights do not depend on the size; only where attention runs is stated in pixels, and it
        stays at the same levels (downsample factors). Raises ValueError for a size the levels do
        not divide."""
        return dataclasses.replace(self, image_size=size,
                                   attention_resolutions=tuple(size // ds for ds in self.attention_ds))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown UNet config field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class DenoiserConfig:
    """Preconditioning of Karras et al. (2022), with the consistency boundary condition for `kind="cm"`."""

    kind: str = "cm"  # "cm": consistency model (D(x, sigma_min) = x); "edm": EDM teacher
    sigma_data: float = 0.5
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0  # Karras schedule exponent

    def __post_init__(self) -> None:
        if self.kind not in ("cm", "edm"):
            raise ValueError(f"denoiser kind must be 'cm' or 'edm', got {self.kind!r}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")


@dataclass(frozen=True)
class SamplerConfig:
    """A checkpoint's published sampling default: `ts` indices into an N-point Karras grid."""

    steps: int = 40  # N, points on the Karras grid (index 0 = sigma_max, N-1 = sigma_min)
    ts: tuple[int, ...] = (0, 22, 39)  # indices visited by the multistep sampler (Algorithm 1)
    edm_sampler: str = "heun"  # sampler for EDM teachers
    edm_steps: int = 40

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", tuple(int(t) for t in self.ts))
        if len(self.ts) < 2 or self.ts[0] != 0:
            raise ValueError(f"ts must start at 0 and have at least two entries, got {self.ts}")
        if any(b <= a for a, b in zip(self.ts, self.ts[1:])) or self.ts[-1] > self.steps - 1:
            raise ValueError(f"ts must increase and stay below steps={self.steps}, got {self.ts}")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model: network, preconditioning and sampling defaults."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    name: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        data = json.loads(text)
        return cls(
            unet=UNetConfig.from_dict(data["unet"]),
            denoiser=DenoiserConfig(**data.get("denoiser", {})),
            sampler=SamplerConfig(**data.get("sampler", {})),
            name=data.get("name", ""),
        )


# ----------------------------------------------------------------------------------------------
# Presets of the released checkpoints (consistency-models.md §1 and §3).

IMAGENET64 = UNetConfig()
LSUN256 = UNetConfig(
    image_size=256,
    model_channels=256,
    channel_mult=(1, 1, 2, 2, 4, 4),
    num_res_blocks=2,
    attention_resolutions=(32, 16, 8),
    use_scale_shift_norm=False,
    num_classes=None,
)


def _spec(name: str, unet: UNetConfig, kind: str, steps: int, ts: tuple[int, ...]) -> ModelSpec:
    return ModelSpec(unet=unet, denoiser=DenoiserConfig(kind=kind), sampler=SamplerConfig(steps=steps, ts=ts), name=name)


PRESETS: dict[str, ModelSpec] = {
    "cd_imagenet64_l2": _spec("cd_imagenet64_l2", IMAGENET64, "cm", 40, (0, 22, 39)),
    "cd_imagenet64_lpips": _spec("cd_imagenet64_lpips", IMAGENET64, "cm", 40, (0, 22, 39)),
    "ct_imagenet64": _spec("ct_imagenet64", IMAGENET64, "cm", 201, (0, 106, 200)),
    "edm_imagenet64_ema": _spec("edm_imagenet64_ema", IMAGENET64, "edm", 40, (0, 22, 39)),
    "cd_bedroom256_l2": _spec("cd_bedroom256_l2", LSUN256, "cm", 40, (0, 18, 39)),
    "cd_bedroom256_lpips": _spec("cd_bedroom256_lpips", LSUN256, "cm", 40, (0, 17, 39)),
    "ct_bedroom256": _spec("ct_bedroom256", LSUN256, "cm", 151, (0, 67, 150)),
    "edm_bedroom256_ema": _spec("edm_bedroom256_ema", LSUN256, "edm", 40, (0, 17, 39)),
    # No two-step default was published for CD cat; the bedroom LPIPS split is the closest analogue.
    "cd_cat256_l2": _spec("cd_cat256_l2", LSUN256, "cm", 40, (0, 17, 39)),
    "cd_cat256_lpips": _spec("cd_cat256_lpips", LSUN256, "cm", 40, (0, 17, 39)),
    "ct_cat256": _spec("ct_cat256", LSUN256, "cm", 151, (0, 62, 150)),
    "edm_cat256_ema": _spec("edm_cat256_ema", LSUN256, "edm", 40, (0, 17, 39)),
    # Small configs for our own models (trained by `cstudio train`) and for tests.
    "studio32": ModelSpec(
        unet=UNetConfig(image_size=32, model_channels=64, channel_mult=(1, 2, 2), num_res_blocks=2,
                        attention_resolutions=(8,), num_head_channels=64, num_classes=None),
        sampler=SamplerConfig(steps=40, ts=(0, 22, 39)), name="studio32"),
    # studio32 with its 8 px level twice as wide (17.6 M parameters, 1.4x the training time per
    # step): grown from a trained studio32 by `engine.grow` rather than trained from scratch.
    "studio32w": ModelSpec(
        unet=UNetConfig(image_size=32, model_channels=64, channel_mult=(1, 2, 4), num_res_blocks=2,
                        attention_resolutions=(8,), num_head_channels=64, num_classes=None),
        sampler=SamplerConfig(steps=40, ts=(0, 22, 39)), name="studio32w"),
    "studio64": ModelSpec(
        unet=UNetConfig(image_size=64, model_channels=64, channel_mult=(1, 2, 2, 4), num_res_blocks=2,
                        attention_resolutions=(16, 8), num_head_channels=64, num_classes=None),
        sampler=SamplerConfig(steps=40, ts=(0, 22, 39)), name="studio64"),
    "tiny": ModelSpec(
        unet=UNetConfig(image_size=16, model_channels=32, channel_mult=(1, 2), num_res_blocks=1,
                        attention_resolutions=(8,), num_head_channels=32, num_classes=None),
        name="tiny"),
}


def preset(name: str) -> ModelSpec:
    """Look up a preset by name, with a message that lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
