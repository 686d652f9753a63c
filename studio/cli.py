"""The ``studio`` command: the GUI by default, plus headless subcommands.

    studio                      open the studio on the default scene
    studio gui [SCENE] ...      open the studio
    studio scenes               list the built-in scenarios
    studio losses               list every loss: built-ins and plugins, with weights and parameters
    studio optimize SCENE ...   fit a scene headless and write images, curves and a summary
    studio render SCENE ...     render the ground truth (or the initial guess) to a PNG
    studio reconstruct DATASET  reconstruct a textured mesh from a multi-view capture
    studio make-capture MESH .. render a synthetic multi-view capture (NeRF or COLMAP layout)
    studio sweep SCENE ...      a grid of optimize runs over settings and seeds, locally or on Ray

Bad input ends with one sentence on stderr and exit code 2, never a traceback.  ``optimize`` exits
with 3 when the run stopped early (NaN steps, a failing or stuck step) and 130 on Ctrl-C, after
writing the outputs of the last good state.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .capture import cli as capture_cli
from .data import cli as data_cli
from .errors import UsageError, memory_advice, out_of_memory, user_errors
from .images import heatmap, save_png
from .scale import cli as sweep_cli
from .reconstruct import cli as reconstruct_cli
from .optim.compare import SWITCHES as SWITCH_CHOICES
from .optim.engine_types import WATCHDOG_S
from .optim.watchdog import run_guarded
from .outputs import FrameRecorder, load_params_json, world_mesh, write_curves_csv, write_gif
from .paths import user_path
from .render.raster_pass import VISIBILITY_MODES
from .render.shadow import SHADOW_MODES
from .runtime import tune_cpu_allocator

log = logging.getLogger("studio")

#: Errors that are the user's input, reported as one sentence with exit code 2.
EXIT_BAD_INPUT = 2
#: The run stopped before its budget (NaN steps, a failing or stuck step, a dead worker); the
#: outputs of the last good state were written.
EXIT_INCOMPLETE = 3
#: Ctrl-C (the outputs of the last good state were written).
EXIT_INTERRUPTED = 130
#: Mean |render - target| (linear RGB) shown as white in final.png's difference panel.
DIFF_VMAX = 0.5


class _FirstLine(logging.Formatter):
    """Log records as their first line: the sentence, without the traceback that ``-v`` shows."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage().split("\n", 1)[0]


def _parse_loss(text: str) -> tuple[str, float]:
    name, _, weight = text.partition("=")
    try:
        value = float(weight) if weight else 1.0
    except ValueError:
        value = float("nan")
    if not name.strip() or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"--loss must look like NAME=WEIGHT with a finite weight (e.g. l1=0.5), "
                                         f"got {text!r}")
    return name.strip(), value


def _parse_lr(text: str) -> tuple[str, float]:
    from .scene.params import GROUPS

    group, _, rate = text.partition("=")
    try:
        value = float(rate)
    except ValueError:
        value = float("nan")
    if group.strip() not in GROUPS or not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"--lr must look like GROUP=RATE with GROUP one of {', '.join(GROUPS)} and "
                                         f"a rate > 0 (e.g. camera=0.2), got {text!r}")
    return group.strip(), value


def _add_plugins_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugins", action="append", default=None, metavar="DIR",
                   help="folder (or .py file) of plugin losses, repeatable; STUDIO_PLUGINS adds more")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["auto", "torch", "nvdiffrast"], default="auto", help="render backend")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: CUDA if available)")
    _add_res_option(p)
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the scene's)")
    _add_plugins_option(p)


def _add_res_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--res", nargs="+", default=None, metavar="H [W]",
                   help="render resolution in pixels: a size (square), H W or HxW (default: the scene's)")


def _res(args: argparse.Namespace) -> tuple[int, int] | None:
    from .workspace import parse_resolution

    return parse_resolution(args.res) if args.res is not None else None


def _add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_threads, default=None, metavar="N|auto",
                   help="CPU threads of the optimiser's steps (default auto: the fastest, measured on the first steps)")


def _threads(text: str) -> int | None:
    if text == "auto":
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected auto or a whole number of at least 1, got {text!r}")


def _on_off(text: str) -> bool:
    if text.lower() in ("on", "off"):
        return text.lower() == "on"
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


def _add_visibility_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--visibility", choices=VISIBILITY_MODES, default=None,
                   help="where visibility gradients come from: antialias (silhouette blending), edge (edge_grad at "
                        "every triangle boundary), soft (soft rasterization), none (default: the scene's)")


def _add_teaching_options(p: argparse.ArgumentParser) -> None:
    t = p.add_argument_group("teaching switches (the targets are always rendered without them)")
    _add_visibility_option(t)
    t.add_argument("--antialias", type=_on_off, default=None, metavar="on|off",
                   help="same as --visibility antialias (on) or none (off)")
    t.add_argument("--soft", type=float, default=None, metavar="SIGMA",
                   help="soft rasterization (SoftRas coverage) with sigma in squared pixels instead of antialiasing")
    t.add_argument("--mip", type=_on_off, default=None, metavar="on|off", help="trilinear mipmapping of textures")
    t.add_argument("--restarts", type=int, default=None, metavar="N",
                   help="random orientations tried before the gradient phase (pose)")
    t.add_argument("--shadows", choices=SHADOW_MODES, default=None,
                   help="mesh shadows of scenes with a [shadows] section: hard ones give the light no gradient")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="studio", description="Differentiable Rendering Studio")
    ap.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = ap.add_subparsers(dest="command")

    g = sub.add_parser("gui", help="open the studio window")
    g.add_argument("scene", nargs="?", default=None, help="built-in scenario name or scene .toml")
    _add_run_options(g)
    _add_threads_option(g)
    _add_visibility_option(g)
    g.add_argument("--run", action="store_true", help="start optimising right away")
    g.add_argument("--screenshot", default=None, help="save a screenshot of the window to this PNG and exit")
    g.add_argument("--after-steps", type=int, default=0, help="with --screenshot: wait for this many steps first")

    sub.add_parser("scenes", help="list the built-in scenarios")

    ls = sub.add_parser("losses", help="list every loss (built-ins and plugins): weight, parameters, source")
    _add_plugins_option(ls)

    o = sub.add_parser("optimize", help="fit a scene headless and write results to --out")
    o.add_argument("scene", help="built-in scenario name or scene .toml")
    _add_run_options(o)
    _add_threads_option(o)
    o.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the scene's budget)")
    o.add_argument("--target", default=None, help="fit this photograph instead of the synthetic target (view 0)")
    o.add_argument("--mask", default=None, help="with --target: object mask image of the same size")
    o.add_argument("--target-colorspace", choices=["srgb", "linear"], default=None,
                   help="how --target is encoded (default: 8/16-bit PNG/JPEG/TIFF are srgb, float TIFF/EXR/NPY linear)")
    o.add_argument("--loss", dest="losses", action="append", type=_parse_loss, default=None,
                   help="NAME=WEIGHT, repeatable; replaces the scene's losses")
    o.add_argument("--lr", dest="group_lr", action="append", type=_parse_lr, default=None, metavar="GROUP=RATE",
                   help="learning rate of a parameter group's trainable parameters, repeatable")
    o.add_argument("--out", required=True, help="output folder")
    o.add_argument("--no-video", action="store_true", help="skip progress.gif")
    o.add_argument("--watchdog", type=float, default=WATCHDOG_S, metavar="SECONDS",
                   help="report a step (or a plugin import) that runs longer, then write the last good state's "
                        f"outputs and stop (default {WATCHDOG_S:g})")
    o.add_argument("--video", default=None, metavar="RUN.mp4",
                   help="also write a video: target | render | difference over the error curves (GIF without imageio-ffmpeg)")
    o.add_argument("--video-every", type=int, default=None, metavar="K",
                   help="with --video: one frame every K steps (default: about 150 frames over the budget)")
    _add_teaching_options(o)

    c = sub.add_parser("compare", help="run a scene twice with a teaching switch off and on; plot both error curves")
    c.add_argument("scene", help="built-in scenario name or scene .toml")
    c.add_argument("--switch", required=True, choices=sorted(SWITCH_CHOICES),
                   help="what to compare (visibility, antialias, mip, soft, restarts, sdf_alpha, shadows)")
    c.add_argument("--values", nargs=2, default=["off", "on"], metavar=("FIRST", "SECOND"),
                   help="the two settings (default: off on; soft takes a sigma, restarts a count, "
                        "visibility two of antialias edge soft none, shadows two of off hard soft)")
    c.add_argument("--backend", choices=["auto", "torch", "nvdiffrast"], default="auto", help="render backend")
    c.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps")
    c.add_argument("--steps", type=int, default=None, help="steps per run (default: the scene's budget)")
    _add_res_option(c)
    c.add_argument("--out", required=True, help="output folder for compare.png and compare.csv")

    data_cli.add_parser(sub)
    reconstruct_cli.add_parser(sub, _parse_loss, _add_threads_option)
    capture_cli.add_parser(sub)
    sweep_cli.add_parser(sub)

    r = sub.add_parser("render", help="render a scene to a PNG")
    r.add_argument("scene", help="built-in scenario name or scene .toml")
    _add_run_options(r)
    r.add_argument("--out", required=True, help="PNG path")
    r.add_argument("--initial", action="store_true", help="render the initial guess instead of the ground truth")
    r.add_argument("--view", type=int, default=0, help="camera view index")
    r.add_argument("--params", default=None, metavar="PARAMS.json",
                   help="render with these parameter values (params.json of `studio optimize`: the fitted scene)")
    r.add_argument("--turntable", action="store_true",
                   help="orbit the camera once around the scene and write a video (--out spin.mp4 or .gif)")
    r.add_argument("--frames", type=int, default=72, help="with --turntable: frames per orbit")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if not args.verbose:
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler:  # ours from basicConfig, not a test harness's
                handler.setFormatter(_FirstLine())
    tune_cpu_allocator()
    command = args.command or "gui"
    try:
        if command == "gui":
            return _gui(args)
        if command == "scenes":
            return _scenes()
        if command == "losses":
            return _losses(args)
        if command == "optimize":
            return _optimize(args)
        if command == "render":
            return _render(args)
        if command == "compare":
            return _compare(args)
        if command == "export-dataset":
            return data_cli.run(args)
        if command == "reconstruct":
            return reconstruct_cli.run(args)
        if command == "make-capture":
            return capture_cli.run(args)
        if command == "sweep":
            return sweep_cli.run(args)
    except user_errors() as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("studio: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (MemoryError, RuntimeError) as exc:
        if not out_of_memory(exc):
            raise
        print(f"studio: {memory_advice(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _render_options(args: argparse.Namespace) -> dict:
    """Teaching switches from the command line as render options (only those given)."""
    opts: dict = {}
    if getattr(args, "antialias", None) is not None:
        opts["antialias"] = args.antialias
    if getattr(args, "soft", None) is not None:
        if args.soft <= 0:
            from .scene.spec import SceneError

            raise SceneError(f"--soft must be a sigma > 0 in squared pixels, got {args.soft}.")
        opts["soft_sigma"] = args.soft
    if getattr(args, "mip", None) is not None:
        opts["filter_mode"] = "linear-mipmap-linear" if args.mip else "linear"
    if getattr(args, "shadows", None) is not None:
        opts["shadows"] = args.shadows
    if getattr(args, "visibility", None) is not None:
        opts["visibility"] = args.visibility  # last, so it wins over the --antialias/--soft aliases
    return opts


def _gui(args: argparse.Namespace) -> int:
    from .gui.app import run_gui

    return run_gui(args)


def _scenes() -> int:
    from .scenarios import list_scenarios

    infos = list_scenarios()
    width = max(len(i.name) for i in infos)
    for info in infos:
        print(f"{info.name:<{width}}  {info.description}")
    return 0


def _losses(args: argparse.Namespace) -> int:
    """Every registered loss, one block each: name, default weight, source; description; parameters."""
    from .optim.losses import REGISTRY
    from .optim.plugins import MANAGER, discover_plugins

    for problem in run_guarded(lambda: discover_plugins(args.plugins or []), WATCHDOG_S, "importing plugins"):
        print(f"studio: {problem}", file=sys.stderr)
    for d in REGISTRY.all():
        print(f"{d.name}  (weight {d.weight:g})  {MANAGER.source_of(d)}")
        if d.description:
            print(f"    {d.description}")
        for key, p in d.params.items():
            step = f", step {p.step:g}" if p.step else ""
            about = f": {p.description}" if p.description else ""
            print(f"    param {key} = {p.default:g} in [{p.min:g}, {p.max:g}]{step}{about}")
    return 0


def _options(args: argparse.Namespace, **extra):
    from .workspace import Options

    return Options(scene=args.scene, backend=args.backend, device=args.device, resolution=_res(args),
                   seed=args.seed, plugin_dirs=args.plugins or [], render_options=_render_options(args),
                   restarts=getattr(args, "restarts", None), threads=getattr(args, "threads", None), **extra)


def _compare(args: argparse.Namespace) -> int:
    from .optim.compare import compare_runs, curves_csv
    from .plot_png import line_plot

    out = user_path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = compare_runs(args.scene, args.switch, tuple(args.values), backend=args.backend, device=args.device,
                        steps=args.steps, resolution=_res(args),
                        progress=lambda label, step, steps: print(f"\r{label}: step {step}/{steps}", end="",
                                                                   file=sys.stderr))
    print(file=sys.stderr)
    (out / "compare.csv").write_text(curves_csv(runs))
    series = []
    for r in runs:
        for group, unit in r.units.items():
            h = r.history[group]
            keep = ~np.isnan(h)
            series.append((f"{r.label}: {group} ({unit})", r.history["step"][keep], h[keep], group))
    line_plot(out / "compare.png", series, title=f"{args.scene}: {args.switch} {args.values[0]} vs {args.values[1]}",
              xlabel="step", ylabel="error (log scale)", log_y=True)
    for r in runs:
        print(f"{r.label}: " + ", ".join(f"{g} {v:.4g} {r.units[g]}" for g, v in r.final_errors.items()))
    print(f"wrote {out}/compare.png and {out}/compare.csv")
    return 0


def _render(args: argparse.Namespace) -> int:
    import torch

    from .optim.plugins import discover_plugins
    from .scenarios import load_spec
    from .workspace import apply_overrides, build_scene

    opts = _options(args)
    for problem in run_guarded(lambda: discover_plugins(opts.plugin_dirs), WATCHDOG_S, "importing plugins"):
        print(f"studio: {problem}", file=sys.stderr)
    spec = apply_overrides(load_spec(opts.scene), opts)
    scene = build_scene(spec, opts.backend, opts.device)
    if not 0 <= args.view < scene.num_views:
        from .scene.spec import SceneError

        raise SceneError(f"--view must be between 0 and {scene.num_views - 1} for {spec.name}, got {args.view}.")
    what = "initial guess" if args.initial else "ground truth"
    if args.params is not None:
        load_params_json(scene, args.params)
        what = f"parameters of {args.params}"
    fitted = args.initial or args.params is not None
    if args.turntable:
        from .video import write_turntable

        video = write_turntable(scene, args.out, args.frames, target=not fitted, view=args.view)
        if video.note:
            print(f"studio: {video.note}", file=sys.stderr)
        print(f"wrote {video.path} ({what}, a {args.frames}-frame orbit from view {args.view})")
        return 0
    with torch.no_grad():
        out = scene.render([args.view], target=not fitted)
    save_png(user_path(args.out), out.rgb[0].cpu().numpy())
    print(f"wrote {user_path(args.out)} ({what}, view {args.view})")
    return 0


def _out_folder(path: str) -> Path:
    """``--out`` as a folder that exists (created if missing).

    Raises:
        UsageError: the folder cannot be created.
    """
    out = user_path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {path} cannot be created ({exc.strerror or exc}); choose a folder you can write "
                         "to.") from None
    return out


def _cap_threads(threads: int | None) -> int | None:
    """``--threads`` no larger than the CPU threads this process may use (more only makes steps slower)."""
    if threads is None:
        return None
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads > available:
        print(f"studio: --threads {threads} is more than the {available} CPU threads this machine offers; using "
              f"{available}.", file=sys.stderr)
        return available
    return threads


def _optimize(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from .workspace import build_engine

    if args.mask is not None and args.target is None:
        raise UsageError(f"--mask {args.mask} needs --target: a mask says which pixels of a target photograph "
                         "show the object.")
    if not args.watchdog > 0:
        raise UsageError(f"--watchdog must be a number of seconds above 0, got {args.watchdog:g}.")
    if user_path(args.out).exists() and not user_path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is an existing file; give a folder for the results (it is created if "
                         "missing).")
    args.threads = _cap_threads(args.threads)
    opts = _options(args, steps=args.steps, target=args.target, mask=args.mask, losses=args.losses,
                    target_colorspace=args.target_colorspace, group_lr=dict(args.group_lr or []))
    # Plugin files are imported here: one stuck in a loop is reported, not waited for.
    scene, engine, notes = run_guarded(lambda: build_engine(opts), args.watchdog, "importing plugins and building "
                                       "the scene")
    engine.config.watchdog_s = args.watchdog
    out_dir = _out_folder(args.out)  # only once the input is known to be good: bad input leaves no folder
    for note in notes:
        print(f"studio: {note}", file=sys.stderr)
    steps = engine.config.steps
    initial_groups = scene.params.group_errors()
    initial_loss = engine.evaluate_loss()

    frames = FrameRecorder() if not args.no_video else None
    video = None
    if args.video is not None:
        from .video import RunVideo

        video = RunVideo(args.video, steps, args.video_every)
    t0 = time.perf_counter()
    engine.start_thread()
    engine.start(until=steps)
    stamp, snap, problem, code = -1, None, None, 0
    try:
        with tqdm(total=steps, desc=scene.spec.name, unit="step", dynamic_ncols=True) as bar, logging_redirect_tqdm():
            while True:
                got = engine.wait_snapshot(stamp, timeout=1.0)
                if engine.stalled is not None:
                    problem, code = engine.stalled.sentence, EXIT_INCOMPLETE
                    break
                if got is None:
                    if not engine.alive:  # never wait on a worker that is gone
                        problem = engine.events()[-1].split("\n")[0] if engine.events() else \
                            "the optimisation worker ended without a word."
                        code = EXIT_INCOMPLETE
                        break
                    continue
                snap, stamp = got, got.stamp
                bar.update(snap.step - bar.n)
                bar.set_postfix(loss=f"{snap.loss:.4g}", it_s=f"{snap.it_per_s:.1f}")
                if frames is not None:
                    frames.add(snap)
                if video is not None:
                    video.add(snap)
                if snap.finished or (not snap.running and snap.step >= steps):
                    break
                if not snap.running and snap.message and snap.step < steps:
                    problem, code = snap.message, EXIT_INCOMPLETE  # e.g. paused by NaN steps
                    break
    except KeyboardInterrupt:
        problem, code = "interrupted", EXIT_INTERRUPTED
    seconds = time.perf_counter() - t0
    stuck = engine.stalled
    engine.stop(timeout=2.0 if problem else 10.0)  # a stuck worker is abandoned, not waited for
    if video is not None:
        if snap is not None:
            video.add(snap, force=True)  # the last step, whatever K is
        video.close()
        if video.writer.note:
            print(f"studio: {video.writer.note}", file=sys.stderr)
    if problem is not None:
        engine.restore_last_good()
    if stuck is not None and stuck.stage.loss is not None:
        engine.terms = [replace(t, enabled=False) if t.name == stuck.stage.loss else t for t in engine.terms]
    rendering_ok = stuck is None or stuck.stage.loss is not None  # a stuck render would hang the outputs too
    written = _write_outputs(out_dir, engine, scene, snap, seconds, initial_groups, initial_loss, frames,
                             rendering_ok)
    if problem is not None:
        print(f"studio: {problem.rstrip('.')}; wrote the outputs of step {engine.step_count} (the last good state) "
              f"to {out_dir}/.", file=sys.stderr)
    if video is not None:
        written.append(f"and {video.path} ({video.writer.frames_written} frames, one every {video.every} steps)")
    print(f"wrote {out_dir}/: {' '.join(written)}")
    return code


def _write_outputs(out_dir: Path, engine, scene, snap, seconds: float, initial_groups: dict, initial_loss: float,
                   frames: FrameRecorder | None, rendering_ok: bool) -> list[str]:
    """summary.json, curves.csv, params.json, final.png, progress.gif and mesh.obj of the engine's
    current parameters (the last good state after a failure); returns the names written."""
    history = engine.state_dict()["history"]  # the engine's: a failed run's last snapshot may be older
    steps = engine.step_count
    final_groups = scene.params.group_errors()
    summary = {
        "scene": scene.spec.name,
        "steps": steps,
        "backend": scene.backend.name,
        "device": str(scene.backend.device),
        "compiled": bool(getattr(scene.backend, "compiled", False)),
        "seconds": round(seconds, 3),
        "it_per_s": round(steps / seconds, 2) if seconds > 0 else 0.0,
        "cpu_threads": snap.threads if snap is not None else None,
        "loss": {"initial": initial_loss, "final": engine.evaluate_loss() if rendering_ok else None},
        "groups": {g: {"initial": initial_groups[g].value, "final": e.value, "unit": e.unit}
                   for g, e in final_groups.items() if g in initial_groups},
        "skipped_steps": engine.skipped_steps,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_curves_csv(out_dir / "curves.csv", {k: np.asarray(v, dtype=np.float64) for k, v in history.items()})
    (out_dir / "params.json").write_text(json.dumps(
        {n: np.round(v, 6).tolist() for n, v in scene.params.numpy_values().items()}) + "\n")
    written = ["summary.json", "curves.csv", "params.json"]
    if rendering_ok:
        _write_final_png(out_dir / "final.png", engine)
        written.append("final.png")
    if frames is not None and frames.frames:
        _write_video(out_dir / "progress.gif", frames.frames)
        written.append("progress.gif")
    _write_geometry(out_dir, scene)
    if (out_dir / "mesh.obj").exists():
        written.append("mesh.obj")
    print(_summary_line(summary))
    return written


def run_optimize(argv: Sequence[str]) -> int:
    """``studio optimize ARGV...`` in this process (``studio sweep`` runs each grid point this way).

    Raises the user errors that :func:`main` would print as one sentence.
    """
    return _optimize(build_parser().parse_args(["optimize", *argv]))


def _summary_line(summary: dict) -> str:
    parts = [f"{summary['scene']}: {summary['steps']} steps in {summary['seconds']:.1f} s"]
    for g, e in summary["groups"].items():
        parts.append(f"{g} {e['initial']:.4g} -> {e['final']:.4g} {e['unit']}")
    return "; ".join(parts)


def _write_final_png(path: Path, engine) -> None:
    """target | render | difference heatmap of view 0 at the final parameters."""
    import torch

    with torch.no_grad():
        out = engine.scene.render([0])
    render = out.rgb[0].clamp(0, 1).cpu().numpy()
    target = engine.targets.rgb[0].clamp(0, 1).cpu().numpy()
    diff = heatmap(np.abs(render - target).mean(-1), vmax=DIFF_VMAX)
    save_png(path, np.concatenate([target, render, diff], 1))


def _write_video(path: Path, frames: list[np.ndarray], max_frames: int = 120) -> None:
    """progress.gif of at most ``max_frames`` evenly spaced ones of the uint8 ``frames``."""
    idx = np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round().astype(int)
    write_gif(path, [frames[i] for i in idx])


def _write_geometry(out_dir: Path, scene) -> None:
    """mesh.obj with the optimised vertices when geometry was fitted."""
    objects = getattr(scene, "objects", [])
    if not any(f"{o.name}.vertices" in scene.params and scene.params[f"{o.name}.vertices"].trainable for o in objects):
        return
    from .scene.mesh import save_obj

    save_obj(world_mesh(scene), out_dir / "mesh.obj")


if __name__ == "__main__":
    sys.exit(main())
