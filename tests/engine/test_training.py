"""Training: config parsing, curriculum formulas, crop sampler, loss decrease, exact resume, DDP, no pickle."""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from engine.checkpoint import load_model
from engine.training.config import TrainConfig
from engine.training.data import CropSampler, fixed_crops, load_photos
from engine.training.ema import EMA
from engine.training.losses import (EDMLoss, ascending_sigmas, colour_weighted_sq, huber_c, ict_num_scales,
                                    lognormal_index_probs, pseudo_huber)
from engine.training.state import list_checkpoints
from engine.training.trainer import Trainer, train

REPO = Path(__file__).resolve().parents[2]


def make_photoset(folder: Path, n: int = 6, seed: int = 0) -> Path:
    """A tiny fabricated manifest + JPEGs: smooth colour fields with grain, two source groups."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        low = (rng.random((h // 8 + 2, w // 8 + 2, 3)) * 255).astype(np.uint8)
        img = np.asarray(Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / "images" / f"img{i}.jpg", quality=95)
        rows.append({"file": f"images/img{i}.jpg", "source_group": f"g{i % 2}", "package": "p", "path": f"img{i}.jpg",
                     "licence": "CC0-1.0", "author": "test", "split": "heldout" if i % 3 == 2 else "train",
                     "width": w, "height": h, "sha256": ""})
    with (folder / "manifest.tsv").open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photoset(tmp_path_factory.mktemp("photos"))


def tiny_config(data: Path, **overrides: object) -> TrainConfig:
    base = json.loads((REPO / "configs" / "tiny-test.json").read_text())
    base.update({"name": "tiny-test", "data": {"path": str(data)}, "log_every": 1000, "sample_every": 1000})
    base.update(overrides)
    return TrainConfig.from_dict(base)


# -- configs --------------------------------------------------------------------------------------


def test_repo_configs_load() -> None:
    names = sorted(p.name for p in (REPO / "configs").glob("*.json"))
    assert "tiny-test.json" in names and "studio32-edm-then-ict.json" in names
    for name in names:
        cfg = TrainConfig.load(REPO / "configs" / name)
        assert cfg.name == Path(name).stem
        cfg.model_spec()


def test_config_refuses_unknown_and_mistyped_keys() -> None:
    with pytest.raises(ValueError, match="unknown config key"):
        TrainConfig.from_dict({"learning_rate": 1e-4})
    with pytest.raises(ValueError, match="unknown config.ict key"):
        TrainConfig.from_dict({"ict": {"s2": 4}})
    with pytest.raises(ValueError, match="unknown UNet config field"):
        TrainConfig.from_dict({"preset": "tiny", "unet": {"width": 3}})
    with pytest.raises(ValueError, match="expected int"):
        TrainConfig.from_dict({"total_steps": "10"})
    with pytest.raises(ValueError, match="recipe"):
        TrainConfig.from_dict({"recipe": "gan"})


def test_lr_schedule_warms_up_holds_and_cools_down_per_phase() -> None:
    cfg = TrainConfig.from_dict({"preset": "tiny", "recipe": "edm_then_ict", "edm_steps": 100, "total_steps": 300,
                                 "lr": 1e-3, "tune_lr": 1e-4, "lr_warmup": 10, "lr_cooldown": 20})
    lr = [cfg.lr_at(s) for s in range(300)]
    assert lr[0] == pytest.approx(1e-4) and lr[9] == pytest.approx(1e-3)  # warm-up: (k + 1) / 10
    assert lr[50] == pytest.approx(1e-3)
    assert lr[80] == pytest.approx(1e-3) and lr[90] == pytest.approx(0.5e-3) and lr[99] == pytest.approx(0.05e-3)
    assert lr[100] == pytest.approx(1e-5)  # the tuning phase warms up again from its own lr
    assert lr[200] == pytest.approx(1e-4) and lr[290] == pytest.approx(0.5e-4) and lr[299] == pytest.approx(0.05e-4)
    assert all(a >= 0 for a in lr)
    assert cfg.lr_at(400) == 0.0  # past the end (an extended run) stays cooled down
    plain = TrainConfig.from_dict({"preset": "tiny", "recipe": "edm", "total_steps": 50, "lr": 2e-4})
    assert {plain.lr_at(s) for s in range(50)} == {2e-4}
    with pytest.raises(ValueError, match="lr_cooldown"):
        TrainConfig.from_dict({"lr_cooldown": -1})


# -- formulas -------------------------------------------------------------------------------------


def test_ict_curriculum_doubles_from_s0_to_s1() -> None:
    K = 800  # K' = floor(800 / (log2(128) + 1)) = 100
    assert [ict_num_scales(k, K) for k in (0, 99, 100, 199, 200, 600, 699, 700, 799)] == \
        [11, 11, 21, 21, 41, 641, 641, 1281, 1281]
    assert ict_num_scales(10**9, K) == 1281
    assert ict_num_scales(0, 10, s0=4, s1=32) == 5


def test_lognormal_index_probabilities() -> None:
    from engine.config import DenoiserConfig

    sig = ascending_sigmas(1281, DenoiserConfig())
    assert sig[0] == pytest.approx(0.002) and sig[-1] == pytest.approx(80.0)
    p = lognormal_index_probs(sig, -1.1, 2.0)
    assert p.shape == (1280,) and torch.all(p > 0) and float(p.sum()) == pytest.approx(1.0)
    # The mass is centred on ln(sigma) = P_mean: half of it below sigma = exp(-1.1).
    below = float(p[sig[1:] <= math.exp(-1.1)].sum())
    assert below == pytest.approx(0.5, abs=0.01)


def test_pseudo_huber() -> None:
    x = torch.zeros(2, 3, 4, 4)
    y = x.clone()
    y[1] += 1.0
    c = huber_c(x.shape)
    assert c == pytest.approx(0.00054 * math.sqrt(48))
    d = pseudo_huber(x, y, c)
    assert float(d[0]) == 0.0
    assert float(d[1]) == pytest.approx(math.sqrt(48 + c * c) - c)


def test_colour_weighted_residual() -> None:
    """Grey residuals are scaled by 3/(1+2w), chroma ones by 3w/(1+2w); w = 1 is the plain |r|^2."""
    grey = torch.ones(1, 3, 2, 2)
    chroma = torch.tensor([1.0, -1.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    for w in (1.0, 3.0, 0.5):
        assert torch.allclose(colour_weighted_sq(grey, w), torch.full((1, 1, 2, 2), 3 * 3 / (1 + 2 * w)))
        assert torch.allclose(colour_weighted_sq(chroma, w), torch.full((1, 1, 2, 2), 2 * 3 * w / (1 + 2 * w)))
    r = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(colour_weighted_sq(r, 1.0), r.pow(2).sum(1, keepdim=True))
    # Unit residuals along the opponent axes (grey and two chroma ones) keep their plain total, 3, at
    # any weight: the normalisation keeps the weighting's trace.
    opponent = torch.tensor([[1.0, 1, 1], [1, -1, 0], [1, 1, -2]])
    unit = (opponent / opponent.norm(dim=1, keepdim=True)).view(3, 3, 1, 1)
    assert float(colour_weighted_sq(unit, 4.0).sum()) == pytest.approx(3.0, rel=1e-6)


def test_edm_loss_chroma_weight() -> None:
    """With a denoiser that returns mid-grey, the weighted loss on a colour-only image is the plain one
    scaled by 3w/(1+2w)."""
    from engine.config import DenoiserConfig

    x = torch.tensor([0.5, -0.5, 0.0]).view(1, 3, 1, 1).expand(4, 3, 8, 8).contiguous()  # pure chroma

    def denoise(y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(y)

    def value(w: float) -> float:
        return float(EDMLoss(DenoiserConfig(), chroma_weight=w)(denoise, x, 0, torch.Generator().manual_seed(3)))

    assert value(3.0) == pytest.approx(value(1.0) * 9 / 7, rel=1e-5)
    with pytest.raises(ValueError, match="chroma_weight"):
        EDMLoss(DenoiserConfig(), chroma_weight=0.0)


def test_ict_teacher_shares_noise_and_dropout_masks() -> None:
    """With x = 0 and D(y, s) = dropout(y / s), student and teacher agree exactly iff z and the masks are shared."""
    from engine.config import DenoiserConfig
    from engine.training.losses import ICTLoss

    def denoise(y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.dropout(y / sigma.view(-1, 1, 1, 1), 0.5, training=True)

    loss = ICTLoss(DenoiserConfig(), total_steps=100)
    assert float(loss(denoise, torch.zeros(4, 3, 8, 8), 0, torch.Generator().manual_seed(0))) == 0.0


def test_ema_warmup_and_power() -> None:
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, decay=0.999)
    assert ema.beta(1) == pytest.approx(2 / 11) and ema.beta(10**6) == 0.999
    assert EMA(net, power=6.94).beta(1) == 0.0
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net, 10**6)
    assert torch.all(ema.module.weight < 1.0)


def test_sample_grid_runs_on_the_model_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """sample_rows keeps every tensor on the net's device (CUDA crashed at the first grid: start noise
    on the CPU, denoiser output on the GPU). The "meta" device stands in for a GPU on any machine:
    torch refuses to mix it with CPU tensors just as it refuses CUDA ones."""
    import dataclasses

    from engine import UNet, preset
    from engine.training import report

    def on_device(sampler):
        # Run the real sampler loop; meta tensors hold no values to copy back, so hand a CPU stand-in on.
        def run(*args, **kwargs):
            out = sampler(*args, **kwargs)
            ran_on.append(out.device.type)
            return torch.zeros(out.shape)
        return run

    ran_on: list[str] = []
    for name in ("sample_onestep", "sample_multistep", "sample_heun"):
        monkeypatch.setattr(report, name, on_device(getattr(report, name)))
    spec = preset("tiny")
    with torch.device("meta"):
        net = UNet(spec.unet)
    for kind, want in (("cm", ["1 step", "2 steps"]), ("edm", ["Heun 19 NFE"])):
        s = dataclasses.replace(spec, denoiser=dataclasses.replace(spec.denoiser, kind=kind))
        rows, labels = report.sample_rows(net, s, 2, seed=0, device=torch.device("meta"), dtype=torch.float32)
        assert labels == want and all(r.device.type == "cpu" and r.shape == (2, 3, 16, 16) for r in rows)
    assert ran_on == ["meta"] * 3


def test_mps_trains_in_fp32_and_saves_its_rng(monkeypatch: pytest.MonkeyPatch) -> None:
    """precision 'auto' on MPS: fp32 for training (no gradient scaler there), fp16 still for inference;
    dropout replay and checkpoints carry the MPS generator's state. No MPS hardware needed."""
    from types import SimpleNamespace

    import engine.training.losses as losses
    import engine.training.trainer as trainer_mod
    from engine.device import pick_precision
    from engine.training.trainer import compute_dtype

    mps = torch.device("mps")
    assert compute_dtype(mps, "auto") == torch.float32
    assert pick_precision(mps, "auto") == torch.float16  # inference keeps fp16

    state = {"now": torch.tensor([1], dtype=torch.uint8)}
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: state["now"].clone())
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda s: state.update(now=s.clone()))
    monkeypatch.setattr(losses, "mps_rng_available", lambda: True)
    monkeypatch.setattr(trainer_mod, "mps_rng_available", lambda: True)
    saved = losses._RNGState(mps)
    state["now"] = torch.tensor([2], dtype=torch.uint8)  # a forward pass advanced the generator
    saved.restore()
    assert state["now"].tolist() == [1]
    fake = SimpleNamespace(device=mps, sampler=SimpleNamespace(generator=torch.Generator()), generator=torch.Generator())
    assert Trainer._rng_states(fake)["mps"].tolist() == [1]


def test_train_threads_follow_flag_config_env_then_cores(photos: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`cstudio train --help`: threads from --threads, then the config, then $CSTUDIO_THREADS, then cores."""
    import engine.training.trainer as trainer_mod

    asked: list[int | None] = []
    monkeypatch.setattr(trainer_mod, "configure_threads", lambda n=None: asked.append(n) or (n or 1))
    monkeypatch.setattr(trainer_mod, "physical_cores", lambda: 7)

    def threads(flag: int | None, config: int) -> int | None:
        Trainer(tiny_config(photos, threads=config), tmp_path, device="cpu", threads=flag, log=lambda _m: None)
        return asked[-1]

    monkeypatch.setenv("CSTUDIO_THREADS", "3")
    assert (threads(5, 2), threads(None, 2), threads(None, 0)) == (5, 2, 3)
    monkeypatch.delenv("CSTUDIO_THREADS")
    assert threads(None, 0) == 7
    monkeypatch.setenv("CSTUDIO_THREADS", "many")
    with pytest.raises(ValueError, match="CSTUDIO_THREADS"):
        threads(None, 0)


# -- data -----------------------------------------------------------------------------------------


def test_crop_sampler_is_deterministic_and_in_range(photos: Path) -> None:
    cfg = TrainConfig.from_dict({"preset": "tiny"}).data
    a = CropSampler.from_folder(photos, 16, cfg, seed=3).batch(6)
    b = CropSampler.from_folder(photos, 16, cfg, seed=3).batch(6)
    c = CropSampler.from_folder(photos, 16, cfg, seed=4).batch(6)
    assert a.shape == (6, 3, 16, 16) and a.dtype == torch.float32
    assert float(a.min()) >= -1 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    held = load_photos(photos, "heldout")
    assert {p.file for p in held}.isdisjoint(p.file for p in load_photos(photos, "train"))
    crops = fixed_crops(held, 16, 5)
    assert crops.shape == (5, 16, 16, 3) and np.array_equal(crops, fixed_crops(held, 16, 5))


# -- training -------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", ["edm", "ict"])
def test_steps_on_a_fixed_batch_lower_the_loss(photos: Path, tmp_path: Path, recipe: str) -> None:
    cfg = tiny_config(photos, recipe=recipe, edm_steps=0, total_steps=1000, dropout=0.0, lr=1e-3, optimizer="adam")
    trainer = Trainer(cfg, tmp_path, device="cpu", threads=1)
    trainer.enter_phase(0, switching=False)
    x = trainer.sampler.batch(4)
    kind = "edm" if recipe == "edm" else "cm"

    def fixed_loss() -> float:
        with torch.no_grad():
            return float(trainer.loss(trainer.students[kind], x, 0, torch.Generator().manual_seed(7)))

    before = fixed_loss()
    for _ in range(30):
        trainer.step = 0  # keep the iCT discretisation fixed
        trainer.train_step(x)
    # iCT chases a moving target (its own stop-gradient output), so it falls more slowly than EDM.
    assert fixed_loss() < (0.8 if recipe == "edm" else 0.98) * before


def _final_state(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(list_checkpoints(run / "checkpoints")[-1].with_suffix(".safetensors")))


@pytest.mark.parametrize(("recipe", "stop"), [("edm_then_ict", 3), ("edm_then_ict", 5), ("edm_then_cd", 5)])
def test_resume_reproduces_an_uninterrupted_run(photos: Path, tmp_path: Path, recipe: str, stop: int) -> None:
    cfg = tiny_config(photos, recipe=recipe, edm_steps=3, total_steps=7, checkpoint_every=100, dropout=0.1)
    train(cfg, out=tmp_path / "a", device="cpu", threads=1, log=lambda _m: None)
    train(cfg, out=tmp_path / "b", steps=stop, device="cpu", threads=1, log=lambda _m: None)
    train(cfg, out=tmp_path / "b", resume=True, device="cpu", threads=1, log=lambda _m: None)
    a, b = _final_state(tmp_path / "a"), _final_state(tmp_path / "b")
    assert set(a) == set(b)
    assert any(k.startswith("optim.") for k in a) and any(k.startswith("rng.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = list(csv.DictReader((tmp_path / "b" / "log.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == sorted({stop, 7})


def test_run_outputs_and_no_pickle(photos: Path, tmp_path: Path) -> None:
    cfg = tiny_config(photos, log_every=2, sample_every=4, checkpoint_every=4)
    train(cfg, out=tmp_path, device="cpu", threads=1, log=lambda _m: None)
    for name in ("log.csv", "loss.png", "samples/step-00000004.png", "samples/step-00000008.png", "model.safetensors"):
        assert (tmp_path / name).is_file(), name
    spec, sd, meta = load_model(tmp_path / "model.safetensors")
    assert spec.denoiser.kind == "cm" and meta["train_step"] == "8" and meta["recipe"] == "edm_then_ict"
    assert all(v.dtype == torch.float16 for v in sd.values())
    edm_spec, _, _ = load_model(tmp_path / "exports" / "tiny-test-step-00000004.safetensors")
    assert edm_spec.denoiser.kind == "edm"  # exported during the EDM phase
    for f in tmp_path.rglob("*"):
        if f.is_file():
            head = f.read_bytes()[:2]
            # Pickle streams start with PROTO (0x80); torch.save archives are zip files ("PK").
            assert head[:1] != b"\x80" and head != b"PK", f
    for side in (tmp_path / "checkpoints").glob("*.json"):
        json.loads(side.read_text())
        load_file(str(side.with_suffix(".safetensors")))


def test_init_continues_from_an_exported_model(photos: Path, tmp_path: Path) -> None:
    cfg = tiny_config(photos)
    train(cfg, out=tmp_path / "a", steps=5, device="cpu", threads=1, log=lambda _m: None)
    t = train(cfg, out=tmp_path / "b", init=tmp_path / "a" / "model.safetensors", device="cpu", threads=1,
              log=lambda _m: None)
    assert t.step == cfg.total_steps
    rows = list(csv.DictReader((tmp_path / "b" / "log.csv").read_text().splitlines()))
    assert int(rows[0]["step"]) > 5 and rows[0]["phase"] == "ict"


def test_crop_workers_feed_training(photos: Path, tmp_path: Path) -> None:
    """With data.workers, batches come from separate processes: valid, distinct, seeded; a run trains on them."""
    from engine.training.config import DataConfig
    from engine.training.data import parallel_batches

    def first(seed: int) -> list[torch.Tensor]:
        stream = parallel_batches(photos, 16, DataConfig(path=str(photos)), 4, workers=2, seed=seed)
        return [next(stream) for _ in range(4)]

    a, b = first(5), first(5)
    assert all(x.shape == (4, 3, 16, 16) and x.dtype == torch.float32 and -1 <= float(x.min()) <= float(x.max()) <= 1
               for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b))  # same seed, same stream
    assert not torch.equal(a[0], a[1])  # the two workers draw different crops
    assert not torch.equal(a[0], first(6)[0])
    with pytest.raises(ValueError, match="workers"):
        parallel_batches(photos, 16, DataConfig(path=str(photos)), 4, workers=0, seed=0)
    cfg = TrainConfig.from_dict({**tiny_config(photos, checkpoint_every=100).to_dict(),
                                 "data": {"path": str(photos), "workers": 2}})
    t = train(cfg, out=tmp_path, steps=3, device="cpu", threads=1, log=lambda _m: None)
    assert t.step == 3 and (tmp_path / "model.safetensors").is_file()


def test_gpu_burst_script_dry_run(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/gpu_train_burst.py on the CPU: sizes the run to the time given, trains it, brings back the
    model, then hands it to the evaluation (recorded here: `cstudio eval` has its own tests)."""
    import importlib.util

    import engine.eval.cli

    evals: list[object] = []
    monkeypatch.setattr(engine.eval.cli, "run_eval", evals.append)

    spec = importlib.util.spec_from_file_location("gpu_train_burst", REPO / "bench" / "gpu_train_burst.py")
    burst = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(burst)
    config = tmp_path / "burst.json"
    config.write_text(json.dumps({"preset": "tiny", "recipe": "edm", "total_steps": 10**6, "batch_size": 4,
                                  "precision": "fp32", "threads": 1, "log_every": 5, "sample_every": 10,
                                  "checkpoint_every": 10, "data": {"path": str(photos), "workers": 1}}))
    out = tmp_path / "out"
    rc = burst.main(["--device", "cpu", "--config", str(config), "--init", "", "--minutes", "0.03",
                     "--rate-seconds", "0.3", "--run", str(tmp_path / "run"), "--out", str(out), "--eval", "2"])
    summary = json.loads((out / "summary.json").read_text())
    assert rc == 0 and summary["steps"] == summary["planned"] >= 10
    planned = json.loads((out / "config.json").read_text())
    assert planned["total_steps"] == summary["planned"] and planned["lr_cooldown"] == int(0.3 * summary["planned"])
    spec_, _, meta = load_model(out / "model.safetensors")
    assert spec_.denoiser.kind == "edm" and meta["train_step"] == str(summary["steps"])
    assert (out / "log.csv").is_file() and not (out / "checkpoints").exists()
    (args,) = evals
    assert (args.model, args.n, args.device, args.out) == (str(out / "model.safetensors"), 2, "cpu", str(out / "eval"))
    # `cstudio eval`'s default batch: its noise is seeded per batch, so only that matches the model card.
    assert args.batch == 64


# -- DDP ------------------------------------------------------------------------------------------


def _ddp_worker(rank: int, port: int, data: str, out: str) -> None:
    warnings.simplefilter("error")  # the parent's -W error does not reach spawned processes
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2")
    cfg = tiny_config(Path(data), recipe="edm_then_ict", edm_steps=2, total_steps=4, checkpoint_every=100)
    trainer = train(cfg, out=Path(out) / "run", device="cpu", threads=1, log=lambda _m: None)
    state = {f"net.{k}": v.contiguous() for k, v in trainer.net.state_dict().items()}
    state["data_rng"] = trainer.sampler.generator.get_state()
    save_file(state, str(Path(out) / f"rank{rank}.safetensors"))


def test_ddp_two_cpu_processes_stay_in_sync(photos: Path, tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ddp_worker, args=(port, str(photos), str(tmp_path)), nprocs=2, start_method="spawn")
    r0, r1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    for key in r0:
        if key.startswith("net."):
            assert torch.equal(r0[key], r1[key]), key
    assert not torch.equal(r0["data_rng"], r1["data_rng"])  # each rank drew its own crops
    ckpt = _final_state(tmp_path / "run")
    assert {"rng.data.0", "rng.data.1"} <= set(ckpt)
    assert torch.equal(ckpt["model.out.2.weight"], r0["net.out.2.weight"])
