"""What the studio window costs the optimiser, and how smooth the window stays.

    python bench/gui.py [--scene cube] [--res 64] [--seconds 5] [--runs 3] [--backend torch] [--device cpu]

For the same scene, backend and device it measures, alternating so that machine load hits both:

- optimiser throughput headless (the engine alone, as in ``studio optimize``), in steps/s;
- optimiser throughput inside the studio window while it runs (the real App and render loop), and
  the window's frames per second meanwhile;
- start-up of the default scene (``--startup-scene``, default joint, at its own resolution): seconds
  from launching ``studio gui`` until its window is mapped on the screen (``xdotool search
  --onlyvisible``), until the first picture (a target view, shown while the scene is built) and until
  the first render is shown (the app's log lines).  The goal is <= 3 s to the first render on an idle
  2-core machine; the load average printed says how idle it was.

It prints medians over ``--runs`` runs and the ratios the studio promises (GUI throughput >= 85% of
headless; >= 30 frames/s while optimising; window within 5 s).  Without a display it starts Xvfb.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio.runtime import tune_cpu_allocator  # noqa: E402
from studio.workspace import Options, build_engine  # noqa: E402


def steps_per_second(engine, seconds: float, warmup: float, tick) -> tuple[float, float, float]:
    """Start the engine, let it warm up, then count steps over ``seconds`` while calling ``tick()``;
    returns (steps/s, ticks/s, CPU cores the process used)."""
    engine.reset()
    engine.start()
    t_end = time.perf_counter() + warmup
    while time.perf_counter() < t_end:
        tick()
    s0, t0, c0 = engine.latest().step, time.perf_counter(), time.process_time()
    ticks = 0
    while time.perf_counter() - t0 < seconds:
        tick()
        ticks += 1
    s1, t1, c1 = engine.latest().step, time.perf_counter(), time.process_time()
    engine.pause()
    return (s1 - s0) / (t1 - t0), ticks / (t1 - t0), (c1 - c0) / (t1 - t0)


def headless(engine, seconds: float, warmup: float) -> tuple[float, float]:
    """(steps/s, cores used) of the engine alone; the main thread only polls, as `studio optimize` does."""
    rate, _, cores = steps_per_second(engine, seconds, warmup, lambda: time.sleep(0.05))
    return rate, cores


def in_gui(app, seconds: float, warmup: float) -> tuple[float, float, float]:
    """(steps/s, frames/s, cores used) with the studio window's own render loop on the main thread."""
    return steps_per_second(app.ws.engine, seconds, warmup, app.frame)


def startup(scene: str, res: int | None, backend: str, device: str) -> tuple[float, float, float]:
    """(seconds from launching `studio gui` until its window is mapped on the screen, until the first
    picture is shown, until the first render is shown) for one launch, by the wall clock of this process."""
    from studio.gui.testing import stop_process

    cmd = [sys.executable, "-m", "studio.cli", "-v", "gui", scene, "--backend", backend, "--device", device]
    if res is not None:
        cmd += ["--res", str(res)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        visible = picture = ready = float("nan")
        while time.perf_counter() - t0 < 60 and visible != visible:
            r = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "Differentiable Rendering Studio"],
                               capture_output=True, text=True)
            if r.stdout.strip():
                visible = time.perf_counter() - t0
            else:
                time.sleep(0.02)
        for line in proc.stdout:  # the app logs these lines as the first target view and snapshot are on screen
            if "first picture shown" in line:
                picture = time.perf_counter() - t0
            if "first render shown" in line:
                ready = time.perf_counter() - t0
                break
            if time.perf_counter() - t0 > 120:
                break
        return visible, picture, ready
    finally:
        stop_process(proc, timeout=10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", default="cube")
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1.5, help="seconds before measuring")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    ap.add_argument("--startup-only", action="store_true", help="only the start-up measurement")
    ap.add_argument("--startup-scene", default="joint", help="scene of the start-up measurement (at its own resolution)")
    args = ap.parse_args()
    tune_cpu_allocator()

    from studio.gui.testing import gui_unavailable, pump, virtual_display

    problem = gui_unavailable()
    if problem:
        print(f"bench/gui.py: {problem}.", file=sys.stderr)
        return 2
    opts = Options(scene=args.scene, resolution=args.res, backend=args.backend, device=args.device)
    starts = []
    load0 = os.getloadavg()[0]
    for _ in range(0 if args.no_startup else args.runs):
        with virtual_display(1600, 1000):  # a fresh screen each time: no earlier window to find
            starts.append(startup(args.startup_scene, None, args.backend, args.device))
    if args.startup_only:
        _print_startup(args, starts, (load0 + os.getloadavg()[0]) / 2)
        return 0
    with virtual_display(1600, 1000):
        from studio.gui.app import App

        _, engine, _ = build_engine(opts)
        engine.start_thread()
        app = App(opts).open()
        if not pump(app, lambda: app._snap is not None, timeout=120):
            print("bench/gui.py: the studio did not load the scene.", file=sys.stderr)
            return 1
        rows = []
        load = os.getloadavg()[0]
        for i in range(args.runs):
            h, h_cores = headless(engine, args.seconds, args.warmup)
            g, fps, g_cores = in_gui(app, args.seconds, args.warmup)
            rows.append((h, g, fps, h_cores, g_cores))
            print(f"run {i + 1}: headless {h:.1f} it/s ({h_cores:.2f} cores), in the GUI {g:.1f} it/s "
                  f"({g_cores:.2f} cores) at {fps:.1f} frames/s", flush=True)
        threads = engine.latest().threads
        app.close()
        engine.stop()

    h = statistics.median(r[0] for r in rows)
    g = statistics.median(r[1] for r in rows)
    fps = statistics.median(r[2] for r in rows)
    ratio = statistics.median(r[1] / r[0] for r in rows)
    h_cores = statistics.median(r[3] for r in rows)
    g_cores = statistics.median(r[4] for r in rows)
    load = (load + os.getloadavg()[0]) / 2
    print()
    print(f"scene {args.scene} at {args.res}x{args.res}, {args.backend} on {args.device}, {os.cpu_count()} CPU "
          f"cores (load average {load:.1f} during the runs, this benchmark included), median of {args.runs} "
          f"runs of {args.seconds:g} s")
    print(f"{'measure':<34}{'value':>12}  {'target':>10}")
    print(f"{'optimiser headless (it/s)':<34}{h:>12.1f}")
    print(f"{'optimiser in the GUI (it/s)':<34}{g:>12.1f}")
    print(f"{'GUI / headless':<34}{ratio:>11.0%}   {'>= 85%':>10}")
    print(f"{'window frames/s while optimising':<34}{fps:>12.1f}  {'>= 30':>10}")
    print(f"{'CPU cores used headless / GUI':<34}{h_cores:>6.2f} /{g_cores:>4.2f}")
    print(f"{'CPU threads of the steps':<34}{'-' if threads is None else threads:>12}  {'(measured)':>10}")
    _print_startup(args, starts, None)
    return 0


def _print_startup(args: argparse.Namespace, starts: list[tuple[float, float, float]], load: float | None) -> None:
    if not starts:
        return
    if load is not None:
        print(f"start-up of {args.startup_scene}, {args.backend} on {args.device}, {os.cpu_count()} CPU cores "
              f"(load average {load:.1f}), median of {len(starts)} launches")
    print(f"{'start-up (' + args.startup_scene + ')':<34}{'seconds':>12}  {'target':>10}")
    for i, (what, goal) in enumerate((("window visible", "<= 5"), ("first picture (a target view)", ""),
                                      ("first render shown", "<= 3 idle"))):
        print(f"{'  ' + what:<34}{statistics.median(s[i] for s in starts):>12.2f}  {goal:>10}")


if __name__ == "__main__":
    sys.exit(main())
