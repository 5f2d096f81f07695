"""The training loop: phases (EDM pre-training, iCT or CD), EMA, logs, samples, checkpoints, exports.

One `Trainer` per process; under `torchrun` the network is wrapped in DDP (gloo on CPU, NCCL on
CUDA), each rank draws its own crops and noise, and rank 0 alone writes files. Everything random
lives in seeded generators whose states go into the checkpoint. With the in-process crop sampler
(`data.workers` = 0) a resumed run continues exactly as an uninterrupted one would. With crop
worker processes (`data.workers` > 0) their stream is not checkpointed: each session re-seeds it
from (rank, the step it starts at), so a resumed run sees other crops than an uninterrupted one
(same distribution; noise, dropout, weights and optimiser still resume exactly). A resume with
another process count re-seeds every stream.

For `edm_then_*` recipes the same UNet first learns the EDM denoiser, then the consistency
denoiser wraps it (their preconditionings differ only by sigma_min).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import platform
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import load_model, save_model
from ..denoiser import Denoiser
from ..device import configure_threads, env_threads, physical_cores, pick_device, pick_precision
from ..grow import grow_state_dict
from ..unet import UNet, count_parameters
from . import distributed as D
from .config import TrainConfig
from .data import CropSampler, fixed_crops, parallel_batches
from .ema import EMA
from .losses import CDLoss, EDMLoss, ICTLoss, mps_rng_available
from .report import CSVLog, plot_loss, sample_rows, save_grid
from .state import (flatten, latest_checkpoint, list_checkpoints, load_checkpoint, load_optimizer_state,
                    optimizer_state, save_checkpoint, unflatten)

Log = Callable[[str], None]


def seed_for(seed: int, purpose: int, rank: int) -> int:
    """Distinct, reproducible seeds per (purpose, rank): init, dropout, loss noise, crops."""
    return (seed * 1_000_003 + purpose * 7_919 + rank * 104_729) % (2**63)


def autocast_works(device: torch.device, dtype: torch.dtype) -> bool:
    """Cheap probe: a tiny conv forward/backward under autocast (some CPU builds lack bf16 kernels)."""
    try:
        conv = torch.nn.Conv2d(4, 4, 3, padding=1).to(device)
        with torch.autocast(device.type, dtype=dtype):
            conv(torch.randn(1, 4, 8, 8, device=device)).float().sum().backward()
        return True
    except (RuntimeError, TypeError):
        return False


def compute_dtype(device: torch.device, precision: str) -> torch.dtype:
    """The training compute dtype for `precision` on `device` ('auto' as `pick_precision`, except on MPS).

    On Apple MPS, 'auto' trains in fp32: `pick_precision` picks fp16 there (right for inference),
    but fp16 training needs a gradient scaler, and this loop has one on CUDA only (small
    gradients would flush to zero); bf16 autocast on MPS depends on the macOS version. An
    explicit 'fp16' or 'bf16' is still honoured.
    """
    if device.type == "mps" and precision == "auto":
        return torch.float32
    dtype = pick_precision(device, precision)
    return dtype if dtype == torch.float32 or autocast_works(device, dtype) else torch.float32


class Trainer:
    """State of one training process; see `train()` for the usual entry point.

    A given `sampler` (tests, benchmarks) is re-seeded from the config like the default one.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, *, device: str = "auto", threads: int | None = None,
                 sampler: CropSampler | None = None, log: Log = print) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        dev = pick_device(device)
        self.world = w = D.init_world(dev.type)
        if dev.type == "cuda":
            dev = torch.device("cuda", w.local_rank)
            torch.cuda.set_device(dev)
        self.device = dev
        if dev.type == "cpu":
            # --threads, then the config, then $CSTUDIO_THREADS, then the physical cores shared
            # among the ranks on this machine (as `cstudio train --help` and TrainConfig.threads say).
            n = threads or cfg.threads or env_threads() or max(1, physical_cores() // w.local_size)
            self.threads = configure_threads(n)
        self.dtype = compute_dtype(dev, cfg.precision)
        self.log: Log = log if w.is_main else (lambda _msg: None)
        if cfg.batch_size % w.size:
            raise ValueError(f"batch_size {cfg.batch_size} does not split over {w.size} processes")
        self.local_batch = cfg.batch_size // w.size
        self.res = cfg.unet_config().image_size

        # Same init on every rank (DDP also broadcasts rank 0's weights), then per-rank dropout masks.
        torch.manual_seed(cfg.seed)
        self.net = UNet(cfg.unet_config()).to(dev)
        if cfg.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
            # 1x1 kernels have the same memory either way; standard strides match their gradients',
            # which DDP's gradient buckets insist on.
            for p in self.net.parameters():
                if p.ndim == 4 and p.shape[-2:] == (1, 1):
                    p.data = p.data.clone(memory_format=torch.contiguous_format)
        self.model = (DistributedDataParallel(self.net, device_ids=[dev.index] if dev.type == "cuda" else None,
                                              gradient_as_bucket_view=True) if w.size > 1 else self.net)
        torch.manual_seed(seed_for(cfg.seed, 1, w.rank))
        self.ema = EMA(self.net, cfg.ema_decay, cfg.ema_power)
        self.generator = torch.Generator(device=dev).manual_seed(seed_for(cfg.seed, 2, w.rank))
        self.sampler = sampler or CropSampler.from_folder(cfg.data.path, self.res, cfg.data, seed=seed_for(cfg.seed, 3, w.rank))
        if sampler is not None:
            self.sampler.generator.manual_seed(seed_for(cfg.seed, 3, w.rank))
        den = cfg.denoiser
        # Eager on purpose: torch.compile (inductor, torch 2.13) took 1.44 s per studio32 step at
        # batch 32 in bf16 on 2 CPU cores against 1.35 s eager, after 110 s of compiling.
        self.students = {"cm": Denoiser(self.model, dataclasses.replace(den, kind="cm")),
                         "edm": Denoiser(self.model, dataclasses.replace(den, kind="edm"))}
        self.phases = cfg.phases()
        if cfg.recipe.endswith("cd") and cfg.cd.teacher and not Path(cfg.cd.teacher).exists():
            # edm_then_cd loads it only when the EDM phase ends: a typo must not cost that phase.
            raise FileNotFoundError(f"cd.teacher {cfg.cd.teacher}: no such file or folder")
        self.phase_index = -1
        self.loss: ICTLoss | CDLoss | EDMLoss | None = None
        self.opt: torch.optim.Optimizer | None = None
        self.teacher_net: UNet | None = None  # the in-run EDM teacher of edm_then_cd
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 and dev.type == "cuda" else None
        self.step = 0
        self.elapsed = 0.0  # training wall seconds over all sessions
        self._stop = False
        # The signal that stopped the run (SIGINT, SIGTERM), None otherwise: `cstudio train` exits
        # 128 + it, as an interrupted command does, after the clean stop and its checkpoint.
        self.stopped_by: int | None = None
        self._fresh = True  # neither resumed nor initialised from a file

    # -- phases ------------------------------------------------------------------------------------

    def phase_at(self, step: int) -> int:
        return max(i for i, (_, start, _) in enumerate(self.phases) if start <= step)

    def enter_phase(self, index: int, *, switching: bool) -> None:
        """Build the loss and a fresh optimiser for phase `index`; at a switch, continue from the EMA."""
        name, start, end = self.phases[index]
        cfg = self.cfg
        if switching:
            # The averaged pre-trained denoiser is the better starting point (and the CD teacher).
            self.net.load_state_dict(self.ema.state_dict())
            self.ema.reset(self.net)
        den = cfg.denoiser
        if name == "edm":
            self.loss = EDMLoss(den, p_mean=cfg.edm.p_mean, p_std=cfg.edm.p_std, chroma_weight=cfg.edm.chroma_weight)
        elif name == "ict":
            i = cfg.ict
            self.loss = ICTLoss(den, end - start, s0=i.s0, s1=i.s1, p_mean=i.p_mean, p_std=i.p_std, c=i.huber_c)
        else:
            self.loss = CDLoss(self._teacher(switching), self.net, den, steps=cfg.cd.steps,
                               target_decay=cfg.cd.target_decay, distance=cfg.cd.distance)
        # A new optimiser per phase: the moments of the EDM loss do not fit the consistency loss.
        opt_cls = torch.optim.RAdam if cfg.optimizer == "radam" else torch.optim.Adam
        self.opt = opt_cls(self.net.parameters(), lr=cfg.phase_lr(index), betas=cfg.betas)
        self.phase_index = index
        self.log(f"phase {index + 1}/{len(self.phases)}: {name} for steps {start}..{end}")

    def _teacher(self, switching: bool) -> Denoiser:
        """The frozen EDM teacher for CD: a model file, or the net this run pre-trained."""
        edm = dataclasses.replace(self.cfg.denoiser, kind="edm")
        if self.cfg.cd.teacher:
            spec, sd, _ = load_model(self.cfg.cd.teacher)
            if spec.denoiser.kind != "edm":
                raise ValueError(f"{self.cfg.cd.teacher}: a CD teacher must be an EDM model (kind 'edm'), not {spec.denoiser.kind!r}")
            teacher = UNet(spec.unet)
            teacher.load_state_dict(sd)
            if self._fresh and self.step == 0 and spec.unet == dataclasses.replace(self.cfg.unet_config(), dropout=0.0):
                # CM paper: the student starts as a copy of the teacher when the architectures match.
                self.net.load_state_dict(sd)
                self.ema.reset(self.net)
            self.teacher_net = None
        elif self.teacher_net is None:
            if not switching:
                raise ValueError("consistency distillation needs a teacher: set cd.teacher or resume from a checkpoint")
            self.teacher_net = copy.deepcopy(self.net)
            teacher = self.teacher_net
        else:
            teacher = self.teacher_net
        teacher = teacher.to(self.device).eval().requires_grad_(False)
        return Denoiser(teacher, edm)

    # -- one update --------------------------------------------------------------------------------

    def train_step(self, x: torch.Tensor) -> torch.Tensor:
        """One optimiser update on the local batch x: (B, 3, R, R) in [-1, 1]; returns the loss (detached)."""
        assert self.loss is not None and self.opt is not None
        cfg = self.cfg
        name, start, _ = self.phases[self.phase_index]
        k = self.step - start
        lr = cfg.lr_at(self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        x = x.to(self.device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        denoise = self.students["edm" if name == "edm" else "cm"]
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            loss = self.loss(denoise, x, k, self.generator)
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.opt)
        else:
            loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.step += 1
        self.ema.update(self.net, k + 1)
        if isinstance(self.loss, CDLoss):
            self.loss.update_target(self.net)
        return loss.detach()

    def num_scales(self) -> int:
        assert self.loss is not None
        return self.loss.num_scales(self.step - self.phases[self.phase_index][1])

    # -- the loop ----------------------------------------------------------------------------------

    def run(self, max_steps: int | None = None, minutes: float | None = None, csv_log: CSVLog | None = None) -> int:
        """Train until total_steps, `max_steps` more steps, `minutes` of wall time, or SIGINT/SIGTERM."""
        cfg = self.cfg
        stop_at = cfg.total_steps if max_steps is None else min(cfg.total_steps, self.step + max_steps)
        deadline = time.monotonic() + 60 * minutes if minutes is not None else None
        previous = self._install_signal_handlers()
        try:
            return self._loop(stop_at, deadline, csv_log)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _loop(self, stop_at: int, deadline: float | None, csv_log: CSVLog | None) -> int:
        cfg = self.cfg
        self.net.train()
        batches = self._batches()
        t_last, steps_since, loss_sum = time.monotonic(), 0, torch.zeros((), device=self.device)
        t_prev = t_last
        while self.step < stop_at:
            index = self.phase_at(self.step)
            if index != self.phase_index:
                self.enter_phase(index, switching=self.phase_index >= 0)
            loss_sum += self.train_step(next(batches)).float()
            steps_since += 1
            now = time.monotonic()
            self.elapsed += now - t_prev
            t_prev = now
            stop = D.any_rank(self._stop or (deadline is not None and now > deadline), self.world, self.device)
            if self.step % cfg.log_every == 0 or self.step == stop_at or stop:
                loss = D.mean(float(loss_sum) / steps_since, self.world, self.device)
                rate = steps_since * cfg.batch_size / max(now - t_last, 1e-9)
                self._log_row(loss, rate, csv_log)
                t_last, steps_since, loss_sum = time.monotonic(), 0, torch.zeros((), device=self.device)
            if self.step % cfg.sample_every == 0:
                self.sample_grid()
            if self.step % cfg.checkpoint_every == 0 or self.step == stop_at or stop:
                self.save()
            if stop:
                timed_out = deadline is not None and now > deadline and self.stopped_by is None
                why = "time limit" if timed_out else "signal"  # here or on another rank
                self.log(f"stopping at step {self.step} ({why}); resume with --resume")
                break
        return self.step

    def _batches(self) -> Iterator[torch.Tensor]:
        """The local batches: from `self.sampler` (exactly resumable), or from `cfg.data.workers`
        processes whose streams are seeded by the rank and the step this session starts at."""
        workers = self.cfg.data.workers
        if not workers:
            return self.sampler.batches(self.local_batch)
        seed = seed_for(self.cfg.seed, 4, self.world.rank) + 7919 * self.step
        return parallel_batches(self.cfg.data.path, self.res, self.cfg.data, self.local_batch, workers=workers,
                                seed=seed, pin_memory=self.device.type == "cuda")

    def _install_signal_handlers(self) -> dict[int, object]:
        """Turn SIGINT/SIGTERM into a clean stop with a checkpoint; returns the handlers to put back."""
        def handler(signum: int, _frame: object) -> None:
            self._stop = True
            self.stopped_by = signum

        previous = {}
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread (e.g. a test runner's worker): no handlers
            pass
        return previous

    def _log_row(self, loss: float, rate: float, csv_log: CSVLog | None) -> None:
        name = self.phases[self.phase_index][0]
        assert self.opt is not None
        lr = self.opt.param_groups[0]["lr"]
        self.log(f"step {self.step:>7} {name:>4} loss {loss:.5g} lr {lr:.3g} N {self.num_scales()} "
                 f"{rate:.1f} img/s {self.elapsed / 60:.1f} min")
        if csv_log is not None and self.world.is_main:
            csv_log.append(step=self.step, phase=name, loss=f"{loss:.6g}", lr=f"{lr:.6g}", N=self.num_scales(),
                           seconds=f"{self.elapsed:.1f}", imgs_per_s=f"{rate:.2f}")
            plot_loss(csv_log.read(), self.run_dir / "loss.png")

    # -- samples and exports -----------------------------------------------------------------------

    def sample_grid(self, n: int = 8) -> Path | None:
        """Fixed-noise samples from the EMA weights (rank 0), next to fixed training crops."""
        if not self.world.is_main:
            return None
        spec = self.cfg.model_spec("edm" if self.phases[self.phase_index][0] == "edm" else "cm")
        rows, labels = sample_rows(self.ema.module, spec, n, seed=self.cfg.seed, device=self.device, dtype=self.dtype)
        real = torch.from_numpy(fixed_crops(self.sampler.photos, self.res, n, seed=self.cfg.seed)).permute(0, 3, 1, 2)
        path = self.run_dir / "samples" / f"step-{self.step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_grid(rows + [real / 127.5 - 1], labels + ["train crops"], path, scale=max(1, 64 // self.res))
        return path

    def export(self) -> Path:
        """The EMA weights as a native model file (fp16 if configured), plus `<run>/model.safetensors`."""
        cfg = self.cfg
        name = self.phases[self.phase_index][0]
        spec = self.cfg.model_spec("edm" if name == "edm" else "cm")
        meta = {"train_step": str(self.step), "train_config": cfg.name, "recipe": cfg.recipe, "phase": name,
                "images_seen": str(self.step * cfg.batch_size), "wall_seconds": f"{self.elapsed:.0f}",
                "hardware": self._hardware(), "parameters": str(count_parameters(self.net)),
                "train_config_json": json.dumps(cfg.to_dict(), sort_keys=True)}
        dtype = torch.float16 if cfg.export_fp16 else None
        folder = self.run_dir / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        path = save_model(folder / f"{cfg.name or 'model'}-step-{self.step:08d}.safetensors", spec,
                          self.ema.state_dict(), dtype=dtype, metadata=meta)
        save_model(self.run_dir / "model.safetensors", spec, self.ema.state_dict(), dtype=dtype, metadata=meta)
        for old in sorted(folder.glob("*-step-*.safetensors"))[:-cfg.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path

    def _hardware(self) -> str:
        if self.device.type == "cuda":
            what = torch.cuda.get_device_name(self.device)
        elif self.device.type == "mps":
            what = f"Apple MPS ({platform.machine()})"
        else:
            what = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
        return f"{self.world.size} x {what}, {str(self.dtype).removeprefix('torch.')}"

    # -- checkpoints -------------------------------------------------------------------------------

    def _rng_states(self) -> dict[str, torch.Tensor]:
        states = {"data": self.sampler.generator.get_state(), "noise": self.generator.get_state(),
                  "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        elif self.device.type == "mps" and mps_rng_available():
            # Dropout on MPS draws from the MPS default generator, not the CPU one.
            states["mps"] = torch.mps.get_rng_state()
        return states

    def save(self) -> None:
        """Write a resumable checkpoint and an export (rank 0); every rank contributes its RNG states."""
        assert self.opt is not None
        tensors = {**flatten("model", self.net.state_dict()), **flatten("ema", self.ema.state_dict())}
        if isinstance(self.loss, CDLoss):
            tensors.update(flatten("target", self.loss.target_net.state_dict()))
        if self.teacher_net is not None:
            tensors.update(flatten("teacher", self.teacher_net.state_dict()))
        opt_tensors, groups = optimizer_state(self.opt)
        tensors.update(flatten("optim", opt_tensors))
        for key, state in self._rng_states().items():
            for rank, s in enumerate(D.gather_bytes(state, self.world, self.device)):
                tensors[f"rng.{key}.{rank}"] = s
        if self.world.is_main:
            info = {"phase_index": self.phase_index, "phase": self.phases[self.phase_index][0], "param_groups": groups,
                    "elapsed": self.elapsed, "world_size": self.world.size, "config": self.cfg.to_dict(),
                    "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                    "torch": torch.__version__}
            save_checkpoint(self.run_dir / "checkpoints", self.step, tensors, info, self.cfg.keep_checkpoints)
            self.export()
        D.barrier(self.world)

    def restore(self, sidecar: Path) -> None:
        """Continue from a checkpoint of this run: weights, EMA, optimiser, step, RNG streams."""
        tensors, info = load_checkpoint(sidecar)
        saved = TrainConfig.from_dict(info["config"])
        if saved.model_spec() != self.cfg.model_spec() or [p[:2] for p in saved.phases()] != [p[:2] for p in self.phases]:
            raise ValueError(f"{sidecar}: the checkpoint's network or recipe differs from this config; "
                             "start a new run (--out) or use --init with the exported model")
        if saved.total_steps != self.cfg.total_steps:
            # Allowed so a run can be extended; the last phase's schedules (iCT curriculum) stretch with it.
            self.log(f"total_steps changed from {saved.total_steps} to {self.cfg.total_steps}: schedules rescaled")
        self._fresh = False
        self.step, self.elapsed = int(info["step"]), float(info["elapsed"])
        self.net.load_state_dict(unflatten("model", tensors))
        self.ema.load_state_dict(unflatten("ema", tensors))
        teacher = unflatten("teacher", tensors)
        if teacher:
            self.teacher_net = UNet(self.cfg.unet_config()).to(self.device)
            self.teacher_net.load_state_dict(teacher)
        self.enter_phase(int(info["phase_index"]), switching=False)
        assert self.opt is not None
        load_optimizer_state(self.opt, unflatten("optim", tensors), info["param_groups"])
        # The saved param groups carry the hyper-parameters the run started with; the config is what
        # the user asked for now (lr is set every step from it; betas would otherwise stay the old ones).
        for group in self.opt.param_groups:
            if tuple(group["betas"]) != self.cfg.betas:
                self.log(f"betas changed from {tuple(group['betas'])} to {self.cfg.betas}")
                group["betas"] = self.cfg.betas
        if isinstance(self.loss, CDLoss):
            self.loss.target_net.load_state_dict(unflatten("target", tensors))
        if self.scaler is not None and info.get("scaler"):
            self.scaler.load_state_dict(info["scaler"])
        rank = self.world.rank
        if int(info["world_size"]) == self.world.size:
            self.sampler.generator.set_state(tensors[f"rng.data.{rank}"])
            self.generator.set_state(tensors[f"rng.noise.{rank}"])
            torch.set_rng_state(tensors[f"rng.torch.{rank}"])
            if self.device.type == "cuda" and f"rng.cuda.{rank}" in tensors:
                torch.cuda.set_rng_state(tensors[f"rng.cuda.{rank}"], self.device)
            if self.device.type == "mps" and f"rng.mps.{rank}" in tensors and mps_rng_available():
                torch.mps.set_rng_state(tensors[f"rng.mps.{rank}"])
        else:
            # Another process count: streams cannot continue; re-seed them from (seed, step, rank).
            self.log(f"checkpoint was written by {info['world_size']} process(es), now {self.world.size}: re-seeding RNGs")
            base = self.cfg.seed + self.step
            self.sampler.generator.manual_seed(seed_for(base, 3, rank))
            self.generator.manual_seed(seed_for(base, 2, rank))
            torch.manual_seed(seed_for(base, 1, rank))
        self.log(f"resumed {sidecar} at step {self.step}")

    def init_from(self, path: str | Path, step: int | None = None) -> None:
        """Start from a model file's weights (net and EMA); continue its step count if it came from this config."""
        spec, sd, meta = load_model(path)
        want = dataclasses.replace(self.cfg.unet_config(), dropout=0.0)
        grown = False
        if spec.unet != want:
            # A wider config: start from the file's function (Net2WiderNet) instead of from scratch.
            try:
                sd, worst = grow_state_dict(sd, spec.unet, want, seed=self.cfg.seed)
            except ValueError as e:
                raise ValueError(f"{path}: its network ({spec.unet}) differs from this config's ({want}) "
                                 f"and cannot be grown into it: {e}") from None
            self.log(f"grew {path} from channel_mult {spec.unet.channel_mult} to {want.channel_mult}: "
                     f"output changed by at most {worst:.1%} of its RMS")
            grown = True
        self._fresh = False
        self.net.load_state_dict(sd)
        self.ema.reset(self.net)
        if step is None:
            same_run = meta.get("train_config") == self.cfg.name and not grown
            step = int(meta.get("train_step", "0")) if same_run else 0
        self.step = step
        self.log(f"initialised from {path} at step {step}")


def train(cfg: TrainConfig, *, out: str | Path | None = None, resume: bool = False, init: str | Path | None = None,
          init_step: int | None = None, steps: int | None = None, minutes: float | None = None,
          threads: int | None = None, device: str = "auto", log: Log = print) -> Trainer:
    """Run (or continue) training in `out` (default runs/<name>/); returns the finished Trainer."""
    run_dir = Path(out) if out else Path("runs") / (cfg.name or "run")
    # Before anything is made: 0 steps would write config.json and log.csv and train nothing, and
    # 0 (or nan) minutes would mean no limit at all.
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise ValueError(f"--minutes must be a positive number, got {minutes:g}")
    if init_step is not None and init is None:
        raise ValueError("--init-step counts the steps of an --init model: give --init too")
    if init is not None and resume and latest_checkpoint(run_dir / "checkpoints") is not None:
        # Both name where the weights come from; silently preferring one would train the wrong model.
        raise ValueError(f"{run_dir} has checkpoints to --resume from: drop --init, or choose another --out to start "
                         "from the --init model")
    trainer = Trainer(cfg, run_dir, device=device, threads=threads, log=log)
    try:
        latest = latest_checkpoint(run_dir / "checkpoints")
        if resume and latest is not None:
            trainer.restore(latest)
        elif list_checkpoints(run_dir / "checkpoints") and not resume:
            raise FileExistsError(f"{run_dir} already holds checkpoints: pass --resume, or choose another --out")
        elif init is not None:
            trainer.init_from(init, init_step)
            if trainer.step >= cfg.total_steps:
                raise ValueError(f"{init} is at step {trainer.step}, the config ends at total_steps {cfg.total_steps}: "
                                 "raise total_steps to train it further")
        elif resume:
            log(f"{run_dir}: no checkpoint yet, starting fresh")
        csv_log = None
        if trainer.world.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1) + "\n")
            csv_log = CSVLog(run_dir / "log.csv", resume_step=trainer.step if not trainer._fresh else None)
            log(f"{cfg.name}: {count_parameters(trainer.net) / 1e6:.2f} M parameters, {cfg.recipe}, batch "
                f"{cfg.batch_size} on {trainer.world.size} x {trainer.device}, {str(trainer.dtype).removeprefix('torch.')}"
                + (f", {trainer.threads} threads" if trainer.device.type == "cpu" else "")
                + f", {len(trainer.sampler.photos)} training photos")
        trainer.run(steps, minutes, csv_log)
    finally:
        D.shutdown()
    return trainer
