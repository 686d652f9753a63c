"""Dataset images in memory: scene + per-image randomisation + optional hard-case search -> pixels,
object ids and labels.  :mod:`studio.data.export` writes them to disk; a GUI can show them directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..images import to_uint8
from ..scenarios import load_spec
from ..workspace import build_scene
from .backgrounds import make_background
from .config import DatasetError, ExportConfig, ExportSection, parse_export_section
from .hard_case import HardCaseSearch
from .labels import ObjectLabel, visible_objects, yolo_lines
from .randomize import ImagePlan, SceneInfo, plan_image

# Parameters of each object and of the rig that randomisation may replace.
_OBJECT_KEYS = ("position", "rotation", "scale", "specular", "shininess")
_CAMERA_KEYS = ("azimuth", "elevation", "distance", "fov", "target")


@dataclass(frozen=True)
class RenderedImage:
    """One dataset image and its labels.

    Attributes:
        index: global image index.
        name: file stem (the zero-padded index), unique over the whole dataset.
        split: "train" or "val".
        rgb: [H,W,3] uint8 sRGB image, top row first.
        object_id: [H,W] int32 index into the scene's objects, -1 for background.
        labels: the visible labelled objects.
        lines: the YOLO label lines of ``labels``.
        focus: object the hard-case search judged, or None when the image was not searched.
    """

    index: int
    name: str
    split: str
    rgb: np.ndarray
    object_id: np.ndarray
    labels: list[ObjectLabel]
    lines: list[str]
    focus: int | None


def _classes(scene, section: ExportSection, source: str) -> tuple[list[str], list[int | None]]:
    """Class names (in order of first appearance) and each object's class index."""
    names: list[str] = []
    ids: list[int | None] = []
    object_names = [o.name for o in scene.objects]
    for name in section.unlabelled:
        if name not in object_names:
            raise DatasetError(f"{source}: [export] unlabelled names {name!r}, which is not an object of the "
                               f"scene ({', '.join(object_names)}).")
    for o in scene.objects:
        if o.class_name:
            if o.class_name not in names:
                names.append(o.class_name)
            ids.append(names.index(o.class_name))
        elif o.name in section.unlabelled:
            ids.append(None)
        else:
            raise DatasetError(f"{source}: object {o.name!r} has no class, so it cannot be labelled; give it "
                               f"class = \"...\" (or list it in [export] unlabelled to keep it as scenery).")
    return names, ids


class DatasetRenderer:
    """Renders dataset image ``i`` of an export (no files are touched).

    Args:
        config: the export options (scene, size, seed, task, ...).

    Raises:
        DatasetError: bad options, a scene object without a class, a bad ``[export]`` section.
        SceneError, MeshError, BackendUnavailableError: the scene or renderer cannot be built.
    """

    def __init__(self, config: ExportConfig):
        config.validate()
        self.config = config
        spec = load_spec(config.scene)
        if spec.kind != "mesh":
            raise DatasetError(f"{spec.source}: export-dataset renders mesh scenes, and {spec.name!r} is an "
                               f"{spec.kind} scene.")
        self.section = parse_export_section(spec.extra.get("export", {}), spec.source, spec.base_dir)
        self.scene_background = [float(c) for c in spec.background]
        spec.resolution = (config.imgsz, config.imgsz)
        spec.background = [0.0, 0.0, 0.0]  # each image is composited over its own background here
        self.scene = build_scene(spec, config.backend, config.device)
        self.scene.view_offsets = [(0.0, 0.0)]  # one camera: the randomised orbit camera itself
        self.class_names, self.class_ids = _classes(self.scene, self.section, spec.source)
        # The scene as its file describes it (ground truth), not the optimiser's starting guess.
        self.base = {n: v.detach().clone() for n, v in self.scene.params.ground_truth_values().items()}
        small = [f"camera.{k}" for k in _CAMERA_KEYS] + ["light.ambient"]
        small += [f"light.{lt.name}.{k}" for lt in spec.lights for k in ("direction", "color", "intensity")]
        small += [f"{o.name}.{k}" for o in self.scene.objects for k in _OBJECT_KEYS]
        radii = [float(self.base[f"{o.name}.vertices"].norm(dim=-1).max()) for o in self.scene.objects]
        self.info = SceneInfo([o.name for o in self.scene.objects], [lt.name for lt in spec.lights],
                              {n: self.base[n].cpu().double().numpy() for n in small}, radii)
        hard = self.section.hard_case
        self.search = (HardCaseSearch(self.scene, hard, [c is not None for c in self.class_ids], config.plugin_dirs)
                       if hard is not None and config.hard_case else None)
        self.name_width = config.name_width

    def plan(self, index: int) -> ImagePlan:
        """The random decisions of image ``index``."""
        return plan_image(self.section, self.info, self.config.seed, index, self.config.val_fraction)

    def values(self, plan: ImagePlan) -> dict[str, torch.Tensor]:
        """Parameter tensors of one image (the scene's own values with the plan's overrides)."""
        values = dict(self.base)
        dev = self.scene.device
        for name, v in plan.values.items():
            values[name] = torch.from_numpy(v).to(dev)
        for name, factor in plan.albedo_factors.items():
            key = f"{name}.albedo"
            values[key] = (self.base[key] * torch.from_numpy(factor).to(dev)).clamp(0.0, 1.0)
        return values

    def render(self, index: int) -> RenderedImage:
        """Image ``index``: randomise, search (if declared and drawn), render, composite, label."""
        cfg = self.config
        plan = self.plan(index)
        values = self.values(plan)
        background = make_background(plan.background, cfg.imgsz, self.scene_background)
        focus = None
        if self.search is not None and plan.hard_case:
            values, focus = self.search.search(values, background, plan.focus_draw, plan.absent)
        with torch.no_grad():
            out = self.scene.render([0], values)
            rgb = out.rgb[0] + background.to(out.rgb.device) * (1 - out.alpha[0])
            object_id = out.gbuffer.object_id[0].to(torch.int32).cpu().numpy()
        labels = visible_objects(object_id, self.class_ids, cfg.min_visible_px, polygons=cfg.task == "segment")
        return RenderedImage(index, f"{index:0{self.name_width}d}", plan.split, to_uint8(rgb.cpu().numpy()),
                             object_id, labels, yolo_lines(labels, cfg.imgsz, cfg.imgsz, cfg.task), focus)

