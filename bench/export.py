"""Dataset export throughput (issue #7): images per second of the built-in ``objects`` scene.

Workload: the ``objects`` scene (3 objects, 22,796 triangles, Phong shading, randomised camera,
light, materials, placement and background) at 640 x 640.  Rows, each the median of ``--runs``
timed runs (after one untimed warm-up run) over the same ``--images`` images (same seed, so every
run does the same work):

- render only: ``scene.render`` of each image's randomised parameters (the baseline);
- in memory: + background, compositing, sRGB conversion, id buffer and detect labels;
- export detect / export segment: ``export_dataset`` writing PNGs, labels and data.yaml
  (no hard-case search);
- export detect + hard cases: with the scene's ``[export.hard_case]`` search (one image in five,
  8 steps at 128 px).

Scene building is outside the timings; the rows run interleaved, so that a busy moment of a shared
machine hits all of them alike.  ``img/s`` and ``ms/img`` are medians of the wall clock, ``best``
the fastest run, ``cpu ms/img`` the process's CPU time per image (the load average is printed
before and after).  Ratios are median img/s over the render-only row on the same device.  CPU
rows use ``--threads`` threads; CUDA rows run when a GPU is present (nvdiffrast when importable,
else the torch backend).

With ``--ray`` it compares instead (same timing rules) a local export with 1 and with
``--threads`` threads against ``export_dataset_ray`` on a local Ray instance with 1 and with 2
workers (tasks of one thread each, at most that many running at once; Ray start-up and worker
start-up are outside the timings, the warm-up run starts the workers).  On a shared machine the
figures are measured under load: compare the ratios of one run.

    python bench/export.py
    python bench/export.py --images 20 --runs 7 --imgsz 640
    python bench/export.py --ray --images 16 --runs 3 --imgsz 320
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from studio.data import DatasetRenderer, ExportConfig, export_dataset
from studio.runtime import tune_cpu_allocator


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """(wall s, process CPU s) of one call."""
    _sync(device)
    w, c = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - w, time.process_time() - c


def render_only(renderer: DatasetRenderer, n: int) -> None:
    with torch.no_grad():
        for i in range(n):
            renderer.scene.render([0], renderer.values(renderer.plan(i)))


def in_memory(renderer: DatasetRenderer, n: int) -> None:
    for i in range(n):
        renderer.render(i)


def export(renderer: DatasetRenderer) -> None:
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        export_dataset(replace(renderer.config, out=Path(tmp) / "ds"), renderer=renderer)


def ray_table(args: argparse.Namespace) -> None:
    """Images per second: local (1 and --threads threads) against Ray with 1 and 2 workers."""
    import ray

    from studio.scale import export_dataset_ray

    cfg = ExportConfig(scene="objects", n=args.images, imgsz=args.imgsz, backend="torch", device="cpu",
                       hard_case=False, preview=0)
    renderer = DatasetRenderer(cfg)

    def local(threads: int) -> Callable[[], None]:
        def run() -> None:
            torch.set_num_threads(threads)
            export(renderer)
        return run

    def on_ray(workers: int) -> Callable[[], None]:
        def run() -> None:
            with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
                export_dataset_ray(replace(cfg, out=Path(tmp) / "ds"), renderer=renderer, chunk=args.chunk,
                                   max_parallel=workers)
        return run

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    rows = [("local, 1 thread", local(1)), (f"local, {args.threads} threads", local(args.threads)),
            ("ray, 1 worker", on_ray(1)), ("ray, 2 workers", on_ray(2))]
    print(f"objects scene at {args.imgsz}x{args.imgsz}, {args.images} images per run, chunks of {args.chunk}, "
          f"median of {args.runs} runs, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
          "(measured under load when that exceeds the CPUs)")
    header = f"{'export':<22} {'img/s':>7} {'best':>7} {'ms/img':>7} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    try:
        for _, fn in rows:
            fn()  # warm-up: Ray workers start, import torch and build the scene once
        samples: dict[str, list[float]] = {label: [] for label, _ in rows}
        for _ in range(args.runs):
            for label, fn in rows:
                samples[label].append(timed(fn, torch.device("cpu"))[0])
    finally:
        ray.shutdown()
    base = statistics.median(samples[rows[0][0]])
    for label, _ in rows:
        wall = statistics.median(samples[label])
        print(f"{label:<22} {args.images / wall:>7.2f} {args.images / min(samples[label]):>7.2f} "
              f"{1000 * wall / args.images:>7.1f} {base / wall:>5.2f}x")
    print(f"(ratio = img/s over local with 1 thread; load average after: {os.getloadavg()[0]:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=10, help="images per run")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per row (median reported)")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the torch backend")
    ap.add_argument("--ray", action="store_true", help="compare a local export with Ray on 1 and 2 workers")
    ap.add_argument("--chunk", type=int, default=2, help="with --ray: images per Ray task")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    if args.ray:
        ray_table(args)
        return

    targets = [("torch", "cpu")]
    if torch.cuda.is_available():
        targets.append(("auto", "cuda"))
    print(f"objects scene at {args.imgsz}x{args.imgsz}, {args.images} images per run, median of {args.runs} runs, "
          f"{args.threads} CPU threads, torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}")
    header = (f"{'backend':<11} {'device':<6} {'workload':<28} {'img/s':>7} {'best':>7} {'ms/img':>7} "
              f"{'cpu ms/img':>10} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for backend, device in targets:
        base_cfg = ExportConfig(scene="objects", n=args.images, imgsz=args.imgsz, backend=backend, device=device,
                                hard_case=False, preview=0)
        detect = DatasetRenderer(base_cfg)
        segment = DatasetRenderer(replace(base_cfg, task="segment"))
        hard = DatasetRenderer(replace(base_cfg, hard_case=True))
        dev = detect.scene.device
        name = detect.scene.backend.name
        rows = [
            ("render only", lambda: render_only(detect, args.images)),
            ("in memory (detect labels)", lambda: in_memory(detect, args.images)),
            ("export detect", lambda: export(detect)),
            ("export segment", lambda: export(segment)),
            ("export detect + hard cases", lambda: export(hard)),
        ]
        for _, fn in rows:
            fn()  # warm-up: allocator, caches, lazy imports
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in rows}
        for _ in range(args.runs):  # interleaved, so that a busy moment hits every row alike
            for label, fn in rows:
                samples[label].append(timed(fn, dev))
        base = statistics.median(w for w, _ in samples[rows[0][0]])
        for label, _ in rows:
            wall = statistics.median(w for w, _ in samples[label])
            best = min(w for w, _ in samples[label])
            cpu = statistics.median(c for _, c in samples[label])
            print(f"{name:<11} {device:<6} {label:<28} {args.images / wall:>7.2f} {args.images / best:>7.2f} "
                  f"{1000 * wall / args.images:>7.1f} {1000 * cpu / args.images:>10.1f} {base / wall:>5.2f}x")
    faces = sum(int(o.mesh.faces.shape[0]) for o in detect.scene.objects)
    print(f"({faces:,} triangles; ratio = img/s over render only on the same device; "
          f"load average after: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
