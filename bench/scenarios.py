"""Full-budget run of every built-in scenario: seconds, steps and each group's error, initial -> final.

The convergence rule (issue #3): the default budget finishes in <= 60 s on a 2-core CPU with the
torch backend and reduces every optimised group's error by >= 90% (pose: final rotation < 2 deg).

    python bench/scenarios.py                       # all scenarios, CPU, threads chosen by the engine
    python bench/scenarios.py cube pose --threads 2 # a fixed thread count
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from studio.runtime import tune_cpu_allocator
from studio.scenarios import list_scenarios
from studio.workspace import Options, build_engine

RULE_SECONDS = 60.0
RULE_REDUCTION = 0.90


def run(name: str, backend: str, device: str | None, threads: int | None) -> dict:
    scene, engine, _ = build_engine(Options(scene=name, backend=backend, device=device, threads=threads))
    before = scene.params.group_errors()
    steps = engine.config.steps
    t0 = time.perf_counter()
    engine.start_thread()
    engine.start(until=steps)
    snap = engine.wait_snapshot(predicate=lambda s: s.finished or (not s.running and s.step >= steps), timeout=3600)
    seconds = time.perf_counter() - t0
    engine.stop()
    after = scene.params.group_errors()
    return {"name": name, "steps": snap.step, "seconds": seconds, "before": before, "after": after,
            "message": snap.message, "threads": snap.threads}


def verdict(r: dict) -> str:
    ok = r["seconds"] <= RULE_SECONDS
    for g, e in r["after"].items():
        e0 = r["before"][g].value
        ok &= e.value <= (1 - RULE_REDUCTION) * e0
    if r["name"] == "pose":
        ok &= r["after"]["geometry"].value < 2.0
    return "pass" if ok else "FAIL"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="scenarios (default: all)")
    ap.add_argument("--threads", default="auto", help="CPU threads: auto (the engine measures) or a number")
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    threads = None if args.threads == "auto" else int(args.threads)
    tune_cpu_allocator()
    logging.getLogger("studio").setLevel(logging.ERROR)  # notes are printed in the table
    names = args.names or [s.name for s in list_scenarios()]
    print(f"backend {args.backend} on {args.device}, CPU threads: {args.threads} (of {torch.get_num_threads()}), "
          f"torch {torch.__version__}")
    header = f"{'scenario':<11} {'steps':>5} {'seconds':>8} {'thr':>3}  {'group':<9} {'initial':>10} {'final':>10} {'unit':<8} {'reduction':>9}  verdict"
    print(header)
    print("-" * len(header))
    for name in names:
        r = run(name, args.backend, args.device, threads)
        first = True
        for g, e in r["after"].items():
            e0 = r["before"][g].value
            red = 1 - e.value / e0 if e0 > 0 else float("nan")
            thr = "-" if r["threads"] is None else r["threads"]
            lead = f"{name:<11} {r['steps']:>5} {r['seconds']:>8.1f} {thr:>3}" if first else " " * 30
            tail = f"  {verdict(r)}" if first else ""
            print(f"{lead}  {g:<9} {e0:>10.4g} {e.value:>10.4g} {e.unit:<8} {red:>8.1%}{tail}")
            first = False
        if r["message"]:
            print(f"{'':<30}  note: {r['message']}")


if __name__ == "__main__":
    main()
