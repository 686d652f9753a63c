"""Cost of mesh shadows: ms per optimisation step without shadows, with hard and with soft shadows.

Workload W (as bench/raster.py): trimesh icosphere(subdivisions=5) (20,480 faces) of radius 0.8 at
distance 2.5, fov 45 deg, plus a 2-triangle ground plane under it that receives its shadow; one
sun.  One step = rasterize + interpolate into a G-buffer, [shadow maps from the sun + visibility at
every shaded pixel], Lambert shading, antialiasing, L2 loss, backward w.r.t. vertex positions,
vertex colours and the sun direction.  The three variants run interleaved (off, hard, soft, off,
...) so that load on a shared machine hits them alike; medians and ratios against "off".

    python bench/shadow.py                      # 256^2, shadow maps of 256 and 512 texels, 2 threads
    python bench/shadow.py --threads 1 --clock cpu  # CPU time of one thread: steadier under load
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np
import torch
import trimesh

from studio.render.gbuffer import GBuffer
from studio.render.raster_pass import raster_gbuffer
from studio.render.shading import Lights, shade
from studio.render.shadow import shadow_gbuffer_term
from studio.render.torch_raster import TorchBackend
from studio.runtime import tune_cpu_allocator
from studio.scene.camera import look_at, perspective, to_clip
from studio.scene.mesh import vertex_normals

from _timing import forward_backward_ms

EYE = torch.tensor([0.0, 0.6, 2.5])


def workload() -> dict[str, torch.Tensor]:
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=0.8)
    ground = np.array([[-2.5, -0.85, -2.5], [2.5, -0.85, -2.5], [2.5, -0.85, 2.5], [-2.5, -0.85, 2.5]])
    v = torch.tensor(np.concatenate([np.asarray(mesh.vertices), ground]), dtype=torch.float32)
    n0 = len(mesh.vertices)
    faces = np.concatenate([np.asarray(mesh.faces), np.array([[0, 2, 1], [0, 3, 2]]) + n0])
    return {
        "verts": v,
        "tri": torch.tensor(faces, dtype=torch.int32),
        "colour": torch.rand(len(v), 3, generator=torch.Generator().manual_seed(0)),
        "sun": torch.tensor([0.5, 0.8, 0.3]),
        "mvp": perspective(45.0, 1.0, 0.1, 10.0) @ look_at(EYE),
    }


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def step(be: TorchBackend, w: dict[str, torch.Tensor], res: int, mode: str, size: int, topology: object,
         target: torch.Tensor) -> tuple[float, float]:
    """One step; returns (forward ms, backward ms)."""
    verts = w["verts"].clone().requires_grad_(True)
    colour = w["colour"].clone().requires_grad_(True)
    sun = w["sun"].clone().requires_grad_(True)

    def forward() -> torch.Tensor:
        pos = to_clip(verts, w["mvp"]).contiguous()
        gb: GBuffer = raster_gbuffer(be, pos, w["tri"], (res, res), world_pos=verts,
                                     normals=vertex_normals(verts, w["tri"]), eye=EYE[None],
                                     forward=torch.nn.functional.normalize(-EYE, dim=0)[None], colors=colour,
                                     topology=topology)
        lights = Lights(torch.full((3,), 0.1), sun[None], torch.ones(1, 3))
        if mode != "off":
            gb = replace(gb, shadow=shadow_gbuffer_term(be, verts, w["tri"], lights.directions, gb.position, gb.normal,
                                                        mode=mode, bias=0.01, penumbra_deg=torch.tensor([3.0]),
                                                        size=size, topology=topology))
        img = gb.finish(shade(gb, gb.albedo, lights, "lambert"))
        return torch.nn.functional.mse_loss(img, target)

    return forward_backward_ms(forward, "cpu", clock)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--maps", type=int, nargs="+", default=[256, 512], help="shadow map sizes in texels")
    ap.add_argument("--runs", type=int, default=11, help="timed runs per variant (median reported)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="cpu: this process's CPU time (steadier on a busy machine; use it with --threads 1)")
    args = ap.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    be = TorchBackend("cpu")
    w = workload()
    topology = be.construct_topology(w["tri"])
    target = torch.full((1, args.res, args.res, 3), 0.5)
    variants = [("off", 0)] + [(m, s) for s in args.maps for m in ("hard", "soft")]
    for mode, size in variants:  # warm-up
        step(be, w, args.res, mode, size, topology, target)
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {v: [] for v in variants}
    for _ in range(args.runs):
        for v in variants:
            samples[v].append(step(be, w, args.res, *v, topology, target))
    print(f"workload W + ground plane: {w['tri'].shape[0]:,} faces at {args.res}^2, one sun, {args.runs} interleaved "
          f"runs per variant, {args.threads} CPU threads, {args.clock} clock, torch {torch.__version__}")
    header = f"{'shadows':<8} {'map':>5} {'median ms':>10} {'fwd ms':>8} {'bwd ms':>8} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    base = statistics.median(f + b for f, b in samples[("off", 0)])
    for (mode, size), s in samples.items():
        total = statistics.median(f + b for f, b in s)
        print(f"{mode:<8} {size or '-':>5} {total:>10.1f} {statistics.median(f for f, _ in s):>8.1f} "
              f"{statistics.median(b for _, b in s):>8.1f} {total / base:>6.2f}x")
    print('ratio = median ms / median ms of "off" (no shadow pass) in the same run')


if __name__ == "__main__":
    main()
