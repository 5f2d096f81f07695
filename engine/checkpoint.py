"""Model files: our native safetensors format, and importers for OpenAI's `.pt` and diffusers folders.

Native format: a safetensors file whose metadata holds the `ModelSpec` as JSON (key "spec"), so
weights and configuration travel together and nothing is ever unpickled. Official `.pt` files and
diffusers `.bin` files are pickles: they are read with ``torch.load(weights_only=True)``, which
refuses any pickle that would construct arbitrary objects (i.e. run code).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .config import PRESETS, DenoiserConfig, ModelSpec, SamplerConfig, UNetConfig
from .unet import UNet

FORMAT = "consistency-studio"
FORMAT_VERSION = "1"


class CheckpointError(Exception):
    """A model file that cannot be used, with a message naming the file, key or shape at fault."""


class SettingError(CheckpointError):
    """A setting stated for a model (image size, attention head width, kind) that does not fit it:
    the command-line option has to change (`cstudio` exits 2, as for its other bad options)."""


class ImageSizeError(SettingError):
    """The image size given for a model does not fit it (a command-line option to change)."""


# The kinds a model file may be stated to be (`load_model(kind=...)`, `--kind`): official files do
# not store theirs, and the three ImageNet 64 networks (CD, CT, EDM teacher) have identical layouts.
KINDS = {"cm": "a consistency model (sampled on a 40-point grid, as the distilled CD models)",
         "ct": "a consistency-trained (CT) model, on the grid of the released CT model of its layout",
         "edm": "an EDM teacher (a diffusion model sampled by Heun steps)"}

# The app keeps the image size a user chose for an imported file whose size was guessed in this
# file next to it (app/model/catalog.py, SIZES_FILE and _chosen_size, which this must match): the
# engine reads it too, so `cstudio --model FILE` runs that file at the size the app runs it at.
# (The engine never imports the app, hence the copy of this small format.)
SIZES_FILE = "image-sizes.json"
_MAX_CHOSEN_SIZE = 4096


# ----------------------------------------------------------------------------------------------
# Native format.


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            # mkstemp makes the file private (0600); give it the mode a plain open() would have
            # (or the replaced file's), so saving does not silently change who can read it.
            # Windows has os.fchmod only from Python 3.13, and no POSIX modes to restore anyway.
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_model(path: str | Path, spec: ModelSpec, state_dict: dict[str, torch.Tensor], *,
               dtype: torch.dtype | None = None, metadata: dict[str, str] | None = None) -> Path:
    """Save weights (optionally cast, e.g. to fp16) with the spec as JSON metadata, atomically."""
    tensors = {}
    for k, v in state_dict.items():
        v = v.detach().to("cpu")
        if dtype is not None and v.is_floating_point():
            cast = v.to(dtype)
            # fp16 tops out at 65504: a larger weight would be saved as inf, a model that outputs NaN.
            if not bool(torch.isfinite(cast).all()) and bool(torch.isfinite(v).all()):
                raise CheckpointError(f"{path}: key {k!r} holds values up to {float(v.abs().max()):.6g}, "
                                      f"beyond the range of {dtype}; save it in a wider type")
            v = cast
        tensors[k] = v.contiguous()
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": spec.to_json()}
    meta.update(metadata or {})
    path = Path(path)
    try:
        atomic_write_bytes(path, save(tensors, metadata=meta))
    except OSError as e:
        # A missing or read-only folder, a folder of that name, a full disk: said as such, not as a
        # traceback (`cstudio convert` reports CheckpointErrors).
        raise CheckpointError(f"{path}: cannot write the model file ({e.strerror or e})") from None
    return path


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e}); is it truncated or corrupt?") from None


def _torch_load_weights_only(path: Path) -> dict[str, torch.Tensor]:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the file ({e.strerror or e})") from None
    # torch.save writes a zip archive (or, before PyTorch 1.6, a pickle: protocol 2+ starts with
    # 0x80). Anything else is not a checkpoint at all, and the unpickler's complaint about it
    # would read as if the file tried to run code.
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (it starts with {head!r}, neither a zip archive "
                              "nor a pickle); is it the right file, or truncated?")
    try:
        # An open file, not the path: given a path ending in .safetensors, recent PyTorch reads it as
        # safetensors whatever the content, and a renamed .pt would be called corrupt.
        with open(path, "rb") as f, warnings.catch_warnings():
            # A plain pickle.dump file (protocol 4/5) makes PyTorch warn that its weights-only reader
            # may not support it and to file an issue: noise in front of the refusal or the model.
            warnings.filterwarnings("ignore", message=r"Detected pickle protocol", category=UserWarning)
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # PyTorch's text leads with advice to re-run with weights_only=False (the very thing refused
        # here), sometimes in terminal colours; what the file asked for is the part worth saying.
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        wants = f"'{found.group(1)}'" if found else "objects other than tensors"
        raise CheckpointError(
            f"{path}: refused to load: the file is a pickle that asks for {wants}, which could run code. "
            "Only plain state_dict files (names mapped to tensors) can be imported."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError, AttributeError) as e:
        # The weights-only unpickler reports garbage input with assorted internal exceptions; their
        # first sentence says what failed, the rest is advice for PyTorch developers.
        first = re.split(r"(?<=\.)\s", str(e).strip(), maxsplit=1)[0] or type(e).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch file ({first}); "
                              "is it truncated or corrupt?") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state_dict (a mapping of names to tensors), got {type(obj).__name__}")
    bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        # E.g. a training checkpoint that wraps the weights ({"model": {...}, "step": ...}): name the key.
        raise CheckpointError(f"{path}: expected a state_dict (a mapping of names to tensors), but key {bad!r} "
                              f"holds a {type(obj[bad]).__name__}")
    return obj


def _sniff(path: Path) -> str | None:
    """'safetensors' or 'torch' by the file's first bytes (None: neither), so a renamed file is read
    as what it is. safetensors: an 8-byte little-endian header length, then the JSON header."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return None
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size:
        return "safetensors"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "torch"
    return None


# ----------------------------------------------------------------------------------------------
# Inferring the network config from official tensor shapes.


def rgb_problem(in_channels: object, out_channels: object) -> str:
    """Why a network of these channel counts cannot be used here ("" if it can): every task feeds
    it an RGB image and reads an RGB image back, so anything else fails at its first evaluation."""
    if in_channels == 3 and out_channels == 3:
        return ""
    why = []
    if in_channels == 4:
        why.append("4 channels in is a latent-diffusion model, which works on an autoencoder's latents, not on pixels")
    if out_channels == 6:
        why.append("6 channels out is the ADM learn_sigma layout: a diffusion model that also predicts its variance "
                   "(guided-diffusion), not a consistency model")
    return "only RGB pixel-space models (3 channels in, 3 out) can be used" + "".join(f"; {w}" for w in why)


def _attention_widths(model_channels: int, mult: tuple[int, ...] | list[int], attn_levels: list[int]) -> list[int]:
    """Channel widths of the attention blocks: those of the levels that have them, and the middle block's."""
    return sorted({model_channels * mult[lv] for lv in attn_levels} | {model_channels * mult[-1]})


def _check_head_width(heads: object, widths: list[int]) -> None:
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1 or any(w % heads for w in widths):
        g = math.gcd(*widths)
        fits = ", ".join(str(d) for d in (8, 16, 32, 64, 128, 256) if g % d == 0) or str(g)
        raise SettingError(f"attention head width {heads} does not fit this network: its attention blocks are "
                           f"{', '.join(map(str, widths))} channels wide, and the width per head must divide "
                           f"each (e.g. {fits}; OpenAI's released models use 64)")


def infer_unet_config(sd: dict[str, torch.Tensor], *, image_size: int | None = None,
                      num_head_channels: int | None = None) -> UNetConfig:
    """Rebuild a UNetConfig from official state_dict keys and shapes.

    Width, levels, blocks per level, attention placement, scale-shift, up/down style and classes
    follow from the tensors. Image size and head width do not; they come from a matching preset or
    the arguments (defaults: 64 px for 1000-class models, 256 px otherwise; 64 channels per head).
    """
    def need(key: str) -> torch.Tensor:
        if key not in sd:
            # Show a key that is there: a prefix ('module.', 'model.') or another architecture shows at once.
            seen = f" (its keys look like {next(iter(sd))!r})" if sd else " (it holds no tensors)"
            raise CheckpointError(f"missing key {key!r}{seen}: this does not look like an ADM/consistency-model UNet")
        return sd[key]

    first = need("input_blocks.0.0.weight")
    C = first.shape[0]
    # Said before the shapes below: a 4-channel latent or 6-output learn_sigma network would be called
    # a UNet whose `out.2.weight` has the wrong shape, which does not say what the file is.
    last = sd.get("out.2.weight")
    n_in = first.shape[1] if first.ndim == 4 else 3  # other shapes: named by check_state_dict
    n_out = last.shape[0] if last is not None and last.ndim == 4 else 3
    problem = rgb_problem(n_in, n_out)
    if problem:
        raise CheckpointError(f"the network has {n_in} channels in and {n_out} out: {problem}")
    num_classes = sd["label_emb.weight"].shape[0] if "label_emb.weight" in sd else None
    out_idx = sorted({int(m.group(1)) for k in sd if (m := re.match(r"output_blocks\.(\d+)\.", k))})
    n_out = len(out_idx)

    def is_res(prefix: str) -> bool:
        return f"{prefix}.in_layers.2.weight" in sd

    # An output block that ends in a resampler: a ResBlock after position 0, or a parameter-free Upsample.
    n_up = sum(1 for i in out_idx if is_res(f"output_blocks.{i}.1") or is_res(f"output_blocks.{i}.2"))
    updown = n_up > 0
    if not updown:  # plain Upsample has no parameters: count levels from the encoder's parameter-free blocks
        in_idx = sorted({int(m.group(1)) for k in sd if (m := re.match(r"input_blocks\.(\d+)\.", k))})
        n_in_total = max(in_idx) + 1
        n_up = n_in_total - len(in_idx)
    levels = n_up + 1
    if image_size is not None and not (isinstance(image_size, int) and image_size > 0
                                       and image_size % 2 ** (levels - 1) == 0):
        raise ImageSizeError(f"image size {image_size} does not fit this network: it must be a positive "
                              f"multiple of {2 ** (levels - 1)} ({levels} levels)")
    if n_out % levels:
        raise CheckpointError(f"cannot infer the layout: {n_out} output blocks over {levels} levels")
    nrb = n_out // levels - 1
    mult, attn_levels = [], []
    for level in range(levels):
        idx = 1 + level * (nrb + 1)
        w = need(f"input_blocks.{idx}.0.in_layers.2.weight")
        mult.append(w.shape[0] // C)
        if f"input_blocks.{idx}.1.qkv.weight" in sd:
            attn_levels.append(level)
    emb = need("input_blocks.1.0.emb_layers.1.weight").shape[0]
    scale_shift = emb == 2 * C * mult[0]
    key = (C, tuple(mult), nrb, num_classes, scale_shift)
    for spec in PRESETS.values():
        u = spec.unet
        if (u.model_channels, u.channel_mult, u.num_res_blocks, u.num_classes, u.use_scale_shift_norm) == key:
            image_size = image_size if image_size is not None else u.image_size
            num_head_channels = num_head_channels or u.num_head_channels
            break
    if image_size is None:
        image_size = 64 if num_classes == 1000 else 256
    widths = _attention_widths(C, mult, attn_levels)
    if num_head_channels is None:
        # Head width is not stored in the weights; 64 (all released models) where it divides every
        # attention width, else the largest common divisor of those widths.
        num_head_channels = 64 if all(w % 64 == 0 for w in widths) else math.gcd(*widths)
    else:
        _check_head_width(num_head_channels, widths)
    try:
        return UNetConfig(
            image_size=image_size, model_channels=C, channel_mult=tuple(mult), num_res_blocks=nrb,
            attention_resolutions=tuple(image_size // 2**lv for lv in attn_levels), num_head_channels=num_head_channels,
            use_scale_shift_norm=scale_shift, resblock_updown=updown, num_classes=num_classes,
        )
    except ValueError as e:  # e.g. a width that is no multiple of 32
        raise CheckpointError(f"the weights describe a network this program cannot build ({e})") from None


def presets_named_in(names: list[str]) -> list[tuple[str, ModelSpec]]:
    """Presets whose name appears in one of `names` as a whole word (not inside a longer one:
    'tiny' is not in 'edm_tiny32', 'studio32' not in 'studio32w'), longest name first."""
    found = [(name, spec) for name, spec in PRESETS.items()
             if any(re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", n.lower()) for n in names)]
    return sorted(found, key=lambda item: -len(item[0]))


def preset_kind(name: str, spec: ModelSpec) -> str:
    """A preset's kind in `KINDS` terms: edm teachers, ct_* (their own grid), else cm."""
    return "edm" if spec.denoiser.kind == "edm" else "ct" if name.startswith("ct_") else "cm"


def _same_layout(a: UNetConfig, b: UNetConfig) -> bool:
    """The same weights layout (what the tensors fix), whatever the image size and head width."""
    return (a.model_channels, a.channel_mult, a.num_res_blocks, a.num_classes, a.use_scale_shift_norm) == \
        (b.model_channels, b.channel_mult, b.num_res_blocks, b.num_classes, b.use_scale_shift_norm)


def spec_of_kind(unet: UNetConfig, kind: str, name: str, source: str = "") -> ModelSpec:
    """The denoiser and sampling defaults of a network stated to be of `kind` (see KINDS): those of
    the first released model of that kind with this layout, else the generic ones of the kind."""
    if kind not in KINDS:
        raise SettingError(f"{source + ': ' if source else ''}kind {kind!r} is not one of "
                           f"{', '.join(KINDS)} ({'; '.join(f'{k}: {v}' for k, v in KINDS.items())})")
    for preset_name, spec in PRESETS.items():
        if preset_kind(preset_name, spec) == kind and _same_layout(spec.unet, unet):
            return ModelSpec(unet=unet, denoiser=spec.denoiser, sampler=spec.sampler, name=name)
    if kind == "ct":
        raise SettingError(f"{source + ': ' if source else ''}kind ct takes the sampling grid of the released CT "
                           "model of the network's layout, and none has this layout: state kind cm (a 40-point "
                           "grid) and choose the steps when sampling")
    return ModelSpec(unet=unet, denoiser=DenoiserConfig(kind="edm" if kind == "edm" else "cm"), name=name)


def official_kind(path: Path, unet: UNetConfig, kind: str | None = None) -> tuple[ModelSpec, bool]:
    """Denoiser kind and sampler defaults of an official file: `kind` when stated, else from the
    released file name (edm_* = teacher; ts per launch.sh). Returns (spec, whether the kind is a
    guess): a name that says neither leaves a consistency model on a 40-point grid, which for the
    ImageNet 64 layout may as well be the CT model (a 201-point grid) or the EDM teacher."""
    stem = path.stem.lower()
    teacher = stem.startswith("edm")  # OpenAI's teachers are named edm_*: that decides the kind
    named = [(name, spec) for name, spec in presets_named_in([stem]) if spec.unet.model_channels == unet.model_channels]
    if kind is not None:
        if named and preset_kind(*named[0]) == kind:  # e.g. ct_cat256's own ts, not ct_bedroom256's
            return ModelSpec(unet=unet, denoiser=named[0][1].denoiser, sampler=named[0][1].sampler,
                             name=named[0][0]), False
        return spec_of_kind(unet, kind, path.stem, str(path)), False
    if named:
        name, spec = named[0]
        denoiser = replace(spec.denoiser, kind="edm") if teacher else spec.denoiser
        return ModelSpec(unet=unet, denoiser=denoiser, sampler=spec.sampler, name=name), False
    return ModelSpec(unet=unet, denoiser=DenoiserConfig(kind="edm" if teacher else "cm"), name=path.stem), not teacher


def spec_for_official(path: Path, unet: UNetConfig, kind: str | None = None) -> ModelSpec:
    """Denoiser kind and sampler defaults from the released file name, or `kind` (see `official_kind`)."""
    return official_kind(path, unet, kind)[0]


def check_spec(spec: ModelSpec, source: str) -> None:
    """Types and ranges of every field of a spec (e.g. one read from a file's metadata), so a
    malformed one is refused by name here, not by a ZeroDivisionError in the network's
    constructor or a NaN schedule at the first sampling step."""
    def need(ok: bool, field: str, want: str, value: object) -> None:
        if not ok:
            raise CheckpointError(f"{source}: model spec in the metadata is invalid: {field} must be {want}, got {value!r}")

    def integer(v: object, least: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= least

    def number(v: object) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    u, d, smp = spec.unet, spec.denoiser, spec.sampler
    for f in ("image_size", "in_channels", "out_channels", "model_channels", "num_head_channels"):
        need(integer(getattr(u, f), 1), f"unet.{f}", "a positive integer", getattr(u, f))
    problem = rgb_problem(u.in_channels, u.out_channels)
    if problem:
        raise CheckpointError(f"{source}: the network has {u.in_channels} channels in and {u.out_channels} out: "
                              f"{problem}")
    # 0 is a real network: each level keeps its down/up-sampling and one ResBlock on the way up.
    need(integer(u.num_res_blocks, 0), "unet.num_res_blocks", "a non-negative integer", u.num_res_blocks)
    need(all(integer(m, 1) for m in u.channel_mult), "unet.channel_mult", "positive integers", u.channel_mult)
    need(all(integer(r, 1) for r in u.attention_resolutions), "unet.attention_resolutions", "positive integers",
         u.attention_resolutions)
    need(u.num_classes is None or integer(u.num_classes, 1), "unet.num_classes", "null or a positive integer", u.num_classes)
    need(number(u.dropout) and 0 <= u.dropout < 1, "unet.dropout", "a number in [0, 1)", u.dropout)
    for f in ("use_scale_shift_norm", "resblock_updown"):
        need(isinstance(getattr(u, f), bool), f"unet.{f}", "true or false", getattr(u, f))
    for f in ("sigma_data", "sigma_min", "sigma_max", "rho"):
        need(number(getattr(d, f)) and getattr(d, f) > 0, f"denoiser.{f}", "a positive finite number", getattr(d, f))
    need(integer(smp.steps, 2), "sampler.steps", "an integer of at least 2", smp.steps)
    need(smp.edm_sampler in ("heun", "euler"), "sampler.edm_sampler", "'heun' or 'euler'", smp.edm_sampler)
    need(integer(smp.edm_steps, 1), "sampler.edm_steps", "a positive integer", smp.edm_steps)
    need(isinstance(spec.name, str), "name", "a string", spec.name)


def check_state_dict(unet: UNetConfig, sd: dict[str, torch.Tensor], source: str) -> None:
    """Compare keys and shapes with the network the config builds; errors name the offending key."""
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in UNet(unet).state_dict().items()}
    except (ValueError, TypeError, ZeroDivisionError) as e:
        raise CheckpointError(f"{source}: the model config does not make a network ({e})") from None
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s), e.g. {missing[0]!r} {expected[missing[0]]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unknown key(s), e.g. {unexpected[0]!r} {tuple(sd[unexpected[0]].shape)}")
        raise CheckpointError(f"{source}: weights do not fit the model config: " + "; ".join(parts))
    for k, shape in expected.items():
        if tuple(sd[k].shape) != shape:
            raise CheckpointError(f"{source}: key {k!r} has shape {tuple(sd[k].shape)}, the config needs {shape}")
    for k in expected:
        # A diverged or damaged file: every image it made would be NaN, i.e. black after conversion.
        if sd[k].is_floating_point() and not bool(torch.isfinite(sd[k]).all()):
            raise CheckpointError(f"{source}: key {k!r} holds NaN or infinite values")


# ----------------------------------------------------------------------------------------------
# diffusers UNet2DModel <-> official key names (diffusers' convert_consistency_to_diffusers layout).


_RES_LEAVES = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
               "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
_ATTN_LEAVES = {"norm": "group_norm", "proj_out": "to_out.0"}


def _block_map(unet: UNetConfig) -> list[tuple[str, str, str]]:
    """(official module prefix, diffusers module prefix, kind in {res, attn, conv, lin, norm, emb})."""
    out: list[tuple[str, str, str]] = [
        ("time_embed.0", "time_embedding.linear_1", "lin"), ("time_embed.2", "time_embedding.linear_2", "lin"),
        ("input_blocks.0.0", "conv_in", "conv"), ("out.0", "conv_norm_out", "norm"), ("out.2", "conv_out", "conv"),
        ("middle_block.0", "mid_block.resnets.0", "res"), ("middle_block.1", "mid_block.attentions.0", "attn"),
        ("middle_block.2", "mid_block.resnets.1", "res"),
    ]
    if unet.num_classes is not None:
        out.append(("label_emb", "class_embedding", "emb"))
    levels, nrb = len(unet.channel_mult), unet.num_res_blocks
    idx, ds = 1, 1
    for level in range(levels):
        for j in range(nrb):
            out.append((f"input_blocks.{idx}.0", f"down_blocks.{level}.resnets.{j}", "res"))
            if ds in unet.attention_ds:
                out.append((f"input_blocks.{idx}.1", f"down_blocks.{level}.attentions.{j}", "attn"))
            idx += 1
        if level != levels - 1:
            if unet.resblock_updown:
                out.append((f"input_blocks.{idx}.0", f"down_blocks.{level}.downsamplers.0", "res"))
            idx += 1
            ds *= 2
    idx = 0
    for up_level, level in enumerate(reversed(range(levels))):
        for j in range(nrb + 1):
            out.append((f"output_blocks.{idx}.0", f"up_blocks.{up_level}.resnets.{j}", "res"))
            has_attn = ds in unet.attention_ds
            if has_attn:
                out.append((f"output_blocks.{idx}.1", f"up_blocks.{up_level}.attentions.{j}", "attn"))
            if level and j == nrb:
                if unet.resblock_updown:
                    pos = 2 if has_attn else 1
                    out.append((f"output_blocks.{idx}.{pos}", f"up_blocks.{up_level}.upsamplers.0", "res"))
                ds //= 2
            idx += 1
    return out


def official_to_diffusers(sd: dict[str, torch.Tensor], unet: UNetConfig) -> dict[str, torch.Tensor]:
    """Rename official keys to diffusers `UNet2DModel` keys; split qkv into to_q/to_k/to_v linears."""
    out: dict[str, torch.Tensor] = {}
    for src, dst, kind in _block_map(unet):
        if kind == "attn":
            for leaf, new in _ATTN_LEAVES.items():
                for p in ("weight", "bias"):
                    t = sd[f"{src}.{leaf}.{p}"]
                    out[f"{dst}.{new}.{p}"] = t.flatten(1) if (p == "weight" and t.ndim == 4) else t
            for p in ("weight", "bias"):
                q, k, v = sd[f"{src}.qkv.{p}"].chunk(3, dim=0)
                for name, t in zip(("to_q", "to_k", "to_v"), (q, k, v)):
                    out[f"{dst}.{name}.{p}"] = t.flatten(1) if p == "weight" else t
        elif kind == "res":
            for leaf, new in _RES_LEAVES.items():
                for p in ("weight", "bias"):
                    if f"{src}.{leaf}.{p}" in sd:
                        out[f"{dst}.{new}.{p}"] = sd[f"{src}.{leaf}.{p}"]
        else:
            for p in ("weight", "bias"):
                if f"{src}.{p}" in sd:
                    out[f"{dst}.{p}"] = sd[f"{src}.{p}"]
    return out


def diffusers_to_official(sd: dict[str, torch.Tensor], unet: UNetConfig) -> dict[str, torch.Tensor]:
    """Inverse of `official_to_diffusers`: names back, to_q/to_k/to_v re-joined into a 1x1 conv qkv."""
    out: dict[str, torch.Tensor] = {}

    def get(key: str) -> torch.Tensor:
        if key not in sd:
            raise CheckpointError(f"diffusers weights lack key {key!r} needed by the model config")
        return sd[key]

    for src, dst, kind in _block_map(unet):
        if kind == "attn":
            for leaf, new in _ATTN_LEAVES.items():
                out[f"{src}.{leaf}.bias"] = get(f"{dst}.{new}.bias")
                w = get(f"{dst}.{new}.weight")
                out[f"{src}.{leaf}.weight"] = w[:, :, None, None] if leaf == "proj_out" and w.ndim == 2 else w
            w = torch.cat([get(f"{dst}.{n}.weight") for n in ("to_q", "to_k", "to_v")])
            out[f"{src}.qkv.weight"] = w[:, :, None, None] if w.ndim == 2 else w
            out[f"{src}.qkv.bias"] = torch.cat([get(f"{dst}.{n}.bias") for n in ("to_q", "to_k", "to_v")])
        elif kind == "res":
            for leaf, new in _RES_LEAVES.items():
                for p in ("weight", "bias"):
                    if f"{dst}.{new}.{p}" in sd:
                        out[f"{src}.{leaf}.{p}"] = sd[f"{dst}.{new}.{p}"]
        else:
            for p in ("weight", "bias"):
                if f"{dst}.{p}" in sd:
                    out[f"{src}.{p}"] = sd[f"{dst}.{p}"]
    used = set(official_to_diffusers(out, unet))
    unknown = [k for k in sd if k not in used]
    if unknown:
        raise CheckpointError(f"diffusers weights have {len(unknown)} key(s) the config does not use, e.g. {unknown[0]!r}")
    return out


def diffusers_config(unet: UNetConfig) -> dict:
    """A `UNet2DModel` config.json equivalent to `unet` (as on the Hub for the converted checkpoints)."""
    levels = len(unet.channel_mult)
    attn = [2**lv in unet.attention_ds for lv in range(levels)]
    return {
        "_class_name": "UNet2DModel", "sample_size": unet.image_size, "in_channels": unet.in_channels,
        "out_channels": unet.out_channels, "layers_per_block": unet.num_res_blocks,
        "block_out_channels": [unet.model_channels * m for m in unet.channel_mult],
        "attention_head_dim": unet.num_head_channels,
        "down_block_types": ["AttnDownBlock2D" if a else "ResnetDownsampleBlock2D" for a in attn],
        "up_block_types": ["AttnUpBlock2D" if a else "ResnetUpsampleBlock2D" for a in reversed(attn)],
        "resnet_time_scale_shift": "scale_shift" if unet.use_scale_shift_norm else "default",
        "attn_norm_num_groups": 32, "num_class_embeds": unet.num_classes, "downsample_type": "resnet",
        "upsample_type": "resnet", "flip_sin_to_cos": True, "freq_shift": 0, "norm_eps": 1e-5,
        "norm_num_groups": 32, "time_embedding_type": "positional", "dropout": unet.dropout,
    }


# What UNet2DModel computes differently when these fields differ from the consistency-model value
# (absent fields take UNet2DModel's default, which is that value): our network cannot do it, so a
# folder that sets one is refused rather than run as a different model. Fields not listed (and not
# read below) do not change the computation and are ignored, as diffusers itself ignores unknown ones.
_DIFFUSERS_FIXED = {
    "_class_name": "UNet2DModel", "time_embedding_type": "positional", "flip_sin_to_cos": True, "freq_shift": 0,
    "act_fn": "silu", "norm_num_groups": 32, "norm_eps": 1e-5, "center_input_sample": False,
    "mid_block_scale_factor": 1, "class_embed_type": None, "add_attention": True, "attention_legacy_order": False,
}


def unet_from_diffusers_config(cfg: dict) -> UNetConfig:
    """Inverse of `diffusers_config` (for the consistency-model UNet2DModel layouts)."""
    if not isinstance(cfg, dict):
        raise CheckpointError(f"diffusers config.json must hold an object, got {type(cfg).__name__}")
    # Before anything else: a latent (4-channel) or learn_sigma (6-output) UNet2DModel would be read
    # as a model, listed, and fail with a tensor-shape error at every task.
    problem = rgb_problem(cfg.get("in_channels", 3), cfg.get("out_channels", 3))
    if problem:
        raise CheckpointError(f"diffusers config.json sets in_channels {cfg.get('in_channels', 3)!r} and out_channels "
                              f"{cfg.get('out_channels', 3)!r}: {problem}")
    for name, want in _DIFFUSERS_FIXED.items():
        if name in cfg and cfg[name] != want:
            raise CheckpointError(f"diffusers config.json sets {name} = {cfg[name]!r}; consistency-model UNets "
                                  f"(the only kind supported) have {want!r}")
    if cfg.get("attn_norm_num_groups") not in (None, 32):
        raise CheckpointError(f"diffusers config.json sets attn_norm_num_groups = {cfg['attn_norm_num_groups']!r}; "
                              "only 32 (or null) is supported")
    shift = cfg.get("resnet_time_scale_shift", "default")
    if shift not in ("default", "scale_shift"):
        raise CheckpointError(f"diffusers config.json sets resnet_time_scale_shift = {shift!r}; only 'default' and "
                              "'scale_shift' are supported")
    # UNet2DModel's default resampling is a convolution, which the released models do not use.
    if cfg.get("downsample_type", "conv") != "resnet" or cfg.get("upsample_type", "conv") != "resnet":
        raise CheckpointError("only diffusers UNets with resnet up/down-sampling (downsample_type and upsample_type "
                              "\"resnet\", as in the consistency models) are supported")
    try:
        chans = list(cfg["block_out_channels"])
        if not chans:
            raise CheckpointError("diffusers config.json: block_out_channels is empty")
        C = chans[0]
        if not all(isinstance(c, int) and c > 0 and c % C == 0 for c in chans):
            raise CheckpointError(f"diffusers config.json: block_out_channels {chans} must be positive multiples of "
                                  "the first (the ADM UNet widens each level by a whole factor)")
        size = int(cfg["sample_size"])
        down = list(cfg["down_block_types"])
        if len(down) != len(chans) or not all(isinstance(t, str) for t in down):
            raise CheckpointError(f"diffusers config.json: down_block_types {down!r} must name one block type "
                                  f"(a string) per entry of block_out_channels {chans!r}")
        attn_levels = [lv for lv, t in enumerate(down) if t.startswith("Attn")]
        # UNet2DModel: absent means its default of 8 channels per head; null means one head per block,
        # i.e. as wide as that block, which one head width can say only if all attention blocks agree.
        head = cfg.get("attention_head_dim", 8)
        if head is None:
            widths = {chans[lv] for lv in attn_levels} | {chans[-1]}  # the middle block always has attention
            if len(widths) != 1:
                raise CheckpointError(f"diffusers config.json: attention_head_dim null means one head per block, "
                                      f"and blocks of widths {sorted(widths)} have attention; only one head width "
                                      "is supported")
            head = widths.pop()
        return UNetConfig(
            image_size=size, in_channels=cfg.get("in_channels", 3), out_channels=cfg.get("out_channels", 3),
            model_channels=C, channel_mult=tuple(c // C for c in chans), num_res_blocks=int(cfg["layers_per_block"]),
            attention_resolutions=tuple(size // 2**lv for lv in attn_levels),
            num_head_channels=int(head), use_scale_shift_norm=shift == "scale_shift",
            num_classes=cfg.get("num_class_embeds"),
        )
    except KeyError as e:
        raise CheckpointError(f"diffusers config.json lacks field {e}") from None
    except IndexError as e:
        raise CheckpointError(f"diffusers config.json is malformed ({e})") from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"diffusers config.json has a field of the wrong type or value ({e})") from None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _repo_names(root: Path) -> list[str]:
    """Names that may say which released model a diffusers folder holds: its own, and in a
    huggingface_hub cache (`models--openai--diffusers-ct_cat256/snapshots/<hash>`) the repository's."""
    names = [root.name]
    if root.parent.name == "snapshots":
        names.append(root.parent.parent.name)
    return [n.lower() for n in names]


def _diffusers_spec(root: Path, unet: UNetConfig) -> ModelSpec:
    """Denoiser and sampler of a diffusers model. Kind and published two-step split: those of the
    released model its folder is named after (the only way to tell cd_bedroom256_l2 from _lpips, or
    an EDM teacher from a consistency model), else of a preset with the scheduler's grid size (one of
    the same network first). Noise range: the scheduler's, where it gives one."""
    sched_path = root / "scheduler" / "scheduler_config.json"
    sched = _read_json(sched_path) if sched_path.is_file() else {}
    try:
        grid = sched.get("num_train_timesteps")
        grid = None if grid is None else int(grid)
        # A name that contradicts the network or the scheduler's grid is not that released model.
        named = [spec for _, spec in presets_named_in(_repo_names(root))
                 if spec.unet.model_channels == unet.model_channels and grid in (None, spec.sampler.steps)]
        n = grid or (named[0].sampler.steps if named else 40)
        # CMStochasticIterativeScheduler's noise range; the released models all use the defaults.
        fields = {f: float(sched[f]) for f in ("sigma_min", "sigma_max", "sigma_data", "rho") if f in sched}
        same_grid = sorted((spec for spec in PRESETS.values() if spec.sampler.steps == n),
                           key=lambda spec: spec.unet.model_channels != unet.model_channels)
        base = (named or same_grid or [None])[0]
        sampler = base.sampler if base is not None else SamplerConfig(steps=n, ts=tuple(sorted({0, n // 2, n - 1})))
        denoiser = replace(named[0].denoiser if named else DenoiserConfig(), **fields)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{sched_path}: unusable scheduler settings ({e})") from None
    return ModelSpec(unet=unet, denoiser=denoiser, sampler=sampler, name=root.name)


def _read_diffusers_folder(folder: Path) -> tuple[ModelSpec, dict[str, torch.Tensor]]:
    if (folder / "unet" / "config.json").is_file():
        root, unet_dir = folder, folder / "unet"
    else:
        # The unet/ folder of a pipeline given directly: its scheduler and name are one level up.
        root = folder.parent if folder.name == "unet" and (folder.parent / "scheduler").is_dir() else folder
        unet_dir = folder
    cfg_path = unet_dir / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{folder}: a diffusers folder needs config.json (or unet/config.json)")
    try:
        unet = unet_from_diffusers_config(_read_json(cfg_path))
    except CheckpointError as e:
        raise CheckpointError(f"{folder}: {e}") from None
    # The full-precision file first, then diffusers' fp16 variant (`variant="fp16"`, what a Hub
    # download with that option leaves): the same model in half precision. safetensors before a .bin
    # of the same precision: nothing to unpickle.
    names = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
             "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.bin")
    found = next((unet_dir / n for n in names if (unet_dir / n).is_file()), None)
    if found is None:
        raise CheckpointError(f"{unet_dir}: no diffusion_pytorch_model.safetensors or .bin (or their .fp16 "
                              "variants) found")
    if found.suffix == ".safetensors":
        weights, _ = _read_safetensors(found)
    else:
        weights = _torch_load_weights_only(found)
    try:
        sd = diffusers_to_official(weights, unet)
    except CheckpointError as e:
        raise CheckpointError(f"{folder}: {e}") from None
    return _diffusers_spec(root, unet), sd


# ----------------------------------------------------------------------------------------------
# One entry point for every supported file.




def _refuse_training_checkpoint(path: Path, sd: dict[str, torch.Tensor]) -> None:
    """`cstudio train`'s resumable checkpoints (engine.training.state) hold the network, its EMA, the
    optimiser's moments and random states under `model.`, `ema.`, `optim.`, `rng.`. They are refused
    by name rather than loaded: the run's config (image size, kind) lives in the JSON next to them,
    and the run already exports the EMA weights as a model file with its spec."""
    if "input_blocks.0.0.weight" in sd or not ("ema.input_blocks.0.0.weight" in sd and
                                                 any(k.startswith("model.") for k in sd)):
        return
    run = path.parent.parent if path.parent.name == "checkpoints" else None
    where = (f"{run / 'model.safetensors'} or a file in {run / 'exports'}" if run is not None else
             "model.safetensors in its run folder, or a file in the run's exports/ folder")
    raise CheckpointError(f"{path}: this is a `cstudio train` checkpoint (network, EMA, optimiser and random "
                          f"states, for `cstudio train --resume`), not a model file; use the model its run "
                          f"exported: {where}")


# Why a "guessed" note's settings were guessed. Its parts are joined by " and " before this reason
# in brackets (app/model/catalog.py reads them that way): keep both out of the parts' own words.
_GUESS_WHY = "official files do not store these, and no released model has this layout"
_KIND_WHY = ("official files do not store the kind, and released CD, CT and EDM-teacher files of this layout "
             "differ only by name")


def _guess_parts(note: str) -> dict[str, str]:
    """A "guessed" note as {setting: its words}. Settings: image_size, num_head_channels and kind;
    words this version does not know stand for themselves (kept, never overridden)."""
    head = note.partition(" (")[0]
    parts: dict[str, str] = {}
    for part in (x.strip() for x in head.split(" and ")):
        if part:
            key = ("image_size" if part.startswith("resolution ") else
                   "num_head_channels" if part.endswith("per attention head") else
                   "kind" if part.startswith("kind ") else part)
            parts[key] = part
    return parts


def _guess_note(parts: dict[str, str]) -> dict[str, str]:
    """The "guessed" metadata of these parts, with why they are guesses (none: no note)."""
    if not parts:
        return {}
    why = "; ".join(([_GUESS_WHY] if set(parts) - {"kind"} else []) + ([_KIND_WHY] if "kind" in parts else []))
    return {"guessed": " and ".join(parts.values()) + f" ({why})"}


def guessed_settings(meta: dict[str, str]) -> list[str]:
    """Which of image_size, num_head_channels, kind a file's metadata calls guessed."""
    parts = _guess_parts(meta.get("guessed", ""))
    return [k for k in ("image_size", "num_head_channels", "kind") if k in parts]


def _official_spec(path: Path, sd: dict[str, torch.Tensor], image_size: int | None, num_head_channels: int | None,
                   kind: str | None) -> tuple[ModelSpec, dict[str, str]]:
    """The spec of a file that holds only official-key weights (an OpenAI `.pt`, or one re-saved as
    safetensors), and the "guessed" note of what neither the file nor the arguments said."""
    if any(k.startswith("down_blocks.") for k in sd):
        raise CheckpointError(f"{path}: diffusers weights without their config: import the whole folder instead")
    _refuse_training_checkpoint(path, sd)
    try:
        unet = infer_unet_config(sd, image_size=image_size, num_head_channels=num_head_channels)
    except CheckpointError as e:
        raise type(e)(f"{path}: {e}") from None  # an ImageSizeError stays one
    spec, kind_guessed = official_kind(path, unet, kind)
    parts: dict[str, str] = {}
    # Size and head width: only a released layout pins them.
    if not any(p.unet == unet for p in PRESETS.values()):
        if image_size is None:
            parts["image_size"] = f"resolution {unet.image_size} px"
        if num_head_channels is None:
            parts["num_head_channels"] = f"{unet.num_head_channels} channels per attention head"
    # The kind: a guess where released models of other kinds share the layout (ImageNet 64's CD, CT
    # and EDM teacher; LSUN's likewise), and the name said none of them.
    if kind_guessed and any(preset_kind(n, p) != "cm" and _same_layout(p.unet, unet) for n, p in PRESETS.items()):
        parts["kind"] = f"kind cm, a consistency model sampled on a {spec.sampler.steps}-point grid"
    return spec, _guess_note(parts)


def chosen_image_size(path: Path, step: int) -> int:
    """The image size the app keeps for this file (SIZES_FILE next to it), or 0: none, one kept for
    another file of that name (its byte count differs), or one the network cannot run at."""
    try:
        data = json.loads((path.parent / SIZES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return 0
    models = data.get("models") if isinstance(data, dict) else None
    entry = models.get(path.name) if isinstance(models, dict) else None
    if not isinstance(entry, dict):
        return 0
    size, nbytes = entry.get("image_size"), entry.get("bytes")
    try:
        same_file = isinstance(nbytes, int) and not isinstance(nbytes, bool) and path.stat().st_size == nbytes
    except OSError:
        return 0
    fits = isinstance(size, int) and not isinstance(size, bool) and 0 < size <= _MAX_CHOSEN_SIZE and size % step == 0
    return size if same_file and fits else 0


def _at_size(unet: UNetConfig, size: object) -> UNetConfig:
    step, levels = unet.size_step, len(unet.channel_mult)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % step:
        raise ImageSizeError(f"image size {size} does not fit this network: it must be a positive "
                             f"multiple of {step} ({levels} levels)")
    return unet.at_size(size)


def _stated_kind(spec: ModelSpec) -> str:
    if spec.denoiser.kind == "edm":
        return "edm, an EDM teacher"
    return f"cm, a consistency model on a {spec.sampler.steps}-point grid"


def _restate(path: Path, spec: ModelSpec, meta: dict[str, str], image_size: int | None,
             num_head_channels: int | None, kind: str | None) -> tuple[ModelSpec, dict[str, str]]:
    """Settings stated for a file that describes itself (a native file, a diffusers folder). Those its
    metadata calls guessed (an imported official file's) take the stated value and are guesses no
    more; an image size the app keeps for it stands in for a stated one. What the file states itself
    is not overridden: a different value is refused with what the file says."""
    parts = _guess_parts(meta.get("guessed", ""))
    unet = spec.unet
    extra: dict[str, str] = {}
    if image_size is None and "image_size" in parts:
        chosen = chosen_image_size(path, unet.size_step)
        if chosen:
            image_size = chosen
            extra["image_size_chosen"] = f"{chosen} px, the size chosen for this file in the app ({SIZES_FILE})"
    if image_size is not None:
        if "image_size" in parts:
            try:
                unet = _at_size(unet, image_size)
            except ImageSizeError as e:
                raise ImageSizeError(f"{path}: {e}") from None
            del parts["image_size"]
        elif image_size != unet.image_size:
            raise ImageSizeError(f"{path}: the image size is given as {image_size}, but this model states its own "
                                 f"({unet.image_size} px); only a size that was guessed (an official file's, as "
                                 "`cstudio info` says) can be stated")
    if num_head_channels is not None:
        if "num_head_channels" in parts:
            levels = [lv for lv in range(len(unet.channel_mult)) if 2 ** lv in unet.attention_ds]
            try:
                _check_head_width(num_head_channels, _attention_widths(unet.model_channels, unet.channel_mult, levels))
            except SettingError as e:
                raise SettingError(f"{path}: {e}") from None
            unet = replace(unet, num_head_channels=num_head_channels)
            del parts["num_head_channels"]
        elif num_head_channels != unet.num_head_channels:
            raise SettingError(f"{path}: the attention head width is given as {num_head_channels}, but this model "
                               f"states its own ({unet.num_head_channels} channels per head); only a width that "
                               "was guessed can be stated")
    spec = replace(spec, unet=unet)
    if kind is not None:
        if "kind" in parts:
            spec = replace(spec_of_kind(unet, kind, spec.name, str(path)), name=spec.name)
            del parts["kind"]
        elif kind not in KINDS:
            spec_of_kind(unet, kind, spec.name, str(path))  # raises, listing the kinds
        elif not (kind == "edm" if spec.denoiser.kind == "edm" else
                  kind == "cm" or (kind == "ct" and spec.sampler.steps != 40)):
            # cm fits every consistency model; ct one whose grid is not the distilled models' 40 points.
            raise SettingError(f"{path}: the kind is given as {kind}, but this model states its own "
                               f"({_stated_kind(spec)}); only a kind that was guessed can be stated")
    meta = {k: v for k, v in meta.items() if k != "guessed"}
    return spec, {**meta, **_guess_note(parts), **extra}


def load_model(path: str | Path, *, image_size: int | None = None, num_head_channels: int | None = None,
               kind: str | None = None) -> tuple[ModelSpec, dict[str, torch.Tensor], dict[str, str]]:
    """Read a native `.safetensors`, an official `.pt`, or a diffusers folder: (spec, official-key state_dict, metadata).

    `image_size`, `num_head_channels` (attention head width) and `kind` (see KINDS) state what an
    official file does not store; they also replace what the metadata of a converted or imported one
    calls "guessed". A file that states a setting itself refuses a different value (SettingError).
    The metadata's "guessed" note lists what is still a guess."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    if path.is_dir():
        spec, sd = _read_diffusers_folder(path)
        spec, meta = _restate(path, spec, {"source": "diffusers"}, image_size, num_head_channels, kind)
    elif path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    elif (_sniff(path) or ("safetensors" if path.suffix.lower() == ".safetensors" else "torch")) == "safetensors":
        sd, meta = _read_safetensors(path)
        if "spec" in meta:
            try:
                spec = ModelSpec.from_json(meta["spec"])
            except (ValueError, KeyError, TypeError) as e:
                raise CheckpointError(f"{path}: model spec in the metadata is invalid ({e})") from None
            check_spec(spec, str(path))  # before its fields are used to restate it
            spec, meta = _restate(path, spec, meta, image_size, num_head_channels, kind)
        else:
            spec, guessed = _official_spec(path, sd, image_size, num_head_channels, kind)
            meta = {**meta, **guessed}
    else:
        sd = _torch_load_weights_only(path)
        spec, guessed = _official_spec(path, sd, image_size, num_head_channels, kind)
        meta = {"source": "official", **guessed}
    check_spec(spec, str(path))
    check_state_dict(spec.unet, sd, str(path))
    return spec, sd, meta
