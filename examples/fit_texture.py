"""Fit the texture of a sphere to renders of a textured planet from random views.

The studio's take on nvdiffrast's ``samples/torch/earth.py``: rasterize + interpolate (UVs and
their screen derivatives) + mipmapped texture lookups with Adam.  The live window shows the fit
next to the target from a fixed camera, and the texture being fitted underneath.

    python examples/fit_texture.py [--steps 200] [--resolution 128] [--no-window] [--hold]
"""

import argparse

import torch

from studio.images import resize
from studio.render import get_backend
from studio.runtime import tune_cpu_allocator
from studio.scene.camera import look_at, orbit_eye, perspective, to_clip
from studio.scene.procedural import planet_texture, uv_sphere
from studio.viewer import LiveWindow


def render(be, mesh, tex, mvp, res):
    clip = to_clip(mesh.vertices, mvp).contiguous()
    rast, rast_db = be.rasterize(clip, mesh.faces, (res, res))
    uv, uv_da = be.interpolate(mesh.uv, rast, mesh.uv_faces, rast_db=rast_db, diff_attrs="all")
    color = be.texture(tex[None], uv, uv_da, filter_mode="linear-mipmap-linear")
    color = color * (rast[..., 3:] > 0)  # black background
    return be.antialias(color, rast, clip, mesh.faces).flip(1)  # flip: top row first


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200, help="Adam steps")
    ap.add_argument("--resolution", type=int, default=128, help="render size in pixels")
    ap.add_argument("--no-window", action="store_true", help="no live window (also automatic without a display)")
    ap.add_argument("--hold", action="store_true", help="keep the window open at the end until you close it")
    args = ap.parse_args()
    tune_cpu_allocator()
    be = get_backend("auto")
    gen = torch.Generator().manual_seed(0)

    sphere = uv_sphere(rows=32, cols=64).to(be.device)
    tex_ref = planet_texture((128, 256)).to(be.device)  # [H,W,3] linear RGB, top row = north pole
    tex = torch.full_like(tex_ref, 0.2).requires_grad_()
    opt = torch.optim.Adam([tex], lr=6e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 10 ** (-it / max(args.steps, 1)))  # 6e-2 -> 6e-3
    proj = perspective(45.0)
    view = (proj @ look_at(orbit_eye(20.0, 20.0, 3.0))).to(be.device)  # fixed camera for the window
    with torch.no_grad():
        target_view = render(be, sphere, tex_ref, view, args.resolution)

    with LiveWindow("fit_texture", enabled=not args.no_window, headless_ok=True) as win:
        for it in range(args.steps):
            az, el = torch.rand(2, generator=gen) * torch.tensor([360.0, 120.0]) - torch.tensor([0.0, 60.0])
            mvp = (proj @ look_at(orbit_eye(az, el, 3.0))).to(be.device)
            with torch.no_grad():
                target = render(be, sphere, tex_ref, mvp, args.resolution)
            img = render(be, sphere, tex, mvp, args.resolution)
            loss = torch.mean((img - target) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if win.wants_frame:  # top: fit | target from a fixed camera; below: the texture being fitted
                with torch.no_grad():
                    shown = torch.cat([render(be, sphere, tex, view, args.resolution), target_view], 2)[0]
                    shown = torch.cat([shown, resize(tex, (args.resolution, 2 * args.resolution))])
                win.show(shown, caption=f"it {it}  loss {loss.item():.2e}")
            if win.closed:
                print(f"window closed at step {it}")
                break
        tex_rmse = (tex.detach().clamp(0, 1) - tex_ref).pow(2).mean().sqrt().item()
        print(f"final: image MSE {loss.item():.2e}, texture RMSE {tex_rmse:.4f} (linear RGB)")
        if args.hold:
            win.hold()


if __name__ == "__main__":
    main()
