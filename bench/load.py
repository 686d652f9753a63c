"""The engine's steps per second under outside load, against its own figure without that load.

For each thread setting (measured by the engine's tuner, and fixed counts for comparison) one
engine runs a scenario: warm-up steps, ``--steps`` timed steps, then this script starts two busy
processes (pure-Python spin loops, one per core of a 2-core machine), the same engine runs
``--steps`` more timed steps, and the busy processes are stopped.  The issue's rule: loaded
steps/s at least 60% of unloaded.  The load arrives in the middle of a run, so an automatic
thread count has to notice it (``studio.optim.threads`` measures again when step times drift).

    python bench/load.py                          # deform scenario at 128 px, auto / 1 / 2 threads
    python bench/load.py --scene cube --res 64 --steps 150 --threads auto 2
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time

import torch

from studio.runtime import tune_cpu_allocator
from studio.workspace import Options, build_engine

SPIN = "while True:\n    pass\n"


def _threads(text: str) -> int | None:
    return None if text == "auto" else int(text)


def run_steps(engine, start: int, n: int) -> float:
    """Run steps ``start`` .. ``start + n``; returns steps per second."""
    target = start + n
    t0 = time.perf_counter()
    engine.start(until=target)
    engine.wait_snapshot(predicate=lambda s: s.step >= target, timeout=3600)
    return n / (time.perf_counter() - t0)


def start_load(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scene", default="deform")
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60, help="timed steps with and without load")
    ap.add_argument("--warmup", type=int, default=15, help="untimed steps first (the tuner measures here)")
    ap.add_argument("--busy", type=int, default=2, help="busy processes to start")
    ap.add_argument("--threads", type=_threads, nargs="+", default=[None, 1, 2], metavar="auto|N")
    args = ap.parse_args()
    tune_cpu_allocator()
    logging.basicConfig(level=logging.INFO, format="  log: %(message)s")
    print(f"scene {args.scene} at {args.res} px on {torch.get_num_threads()} cores' default threads; "
          f"{args.steps} steps without and with {args.busy} busy processes (measured on a machine that may be "
          f"loaded by others as well)")
    rows = []
    for threads in args.threads:
        total = args.warmup + 2 * args.steps + 10
        _, engine, _ = build_engine(Options(scene=args.scene, backend="torch", device="cpu", resolution=args.res,
                                            threads=threads, steps=total))
        engine.start_thread()
        try:
            run_steps(engine, 0, args.warmup)
            idle = run_steps(engine, args.warmup, args.steps)
            idle_threads = engine.latest().threads
            procs = start_load(args.busy)
            try:
                loaded = run_steps(engine, args.warmup + args.steps, args.steps)
            finally:
                stop_load(procs)
            rows.append((threads, idle, loaded, idle_threads, engine.latest().threads))
        finally:
            engine.stop()
    print(f"{'threads':<8} {'steps/s':>8} {'loaded':>8} {'ratio':>6}  threads used (idle -> loaded)")
    for threads, idle, loaded, t_idle, t_loaded in rows:
        name = "auto" if threads is None else str(threads)
        print(f"{name:<8} {idle:>8.1f} {loaded:>8.1f} {loaded / idle:>6.2f}  {t_idle} -> {t_loaded}")
    print("ratio = steps/s with the busy processes / steps/s without them (rule: >= 0.60)")


if __name__ == "__main__":
    main()
