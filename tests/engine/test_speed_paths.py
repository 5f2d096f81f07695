"""Speed paths of the upscaler keep its results: glibc's allocator tuning (`keep_freed_memory`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import device

ROOT = Path(__file__).resolve().parents[2]

# A tiny random model upscales a fixed image in a fresh process, with the allocator left as glibc
# set it up (argv[1] == "0") or tuned as `Model` does by default.
CHILD = r"""
import sys
import numpy as np
import engine.pipeline as pipeline
from engine.config import preset
if sys.argv[1] == "0":
    pipeline.keep_freed_memory = lambda: False
model = pipeline.Model.random(preset("tiny"), seed=0)
img = (np.random.default_rng(0).random((20, 28, 3)) * 255).astype(np.uint8)
out = model.upscale(img, 2, seed=5, batch=4)
np.save(sys.argv[2], out)
print(pipeline.keep_freed_memory())
"""


def _upscale_in_process(tune: bool, out: Path) -> str:
    res = subprocess.run([sys.executable, "-c", CHILD, "1" if tune else "0", str(out)], cwd=ROOT,
                         capture_output=True, text=True, check=False, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip().splitlines()[-1]


def test_allocator_tuning_leaves_the_upscale_bit_identical(tmp_path):
    plain, tuned = tmp_path / "plain.npy", tmp_path / "tuned.npy"
    _upscale_in_process(False, plain)
    _upscale_in_process(True, tuned)
    a, b = np.load(plain), np.load(tuned)
    assert a.shape == (40, 56, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)


def test_allocator_tuning_runs_only_on_glibc_and_respects_the_users_settings(monkeypatch):
    tune = device.keep_freed_memory.__wrapped__  # the uncached function: each call decides afresh
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert tune() is False  # glibc's own tunable, set by the user: theirs to keep
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setattr(device.sys, "platform", "darwin")
    assert tune() is False  # no glibc, no mallopt
    monkeypatch.setattr(device.sys, "platform", "linux")
    monkeypatch.setattr(device.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert tune() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")
def test_allocator_tuning_is_applied_once_per_process():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not a glibc system")
    first = device.keep_freed_memory()
    assert device.keep_freed_memory() is first  # cached: the thresholds are process-wide
    assert isinstance(first, bool)
