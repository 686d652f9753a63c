"""SDF scenes: primitives combined by smooth CSG, rendered by sphere tracing.

Every primitive's shape parameters, rotation, colour and smoothness become parameters of the
scene's ParameterSet ("ball.radius", "ball.centre", "ball.color", "ball.smoothness"), so an SDF scene
is fitted, plotted and exported exactly like a mesh scene.  The scene file's ``[sdf]`` section
sets the tracer: silhouette sharpness ``alpha`` (annealed from ``alpha`` to ``alpha_max`` over the
budget unless the ``sdf_alpha`` option fixes it), ``shadows``, ``shadow_k``, ``ao`` samples and a
scene-wide ``specular`` / ``shininess``.
"""

from __future__ import annotations

from typing import Mapping

import torch

from ..render.gbuffer import GBuffer
from ..render.sdf import SDFModel, camera_rays, render_sdf
from ..render.sdf_primitives import Box, Capsule, Cylinder, Plane, RoundedBox, Sphere, Torus
from .base import RenderOutput, SceneBase
from .spec import SceneError

# type -> (constructor, {parameter: (shape, unit, lower, upper)}); scalars are [1].
_SHAPES = {
    "sphere": (Sphere, {"centre": (3, "units", -5.0, 5.0), "radius": (1, "units", 0.01, 5.0)}),
    "box": (Box, {"centre": (3, "units", -5.0, 5.0), "half_extents": (3, "units", 0.01, 5.0)}),
    "rounded_box": (RoundedBox, {"centre": (3, "units", -5.0, 5.0), "half_extents": (3, "units", 0.01, 5.0),
                                 "rounding": (1, "units", 0.0, 2.0)}),
    "torus": (Torus, {"centre": (3, "units", -5.0, 5.0), "major": (1, "units", 0.01, 5.0),
                      "minor": (1, "units", 0.01, 2.0)}),
    "capsule": (Capsule, {"a": (3, "units", -5.0, 5.0), "b": (3, "units", -5.0, 5.0), "radius": (1, "units", 0.01, 5.0)}),
    "cylinder": (Cylinder, {"centre": (3, "units", -5.0, 5.0), "radius": (1, "units", 0.01, 5.0),
                            "half_height": (1, "units", 0.01, 5.0)}),
    "plane": (Plane, {"normal": (3, "deg", -1.0, 1.0), "offset": (1, "units", -5.0, 5.0)}),
}
_ROTATABLE = ("box", "rounded_box", "torus", "cylinder")
_OPS = ("union", "intersection", "subtraction")
_SDF_KEYS = {"alpha": 30.0, "alpha_max": 300.0, "shadows": True, "shadow_k": 8.0, "ao": 0,
             "specular": 0.0, "shininess": 32.0}


class SdfScene(SceneBase):
    """A scene of SDF primitives (``kind = "sdf"``), rendered by sphere tracing.

    Args:
        spec: the parsed scene file.
        backend: the render backend (only its device is used: the tracer is plain torch).
        options: render switches; ``sdf_alpha`` fixes the silhouette sharpness (None anneals it).
    """

    #: The tracer takes autograd.grad of its own SDF (normals), which forward-mode AD cannot follow.
    forward_ad = False

    def __init__(self, spec, backend, **options: object):
        if spec.kind != "sdf":
            raise SceneError(f"{spec.source}: SdfScene renders SDF scenes (kind = \"sdf\").")
        unknown = set(spec.extra.get("sdf", {})) - set(_SDF_KEYS)
        if unknown:
            raise SceneError(f"{spec.source}: unknown key {sorted(unknown)[0]!r} in [sdf]; known keys are "
                             f"{', '.join(sorted(_SDF_KEYS))}.")
        self.settings = {**_SDF_KEYS, **spec.extra.get("sdf", {})}
        self._progress = 0.0
        super().__init__(spec, backend, **{"sdf_alpha": None, **options})

    # ------------------------------------------------------------------ building

    def _build_content(self) -> None:
        dev = self.device
        self.objects = self.spec.primitives  # for class names in exports and the GUI
        for i, prim in enumerate(self.spec.primitives):
            if prim.type not in _SHAPES:
                raise SceneError(f"{self.spec.source}: primitive {prim.name!r} has type {prim.type!r}; use one of "
                                 f"{', '.join(_SHAPES)}.")
            if prim.op not in _OPS:
                raise SceneError(f"{self.spec.source}: primitive {prim.name!r} has op {prim.op!r}; use one of {', '.join(_OPS)}.")
            _, shape = _SHAPES[prim.type]
            allowed = set(shape) | ({"rotation"} if prim.type in _ROTATABLE else set())
            extra = set(prim.params) - allowed
            missing = set(shape) - set(prim.params)
            if extra or missing:
                what = f"unknown parameter {sorted(extra)[0]!r}" if extra else f"missing parameter {sorted(missing)[0]!r}"
                raise SceneError(f"{self.spec.source}: primitive {prim.name!r} ({prim.type}) has {what}; it takes "
                                 f"{', '.join(sorted(allowed))}.")
            for key, (n, unit, lo, hi) in shape.items():
                value = torch.tensor(prim.params[key], dtype=torch.float32, device=dev).reshape(n)
                normal = key == "normal"
                self._add(name=f"{prim.name}.{key}", group="geometry", value=value, lower=lo, upper=hi,
                          unit=unit, metric="angle" if normal else "rmse", normalize=normal, lr=0.01,
                          description=f"{key.replace('_', ' ')} of the {prim.type} {prim.name}")
            if prim.type in _ROTATABLE:
                rot = prim.params.get("rotation", [1.0, 0.0, 0.0, 0.0])
                self._add(name=f"{prim.name}.rotation", group="geometry", value=torch.tensor(rot, device=dev),
                          lower=-1.0, upper=1.0, metric="rotation", normalize=True, lr=0.01,
                          description=f"orientation of {prim.name} as a quaternion (w, x, y, z)")
            if i > 0:
                self._add(name=f"{prim.name}.smoothness", group="geometry",
                          value=torch.tensor([float(prim.smoothness)], device=dev), lower=0.0, upper=1.0,
                          unit="units", lr=0.005, description=f"smooth {prim.op} blend radius of {prim.name}")
            self._add(name=f"{prim.name}.color", group="material", value=torch.tensor(prim.color, device=dev),
                      lower=0.0, upper=1.0, unit="rgb", lr=0.02, description=f"colour of {prim.name} (linear RGB)")

    def model(self, values: Mapping[str, torch.Tensor]) -> SDFModel:
        """The SDF model built from parameter tensors (kept by reference, so gradients flow)."""
        items = []
        for i, prim in enumerate(self.spec.primitives):
            ctor, shape = _SHAPES[prim.type]
            kwargs = {key: values[f"{prim.name}.{key}"] for key in shape}
            if prim.type in _ROTATABLE:
                kwargs["rotation"] = values[f"{prim.name}.rotation"]
            node = ctor(**kwargs, colour=values[f"{prim.name}.color"], object_id=i, name=prim.name)
            k = values[f"{prim.name}.smoothness"].reshape(()) if i > 0 else 0.0
            items.append((node, prim.op, k))
        return SDFModel.fold(items)

    # ------------------------------------------------------------------ rendering

    def before_step(self, step: int, steps: int) -> None:
        """Called by the engine before each step: anneals the silhouette sharpness."""
        self._progress = min(1.0, step / max(steps, 1))

    def alpha(self, target: bool = False) -> float:
        """Current silhouette sharpness (1/scene units): geometric from ``alpha`` to ``alpha_max``."""
        fixed = self.options.get("sdf_alpha")
        a0, a1 = float(self.settings["alpha"]), float(self.settings["alpha_max"])
        if target:
            return a1
        if fixed is not None:
            return float(fixed)
        return a0 * (a1 / a0) ** self._progress

    def _render(self, views: list[int], values: Mapping[str, torch.Tensor], target: bool) -> RenderOutput:
        """Sphere-trace and shade; ``target`` renders with the sharpest silhouettes."""
        view, _, fwd = self.views(views, values)
        h, w = self.resolution
        origins, dirs = camera_rays(view, self.vertical_fov(values), (h, w))
        lights = self.lights(values)
        gb = render_sdf(self.model(values), origins, dirs,
                        lights.directions if self.settings["shadows"] and lights.directions.shape[0] else None,
                        alpha=self.alpha(target), shadow_k=float(self.settings["shadow_k"]),
                        ao_samples=int(self.settings["ao"]), forward=fwd)
        return self.shade(gb, values)

    def material_maps(self, gb: GBuffer, values: Mapping[str, torch.Tensor]):
        albedo = gb.albedo if gb.albedo is not None else torch.zeros_like(gb.position)
        ones = torch.ones_like(gb.mask)
        return albedo, ones * float(self.settings["specular"]), ones * float(self.settings["shininess"])
