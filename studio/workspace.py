"""A workspace: one scene, its targets and an engine, built from a scene file and options.

The CLI and the GUI are thin front ends over this, so every option means the same in both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .images import ImageError, image_size, read_image, read_linear, resize
from .optim.engine import Engine, EngineConfig, Targets
from .optim.losses import REGISTRY, LossError
from .optim.plugins import discover_plugins
from .paths import user_path
from .render import get_backend
from .scenarios import load_spec
from .scene.spec import SceneError, SceneSpec

log = logging.getLogger("studio")


@dataclass
class Options:
    """Everything a front end can choose about a run (None = the scene file's value)."""

    scene: str = "joint"
    backend: str = "auto"
    device: str | None = None
    resolution: int | tuple[int, int] | None = None  # pixels: a size (square) or (height, width)
    steps: int | None = None
    seed: int | None = None
    target: str | None = None
    mask: str | None = None
    losses: list[tuple[str, float]] | None = None
    render_options: dict[str, Any] = field(default_factory=dict)
    restarts: int | None = None
    plugin_dirs: list[str] = field(default_factory=list)  # --plugins: extra folders of plugin losses
    mesh: str | None = None  # a mesh file for the first object: the shape the (synthetic) targets show
    threads: int | None = None  # CPU threads of the steps; None: measured (studio.optim.threads)
    target_colorspace: str | None = None  # "srgb" | "linear": how --target is encoded (None: by file type)
    group_lr: dict[str, float] = field(default_factory=dict)  # group -> learning rate, over the scene's [optimize] lr


def parse_resolution(text: str | int | tuple | list) -> tuple[int, int]:
    """(height, width) from ``128``, ``"96x128"``, ``["96", "128"]`` or ``(96, 128)``.

    Raises:
        SceneError: not one or two whole numbers between 8 and 4096.
    """
    items = [text] if isinstance(text, (str, int)) else list(text)
    parts = [p for item in items for p in str(item).lower().replace("x", " ").split()]
    try:
        size = [int(p) for p in parts]
    except ValueError:
        size = []
    if len(size) == 1:
        size *= 2
    if len(size) != 2 or not all(8 <= s <= 4096 for s in size):
        raise SceneError(f"--res must be a size, H W or HxW, each between 8 and 4096 pixels, got "
                         f"{' '.join(map(str, items))!r}.")
    return size[0], size[1]


def apply_overrides(spec: SceneSpec, opts: Options) -> SceneSpec:
    """Fold command-line overrides into the spec (in place) and return it."""
    if opts.resolution is not None:
        spec.resolution = parse_resolution(opts.resolution)
    if opts.steps is not None:
        if opts.steps < 0:
            raise SceneError(f"--steps must be 0 or more, got {opts.steps}.")
        spec.steps = opts.steps
    if opts.seed is not None:
        spec.seed = opts.seed
    if opts.restarts is not None:
        spec.restarts = max(0, opts.restarts)
    spec.group_lr = {**spec.group_lr, **opts.group_lr}
    if opts.mesh is not None:
        if not spec.objects:
            raise SceneError(f"scene {spec.name!r} has no mesh object to load {opts.mesh} into; pick a mesh "
                             "scenario first.")
        # The loaded shape is what the targets show: it replaces the target mesh that a template is
        # deformed towards, or else the object's own mesh (which the scenario perturbs and fits back).
        obj = spec.objects[0]
        mesh = str(user_path(opts.mesh))
        if obj.target_mesh is not None:
            obj.target_mesh = mesh
        else:
            obj.mesh = mesh
    return spec


def build_scene(spec: SceneSpec, backend_name: str = "auto", device: str | None = None, **render_options: Any):
    """The right Scene class for the spec's kind, on the chosen backend."""
    backend = get_backend(backend_name, device)
    if spec.kind == "sdf":
        from .scene.sdf_scene import SdfScene

        return SdfScene(spec, backend, **render_options)
    from .scene.scene import Scene

    return Scene(spec, backend, **render_options)


#: ``progress(sentence, image)`` during :func:`build_engine`: what is being done ("building targets
#: 3/12") and, for a finished target view, its [H,W,3] linear RGB picture (else None).
Progress = Callable[[str, "np.ndarray | None"], None]


def render_targets(scene: Any, progress: Progress | None = None) -> Targets:
    """The ground-truth render of every view, without gradients; with ``progress``, one view at a
    time, each handed to ``progress`` as soon as it is rendered (so a window can show it)."""
    if progress is None:
        gt = scene.render_targets()
        return Targets(gt.rgb.detach(), gt.alpha.detach())
    rgb, alpha = [], []
    n = scene.num_views
    with torch.no_grad():
        for i in range(n):
            out = scene.render([i], target=True)
            rgb.append(out.rgb.detach())
            alpha.append(out.alpha.detach())
            progress(f"building targets {i + 1}/{n}", out.rgb[0].cpu().numpy())
    return Targets(torch.cat(rgb), torch.cat(alpha))


def load_targets(scene: Any, image: str | Path | None = None, mask: str | Path | None = None,
                 colorspace: str | None = None, progress: Progress | None = None) -> tuple[Targets, str | None]:
    """Targets: the ground-truth renders of the scene, or a photograph (and optional mask) for view 0.

    ``colorspace`` ("srgb" or "linear") overrides how the image file is decoded (default: 8/16-bit
    files are sRGB, float TIFF/EXR/NPY are linear; see :func:`studio.images.read_linear`).
    Returns the targets and a note for the user (e.g. that the photo was resized), or None.

    Raises:
        ImageError: unreadable image, or a mask whose size differs from the image's.
    """
    if image is None:
        return render_targets(scene, progress), None
    h, w = scene.resolution
    raw = read_linear(image, colorspace)
    note = None
    rgb = torch.from_numpy(np.ascontiguousarray(raw[..., :3] if raw.shape[-1] >= 3 else raw[..., :1].repeat(3, -1)))
    alpha = torch.from_numpy(raw[..., 3:4]) if raw.shape[-1] == 4 else None
    if mask is not None:
        m = read_image(mask)
        if m.shape[:2] != raw.shape[:2]:
            raise ImageError(f"mask {mask} is {m.shape[1]}x{m.shape[0]} but the target image {image} is "
                             f"{raw.shape[1]}x{raw.shape[0]}; give a mask of the same size.")
        alpha = torch.from_numpy(m[..., :1] if m.shape[-1] != 4 else m[..., 3:4])
    if raw.shape[:2] != (h, w):
        note = f"target image {image} is {raw.shape[1]}x{raw.shape[0]}; resized to the render resolution {w}x{h}."
        rgb = resize(rgb, (h, w))
        alpha = resize(alpha, (h, w)) if alpha is not None else None
    if alpha is None:
        alpha = torch.ones(h, w, 1)
    dev = scene.device
    n = scene.num_views
    if n != 1:
        log.info("a target photograph fits view 0 only; the scene's other %d views are dropped", n - 1)
        scene.view_offsets = scene.view_offsets[:1]
    return Targets(rgb.unsqueeze(0).to(dev), alpha.unsqueeze(0).to(dev)), note


def target_resolution(resolution: tuple[int, int], image_hw: tuple[int, int]) -> tuple[int, int]:
    """The render resolution for a target photo of ``image_hw`` (height, width): the scene's height,
    and the width that keeps the photo's aspect (so it is never squashed)."""
    h = resolution[0]
    return h, max(8, min(4096, round(h * image_hw[1] / image_hw[0])))


def check_loss_names(names: list[str], plugin_problems: list[str]) -> None:
    """Fail early, before a scene is built, on a loss name nobody registered.

    Raises:
        LossError: one sentence with the name, the available losses, and (when plugins failed to
            load, which is the likely cause) the first plugin problem.
    """
    for name in names:
        if name not in REGISTRY:
            cause = (f"; {len(plugin_problems)} plugin problem(s), perhaps the cause: {plugin_problems[0]}"
                     if plugin_problems else "")
            raise LossError(f"unknown loss {name!r}; the available losses are {', '.join(REGISTRY.names())} "
                            f"(`studio losses` describes them){cause.rstrip('.')}.")


def build_engine(opts: Options, progress: Progress | None = None) -> tuple[Any, Engine, list[str]]:
    """Scene + targets + engine for ``opts``; returns notes worth telling the user (plugin
    problems first: a broken plugin is reported, and the run goes on without it).  ``progress``
    hears what is being built, and gets each target view as it is rendered.

    Raises:
        PluginError: a ``--plugins`` folder does not exist.
        LossError: an unknown loss name or parameter.
    """
    # Plugins first: the scene's and --loss's names may be plugin losses.
    notes = discover_plugins(opts.plugin_dirs)
    spec = apply_overrides(load_spec(opts.scene), opts)
    if opts.target is not None and opts.resolution is None:
        spec.resolution = target_resolution(spec.resolution, image_size(opts.target))
    losses = [(n, w, {}) for n, w in opts.losses] if opts.losses else [(l.name, l.weight, l.params) for l in spec.losses]
    check_loss_names([n for n, _, _ in losses], notes)
    if progress is not None:
        progress(f"building {spec.name}", None)
    scene = build_scene(spec, opts.backend, opts.device)
    targets, note = load_targets(scene, opts.target, opts.mask, opts.target_colorspace, progress)
    # Teaching switches (antialias off, soft rasterization, no mipmaps) change how the *fit* is
    # rendered; the targets stand for real pictures and are rendered before them.
    scene.options.update(opts.render_options)
    config = EngineConfig(steps=spec.steps, views_per_step=spec.views_per_step, seed=spec.seed,
                          group_lr=spec.group_lr, restarts=spec.restarts, lr_decay=spec.lr_decay, threads=opts.threads)
    torch.manual_seed(spec.seed)
    if progress is not None:
        progress("starting the optimiser", None)
    engine = Engine(scene, targets, losses, config)
    return scene, engine, notes + ([note] if note else [])
