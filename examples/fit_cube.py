"""Fit a cube's corner positions and colours to renders of a reference cube from random views.

The studio's take on nvdiffrast's ``samples/torch/cube.py``: rasterize + interpolate + antialias
with Adam, and a live window showing the fit next to the target from a fixed camera.

    python examples/fit_cube.py [--steps 300] [--resolution 128] [--no-window] [--hold]
"""

import argparse

import torch

from studio.render import get_backend
from studio.runtime import tune_cpu_allocator
from studio.scene.camera import look_at, orbit_eye, perspective, to_clip
from studio.scene.procedural import cube_mesh
from studio.viewer import LiveWindow


def render(be, pos, col, tri, mvp, res):
    clip = to_clip(pos, mvp).contiguous()
    rast, _ = be.rasterize(clip, tri, (res, res), grad_db=False)
    color, _ = be.interpolate(col, rast, tri)
    return be.antialias(color, rast, clip, tri).flip(1)  # antialias gives gradients at edges; flip: top row first


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="Adam steps")
    ap.add_argument("--resolution", type=int, default=128, help="render size in pixels")
    ap.add_argument("--no-window", action="store_true", help="no live window (also automatic without a display)")
    ap.add_argument("--hold", action="store_true", help="keep the window open at the end until you close it")
    args = ap.parse_args()
    tune_cpu_allocator()
    be = get_backend("auto")
    gen = torch.Generator().manual_seed(0)

    cube = cube_mesh(size=1.0).to(be.device)
    tri, pos_ref = cube.faces, cube.vertices
    col_ref = pos_ref + 0.5  # corner (x, y, z) -> (r, g, b)
    pos = (pos_ref + 0.25 * (2 * torch.rand(pos_ref.shape, generator=gen) - 1).to(be.device)).requires_grad_()
    col = torch.rand(col_ref.shape, generator=gen).to(be.device).requires_grad_()
    opt = torch.optim.Adam([pos, col], lr=4e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 10 ** (-it / max(args.steps, 1)))  # 4e-2 -> 4e-3
    proj = perspective(45.0)
    view = (proj @ look_at(orbit_eye(35.0, 25.0, 3.5))).to(be.device)  # fixed camera for the window
    with torch.no_grad():
        target_view = render(be, pos_ref, col_ref, tri, view, args.resolution)

    with LiveWindow("fit_cube", enabled=not args.no_window, headless_ok=True) as win:
        for it in range(args.steps):
            az, el = torch.rand(2, generator=gen) * torch.tensor([360.0, 120.0]) - torch.tensor([0.0, 60.0])
            mvp = (proj @ look_at(orbit_eye(az, el, 3.5))).to(be.device)
            with torch.no_grad():
                target = render(be, pos_ref, col_ref, tri, mvp, args.resolution)
            img = render(be, pos, col, tri, mvp, args.resolution)
            loss = torch.mean((img - target) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if win.wants_frame:  # render the display view only for frames the window will draw
                with torch.no_grad():
                    shown = render(be, pos, col, tri, view, args.resolution)
                win.show(torch.cat([shown, target_view], 2), caption=f"it {it}  loss {loss.item():.2e}  (fit | target)")
            if win.closed:
                print(f"window closed at step {it}")
                break
        pos_err = (pos.detach() - pos_ref).norm(dim=1).max().item()
        col_err = (col.detach().clamp(0, 1) - col_ref).pow(2).mean().sqrt().item()
        print(f"final: image MSE {loss.item():.2e}, max vertex error {pos_err:.4f} (edge 1), colour RMSE {col_err:.4f}")
        if args.hold:
            win.hold()


if __name__ == "__main__":
    main()
