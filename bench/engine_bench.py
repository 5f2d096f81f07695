"""One-step latency of the engine per preset, precision and batch, against the machine's conv peak.

Prints, for each preset with random weights: GFLOP per forward (torch's FlopCounterMode), seconds
per one-step sample (median of --repeat runs after a warm-up), achieved GFLOP/s, and the fraction of
the 3x3-convolution peak measured in the same run. Also the bf16-vs-fp32 deviation on the same
weights and noise, and, when `diffusers` is installed, the ratio against its UNet2DModel.

    python bench/engine_bench.py                       # all released layouts + our small ones
    python bench/engine_bench.py --presets cd_imagenet64_l2 --batches 1 --precisions bf16
    python bench/engine_bench.py --device cuda --precisions fp32 fp16 bf16 --batches 1 16
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine import Model, preset
from engine.device import configure_threads, cpu_has_bf16, exact_fp32, pick_device, synchronize


DEVICE = torch.device("cpu")


def timed(fn, repeat: int) -> float:
    fn()  # warm-up: oneDNN / cuDNN pick kernels and cache reorders on the first call
    synchronize(DEVICE)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        synchronize(DEVICE)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def conv_peak(dtype: torch.dtype, repeat: int = 5) -> float:
    """GFLOP/s of a large 3x3 convolution, the UNet's dominant op, in the given dtype."""
    n = 1 if DEVICE.type == "cpu" else 32  # one image keeps a CPU busy; a GPU needs a batch
    x = torch.randn(n, 256, 64, 64, device=DEVICE).to(dtype=dtype, memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(DEVICE, dtype=dtype, memory_format=torch.channels_last)
    flops = 2 * 256 * 256 * 9 * 64 * 64 * n
    with torch.no_grad(), exact_fp32(DEVICE):
        s = timed(lambda: conv(x), repeat)
    return flops / s / 1e9


def gemm_peak(dtype: torch.dtype, n: int = 2048, repeat: int = 3) -> float:
    """GFLOP/s of a square matrix product: a second, layout-free estimate of what the cores can do."""
    n = n if DEVICE.type == "cpu" else 8192
    a, b = torch.randn(n, n, device=DEVICE).to(dtype), torch.randn(n, n, device=DEVICE).to(dtype)
    with exact_fp32(DEVICE):
        return 2 * n**3 / timed(lambda: a @ b, repeat) / 1e9


def forward_gflop(model: Model, batch: int) -> float:
    x = torch.randn(batch, 3, model.resolution, model.resolution)
    with FlopCounterMode(display=False) as fc:
        model.denoise(x, 80.0)
    return fc.get_total_flops() / 1e9 / batch


def diffusers_seconds(model: Model, batch: int, dtype: torch.dtype, repeat: int) -> float | None:
    try:
        from diffusers import UNet2DModel
    except ImportError:
        return None
    from engine.checkpoint import diffusers_config, official_to_diffusers

    cfg = {k: v for k, v in diffusers_config(model.spec.unet).items() if not k.startswith("_")}
    net = UNet2DModel(**cfg)
    sd = official_to_diffusers({k: v.float() for k, v in model.denoiser.net.state_dict().items()}, model.spec.unet)
    net.load_state_dict(sd)
    net.eval()
    net.to(DEVICE)
    x = torch.randn(batch, 3, model.resolution, model.resolution, device=DEVICE)
    t = torch.full((batch,), 250 * torch.log(torch.tensor(80.0)).item(), device=DEVICE)
    labels = torch.zeros(batch, dtype=torch.long, device=DEVICE) if model.spec.unet.num_classes else None

    def run():
        with torch.no_grad(), exact_fp32(DEVICE), torch.autocast(DEVICE.type, dtype=dtype, enabled=dtype != torch.float32):
            net(x / (80**2 + 0.25) ** 0.5, t, class_labels=labels)

    return timed(run, repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["cd_imagenet64_l2", "cd_bedroom256_l2", "studio64", "studio32"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--diffusers", action="store_true", help="also time diffusers' UNet2DModel (if installed)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    args = ap.parse_args()

    global DEVICE
    DEVICE = pick_device(args.device)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    threads = configure_threads(args.threads)
    if DEVICE.type == "cuda":
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name(DEVICE)}, fp32 exact (no TF32)")
    else:
        print(f"torch {torch.__version__}, {DEVICE}, {threads} threads, CPU bf16: {cpu_has_bf16()}")
    peaks = {p: conv_peak(dtypes[p]) for p in args.precisions}
    for p, g in peaks.items():
        gemm = gemm_peak(dtypes[p])
        print(f"3x3 conv peak {p}: {g:.0f} GFLOP/s (2048^2 matrix product: {gemm:.0f} GFLOP/s)")
    print(f"\n{'preset':20s} {'prec':5s} {'batch':>5s} {'GFLOP/img':>10s} {'s/step':>8s} {'s/img':>8s} {'GFLOP/s':>8s} {'of peak':>8s} {'vs diffusers':>12s}")
    for name in args.presets:
        spec = preset(name)
        models = {p: Model.random(spec, seed=0, device=DEVICE.type, precision=p) for p in args.precisions}
        gflop = forward_gflop(models[args.precisions[0]], 1)
        for p, model in models.items():
            for b in args.batches:
                x = 80 * torch.randn(b, 3, model.resolution, model.resolution, generator=torch.Generator().manual_seed(1)).to(DEVICE)
                s = timed(lambda: model.denoise(x, 80.0), args.repeat)
                achieved = gflop * b / s
                ratio = ""
                if args.diffusers:
                    ds = diffusers_seconds(model, b, model.dtype, args.repeat)
                    ratio = f"{ds / s:.2f}x" if ds else "n/a"
                print(f"{name:20s} {p:5s} {b:5d} {gflop:10.1f} {s:8.3f} {s / b:8.3f} {achieved:8.0f} {achieved / peaks[p]:8.0%} {ratio:>12s}")
        x = 80 * torch.randn(1, 3, spec.unet.image_size, spec.unet.image_size, generator=torch.Generator().manual_seed(2))
        for half in ("bf16", "fp16"):
            if "fp32" in models and half in models:
                a, h = models["fp32"].denoise(x, 80.0), models[half].denoise(x, 80.0)
                print(f"{name:20s} {half} vs fp32 one-step: max |diff| {float((a - h).abs().max()):.4f}, "
                      f"mean {float((a - h).abs().mean()):.5f} (output range [-1, 1] after clamp)")
        del models


if __name__ == "__main__":
    main()
