"""Soft rasterization (SoftRas) against hard rasterization + antialiasing: forward+backward cost.

Two meshes: trimesh icosphere(3) (1,280 faces, radius 0.8, distance 2.5, fov 45 deg) and the
``camera`` scenario's creature (procedural:critter:4, 5,120 faces) seen by that scenario's
ground-truth camera.  One step on vertex positions (clip space) and per-vertex colours:

- hard+AA: rasterize + interpolate (Lambert-shaded vertex colour) + antialias + L2 loss + backward;
- soft σ:  rasterize + soft_rasterize (coverage, nearest-triangle surface outside the hard
  coverage) + interpolate + composite colour·A over black + L2 loss + backward.

Prints median ms per step (forward / backward split, fastest run) and the ratios soft / hard+AA at
the same mesh and resolution, of the medians and of the fastest runs, measured interleaved in one
run (other load on the machine hits both alike; the fastest runs show how much it inflated the
medians).

    python bench/soft_raster.py                       # CPU, 2 threads, 128 and 256
    python bench/soft_raster.py --res 128 --sigma 0.25 1 4 --runs 21 --threads 1 --cpu-time
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import trimesh

from studio.render.soft_raster import soft_rasterize
from studio.render.torch_raster import TorchBackend
from studio.runtime import tune_cpu_allocator
from studio.scene.camera import look_at, orbit_eye, perspective, to_clip

from _timing import forward_backward_ms


def icosphere(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.8)
    mvp = perspective(45.0, 1.0, 0.1, 10.0) @ look_at(orbit_eye(30.0, 20.0, 2.5))
    v = torch.tensor(np.asarray(mesh.vertices), dtype=torch.float32)
    faces = torch.tensor(np.asarray(mesh.faces), dtype=torch.int32, device=device)
    normals = torch.tensor(np.asarray(mesh.vertex_normals), dtype=torch.float32, device=device)
    return to_clip(v, mvp).contiguous().to(device), faces, normals


def camera_scenario(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from studio.scenarios import load_spec
    from studio.workspace import build_scene

    scene = build_scene(load_spec("camera"), "torch", str(device))
    with torch.no_grad():
        values = scene.params.ground_truth_values()
        mvp, _, _ = scene.cameras([0], values)
        verts, normals, faces = scene.world_geometry(values)
        return to_clip(verts, mvp).contiguous(), faces.int().contiguous(), normals


CLOCK = time.perf_counter


def step(be: TorchBackend, w: dict, res: int, sigma: float | None) -> tuple[float, float]:
    """One step; returns (forward ms, backward ms)."""
    pos = w["pos"].clone().requires_grad_(True)
    colour = w["colour"].clone().requires_grad_(True)
    tri = w["tri"]

    def forward() -> torch.Tensor:
        rast, _ = be.rasterize(pos, tri, (res, res), grad_db=False)
        surface, soft = rast, None
        if sigma is not None:
            soft = soft_rasterize(pos, tri, rast, sigma)
            surface = soft.rast
        attrs, _ = be.interpolate(torch.cat([w["normal"], colour], 1), surface, tri)
        lambert = (attrs[..., :3] * w["light"]).sum(-1, keepdim=True).clamp(min=0.0)
        shaded = attrs[..., 3:] * (0.1 + 0.9 * lambert)
        img = be.antialias(shaded, rast, pos, tri) if soft is None else shaded * soft.coverage
        return torch.nn.functional.mse_loss(img, w["target"])

    return forward_backward_ms(forward, pos.device, CLOCK)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--sigma", type=float, nargs="+", default=[1.0], help="soft σ values in px²")
    ap.add_argument("--runs", type=int, default=15, help="timed runs per cell (median reported)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with this process's CPU time instead of the wall clock (with --threads 1 it "
                         "ignores time lost to other processes on a busy machine)")
    args = ap.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    torch.set_num_threads(args.threads)
    tuned = tune_cpu_allocator()
    dev = torch.device("cpu")
    be = TorchBackend(dev)
    meshes = {"icosphere(3)": icosphere(dev), "camera critter": camera_scenario(dev)}
    print(f"{args.runs} interleaved runs per cell, {args.threads} CPU threads, allocator tuned: {tuned}, "
          f"{'CPU' if args.cpu_time else 'wall'} time, torch {torch.__version__}")
    header = (f"{'mesh':<15} {'faces':>6} {'res':>5} {'mode':<10} {'median ms':>10} {'fwd ms':>8} {'bwd ms':>8} "
              f"{'min ms':>8} {'ratio':>7} {'min ratio':>9}")
    print(header)
    print("-" * len(header))
    modes: list[tuple[str, float | None]] = [("hard+AA", None)] + [(f"soft σ={s:g}", s) for s in args.sigma]
    for name, (pos, tri, normal) in meshes.items():
        gen = torch.Generator().manual_seed(0)
        for res in args.res:
            w = {"pos": pos, "tri": tri, "normal": normal,
                 "colour": torch.rand(pos.shape[1], 3, generator=gen),
                 "light": torch.nn.functional.normalize(torch.tensor([0.4, 0.5, 0.8]), dim=0),
                 "target": torch.full((1, res, res, 3), 0.5)}
            for _, sigma in modes:
                for _ in range(2):
                    step(be, w, res, sigma)
            samples: dict[str, list[tuple[float, float]]] = {m: [] for m, _ in modes}
            for _ in range(args.runs):
                for m, sigma in modes:
                    samples[m].append(step(be, w, res, sigma))
            base = statistics.median(f + b for f, b in samples["hard+AA"])
            base_min = min(f + b for f, b in samples["hard+AA"])
            for m, _ in modes:
                s = samples[m]
                total = statistics.median(f + b for f, b in s)
                print(f"{name:<15} {tri.shape[0]:>6} {res:>5} {m:<10} {total:>10.1f} "
                      f"{statistics.median(f for f, _ in s):>8.1f} {statistics.median(b for _, b in s):>8.1f} "
                      f"{min(f + b for f, b in s):>8.1f} {total / base:>6.2f}x "
                      f"{min(f + b for f, b in s) / base_min:>8.2f}x")
    print("ratio = median ms / median ms of hard+AA for the same mesh and resolution; min ratio = the same for the "
          "fastest runs (less sensitive to other load)")


if __name__ == "__main__":
    main()
