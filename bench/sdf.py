"""Forward+backward cost of one optimisation step through the SDF renderer.

Workload S: five primitives -- a sphere smoothly united with a rotated rounded box (k = 0.15), a
rotated torus, a capsule and a ground plane (``--scene pedestal``: a flat cylinder instead of the
plane, so every primitive is marched) -- seen by an orbit camera (fov 45 deg) and lit by one
directional light with soft shadows; Lambert shading composited over a grey background by the
silhouette coverage, L2 loss against a constant image.  One step = render_sdf + shade + loss +
backward w.r.t. every primitive parameter (geometry and colour) and the light direction.

Prints the median ms per step (and its forward / backward split, and the fastest run, which shows
how much other load on the machine inflated the median) for each configuration, as a ratio against
the first row of the same device (256x256 with shadows), plus the tracer's work: marching steps
per pixel for camera rays and shadow rays.

    python bench/sdf.py                    # CPU with 2 threads, plus CUDA if present
    python bench/sdf.py --runs 21 --threads 1 --scene pedestal
"""

from __future__ import annotations

import argparse
import statistics

import torch

from studio.render.sdf import (Capsule, Cylinder, Plane, RoundedBox, SDFModel, Sphere, Torus, Union, camera_rays,
                               render_sdf)
from studio.render.shading import Lights, shade
from studio.runtime import tune_cpu_allocator
from studio.scene.camera import look_at, orbit_eye

from _timing import forward_backward_ms

GOAL_MS = 150.0  # CPU, 2 threads, 256x256 with shadows


def workload(device: torch.device, scene: str) -> dict:
    def p(x) -> torch.Tensor:
        return torch.tensor(x, dtype=torch.float32, device=device, requires_grad=True)

    sphere = Sphere(p([-0.5, 0.0, 0.0]), p(0.5), colour=p([0.9, 0.3, 0.2]))
    box = RoundedBox(p([0.3, -0.1, 0.1]), p([0.4, 0.3, 0.35]), p(0.05), colour=p([0.2, 0.6, 0.9]),
                     rotation=p([0.95, 0.1, 0.3, 0.0]))
    torus = Torus(p([0.2, 0.55, -0.3]), p(0.35), p(0.1), colour=p([0.9, 0.8, 0.2]), rotation=p([0.9, 0.4, 0.0, 0.1]))
    capsule = Capsule(p([-0.6, -0.4, 0.6]), p([0.5, -0.45, 0.7]), p(0.12), colour=p([0.3, 0.9, 0.4]))
    if scene == "plane":
        ground = Plane(p([0.0, 1.0, 0.0]), p(-0.6), colour=p([0.7, 0.7, 0.7]))
    else:
        ground = Cylinder(p([0.0, -0.66, 0.0]), p(1.4), p(0.06), colour=p([0.7, 0.7, 0.7]))
    model = SDFModel(Union(Union(sphere, box, k=0.15), torus, capsule, ground))
    light = p([-0.6, 0.7, 0.3])  # from the left: the shadows fall on visible ground
    return {
        "model": model,
        "params": list(model.parameters().values()) + [light],
        "light": light,
        "view": look_at(orbit_eye(25.0, 25.0, 3.6)).to(device),
    }


def step(w: dict, origins: torch.Tensor, dirs: torch.Tensor, shadows: bool, target: torch.Tensor,
         stats: dict) -> tuple[float, float]:
    """One step; returns (forward ms, backward ms), synchronised on CUDA."""
    for t in w["params"]:
        t.grad = None

    def forward() -> torch.Tensor:
        light = w["light"][None]
        gb = render_sdf(w["model"], origins, dirs, light if shadows else None, stats=stats)
        lights = Lights(ambient=torch.full((3,), 0.15, device=dirs.device), directions=light,
                        colors=torch.ones(1, 3, device=dirs.device))
        img = shade(gb, gb.albedo, lights, "lambert") * gb.coverage + 0.5 * (1 - gb.coverage)
        return torch.nn.functional.mse_loss(img, target)

    return forward_backward_ms(forward, dirs.device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=11, help="timed runs per row (median reported)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads")
    ap.add_argument("--scene", choices=["plane", "pedestal"], default="plane")
    ap.add_argument("--no-tune-alloc", action="store_true",
                    help="leave glibc's allocator as it is (the studio's entry points tune it)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tuned = False if args.no_tune_alloc else tune_cpu_allocator()

    configs = [("cpu", 256, True), ("cpu", 256, False), ("cpu", 128, True)]
    if torch.cuda.is_available():
        configs += [("cuda", 256, True), ("cuda", 256, False), ("cuda", 512, True)]

    print(f"workload S ({args.scene}): 5 primitives, 1 directional light, {args.runs} runs per row, "
          f"{args.threads} CPU threads, allocator tuned: {tuned}, torch {torch.__version__}")
    header = (f"{'device':<7} {'res':>5} {'shadows':>8} {'median ms':>10} {'fwd ms':>8} {'bwd ms':>8} "
              f"{'best ms':>8} {'ratio':>7} {'steps/px':>9} {'shadow steps/px':>16}")
    print(header)
    print("-" * len(header))
    base: dict[str, float] = {}
    for dev_name, res, shadows in configs:
        device = torch.device(dev_name)
        w = workload(device, args.scene)
        origins, dirs = camera_rays(w["view"], 45.0, (res, res))
        target = torch.full((1, res, res, 3), 0.5, device=device)
        stats: dict = {}
        for _ in range(2):
            step(w, origins, dirs, shadows, target, stats)
        samples = [step(w, origins, dirs, shadows, target, stats) for _ in range(args.runs)]
        totals = [f + b for f, b in samples]
        total = statistics.median(totals)
        base.setdefault(dev_name, total)
        px = res * res
        print(f"{dev_name:<7} {res:>5} {'yes' if shadows else 'no':>8} {total:>10.1f} "
              f"{statistics.median(f for f, _ in samples):>8.1f} {statistics.median(b for _, b in samples):>8.1f} "
              f"{min(totals):>8.1f} {total / base[dev_name]:>6.2f}x {stats['ray_steps'] / px:>9.2f} "
              f"{stats['shadow_ray_steps'] / px:>16.2f}")
    print(f"ratio = median ms / median ms of the first row on the same device; goal on CPU with 2 threads at "
          f"256x256 with shadows: <= {GOAL_MS:.0f} ms")


if __name__ == "__main__":
    main()
