"""What every scene shares, whatever renders it: lights, the camera rig, free parameters, shading.

A scene turns one :class:`ParameterSet` into images.  Subclasses say what the objects are and how
they become a G-buffer (:class:`studio.scene.scene.Scene` rasterizes meshes,
:class:`studio.scene.sdf_scene.SdfScene` sphere-traces signed distance fields); everything after
the G-buffer (materials, lights, compositing over the background) is shared here, so losses, plots
and exports work the same for both.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from ..render.backend import Backend
from ..render.gbuffer import GBuffer
from ..render.raster_pass import resolve_visibility
from ..render.shading import Lights, shade
from .assets import resolve_texture
from .camera import look_at, orbit_eye, perspective, rotation_angle_deg
from .params import GroupError, Parameter, ParameterError, ParameterSet
from .render_options import RenderOptions
from .spec import FreeParamSpec, SceneError, SceneSpec

log = logging.getLogger("studio.scene")

# Elevations of +-90 degrees make the look-at frame degenerate.
MAX_ELEVATION = 85.0


@dataclass(frozen=True)
class RenderOutput:
    """What a render returns.

    Attributes:
        rgb: [B,H,W,3] linear RGB over the background, top row first, antialiased.
        alpha: [B,H,W,1] antialiased coverage.
        gbuffer: the renderer's G-buffer (for render modes, masks, exports).
        shaded: [B,H,W,3] shaded colour before compositing and antialiasing.
    """

    rgb: torch.Tensor
    alpha: torch.Tensor
    gbuffer: GBuffer
    shaded: torch.Tensor

    @property
    def rgba(self) -> torch.Tensor:
        return torch.cat([self.rgb, self.alpha], -1)


def fibonacci_views(n: int, elevation_range: float = 60.0) -> list[tuple[float, float]]:
    """``n`` (azimuth, elevation) offsets in degrees spread evenly around the object."""
    views = []
    golden = math.pi * (3.0 - math.sqrt(5.0))
    for i in range(n):
        y = 1.0 - (i + 0.5) / n * 2.0
        el = math.degrees(math.asin(y)) * elevation_range / 90.0
        views.append((math.degrees(i * golden) % 360.0, el))
    return views


class SceneBase:
    """Parameters and rendering shared by all scene kinds.

    Args:
        spec: the parsed scene file.
        backend: rendering backend (its device is the scene's device).
        options: render switches (``visibility`` with its aliases ``antialias`` and ``soft_sigma``,
            ``filter_mode``, ``sdf_alpha``; see :class:`RenderOptions`), changed at run time
            through ``Engine.set_option``.
    """

    def __init__(self, spec: SceneSpec, backend: Backend, **options: object):
        self.spec = spec
        self.backend = backend
        self.device = backend.device
        self.resolution = spec.resolution
        self.options = RenderOptions(resolve_visibility(spec.visibility, spec.antialias), **options)
        self.params = ParameterSet()
        self._build_content()
        self._build_lights()
        self._build_camera()
        self._built_values = {p.name: p.value.detach().cpu().clone() for p in self.params}
        self._apply_free_params()

    # ------------------------------------------------------------------ to implement

    def _build_content(self) -> None:
        """Create the objects and their parameters."""
        raise NotImplementedError

    def render(self, views: Sequence[int] | None = None, values: Mapping[str, torch.Tensor] | None = None,
               target: bool = False) -> "RenderOutput":
        """Render views of the scene.

        Args:
            views: indices into the camera rig (default: all).
            values: parameter tensors by name (default: the live parameters, or the ground truth
                with ``target``).
            target: render the ground-truth scene.
        """
        if values is None:
            values = self.params.ground_truth_values() if target else self.params.values()
        return self._render(list(range(self.num_views)) if views is None else list(views), values, target)

    def _render(self, views: list[int], values: Mapping[str, torch.Tensor], target: bool) -> "RenderOutput":
        """Render the given views from ``values`` (see :meth:`render`)."""
        raise NotImplementedError

    def material_maps(self, gb: GBuffer, values: Mapping[str, torch.Tensor]):
        """(albedo [B,H,W,3], specular [B,H,W,1], shininess [B,H,W,1]) at every pixel."""
        raise NotImplementedError

    def pbr_maps(self, gb: GBuffer, values: Mapping[str, torch.Tensor]):
        """(roughness [B,H,W,1], metallic [B,H,W,1]) for the "pbr" shading model, or (None, None)
        for the defaults of :func:`studio.render.shading.shade`."""
        return None, None

    # ------------------------------------------------------------------ building

    def _add(self, **kw: object) -> Parameter:
        return self.params.add(Parameter(**kw))

    def _build_lights(self) -> None:
        dev = self.device
        self._add(name="light.ambient", group="lighting", value=torch.tensor(self.spec.ambient, device=dev),
                  lower=0.0, upper=2.0, unit="rgb", lr=0.01, description="ambient light (linear RGB)")
        for light in self.spec.lights:
            d = torch.nn.functional.normalize(torch.tensor(light.direction, dtype=torch.float32), dim=0)
            self._add(name=f"light.{light.name}.direction", group="lighting", value=d.to(dev), lower=-1.0, upper=1.0,
                      metric="angle", normalize=True, lr=0.02,
                      description=f"direction towards light {light.name} (world space)")
            self._add(name=f"light.{light.name}.color", group="lighting", value=torch.tensor(light.color, device=dev),
                      lower=0.0, upper=1.0, unit="rgb", lr=0.01, description=f"colour of light {light.name}")
            self._add(name=f"light.{light.name}.intensity", group="lighting",
                      value=torch.tensor([float(light.intensity)], device=dev), lower=0.0, upper=10.0,
                      metric="relative", lr=0.02, description=f"intensity of light {light.name}")
        if self.spec.sh is not None:
            sh = resolve_texture(self.spec.sh, self.spec.base_dir) if isinstance(self.spec.sh, str) else torch.tensor(self.spec.sh)
            if sh.shape != (9, 3):
                raise SceneError(f"{self.spec.source}: [lights] sh must be 9 rows of [r, g, b], got shape {tuple(sh.shape)}.")
            self._add(name="light.sh", group="lighting", value=sh.to(dev), lower=-2.0, upper=2.0, unit="rgb",
                      lr=0.01, description="spherical-harmonics environment light (9 x RGB)")
        if self.spec.envmap is not None:
            env = resolve_texture(self.spec.envmap, self.spec.base_dir)
            if env.dim() != 4 or env.shape[0] != 6:
                raise SceneError(f"{self.spec.source}: [lights] envmap must be a cube map [6,R,R,3].")
            self._add(name="light.envmap", group="lighting", value=env.to(dev), lower=0.0, upper=4.0, unit="rgb",
                      lr=0.01, description="environment cube map seen in reflections")

    def _build_camera(self) -> None:
        c = self.spec.camera
        dev = self.device
        self._add(name="camera.azimuth", group="camera", value=torch.tensor([float(c.azimuth)], device=dev),
                  lower=-360.0, upper=360.0, unit="deg", lr=1.0, description="orbit azimuth of view 0 (degrees)")
        self._add(name="camera.elevation", group="camera", value=torch.tensor([float(c.elevation)], device=dev),
                  lower=-MAX_ELEVATION, upper=MAX_ELEVATION, unit="deg", lr=1.0,
                  description="orbit elevation of view 0 (degrees)")
        self._add(name="camera.distance", group="camera", value=torch.tensor([float(c.distance)], device=dev),
                  lower=0.5, upper=20.0, metric="relative", lr=0.02, description="distance to the target (scene units)")
        self._add(name="camera.fov", group="camera", value=torch.tensor([float(c.fov)], device=dev),
                  lower=10.0, upper=120.0, unit="deg", lr=0.5,
                  description=f"field of view across the picture's {'width' if c.fov_axis == 'x' else 'height'} "
                              "(degrees; [camera] fov_axis)")
        self._add(name="camera.target", group="camera", value=torch.tensor(c.target, dtype=torch.float32, device=dev),
                  lower=-5.0, upper=5.0, unit="units", lr=0.01, description="point the camera looks at")
        views = c.views
        if views is None:
            self.view_offsets = [(0.0, 0.0)]
        elif isinstance(views, int):
            self.view_offsets = fibonacci_views(views)
        else:
            try:
                self.view_offsets = [(float(a), float(e)) for a, e in views]
            except (TypeError, ValueError):
                raise SceneError(f"{self.spec.source}: [camera] views must be a count or a list of "
                                 "[azimuth, elevation] offsets in degrees.") from None
        self.params.derived_metrics["camera"] = self._camera_error

    def _apply_free_params(self) -> None:
        for fp in self.spec.params:
            try:
                p = self.params[fp.path]
            except ParameterError as exc:
                raise SceneError(f"{self.spec.source}: [[param]] {exc}") from None
            p.trainable = True
            if not self._configure_free_param(p, fp):
                if p.ground_truth is None:
                    p.ground_truth = p.value.detach().clone()
                if fp.metric is not None:
                    p.metric = fp.metric
            if fp.lr is not None:
                p.lr = float(fp.lr)
            if fp.lower is not None:
                p.lower = float(fp.lower)
            if fp.upper is not None:
                p.upper = float(fp.upper)
        self._after_free_params()
        self.randomize(self.spec.seed)

    def _configure_free_param(self, p: Parameter, fp: FreeParamSpec) -> bool:
        """Scene-specific set-up of a free parameter; True when its ground truth is handled."""
        return False

    def _after_free_params(self) -> None:
        """Scene-specific work once the free parameters are known."""

    def _truth(self, p: Parameter) -> torch.Tensor:
        """The value a free parameter's start is drawn around (CPU)."""
        return (p.ground_truth if p.ground_truth is not None else self._built_values[p.name]).detach().cpu()

    def _perturbed(self, p: Parameter, fp: FreeParamSpec, truth: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``truth`` plus ``fp.perturb`` noise (subclasses add other kinds of noise)."""
        return truth + float(fp.perturb) * torch.randn(p.value.shape, generator=gen)

    def randomize(self, seed: int) -> None:
        """Set every free parameter to its starting value: the scene file's ``init`` (a value,
        "random" within bounds, or "mean"), ``perturb`` noise around the truth, or else the scene's
        own value (e.g. a template mesh that is fitted to a target mesh); noise is drawn with
        ``seed``.  The result becomes the initial state that Reset returns to."""
        gen = torch.Generator().manual_seed(seed)
        for fp in self.spec.params:
            p = self.params[fp.path]
            truth = self._truth(p)
            if fp.init == "random":
                lo = p.lower if p.lower is not None else -1.0
                hi = p.upper if p.upper is not None else 1.0
                start = lo + (hi - lo) * torch.rand(p.value.shape, generator=gen)
            elif fp.init == "mean":
                start = truth.reshape(-1, truth.shape[-1]).mean(0).expand(truth.shape).clone()
            elif fp.init is not None:
                start = torch.tensor(fp.init, dtype=torch.float32)
            elif fp.perturb is not None:
                start = self._perturbed(p, fp, truth, gen)
            else:
                start = self._built_values[p.name]
            try:
                p.set(start)
            except ParameterError as exc:
                raise SceneError(f"{self.spec.source}: [[param]] {fp.path} init: {exc}") from None
            p.initial = p.value.detach().clone()

    # ------------------------------------------------------------------ metrics

    def _view_rotation(self, values: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        eye = orbit_eye(values["camera.azimuth"][0], values["camera.elevation"][0], values["camera.distance"][0],
                        values["camera.target"])
        view = look_at(eye, values["camera.target"])
        return view[:3, :3], eye

    def _camera_error(self) -> GroupError | None:
        if not any(p.trainable and p.group == "camera" for p in self.params):
            return None
        with torch.no_grad():
            r, eye = self._view_rotation(self.params.values())
            r_gt, _ = self._view_rotation(self.params.ground_truth_values())
        return GroupError(float(rotation_angle_deg(r, r_gt)), "deg")

    def camera_translation_error(self) -> float:
        """Relative camera position error |eye - eye_gt| / |eye_gt - target_gt| of view 0."""
        with torch.no_grad():
            _, eye = self._view_rotation(self.params.values())
            gt = self.params.ground_truth_values()
            _, eye_gt = self._view_rotation(gt)
            return float((eye - eye_gt).norm() / (eye_gt - gt["camera.target"]).norm().clamp(min=1e-8))

    # ------------------------------------------------------------------ rendering

    @property
    def num_views(self) -> int:
        return len(self.view_offsets)

    def views(self, views: Sequence[int], values: Mapping[str, torch.Tensor]):
        """(view [B,4,4] world-to-camera, eye [B,3], forward [B,3]) of the given rig views,
        differentiable in the camera parameters."""
        az, el, dist = values["camera.azimuth"][0], values["camera.elevation"][0], values["camera.distance"][0]
        target = values["camera.target"]
        mats, eyes, fwds = [], [], []
        for v in views:
            daz, delev = self.view_offsets[v]
            eye = orbit_eye(az + daz, (el + delev).clamp(-MAX_ELEVATION, MAX_ELEVATION), dist, target)
            view = look_at(eye, target)
            mats.append(view)
            eyes.append(eye)
            fwds.append(-view[2, :3])
        return torch.stack(mats), torch.stack(eyes), torch.stack(fwds)

    def vertical_fov(self, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The vertical field of view in degrees (a 0-d tensor, differentiable in ``camera.fov``):
        ``camera.fov`` itself, or, with ``fov_axis = "x"``, the vertical angle that gives the
        picture that horizontal angle at its aspect (width / height)."""
        fov = values["camera.fov"][0]
        if self.spec.camera.fov_axis != "x":
            return fov
        h, w = self.resolution
        return torch.rad2deg(2.0 * torch.atan(torch.tan(torch.deg2rad(fov) / 2.0) * h / w))

    def cameras(self, views: Sequence[int], values: Mapping[str, torch.Tensor]):
        """(mvp [B,4,4], eye [B,3], forward [B,3]) of the given views, differentiable in the camera."""
        h, w = self.resolution
        proj = perspective(self.vertical_fov(values), w / h, 0.05, 50.0, device=self.device)
        view, eye, fwd = self.views(views, values)
        return proj @ view, eye, fwd

    def lights(self, values: Mapping[str, torch.Tensor]) -> Lights:
        names = [light.name for light in self.spec.lights]
        if names:
            dirs = torch.stack([values[f"light.{n}.direction"] for n in names])
            cols = torch.stack([values[f"light.{n}.color"] * values[f"light.{n}.intensity"] for n in names])
        else:
            dirs = torch.zeros(0, 3, device=self.device)
            cols = torch.zeros(0, 3, device=self.device)
        return Lights(values["light.ambient"], dirs, cols, values.get("light.sh"), values.get("light.envmap"))

    def shade(self, gb: GBuffer, values: Mapping[str, torch.Tensor]) -> RenderOutput:
        """Material, lighting and compositing over the background on a G-buffer, then the
        renderer's ``finish`` (silhouette antialiasing for meshes)."""
        albedo, specular, shininess = self.material_maps(gb, values)
        rough, metal = self.pbr_maps(gb, values) if self.spec.shading == "pbr" else (None, None)
        color = shade(gb, albedo, self.lights(values), self.spec.shading, specular, shininess, self.backend,
                      roughness=rough, metallic=metal)
        bg = torch.tensor(self.spec.background, dtype=color.dtype, device=color.device)
        composite = torch.cat([color * gb.alpha + bg * (1 - gb.alpha), gb.alpha], -1)
        out = gb.finish(composite)
        return RenderOutput(rgb=out[..., :3], alpha=out[..., 3:], gbuffer=gb, shaded=color)

    def render_targets(self) -> RenderOutput:
        """Ground-truth render of every view in the rig, without gradients."""
        with torch.no_grad():
            return self.render(target=True)
