"""``studio reconstruct``: a capture folder in, a textured mesh and its measurements out.

    studio reconstruct data/bunny --out runs/bunny
    studio reconstruct scans/mug/sparse/0 --images scans/mug/images --res 256 --steps 900 --out runs/mug

Bad input (a capture that cannot be read, no views, empty masks, cameras that see no common object)
ends with one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from .run import DEFAULT_LOSSES, ReconstructOptions


def add_parser(subparsers: argparse._SubParsersAction, parse_loss, add_threads) -> None:
    """Add the ``reconstruct`` subcommand (``parse_loss`` and ``add_threads`` are the CLI's own helpers)."""
    d = ReconstructOptions()
    p = subparsers.add_parser(
        "reconstruct", help="reconstruct a textured mesh and its lighting from a multi-view capture",
        description="Fit shape (visual hull, then coarse-to-fine large-steps optimisation with remeshing), "
                    "colours, a UV texture and the lighting to a NeRF (transforms*.json) or COLMAP capture. "
                    "Writes mesh.glb, mesh.obj, summary.json, test/<view>.png, curves.csv and a turntable to --out.")
    p.add_argument("dataset", help="capture: a folder with transforms*.json, a transforms json, or a COLMAP model folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--res", type=int, default=None, help="working resolution in pixels (the longer image side)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimisation steps (default {d.steps})")
    p.add_argument("--holdout", type=int, default=None, metavar="K",
                   help="hold out every K-th view for testing (default: transforms_test.json when present)")
    p.add_argument("--images", default=None, help="COLMAP: folder of the images (default ../../images)")
    p.add_argument("--masks", default=None, help="folder of same-named mask images (default: the alpha channel)")
    p.add_argument("--views-per-step", type=int, default=d.views_per_step, help="training views per step")
    p.add_argument("--loss", dest="losses", action="append", type=parse_loss, default=None,
                   help="NAME=WEIGHT, repeatable; replaces the default " + " ".join(f"{n}={w:g}" for n, w in DEFAULT_LOSSES))
    p.add_argument("--texture-size", type=int, default=d.texture_size, help="texels per side of the UV texture")
    p.add_argument("--backend", choices=["auto", "torch", "nvdiffrast"], default="auto", help="render backend")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: CUDA if available)")
    p.add_argument("--seed", type=int, default=0, help="random seed (which views each step sees)")
    p.add_argument("--plugins", action="append", default=None, metavar="DIR",
                   help="folder (or .py file) of plugin losses, repeatable; STUDIO_PLUGINS adds more")
    p.add_argument("--no-video", action="store_true", help="skip the turntable")
    add_threads(p)


def options_from_args(args: argparse.Namespace) -> ReconstructOptions:
    """The :class:`ReconstructOptions` the parsed arguments ask for."""
    return ReconstructOptions(steps=args.steps, views_per_step=args.views_per_step, backend=args.backend,
                              device=args.device, seed=args.seed,
                              losses=list(args.losses) if args.losses else list(DEFAULT_LOSSES),
                              plugin_dirs=list(args.plugins or []), threads=args.threads,
                              texture_size=args.texture_size)


def run(args: argparse.Namespace) -> int:
    """Run ``reconstruct``; user errors propagate to the CLI's one-sentence handler (exit 2)."""
    from ..capture import load_capture
    from .run import build_reconstruction, run_reconstruction

    capture = load_capture(args.dataset, res=args.res, images=args.images, masks=args.masks, holdout=args.holdout)
    scene, engine, notes = build_reconstruction(capture, options_from_args(args))
    for note in notes:
        print(f"studio: {note}", file=sys.stderr)
    s = run_reconstruction(scene, engine, args.out, video=not args.no_video)
    held = (f"held-out PSNR {s['heldout_psnr']:.2f} dB, IoU {s['heldout_iou']:.4f}; " if s["heldout_psnr"] is not None
            else "no held-out views; ")
    print(f"reconstruct: {s['steps']} steps in {s['seconds']:.1f} s ({s['steps_per_s']:.2f} steps/s), "
          f"{s['faces']} triangles; train PSNR {s['train_psnr']:.2f} dB; {held}wrote {args.out}/: " + " ".join(s["files"]))
    return 0
