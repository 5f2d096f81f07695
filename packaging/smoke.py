#!/usr/bin/env python3
"""Smoke-test a built one-folder bundle (dist/cstudio/) offscreen. Builds nothing; needs only the standard library.

    python3 packaging/smoke.py dist/cstudio [--model FILE] [--gui-seconds 40]

1. `cstudio --help` and `cstudio info MODEL` run headless;
2. `cstudio generate` writes a valid PNG at the model's resolution, and `cstudio upscale --factor 2` doubles it
   (the "one task");
3. the GUI (`cstudio --smoke-test`, offscreen) starts. If the app knows `--smoke-test` it must exit 0 by
   itself; otherwise it must still be running after --gui-seconds with nothing on stderr that looks like a
   crash, and must end on SIGTERM (exit 0, or killed by the signal itself, never a crash signal).

MODEL: --model, else $CSTUDIO_SMOKE_MODEL, else the default model inside the bundle
(_internal/resources/models/default.safetensors). Exits 0 when everything passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CRASH_MARKERS = ("Traceback (most recent call last)", "Segmentation fault", "Fatal Python error", "core dumped",
                 "Could not load the Qt platform plugin", "ModuleNotFoundError", "ImportError")


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG file")
    return struct.unpack(">II", head[16:24])


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


class Smoke:
    def __init__(self, exe: Path, env: dict[str, str], work: Path) -> None:
        self.exe, self.env, self.work, self.failures = exe, env, work, []

    def check(self, ok: bool, what: str) -> bool:
        print(f"{'PASS' if ok else 'FAIL'}  {what}", flush=True)
        if not ok:
            self.failures.append(what)
        return ok

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        t0 = time.monotonic()
        proc = subprocess.run([str(self.exe), *args], env=self.env, cwd=self.work, capture_output=True, text=True,
                              timeout=timeout)
        print(f"      $ cstudio {' '.join(args)}  -> rc {proc.returncode} in {time.monotonic() - t0:.1f}s", flush=True)
        if proc.returncode:
            print(proc.stdout[-2000:] + proc.stderr[-4000:], flush=True)
        return proc

    def headless(self, model: Path) -> None:
        p = self.run("--help", timeout=300)
        self.check(p.returncode == 0 and "generate" in p.stdout, "cstudio --help lists the subcommands")
        p = self.run("--version", timeout=300)
        self.check(p.returncode == 0 and "unknown" not in p.stdout, "cstudio --version names the version")
        p = self.run("info", str(model), "--json", timeout=300)
        res = None
        if self.check(p.returncode == 0, "cstudio info MODEL"):
            res = json.loads(p.stdout)["resolution"]
        gen = self.work / "generated.png"
        p = self.run("generate", "--model", str(model), "--seed", "1", "--steps", "1", "--device", "cpu",
                     "--quiet", "--out", str(gen))
        if self.check(p.returncode == 0 and gen.is_file(), "cstudio generate writes a file"):
            size = png_size(gen)
            self.check(res is None or size == (res, res), f"generated PNG is {size}, model resolution {res}")
            up = self.work / "upscaled.png"
            p = self.run("upscale", str(gen), "--factor", "2", "--model", str(model), "--device", "cpu", "--quiet",
                         "--out", str(up))
            if self.check(p.returncode == 0 and up.is_file(), "cstudio upscale --factor 2 writes a file"):
                self.check(png_size(up) == (2 * size[0], 2 * size[1]), f"upscaled PNG is {png_size(up)} (2 x {size})")

    def gui(self, seconds: float) -> None:
        log = self.work / "gui.log"
        with open(log, "w") as out:
            t0 = time.monotonic()
            proc = subprocess.Popen([str(self.exe), "--smoke-test"], env=self.env, cwd=self.work, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                rc = None
            if rc is not None:
                self.check(rc == 0, f"GUI --smoke-test ran and exited by itself with rc {rc} "
                                    f"after {time.monotonic() - t0:.1f}s")
            else:
                self.check(True, f"GUI still up after {seconds:.0f}s offscreen (no --smoke-test in this app: "
                                 "checked by staying alive)")
                proc.send_signal(signal.SIGTERM)
                try:
                    rc = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    rc = proc.wait()
                    self.check(False, "GUI ignored SIGTERM for 30 s (killed)")
                else:
                    self.check(rc in (0, -signal.SIGTERM), f"GUI ended on SIGTERM (rc {rc}: "
                                                           f"{'clean' if rc == 0 else 'default SIGTERM action'})")
        text = log.read_text(errors="replace")
        bad = [m for m in CRASH_MARKERS if m in text]
        self.check(not bad, f"GUI log has no crash markers{': ' + ', '.join(bad) if bad else ''}")
        if bad or self.failures:
            print(text[-4000:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path, help="the one-folder bundle (dist/cstudio) or its cstudio executable")
    ap.add_argument("--model", type=Path, help="model file (default: $CSTUDIO_SMOKE_MODEL, then the bundled default)")
    ap.add_argument("--gui-seconds", type=float, default=40.0, help="how long the GUI must stay up (default 40)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder with outputs and logs")
    args = ap.parse_args(argv)

    folder = args.bundle if args.bundle.is_dir() else args.bundle.parent
    exe = folder / ("cstudio.exe" if os.name == "nt" else "cstudio")
    if not exe.is_file():
        print(f"no executable at {exe}: build first (pyinstaller packaging/cstudio.spec)", file=sys.stderr)
        return 1
    bundled = folder / "_internal" / "resources" / "models" / "default.safetensors"
    model = args.model or (Path(os.environ["CSTUDIO_SMOKE_MODEL"]) if os.environ.get("CSTUDIO_SMOKE_MODEL") else bundled)
    if not model.is_file():
        print(f"no model to test with: {model} does not exist. This bundle ships no default model "
              "(resources/models/default.safetensors at build time); pass --model or set CSTUDIO_SMOKE_MODEL.",
              file=sys.stderr)
        return 1
    model = model.resolve()
    print(f"bundle {folder} ({folder_size(folder) / 2**20:.0f} MiB), model {model}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="cstudio-smoke-"))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(work / "home"), XDG_CONFIG_HOME=str(work / "config"),
               XDG_DATA_HOME=str(work / "data"), XDG_CACHE_HOME=str(work / "cache"), XDG_STATE_HOME=str(work / "state"),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)  # the bundle must not pick up a checkout or a venv
    for d in ("home", "config", "data", "cache", "state"):
        (work / d).mkdir()
    smoke = Smoke(exe, env, work)
    try:
        smoke.headless(model)
        smoke.gui(args.gui_seconds)
    finally:
        if args.keep:
            print(f"outputs and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'smoke test passed' if not smoke.failures else 'smoke test FAILED: ' + '; '.join(smoke.failures)}")
    return 1 if smoke.failures else 0


if __name__ == "__main__":
    sys.exit(main())
