"""Resumable training checkpoints: tensors in safetensors plus a JSON sidecar, never pickle.

A checkpoint is `step-XXXXXXXX.safetensors` (model, EMA, target network, optimiser moments, RNG
states) and `step-XXXXXXXX.json` (step, phase, optimiser hyper-parameters, config, checksum). Both
are written atomically, the sidecar last, so a sidecar whose checksum matches marks a complete
checkpoint and a crash mid-write leaves the previous one usable.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save

from ..checkpoint import atomic_write_bytes

_NAME = re.compile(r"^step-(\d{8})\.json$")


def flatten(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unflatten(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Split `opt.state_dict()` into tensors (per-parameter moments) and JSON-able param groups."""
    sd = opt.state_dict()
    tensors = {}
    for idx, st in sd["state"].items():
        for name, value in st.items():
            tensors[f"{idx}.{name}"] = torch.as_tensor(value)
    return tensors, sd["param_groups"]


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in groups]
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(folder: Path, step: int, tensors: dict[str, torch.Tensor], info: dict[str, Any], keep: int) -> Path:
    """Write a checkpoint for `step` and drop all but the newest `keep`; returns the sidecar path."""
    folder.mkdir(parents=True, exist_ok=True)
    # Clone to CPU: safetensors refuses views that share storage.
    blob = save({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()})
    base = folder / f"step-{step:08d}"
    atomic_write_bytes(base.with_suffix(".safetensors"), blob)
    info = {**info, "step": step, "sha256": hashlib.sha256(blob).hexdigest(), "format": "consistency-studio-train"}
    atomic_write_bytes(base.with_suffix(".json"), json.dumps(info, indent=1, sort_keys=True).encode())
    for old in list_checkpoints(folder)[:-keep]:
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
    return base.with_suffix(".json")


def list_checkpoints(folder: Path) -> list[Path]:
    """Sidecars in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest sidecar whose weights file exists."""
    for p in reversed(list_checkpoints(folder)):
        if p.with_suffix(".safetensors").is_file():
            return p
    return None


def load_checkpoint(sidecar: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, info) of a checkpoint, verified against the sidecar's checksum."""
    info = json.loads(Path(sidecar).read_text())
    blob = Path(sidecar).with_suffix(".safetensors").read_bytes()
    if hashlib.sha256(blob).hexdigest() != info.get("sha256"):
        raise ValueError(f"{sidecar}: the weights file does not match its checksum (truncated or replaced?)")
    return load(blob), info
