"""``studio make-capture``: render a synthetic multi-view capture (NeRF or COLMAP layout)."""

from __future__ import annotations

import argparse

from .synth import SHAPES, make_capture


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``make-capture`` subcommand."""
    p = sub.add_parser("make-capture", help="render a synthetic capture of a mesh (NeRF or COLMAP layout)",
                       description="Render a mesh from N views with the studio's rasterizer into a capture folder "
                                   "(RGBA sRGB PNGs whose alpha is the mask, cameras, gt_mesh.ply).")
    p.add_argument("source", metavar="SCENE_OR_MESH",
                   help=f"a procedural shape ({', '.join(SHAPES)}), a mesh file or a mesh scene (built-in name or "
                        ".toml), normalised into the unit sphere")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--views", type=int, default=32, help="training views (default 32)")
    p.add_argument("--test-views", type=int, default=0, metavar="K", help="held-out views besides them (default 0)")
    p.add_argument("--res", type=int, default=200, help="image side in pixels (default 200)")
    p.add_argument("--layout", choices=["nerf", "colmap"], default="nerf", help="capture layout (default nerf)")
    p.add_argument("--colmap-binary", action="store_true", help="write the COLMAP model as .bin files")
    p.add_argument("--texture", default=None, help="texture name (planet, uv_grid, checkerboard) or image file, for "
                                                  "meshes with UVs")


def run(args: argparse.Namespace) -> int:
    out = make_capture(args.source, args.out, views=args.views, res=args.res, layout=args.layout,
                       binary=args.colmap_binary, test_views=args.test_views, texture=args.texture)
    print(f"wrote {out}")
    return 0
