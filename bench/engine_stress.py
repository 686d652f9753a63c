"""Engine stress: (a) a long soak of `studio optimize cube` with its memory sampled, (b) a storm of
mixed valid and invalid commands through the engine API with the worker answering throughout.

    python bench/engine_stress.py soak [--steps 20000] [--every 1000] [--res 96]
    python bench/engine_stress.py storm [--seconds 60] [--rate 1000]
    python bench/engine_stress.py            # both, full size (the lead's run)

(a) runs the CLI as a subprocess and reads its resident memory (``/proc/PID/status`` VmRSS) each
time its progress bar passes a multiple of ``--every`` steps; it prints the table and the spread of
the samples after the first (memory should stay flat within 10 %: the CLI keeps only the frames its
GIF uses).  (b) sends ``--rate`` commands per second from one thread (half of them invalid: wrong
types refused at the call, unknown names and failing calls that reach the worker) while the main
thread waits for each new snapshot; it prints commands sent, refused at the call, failures the
worker reported, steps taken, and the longest wait for a snapshot.  Linux only for (a).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc status")


def soak(steps: int, every: int, res: int) -> bool:
    """(a) The CLI's memory over a long run; True when flat within 10 %."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "studio.cli", "optimize", "cube", "--steps", str(steps), "--res", str(res),
               "--backend", "torch", "--device", "cpu", "--out", out]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        samples: list[tuple[int, float, float]] = []  # (step, seconds, RSS MB)
        t0, next_mark, buf = time.perf_counter(), every, b""
        progress = re.compile(rb"(\d+)/(\d+) \[")
        while True:
            chunk = proc.stderr.read1(4096) if hasattr(proc.stderr, "read1") else proc.stderr.read(64)
            if not chunk:
                break
            buf = (buf + chunk)[-4096:]
            found = progress.findall(buf)
            if found:
                step = int(found[-1][0])
                while step >= next_mark:
                    samples.append((next_mark, time.perf_counter() - t0, rss_mb(proc.pid)))
                    next_mark += every
        code = proc.wait()
    print(f"(a) soak: studio optimize cube --steps {steps} --res {res}, RSS every {every} steps (exit {code})")
    print(f"{'step':>8} {'seconds':>9} {'RSS MB':>9}")
    for step, sec, mb in samples:
        print(f"{step:>8} {sec:>9.1f} {mb:>9.1f}")
    later = [mb for _, _, mb in samples[1:]] or [mb for _, _, mb in samples]
    if not later:
        print("no samples (the run ended before the first mark)")
        return False
    spread = (max(later) - min(later)) / min(later)
    print(f"spread after the first sample: {min(later):.1f} .. {max(later):.1f} MB = {100 * spread:.1f} % "
          f"({'flat' if spread <= 0.10 else 'NOT flat'} within 10 %)")
    return code == 0 and spread <= 0.10


def storm(seconds: float, rate: float) -> bool:
    """(b) Mixed valid/invalid commands at ``rate`` per second; True when the worker answered throughout."""
    from studio.optim.engine import CommandError
    from studio.workspace import Options, build_engine

    class Count(logging.Handler):
        """Counts the engine's messages (each failure is one) instead of printing them."""

        n = 0

        def emit(self, record: logging.LogRecord) -> None:
            Count.n += 1

    engine_log = logging.getLogger("studio.engine")
    engine_log.addHandler(Count())
    engine_log.propagate = False
    _, engine, _ = build_engine(Options(scene="cube", backend="torch", device="cpu", resolution=32, steps=10**9))
    engine.start_thread()
    engine.start()

    def boom(e):
        raise ZeroDivisionError("division by zero")

    commands = [
        lambda i: engine.set_param("camera.fov", [40.0 + (i % 10) * 0.1]),
        lambda i: engine.set_param("camera.target", "x"),  # refused at the call
        lambda i: engine.set_lr("geometry", 0.01),
        lambda i: engine.set_param("no.such.param", [1.0]),  # fails on the worker
        lambda i: engine.set_loss_weight("l2", 1.0),
        lambda i: engine.set_losses([("l2", None, {})]),  # refused at the call
        lambda i: engine.set_view(0),
        lambda i: engine.call(boom),  # fails on the worker
        lambda i: engine.set_group_enabled("material", True),
        lambda i: engine.set_frozen(["x"], True),  # refused at the call
        lambda i: engine.set_display_mode("shaded"),
        lambda i: engine.set_derivative("camera.fov", 99),  # fails on the worker
        lambda i: engine.set_option("antialias", True),
        lambda i: engine.reload_losses(lambda: None),  # fails on the worker
        lambda i: engine.set_frozen("cube.albedo", False),
        lambda i: engine.step("3"),  # refused at the call
    ]
    sent = refused = 0
    done = threading.Event()

    def send() -> None:
        nonlocal sent, refused
        t0 = time.perf_counter()
        while not done.is_set():
            due = int((time.perf_counter() - t0) * rate)
            while sent < due:
                try:
                    commands[sent % len(commands)](sent)
                except CommandError:
                    refused += 1
                sent += 1
            time.sleep(0.001)

    sender = threading.Thread(target=send, daemon=True)
    first = engine.wait_snapshot(timeout=60)
    stamp, worst, waits, alive = first.stamp, 0.0, 0, True
    start_step = first.step
    sender.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        snap = engine.wait_snapshot(stamp, timeout=10)
        if snap is None or not engine.alive:
            alive = False
            break
        worst = max(worst, time.perf_counter() - t)
        stamp, waits = snap.stamp, waits + 1
    done.set()
    sender.join(5)
    last = engine.latest()
    failures = Count.n
    engine.stop()
    print(f"(b) storm: {rate:g} commands/s for {seconds:g} s through the engine API (cube, 32 px)")
    print(f"{'commands sent':>28} {sent:>9}")
    print(f"{'refused at the call':>28} {refused:>9}")
    print(f"{'failures the worker reported':>28} {failures:>9}")
    print(f"{'steps taken':>28} {last.step - start_step:>9}")
    print(f"{'snapshots received':>28} {waits:>9}")
    print(f"{'longest wait for a snapshot':>28} {1000 * worst:>8.0f} ms")
    print(f"{'worker alive throughout':>28} {'yes' if alive else 'NO':>9}")
    return alive


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="?", choices=["soak", "storm", "both"], default="both")
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--every", type=int, default=1_000)
    ap.add_argument("--res", type=int, default=96)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    args = ap.parse_args()
    ok = True
    if args.what in ("soak", "both"):
        ok = soak(args.steps, args.every, args.res) and ok
    if args.what in ("storm", "both"):
        ok = storm(args.seconds, args.rate) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
