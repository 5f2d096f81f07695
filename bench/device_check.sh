#!/usr/bin/env bash
# One short accelerator check, prepared to fit a borrowed GPU machine's few minutes (about 4 on an
# H100): the environment, the device tests (reference parity in exact fp32 on the GPU, half
# precisions, seeded tasks equal to the CPU's, mixed-precision training steps), the one-step
# benchmark per preset and precision, and training throughput.
#
#     bash bench/device_check.sh              # logs in runs/device-check/, or in $OUT when set
#
# Needs only torch, numpy, pillow, safetensors and pytest (no Qt): a machine's stock PyTorch will do.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device-check}
PY=${PYTHON:-python3}
DEV=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
status=0

{
    date -u
    nvidia-smi -L 2>/dev/null || true
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')"
} 2>&1 | tee "$OUT/env.txt"

# Parity first: a wrong number matters more than a slow one.
$PY -m pytest -q -p no:cacheprovider tests/engine/test_devices.py tests/engine/test_parity.py 2>&1 \
    | tee "$OUT/tests.txt" || status=1

timeout 240 $PY bench/engine_bench.py --device "$DEV" --presets cd_imagenet64_l2 cd_bedroom256_l2 studio64 studio32 \
    --precisions fp32 fp16 bf16 --batches 1 16 --repeat 5 2>&1 | tee "$OUT/bench.txt" || status=1

for preset in studio32 studio64; do
    timeout 90 $PY -m engine.training.bench --device "$DEV" --preset "$preset" --recipe ict --batch 256 --threads 1 \
        --variants bf16+channels_last fp16+channels_last fp32+channels_last --steps 10 2>&1 | tee -a "$OUT/train_bench.txt" \
        || status=1
done
exit $status
