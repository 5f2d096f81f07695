"""Consistency Studio's engine: consistency models in pure PyTorch (no Qt, no app imports).

Public API:
    Model.load(path) / Model(spec, state_dict) -- a denoiser on a device with image-level tasks
    load_model(path) -> (spec, state_dict, metadata); save_model(path, spec, state_dict)
    UNet, Denoiser, the samplers, the editing operators and `restore`, the zero-shot editing loop
"""

from .checkpoint import CheckpointError, load_model, save_model
from .config import PRESETS, DenoiserConfig, ModelSpec, SamplerConfig, UNetConfig, preset
from .denoiser import Denoiser
from .operators import Colorize, Identity, Inpaint, Operator, SuperRes
from .pipeline import Cancelled, Model
from .restore import denoise_image, interpolate, restore, stroke_edit
from .sampling import StepInfo, gaussian, replay, sample_ddim, sample_euler, sample_heun, sample_multistep, sample_onestep
from .schedules import karras_sigma, karras_sigmas, sigmas_from_ts
from .unet import UNet

__all__ = [
    "PRESETS", "Cancelled", "CheckpointError", "Colorize", "Denoiser", "DenoiserConfig", "Identity", "Inpaint",
    "Model", "ModelSpec", "Operator", "SamplerConfig", "StepInfo", "SuperRes", "UNet", "UNetConfig", "denoise_image",
    "gaussian", "interpolate", "karras_sigma", "karras_sigmas", "load_model", "preset", "replay", "restore",
    "sample_ddim", "sample_euler", "sample_heun", "sample_multistep", "sample_onestep", "save_model", "sigmas_from_ts", "stroke_edit",
]
