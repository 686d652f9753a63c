"""A full reconstruction, measured stage by stage: seconds, steps/s, held-out PSNR and silhouette IoU,
and the symmetric mean surface distance to the true mesh (30,000 samples on each surface) as a
fraction of the object's bounding radius.

The issue's bar (#12): distance <= 1.5% of the bounding radius, held-out PSNR >= 30 dB and IoU >= 0.97,
within 5 minutes on 2 CPU cores, on a 32 + 8 view capture at 200 x 200.

    python bench/reconstruct.py                                   # synthetic textured critter, 32 + 8 views at 200 px
    python bench/reconstruct.py --capture /work/data/bunny_capture --truth /work/data/bunny_capture/gt_mesh.ply
    python bench/reconstruct.py --steps 300 --views-per-step 2    # another budget

Seconds are wall-clock, including the measurements between stages; "CPU s" is the process's CPU time
(all threads), which a busy machine does not inflate: on an idle 2-core machine wall-clock is about
CPU time / 2.  One run per setting (a reconstruction takes minutes); compare settings in one invocation with
``--compare KEY=VALUE`` (e.g. ``--compare visibility=edge``), which runs the baseline and the variant
interleaved on the same capture.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from studio.capture import load_capture
from studio.capture.synth import make_capture
from studio.reconstruct.export import write_outputs
from studio.reconstruct.metrics import SAMPLES, bounding_radius, surface_distance
from studio.reconstruct.run import ReconstructOptions, build_reconstruction
from studio.runtime import tune_cpu_allocator


def truth_in_unit_frame(capture, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The true mesh (in the capture's world) moved into the capture's normalised frame."""
    m = trimesh.load(path, force="mesh")
    n = capture.normalisation
    return (np.asarray(m.vertices) - np.asarray(n.centre)) * n.scale, np.asarray(m.faces)


def measure(scene, truth) -> dict:
    m = scene.mesh()
    held = scene.heldout_metrics()
    out = {"faces": int(m.faces.shape[0]), **held}
    if truth is not None:
        d = surface_distance(m.vertices.numpy(), m.faces.numpy(), *truth, samples=SAMPLES)
        out["distance"] = d / bounding_radius(truth[0])
    return out


def run(capture, truth, opts: ReconstructOptions, label: str, out: Path | None) -> list[dict]:
    """Rows (stage, step, seconds, steps/s, metrics) at the start and at the end of every stage;
    with ``out``, the run's output files too (as ``studio reconstruct`` writes them)."""
    t_build, cpu0 = time.perf_counter(), time.process_time()
    scene, engine, notes = build_reconstruction(capture, opts)
    build_s = time.perf_counter() - t_build
    rows = [{"label": label, "stage": "visual hull", "step": 0, "seconds": build_s, "steps_s": float("nan"),
             "cpu": time.process_time() - cpu0, **measure(scene, truth)}]
    steps = opts.steps
    bounds = sorted({int(np.ceil(s.start * steps)) for s in scene.stages[1:]} | {steps})
    engine.start_thread()
    spent, done = build_s, 0
    for i, end in enumerate(bounds):
        t0 = time.perf_counter()
        engine.start(until=end)
        engine.wait_snapshot(predicate=lambda s, end=end: s.finished and s.step >= end, timeout=3600)
        dt = time.perf_counter() - t0
        spent += dt
        stage = scene.stages[scene.stage_at(end - 1, steps)].name
        rows.append({"label": label, "stage": stage, "step": end, "seconds": spent,
                     "steps_s": (end - done) / dt, "cpu": time.process_time() - cpu0, **measure(scene, truth)})
        done = end
    snap = engine.latest()
    engine.stop()
    if out is not None:
        write_outputs(scene, out, snap.history, snap.marks, spent, snap.step)
    return rows


def print_rows(rows: list[dict]) -> None:
    print(f"{'run':<14} {'stage':<12} {'step':>5} {'seconds':>8} {'CPU s':>7} {'steps/s':>8} {'faces':>6} {'PSNR dB':>8} "
          f"{'IoU':>7} {'dist/R':>8}")
    for r in rows:
        dist = f"{100 * r['distance']:7.2f}%" if "distance" in r else "       -"
        print(f"{r['label']:<14} {r['stage']:<12} {r['step']:>5} {r['seconds']:>8.1f} {r['cpu']:>7.0f} {r['steps_s']:>8.2f} "
              f"{r['faces']:>6} {r.get('heldout_psnr', float('nan')):>8.2f} {r.get('heldout_iou', float('nan')):>7.4f} {dist}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", default=None, help="capture to reconstruct (default: a synthetic textured critter)")
    ap.add_argument("--truth", default=None, help="true mesh in the capture's world (default: the capture's gt_mesh.ply)")
    ap.add_argument("--res", type=int, default=200)
    ap.add_argument("--holdout", type=int, default=None)
    ap.add_argument("--steps", type=int, default=ReconstructOptions().steps)
    ap.add_argument("--views-per-step", type=int, default=ReconstructOptions().views_per_step)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compare", default=None, metavar="KEY=VALUE", help="also run with this render option")
    ap.add_argument("--out", default=None, help="write each run's output files into OUT/<run>")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.capture) if args.capture else make_capture("textured_critter", Path(tmp) / "critter",
                                                                      views=32, res=args.res, test_views=8)
        capture = load_capture(source, res=args.res, holdout=args.holdout)
        truth_path = Path(args.truth) if args.truth else source / "gt_mesh.ply"
        truth = truth_in_unit_frame(capture, truth_path) if truth_path.exists() else None
        h, w = capture.resolution
        print(f"capture {source}: {len(capture.views)} training + {len(capture.test_views)} held-out views at {w}x{h}; "
              f"{args.steps} steps, {args.views_per_step} views per step, {args.threads} threads (torch {torch.__version__})")
        variants = [("baseline", {})]
        if args.compare:
            key, _, value = args.compare.partition("=")
            variants.append((args.compare, {key: value}))
        rows = []
        for label, render_options in variants:
            opts = ReconstructOptions(steps=args.steps, views_per_step=args.views_per_step, backend=args.backend,
                                      device=args.device, threads=args.threads, render_options=render_options)
            out = Path(args.out) / label.replace("=", "_") if args.out else None
            rows += run(capture, truth, opts, label, out)
            print_rows([r for r in rows if r["label"] == label])
        if len(variants) > 1:
            print_rows([r for r in rows if r["stage"] != "visual hull" and r["step"] == args.steps])


if __name__ == "__main__":
    main()
