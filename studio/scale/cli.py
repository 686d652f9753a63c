"""``studio sweep``: the grid of ``studio optimize`` runs, locally or on Ray.

    studio sweep camera --set antialias=on,off --seeds 0-2 --steps 80 --out sweeps/aa
    studio sweep pose --set restarts=0,4 --set lr.camera=0.1,0.5 --seeds 0-4 --out sweeps/pose --ray

Bad input ends with one sentence on stderr and exit code 2 (handled by :func:`studio.cli.main`).
"""

from __future__ import annotations

import argparse
import sys

from .sweep import RunOutput, parse_seeds, parse_set


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand to the studio's subparsers."""
    p = subparsers.add_parser(
        "sweep", help="run studio optimize over a grid of settings and seeds; sweep.csv and sweep.png",
        description="Run the grid of `studio optimize` runs over the --set values and --seeds, one after another "
                    "or as Ray tasks (--ray): each run's files in DIR/runs/<id>/, one row per run in DIR/sweep.csv, "
                    "the final error per group against each setting in DIR/sweep.png.")
    p.add_argument("scene", help="built-in scenario name or scene .toml")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a swept setting: any option of studio optimize without its dashes (antialias, soft, mip, "
                        "restarts, res, backend, ...), lr.GROUP, or loss (l1=1+silhouette=0.5 for several); "
                        "repeatable, the grid is every combination")
    p.add_argument("--seeds", default=None, metavar="0-4", help="seeds of each grid point: a range and/or list")
    p.add_argument("--steps", type=int, default=None, help="steps per run (default: the scene's budget)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads of each local run (default: measured); on Ray, --cpus-per-task")
    add_ray_options(p, "run")


def add_ray_options(p: argparse.ArgumentParser, task: str) -> argparse._ArgumentGroup:
    """``--ray [ADDRESS]``, ``--cpus-per-task`` and ``--gpus-per-task`` in a "Ray" group of ``p``;
    ``task`` names what one Ray task does (in the help).  Returns the group for more options."""
    r = p.add_argument_group("Ray (pip install -e '.[ray]')")
    r.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray: alone, RAY_ADDRESS or a local instance sized to this machine; with ADDRESS "
                        "(host:6379, auto, ray://host:10001), join that cluster")
    r.add_argument("--cpus-per-task", type=int, default=1, metavar="N", help=f"CPUs and torch threads per {task}")
    r.add_argument("--gpus-per-task", type=float, default=0.0, metavar="G",
                   help=f"GPUs per {task} (0: CPU workers); tasks then run on CUDA")
    return r


def run(args: argparse.Namespace) -> int:
    """Run ``sweep``; user errors propagate to :func:`studio.cli.main` (one sentence, exit 2)."""
    from .sweep import run_sweep

    grid: dict[str, list[str]] = {}
    for text in args.sets:
        key, words = parse_set(text)
        grid.setdefault(key, []).extend(w for w in words if w not in grid.get(key, []))
    seeds = parse_seeds(args.seeds) if args.seeds else None

    def progress(output: RunOutput, done: int, total: int) -> None:
        row = output.row
        errors = ", ".join(f"{k[:-6]} {row[k]:.4g} {row[k[:-6] + '_unit']}" for k in row if k.endswith("_final")
                           and k != "loss_final")
        print(f"[{done}/{total}] {output.run.id}: {row['steps']} steps in {row['seconds']:.1f} s; final {errors}",
              file=sys.stderr)

    rows = run_sweep(args.scene, grid, out=args.out, seeds=seeds, steps=args.steps, ray=args.ray is not None,
                     address=args.ray or None, cpus_per_task=args.cpus_per_task, gpus_per_task=args.gpus_per_task,
                     threads=args.threads, progress=progress)
    print(f"wrote {len(rows)} runs to {args.out}/runs/, {args.out}/sweep.csv and {args.out}/sweep.png")
    return 0
