"""``studio export-dataset``: the command-line front end of :func:`studio.data.export_dataset`.

    studio export-dataset objects --n 1000 --out data/objects
    studio export-dataset my_scene.toml --n 20000 --out /data/set --task segment --shard 0/4
    studio export-dataset objects --n 20000 --out /data/set --ray head-node:6379 --resume

Bad input (options, scene, output folder) ends with one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import user_errors
from ..scale.cli import add_ray_options
from .config import TASKS, DatasetError, ExportConfig, parse_shard

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export-dataset`` subcommand to the studio's subparsers."""
    d = ExportConfig()
    p = subparsers.add_parser(
        "export-dataset", help="render a randomised, labelled YOLO dataset (detection or segmentation)",
        description="Render N randomised images of a scene with occlusion-aware labels in Ultralytics YOLO "
                    "format: images/, labels/, data.yaml and preview.png in --out.")
    p.add_argument("scene", nargs="?", default=d.scene,
                   help=f"built-in scenario name or scene .toml with class names (default: {d.scene})")
    p.add_argument("--n", type=int, required=True, help="number of images in the dataset (over all shards)")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --overwrite)")
    p.add_argument("--task", choices=TASKS, default=d.task, help="detect: boxes; segment: polygons")
    p.add_argument("--imgsz", type=int, default=d.imgsz, help="image width and height in pixels")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="share of validation images")
    p.add_argument("--seed", type=int, default=d.seed, help="dataset seed (image i uses the generator of (seed, i))")
    p.add_argument("--min-visible-px", type=int, default=d.min_visible_px,
                   help="objects showing fewer pixels get no label")
    p.add_argument("--backend", choices=["auto", "torch", "nvdiffrast"], default=d.backend, help="render backend")
    p.add_argument("--device", default=d.device, help="cpu, cuda, cuda:N or mps (default: CUDA if available)")
    p.add_argument("--shard", default="0/1", metavar="I/K",
                   help="write only images i with i %% K == I (0 <= I < K); shards merge by copying folders")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the dataset in --out (sharded: only this shard's files)")
    p.add_argument("--no-hard-case", action="store_true", help="skip the scene's [export.hard_case] search")
    p.add_argument("--preview", type=int, default=d.preview, help="images on preview.png (0: none)")
    p.add_argument("--plugins", action="append", default=None, metavar="DIR",
                   help="folder (or .py file) of plugin losses for the hard-case objective, repeatable")
    p.add_argument("--resume", action="store_true",
                   help="keep the complete pairs of an interrupted run in --out and render only the rest")
    add_ray_options(p, "chunk of images").add_argument(
        "--chunk", type=int, default=None, metavar="K",
        help="images per Ray task (default: about four tasks per worker, at most 16)")


def config_from_args(args: argparse.Namespace) -> ExportConfig:
    """The :class:`ExportConfig` the parsed arguments ask for."""
    return ExportConfig(scene=args.scene, out=args.out, n=args.n, task=args.task, imgsz=args.imgsz,
                        val_fraction=args.val_fraction, seed=args.seed, min_visible_px=args.min_visible_px,
                        backend=args.backend, device=args.device, shard=parse_shard(args.shard),
                        overwrite=args.overwrite, hard_case=not args.no_hard_case, preview=args.preview,
                        plugin_dirs=list(args.plugins or []), resume=args.resume)


def run(args: argparse.Namespace) -> int:
    """Run ``export-dataset``; returns the exit code (0, 2 for bad input, 130 when interrupted)."""
    from tqdm import tqdm

    from .export import export_dataset
    from .render import DatasetRenderer

    bar = None

    def progress(done: int, planned: int) -> None:
        nonlocal bar
        if bar is None:  # opened on the first image, so that bad input prints nothing but its sentence
            bar = tqdm(total=planned, desc="export", unit="img", dynamic_ncols=True)
        bar.update(done - bar.n)

    try:
        config = config_from_args(args)
        if args.ray is None and (args.chunk is not None or args.gpus_per_task or args.cpus_per_task != 1):
            raise DatasetError("--chunk, --cpus-per-task and --gpus-per-task set how Ray tasks run; add --ray "
                               "(or leave them out for a local export).")
        renderer = DatasetRenderer(config)
        if not renderer.section.randomises:
            print(f"studio: note: {config.scene} declares no [export] randomisation, so every image shows the "
                  "scene as its file describes it.", file=sys.stderr)
        if args.ray is not None:
            from ..scale import export_dataset_ray

            result = export_dataset_ray(config, address=args.ray or None, chunk=args.chunk,
                                        cpus_per_task=args.cpus_per_task, gpus_per_task=args.gpus_per_task,
                                        progress=progress, renderer=renderer)
        else:
            result = export_dataset(config, progress=progress, renderer=renderer)
    except user_errors() as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        done = bar.n if bar is not None else 0
        print(f"studio: interrupted; {done} complete image/label pairs are in {args.out}.", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if bar is not None:
            bar.close()
    shards = config.shard[1]
    labels = ", ".join(f"{name} {count}" for name, count in result.labels.items())
    print(f"wrote {result.written} images ({result.splits['train']} train, {result.splits['val']} val) to "
          f"{result.out} in {result.seconds:.1f} s ({result.images_per_second:.1f} images/s); labels: {labels}; "
          f"{result.empty} without labels; {result.searched} hard cases searched")
    if result.threads is not None:
        print(f"CPU threads: {result.threads} ({result.threads_reason})")
    if result.preview is not None:
        print(f"preview: {result.preview}")
    if shards == 1 and result.splits["val"] == 0 and config.val_fraction > 0:
        print(f"studio: note: {config.n} images at --val-fraction {config.val_fraction} leave the validation split "
              "empty; Ultralytics needs validation images, so export more images.", file=sys.stderr)
    print(f"train with: YOLO(\"yolo11n.pt\").train(data=\"{result.data_yaml}\")")
    return 0
