"""Training configuration: frozen records read from `configs/*.json`, with unknown keys refused.

A config names the network (a preset, optionally with field overrides), the recipe (iCT, CD,
EDM, or EDM pre-training followed by consistency tuning), the optimiser and the run's intervals.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DenoiserConfig, ModelSpec, SamplerConfig, UNetConfig, preset

RECIPES = ("ict", "cd", "edm", "edm_then_ict", "edm_then_cd")
OPTIMIZERS = ("radam", "adam")


@dataclass(frozen=True)
class ICTConfig:
    """Improved consistency training (Song & Dhariwal, 2023, Sec. 3)."""

    s0: int = 10  # initial discretisation steps of the curriculum N(k)
    s1: int = 1280  # final discretisation steps (N doubles from s0 until it reaches s1)
    p_mean: float = -1.1  # lognormal noise-level sampling: mean of ln(sigma)
    p_std: float = 2.0  # ... and its standard deviation
    huber_c: float = 0.0  # pseudo-Huber c; 0 = the paper's 0.00054 * sqrt(d), d = 3*H*W


@dataclass(frozen=True)
class CDConfig:
    """Consistency distillation from an EDM teacher (Song et al., 2023, Algorithm 2)."""

    teacher: str = ""  # EDM model file (kind "edm"); empty with edm_then_cd = the net pre-trained in this run
    steps: int = 40  # N of the fixed Karras grid (the released CD models use 40)
    target_decay: float = 0.95  # mu of the target network's EMA
    distance: str = "l2"  # "l2" (mean squared error) or "huber" (pseudo-Huber as in iCT)


@dataclass(frozen=True)
class EDMConfig:
    """Denoiser pre-training loss (Karras et al., 2022, Sec. 5 and Table 1)."""

    p_mean: float = -1.2
    p_std: float = 1.2
    # Weight of the residual's two chroma components (orthogonal to grey) against its grey one;
    # > 1 spends more of a small network on colour. 1 = the plain EDM loss.
    chroma_weight: float = 1.0


@dataclass(frozen=True)
class DataConfig:
    """Crop sampler over the photo manifest (training-data.md, "Recipe")."""

    path: str = "data-cache/photos"  # folder with manifest.tsv and images/
    max_zoom: float = 8.0  # the resized short side lies in [res, max_zoom * res]
    whole_scene: float = 0.3  # share of draws with short side in [res, 1.5 * res] (whole-scene views)
    jitter: float = 0.1  # max relative brightness and contrast change (no hue jitter: it teaches wrong colours)
    # Crop-making processes. 0: crops are made in the training process from one seeded stream, so a
    # resumed run replays an uninterrupted one exactly. A GPU outruns one process (about 2,000 crops/s here),
    # so there each worker draws its own stream, re-seeded at every (re)start.
    workers: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Steps count optimiser updates; the batch is global (split across ranks)."""

    name: str = ""  # run name: runs/<name>/ (default: the config file's stem)
    preset: str = "studio32"  # network preset from engine.config.PRESETS
    unet: dict[str, Any] = field(default_factory=dict)  # UNetConfig fields overriding the preset's
    sample_ts: tuple[int, ...] = ()  # exported sampler default ts (empty: the preset's)
    recipe: str = "edm_then_ict"  # one of RECIPES
    edm_steps: int = 40_000  # length of the EDM pre-training phase for edm_then_*
    total_steps: int = 100_000
    batch_size: int = 32
    lr: float = 1e-4
    tune_lr: float = 0.0  # lr of the consistency phase of edm_then_* (tuning a pre-trained net); 0 = lr
    lr_warmup: int = 0  # linear warm-up steps at the start of each phase
    lr_cooldown: int = 0  # linear decay to 0 over the last steps of each phase (warm-up/stable/decay schedule)
    optimizer: str = "radam"  # RAdam as in the CM paper; Adam as in EDM
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 0.0  # max global grad norm, 0 = off
    ema_decay: float = 0.9993  # evaluation EMA; half-life ln(0.5)/ln(decay) steps (0.9993: ~990)
    ema_power: float = 0.0  # > 0: power-function EMA (Karras et al., 2024) instead of a fixed decay
    dropout: float = 0.0  # overrides the preset's dropout (iCT recommends more than CM's 0)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (compute dtype under autocast)
    channels_last: bool = True
    threads: int = 0  # torch intra-op threads on CPU (0: $CSTUDIO_THREADS or physical cores)
    seed: int = 0
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 500
    keep_checkpoints: int = 3  # training checkpoints and step exports kept in the run folder
    export_fp16: bool = True
    ict: ICTConfig = field(default_factory=ICTConfig)
    cd: CDConfig = field(default_factory=CDConfig)
    edm: EDMConfig = field(default_factory=EDMConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sample_ts", tuple(int(t) for t in self.sample_ts))
        # Checked here, not at the first optimiser step: a bad value would otherwise surface only
        # after the run folder is made, or as "too many values to unpack".
        if not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a list of two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {list(self.betas)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.tune_lr) and self.tune_lr >= 0):
            raise ValueError(f"tune_lr must be 0 (= lr) or positive, got {self.tune_lr}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        # The iCT curriculum N(k) needs 1 <= s0 <= s1 (iCT Eq. 6 takes log2 floor(s1 / s0)); with
        # edm_then_ict a bad pair would only fail when the consistency phase starts, hours in.
        if not 1 <= self.ict.s0 <= self.ict.s1:
            raise ValueError(f"ict needs 1 <= s0 <= s1, got s0={self.ict.s0}, s1={self.ict.s1}")
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.recipe.startswith("edm_then") and not 0 < self.edm_steps < self.total_steps:
            raise ValueError(f"{self.recipe} needs 0 < edm_steps < total_steps, got {self.edm_steps}, {self.total_steps}")
        if self.recipe == "cd" and not self.cd.teacher:
            raise ValueError("recipe 'cd' needs cd.teacher: an EDM model file")
        if self.cd.distance not in ("l2", "huber"):
            raise ValueError(f"cd.distance must be 'l2' or 'huber', got {self.cd.distance!r}")
        if self.batch_size < 1 or self.total_steps < 1:
            raise ValueError("batch_size and total_steps must be positive")
        if self.lr_warmup < 0 or self.lr_cooldown < 0:
            raise ValueError("lr_warmup and lr_cooldown must not be negative")
        if self.data.workers < 0:
            raise ValueError("data.workers must not be negative")
        d = self.data
        if not d.max_zoom >= 1:  # crops are never upsampled: a zoom below 1 has no valid scale
            raise ValueError(f"data.max_zoom must be at least 1, got {d.max_zoom}")
        if not 0 <= d.whole_scene <= 1:
            raise ValueError(f"data.whole_scene is a share of the draws, in [0, 1], got {d.whole_scene}")
        if not 0 <= d.jitter < 1:  # 1 would allow zero brightness or contrast: black crops
            raise ValueError(f"data.jitter must lie in [0, 1), got {d.jitter}")
        for name in ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        try:
            self.model_spec()  # fail early on a bad preset or UNet override
        except KeyError as e:  # engine.config.preset's "unknown preset": a config error like the others
            raise ValueError(e.args[0]) from None

    # -- derived records ---------------------------------------------------------------------------

    def unet_config(self) -> UNetConfig:
        """The preset's UNetConfig with the overrides and this run's dropout applied."""
        base = preset(self.preset).unet.to_dict()
        unknown = set(self.unet) - set(base)
        if unknown:
            raise ValueError(f"unknown UNet config field(s): {', '.join(sorted(unknown))}")
        base.update(self.unet)
        base["dropout"] = self.dropout
        return UNetConfig.from_dict(base)

    def model_spec(self, kind: str = "cm") -> ModelSpec:
        """The spec exported with the weights (dropout is a training setting, so it is stored as 0)."""
        p = preset(self.preset)
        unet = dataclasses.replace(self.unet_config(), dropout=0.0)
        sampler = p.sampler if not self.sample_ts else SamplerConfig(steps=p.sampler.steps, ts=self.sample_ts)
        name = self.name or p.name
        return ModelSpec(unet=unet, denoiser=dataclasses.replace(p.denoiser, kind=kind), sampler=sampler, name=name)

    def phase_lr(self, phase: int) -> float:
        return self.tune_lr if phase > 0 and self.tune_lr > 0 else self.lr

    def lr_at(self, step: int) -> float:
        """The learning rate of the update at `step` (0-based): the phase's lr, ramped up linearly over
        `lr_warmup` steps and, with `lr_cooldown`, down linearly to 0 over the phase's last steps.

        The stable-then-decay shape lets a cooled-down branch be taken from any checkpoint of a long
        constant-lr run (Hägele et al., 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed
        Training Durations"), which is how the shipped model is finished.
        """
        phases = self.phases()
        for index, (_, start, end) in enumerate(phases):
            if step < end or index == len(phases) - 1:
                break
        k = step - start
        factor = min(1.0, (k + 1) / self.lr_warmup) if self.lr_warmup else 1.0
        if self.lr_cooldown:
            factor = min(factor, max(0.0, (end - step) / self.lr_cooldown))
        return self.phase_lr(index) * factor

    @property
    def denoiser(self) -> DenoiserConfig:
        return preset(self.preset).denoiser

    def phases(self) -> list[tuple[str, int, int]]:
        """The run as (loss, first step, end step) phases: e.g. [("edm", 0, 2000), ("ict", 2000, 10000)]."""
        if self.recipe.startswith("edm_then_"):
            return [("edm", 0, self.edm_steps), (self.recipe.removeprefix("edm_then_"), self.edm_steps, self.total_steps)]
        return [(self.recipe, 0, self.total_steps)]

    # -- JSON --------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _build(cls, data, "config")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a JSON config; the run name defaults to the file's stem."""
        path = Path(path)
        # Each failure names the file: OSError's own text is "[Errno 2] ...: 'x'" and a decode
        # error (an image given by mistake) names none.
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such config file")
        if path.is_dir():
            raise ValueError(f"{path}: is a folder, expected a JSON config file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a JSON config (not UTF-8 text)") from None
        except OSError as e:
            raise OSError(f"{path}: cannot read the config ({e.strerror or e})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        data.setdefault("name", path.stem)
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Construct a (nested) frozen dataclass from a dict, refusing keys it does not know."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"unknown {where} key(s): {', '.join(sorted(unknown))}; known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value, f"{where}.{key}")
        elif hint in (int, float, str, bool) and not _fits(value, hint):
            raise ValueError(f"{where}.{key}: expected {hint.__name__}, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def _fits(value: Any, hint: type) -> bool:
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)
