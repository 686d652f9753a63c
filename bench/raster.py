"""Forward+backward cost of one optimisation step through the rasterization primitives.

Workload W (issue #2): trimesh icosphere(subdivisions=5) (20,480 faces) of radius 0.8 at distance
2.5, fov 45 deg, Lambert-shaded vertex colours, L2 loss; one step = rasterize + interpolate +
antialias + loss + backward w.r.t. positions and colours.

Prints the median ms per step (and its forward / backward split) for each available backend and
device at each resolution, as ratios against nvdiffrast when it is present, else against the
first row at that resolution.

    python bench/raster.py                   # CPU with 2 threads, plus CUDA/nvdiffrast if present
    python bench/raster.py --threads 1 --res 256 --runs 21
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
import trimesh

from studio.render import get_backend
from studio.render.torch_raster import TorchBackend
from studio.runtime import tune_cpu_allocator
from studio.scene.camera import look_at, perspective, to_clip

from _timing import forward_backward_ms


def workload(device: torch.device) -> dict[str, torch.Tensor]:
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=0.8)
    mvp = perspective(45.0, 1.0, 0.1, 10.0) @ look_at(torch.tensor([0.0, 0.0, 2.5]))
    v = torch.tensor(np.asarray(mesh.vertices), dtype=torch.float32)
    return {
        "pos": to_clip(v, mvp).contiguous().to(device),
        "tri": torch.tensor(np.asarray(mesh.faces), dtype=torch.int32, device=device),
        "normal": torch.tensor(np.asarray(mesh.vertex_normals), dtype=torch.float32, device=device),
        "colour": torch.rand(len(v), 3, generator=torch.Generator().manual_seed(0)).to(device),
        "light": torch.nn.functional.normalize(torch.tensor([0.4, 0.5, 0.8], device=device), dim=0),
    }


def step(be, w: dict[str, torch.Tensor], res: int, target: torch.Tensor) -> tuple[float, float]:
    """One step; returns (forward ms, backward ms)."""
    pos = w["pos"].clone().requires_grad_(True)
    colour = w["colour"].clone().requires_grad_(True)

    def forward() -> torch.Tensor:
        rast, _ = be.rasterize(pos, w["tri"], (res, res), grad_db=False)
        attrs, _ = be.interpolate(torch.cat([w["normal"], colour], 1), rast, w["tri"])
        lambert = (attrs[..., :3] * w["light"]).sum(-1, keepdim=True).clamp(min=0.0)
        img = be.antialias(attrs[..., 3:] * (0.1 + 0.9 * lambert), rast, pos, w["tri"])
        return torch.nn.functional.mse_loss(img, target)

    return forward_backward_ms(forward, pos.device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--runs", type=int, default=11, help="timed runs per cell (median reported)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the torch backend")
    ap.add_argument("--no-tune-alloc", action="store_true",
                    help="leave glibc's allocator as it is (the studio's entry points tune it)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tuned = False if args.no_tune_alloc else tune_cpu_allocator()

    backends = [("torch", TorchBackend("cpu"))]
    if torch.cuda.is_available():
        backends.append(("torch", TorchBackend("cuda")))
        try:
            backends.append(("nvdiffrast", get_backend("nvdiffrast", "cuda")))
        except Exception as exc:  # noqa: BLE001 - report and bench what is there
            print(f"nvdiffrast not benchmarked: {exc}")

    print(f"workload W: icosphere(5) 20,480 faces, {args.runs} runs per cell, {args.threads} CPU threads, "
          f"allocator tuned: {tuned}, torch {torch.__version__}")
    header = f"{'backend':<11} {'device':<7} {'res':>5} {'median ms':>10} {'fwd ms':>8} {'bwd ms':>8} {'ratio':>8}"
    print(header)
    print("-" * len(header))
    for res in args.res:
        rows = []
        for name, be in backends:
            w = workload(be.device)
            target = torch.full((1, res, res, 3), 0.5, device=be.device)
            for _ in range(2):
                step(be, w, res, target)
            samples = [step(be, w, res, target) for _ in range(args.runs)]
            total = statistics.median(f + b for f, b in samples)
            rows.append((name, be.device.type, total, statistics.median(f for f, _ in samples),
                         statistics.median(b for _, b in samples)))
        base = next((r[2] for r in rows if r[0] == "nvdiffrast"), rows[0][2])
        for name, dev, total, fwd, bwd in rows:
            print(f"{name:<11} {dev:<7} {res:>5} {total:>10.1f} {fwd:>8.1f} {bwd:>8.1f} {total / base:>7.2f}x")
    base_name = "nvdiffrast" if any(n == "nvdiffrast" for n, _ in backends) else "the first row"
    print(f"ratio = median ms / median ms of {base_name} at the same resolution")


if __name__ == "__main__":
    main()
