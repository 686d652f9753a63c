"""Visibility gradients against supersampled coverage, convergence and cost: edge_grad vs antialias.

Three parts (issue #13), each printing a table:

1. accuracy: the loss linearised at the reference, L(v) = sum_px w * I(v), w = 2 (ss(v0) - target)
   held fixed, ss = 8x8-supersampled coverage of a white-on-black silhouette
   (:mod:`studio.render.visibility_check`).  For each rigid motion (target: the mesh moved 1 px
   along it) the directional derivative through each primitive as a ratio of the central finite
   difference of sum w * ss (bar: 0.75-1.25); for 8 smooth random fields against a target with
   ~1 px smooth dents the cosine (bar >= 0.95) and magnitude ratio (bar 0.75-1.25) of the vector of
   directional derivatives.  Meshes: a ~16k-face scanned-like blob and a 1,280-face lumpy sphere.
2. convergence: the ``camera`` scenario on the scanned-like blob and ``deform`` on a 20,480-face
   icosphere, once per visibility mode; steps each needs to reach the error the slower run ends at.
3. cost: one rasterize + interpolate + shade + visibility + L2 + backward step at 256² on the
   20,480-face icosphere of bench/raster.py, the two modes interleaved, median ms and the ratio.

    python bench/visibility.py                       # everything (minutes)
    python bench/visibility.py --parts accuracy --res 128
    python bench/visibility.py --parts cost --runs 15
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from studio.render import visibility_check as vc
from studio.render.raster_pass import visibility_finish
from studio.render.torch_raster import TorchBackend
from studio.runtime import tune_cpu_allocator
from studio.scene.camera import look_at, orbit_eye, perspective
from studio.scene.mesh import vertex_normals
from studio.scene.procedural import displaced_icosphere, scanned_blob

from _timing import forward_backward_ms
from raster import workload

MODES = ("edge", "antialias")


def accuracy(res: int) -> None:
    be = TorchBackend("cpu")
    mvp = perspective(40.0, 1.0, 0.1, 20.0) @ look_at(orbit_eye(30.0, 15.0, 3.2))
    print(f"\naccuracy at {res} px (ratio of the finite-difference reference; bar 0.75-1.25)")
    print(f"{'mesh':28s} {'motion':18s} {'reference':>10s} " + " ".join(f"{m:>10s}" for m in MODES))
    for mesh in (scanned_blob(), displaced_icosphere(3)):
        label = f"{mesh.name} ({mesh.faces.shape[0]:,} faces)"
        for c in vc.check_rigid(be, mesh.vertices, mesh.faces, mvp, res, MODES):
            print(f"{label:28s} {c.name:18s} {c.reference:10.2f} " + " ".join(f"{c.ratio(m):10.3f}" for m in MODES))
        f = vc.check_fields(be, mesh.vertices, vertex_normals(mesh.vertices, mesh.faces), mesh.faces, mvp, res, MODES)
        print(f"{label:28s} {'8 fields: cosine':18s} {'':10s} " + " ".join(f"{f.cosine(m):10.3f}" for m in MODES))
        print(f"{label:28s} {'8 fields: |d|/|ref|':18s} {'':10s} " + " ".join(f"{f.magnitude(m):10.3f}" for m in MODES))


def _steps_to(history: np.ndarray, level: float) -> int | None:
    hit = np.nonzero(history <= level)[0]
    return int(hit[0]) + 1 if hit.size else None


def convergence(steps: int) -> None:
    from studio.optim.engine import Engine, EngineConfig
    from studio.scenarios import load_spec
    from studio.workspace import build_scene, load_targets

    print(f"\nconvergence ({steps} steps per run): steps to reach the error the slower run ends at")
    cases = (("camera", "procedural:scanned_blob", None, "camera"),
             ("deform", "procedural:icosphere:5", "procedural:lobed_sphere:5", "geometry"))
    for name, mesh, target, group in cases:
        curves = {}
        for mode in MODES:
            spec = load_spec(name)
            spec.objects[0].mesh = mesh
            if target is not None:
                spec.objects[0].target_mesh = target
            spec.steps = steps
            scene = build_scene(spec, "torch", "cpu")
            targets, _ = load_targets(scene)
            scene.options["visibility"] = mode
            torch.manual_seed(spec.seed)
            engine = Engine(scene, targets, [(l.name, l.weight, l.params) for l in spec.losses],
                            EngineConfig(steps=steps, views_per_step=spec.views_per_step, seed=spec.seed,
                                         group_lr=spec.group_lr, restarts=spec.restarts, lr_decay=spec.lr_decay))
            engine.start_thread()
            engine.start(until=steps)
            snap = engine.wait_snapshot(predicate=lambda s: s.finished or (not s.running and s.step >= steps),
                                        timeout=7200)
            engine.stop()
            h = np.asarray(snap.history[group], dtype=float)
            curves[mode] = np.fmin.accumulate(np.where(np.isnan(h), np.inf, h))
        level = max(float(c[-1]) for c in curves.values())
        faces = f"{spec.objects[0].mesh}"
        print(f"{name:8s} on {faces:28s} level {level:.4g}: " +
              ", ".join(f"{m} {_steps_to(c, level)} steps (final {c[-1]:.4g})" for m, c in curves.items()))


def cost(runs: int, res: int) -> None:
    be = TorchBackend("cpu")
    w = workload(be.device)
    target = torch.zeros(1, res, res, 3)

    def step(mode: str) -> float:
        pos = w["pos"].clone().requires_grad_(True)
        colour = w["colour"].clone().requires_grad_(True)

        def forward() -> torch.Tensor:
            rast, _ = be.rasterize(pos, w["tri"], (res, res), grad_db=False)
            attrs, _ = be.interpolate(torch.cat([w["normal"], colour], 1), rast, w["tri"])
            lambert = (attrs[..., :3] * w["light"]).sum(-1, keepdim=True).clamp(min=0.0)
            img = visibility_finish(be, mode, rast, pos, w["tri"])(attrs[..., 3:] * (0.1 + 0.9 * lambert))
            return torch.nn.functional.mse_loss(img, target)

        f, b = forward_backward_ms(forward, be.device)
        return f + b

    for mode in MODES:  # warm-up (and the antialias topology cache)
        step(mode)
    times: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(runs):
        for mode in MODES:
            times[mode].append(step(mode))
    med = {m: statistics.median(t) for m, t in times.items()}
    print(f"\ncost of one step at {res}² on icosphere(5), 20,480 faces ({runs} interleaved runs, "
          f"{torch.get_num_threads()} threads)")
    for m in MODES:
        print(f"  {m:10s} {med[m]:8.1f} ms   {med[m] / med['antialias']:.2f}x antialias")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", nargs="+", default=["accuracy", "cost", "convergence"],
                    choices=["accuracy", "cost", "convergence"])
    ap.add_argument("--res", type=int, default=128, help="accuracy resolution (px)")
    ap.add_argument("--runs", type=int, default=11, help="timed runs per mode (median reported)")
    ap.add_argument("--steps", type=int, default=150, help="optimisation steps per convergence run")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    if "accuracy" in args.parts:
        accuracy(args.res)
    if "cost" in args.parts:
        cost(args.runs, 256)
    if "convergence" in args.parts:
        convergence(args.steps)


if __name__ == "__main__":
    main()
