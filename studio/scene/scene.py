"""A renderable scene: objects, camera rig, lights and material, all read from one ParameterSet.

``Scene(spec, backend).render(views)`` turns the current parameter values into images; the same
call with ``values=params.ground_truth_values()`` renders the targets of a synthetic scenario.
Images are [B,H,W,3] linear RGB composited over the background, top row first, with an
antialiased alpha [B,H,W,1].
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from ..render.backend import Backend
from ..render.gbuffer import GBuffer
from ..render.raster_pass import raster_gbuffer
from ..render.shading import Lights, shade
from .assets import resolve_mesh, resolve_texture
from .camera import look_at, orbit_eye, perspective, quaternion_to_matrix, rotation_angle_deg, to_clip
from .mesh import Mesh, MeshTopology, vertex_normals
from .params import GroupError, Parameter, ParameterError, ParameterSet
from .surface_distance import surface_chamfer
from .spec import SceneError, SceneSpec

log = logging.getLogger("studio.scene")

# Elevations of +-90 degrees make the look-at frame degenerate.
_MAX_ELEVATION = 85.0
# Rounds of neighbour averaging that turn per-vertex noise into dents a few rings wide.
_DENT_SMOOTHING = 12


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


@dataclass
class _Object:
    name: str
    class_name: str | None
    mesh: Mesh
    target: Mesh | None
    topology: MeshTopology
    albedo_kind: str  # "constant" | "vertex" | "texture"
    vertex_offset: int = 0
    face_offset: int = 0


def fibonacci_views(n: int, elevation_range: float = 60.0) -> list[tuple[float, float]]:
    """``n`` (azimuth, elevation) offsets in degrees spread evenly around the object."""
    views = []
    golden = math.pi * (3.0 - math.sqrt(5.0))
    for i in range(n):
        y = 1.0 - (i + 0.5) / n * 2.0
        el = math.degrees(math.asin(y)) * elevation_range / 90.0
        views.append((math.degrees(i * golden) % 360.0, el))
    return views


class Scene:
    """Build parameters from a :class:`SceneSpec` and render them with a backend.

    Args:
        spec: the parsed scene file.
        backend: rendering backend (its device is the scene's device).
        options: teaching/visibility switches, e.g. ``antialias`` (bool).
    """

    def __init__(self, spec: SceneSpec, backend: Backend, **options: object):
        if spec.kind != "mesh":
            raise SceneError(f"{spec.source}: Scene renders mesh scenes; use studio.scene.load_scene for {spec.kind!r}.")
        self.spec = spec
        self.backend = backend
        self.device = backend.device
        self.resolution = spec.resolution
        self.options = {"antialias": spec.antialias, **options}
        self.params = ParameterSet()
        self.objects: list[_Object] = []
        self.textures: dict[str, torch.Tensor] = {}
        self._build_objects()
        self._build_lights()
        self._build_camera()
        self._faces = torch.cat([o.mesh.faces + o.vertex_offset for o in self.objects]).to(self.device).int().contiguous()
        self._tri_object = torch.cat([torch.full((o.mesh.faces.shape[0],), i, dtype=torch.long)
                                      for i, o in enumerate(self.objects)]).to(self.device)
        self._topology = backend.construct_topology(self._faces)
        self._target_faces: torch.Tensor | None = None
        self._target_topology = None
        self._built_values = {p.name: p.value.detach().cpu().clone() for p in self.params}
        self._apply_free_params()

    # ------------------------------------------------------------------ building

    def _add(self, **kw: object) -> Parameter:
        return self.params.add(Parameter(**kw))

    def _build_objects(self) -> None:
        v_off = f_off = 0
        for o in self.spec.objects:
            mesh = resolve_mesh(o.mesh, self.spec.base_dir, normalize=o.normalize)
            target = resolve_mesh(o.target_mesh, self.spec.base_dir, normalize=o.normalize) if o.target_mesh else None
            kind, albedo = self._albedo_value(o, mesh)
            obj = _Object(o.name, o.class_name, mesh.to(self.device), target.to(self.device) if target else None,
                          MeshTopology.from_faces(mesh.faces.to(self.device)), kind, v_off, f_off)
            self.objects.append(obj)
            v_off += mesh.vertices.shape[0]
            f_off += mesh.faces.shape[0]
            dev = self.device
            self._add(name=f"{o.name}.vertices", group="geometry", value=mesh.vertices.to(dev), unit="units",
                      lr=0.01, description=f"vertex positions of {o.name} (object space, scene units)")
            self._add(name=f"{o.name}.position", group="geometry", value=torch.tensor(o.position, device=dev),
                      lower=-5.0, upper=5.0, unit="units", lr=0.01, description=f"position of {o.name}")
            self._add(name=f"{o.name}.rotation", group="geometry", value=torch.tensor(o.rotation, device=dev),
                      lower=-1.0, upper=1.0, metric="rotation", normalize=True, lr=0.01,
                      description=f"orientation of {o.name} as a quaternion (w, x, y, z)")
            self._add(name=f"{o.name}.scale", group="geometry", value=torch.tensor([float(o.scale)], device=dev),
                      lower=0.05, upper=5.0, metric="relative", lr=0.01, description=f"uniform scale of {o.name}")
            self._add(name=f"{o.name}.albedo", group="material", value=albedo.to(dev), lower=0.0, upper=1.0,
                      unit="rgb", lr=0.01, description=f"diffuse colour of {o.name} ({kind}, linear RGB)")
            self._add(name=f"{o.name}.specular", group="material", value=torch.tensor([float(o.specular)], device=dev),
                      lower=0.0, upper=2.0, unit="rgb", lr=0.01, description=f"specular strength of {o.name}")
            self._add(name=f"{o.name}.shininess", group="material", value=torch.tensor([float(o.shininess)], device=dev),
                      lower=1.0, upper=256.0, metric="relative", lr=1.0, description=f"Blinn-Phong exponent of {o.name}")

    def _albedo_value(self, o, mesh: Mesh) -> tuple[str, torch.Tensor]:
        a = o.albedo
        if isinstance(a, str) and a == "vertex":
            if mesh.vertex_colors is not None:
                return "vertex", mesh.vertex_colors.float()
            g = torch.Generator().manual_seed(self.spec.seed + 17)
            return "vertex", torch.rand(mesh.vertices.shape[0], 3, generator=g)
        if isinstance(a, str) and a.startswith("texture:"):
            if mesh.uv is None:
                raise SceneError(f"{self.spec.source}: object {o.name!r} has a texture albedo but its mesh has no UVs.")
            return "texture", resolve_texture(a[len("texture:"):], self.spec.base_dir)
        try:
            value = torch.tensor([float(c) for c in a])
        except (TypeError, ValueError):
            value = torch.zeros(0)
        if value.shape != (3,):
            raise SceneError(f"{self.spec.source}: object {o.name!r} albedo must be [r, g, b], \"vertex\" or "
                             f"\"texture:NAME\", got {a!r}.")
        return "constant", value

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
                  lower=-_MAX_ELEVATION, upper=_MAX_ELEVATION, unit="deg", lr=1.0,
                  description="orbit elevation of view 0 (degrees)")
        self._add(name="camera.distance", group="camera", value=torch.tensor([float(c.distance)], device=dev),
                  lower=0.5, upper=20.0, metric="relative", lr=0.02, description="distance to the target (scene units)")
        self._add(name="camera.fov", group="camera", value=torch.tensor([float(c.fov)], device=dev),
                  lower=10.0, upper=120.0, unit="deg", lr=0.5, description="vertical field of view (degrees)")
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
        self._gt_vertices: dict[str, torch.Tensor] = {}
        self._vertex_metric: dict[str, str] = {}
        for fp in self.spec.params:
            try:
                p = self.params[fp.path]
            except ParameterError as exc:
                raise SceneError(f"{self.spec.source}: [[param]] {exc}") from None
            p.trainable = True
            if p.name.endswith(".vertices"):
                o = self._object_of(p)
                # A mesh fitted to a target mesh has no vertex correspondence (vertices may slide
                # along the surface), so it is measured by Chamfer distance; otherwise the truth
                # is the scene's own vertices.  The scene measures meshes (group error), so the
                # parameter reports no error itself.
                if o.target is None:
                    self._gt_vertices[p.name] = p.value.detach().clone()
                if fp.metric not in (None, "rmse", "chamfer"):
                    raise SceneError(f"{self.spec.source}: [[param]] {fp.path}: vertices are measured by "
                                     f"\"rmse\" or \"chamfer\", not {fp.metric!r}.")
                self._vertex_metric[p.name] = fp.metric or ("chamfer" if o.target is not None else "rmse")
                p.ground_truth = None
            else:
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
        if any(self.params[f"{o.name}.vertices"].trainable for o in self.objects):
            self.params.derived_metrics["geometry"] = self._vertex_error
        self._weigh_texels()
        self.randomize(self.spec.seed)

    def _weigh_texels(self) -> None:
        """Weight texture errors by how much each texel shows in the target views.

        A texel near a sphere's pole, or on a side no camera sees, hardly changes any image, so it
        cannot be recovered and should not count like one in full view.  The weight of a texel is
        the gradient of the summed target images with respect to it (its rendered footprint).
        """
        textures = [self.params[f"{o.name}.albedo"] for o in self.objects
                    if o.albedo_kind == "texture" and self.params[f"{o.name}.albedo"].trainable]
        if not textures:
            return
        values = dict(self.params.ground_truth_values())
        probes = {p.name: p.ground_truth.clone().requires_grad_(True) for p in textures}
        values.update(probes)
        self.render(values=values).rgb.sum().backward()
        for p in textures:
            p.error_weights = probes[p.name].grad.abs().sum(-1, keepdim=True).detach()

    def randomize(self, seed: int) -> None:
        """Set every free parameter to its starting value: the scene file's ``init`` (a value,
        "random" within bounds, or "mean"), ``perturb`` noise around the truth (along vertex
        normals with ``along = "normal"``), or else the scene's own value (e.g. the template mesh
        that is deformed towards a target mesh); noise is drawn with ``seed``.  The result becomes
        the initial state that Reset returns to."""
        gen = torch.Generator().manual_seed(seed)
        for fp in self.spec.params:
            p = self.params[fp.path]
            built = self._built_values[p.name]
            truth = p.ground_truth if p.ground_truth is not None else self._gt_vertices.get(p.name)
            truth = built if truth is None else truth.detach().cpu()
            if fp.init == "random":
                lo = p.lower if p.lower is not None else -1.0
                hi = p.upper if p.upper is not None else 1.0
                start = lo + (hi - lo) * torch.rand(p.value.shape, generator=gen)
            elif fp.init == "mean":
                start = truth.reshape(-1, truth.shape[-1]).mean(0).expand(truth.shape).clone()
            elif fp.init is not None:
                start = torch.tensor(fp.init, dtype=torch.float32)
            elif fp.perturb is not None and fp.along == "normal":
                start = truth + float(fp.perturb) * self._smooth_dents(self._object_of(p), truth, gen)
            elif fp.perturb is not None:
                start = truth + float(fp.perturb) * torch.randn(p.value.shape, generator=gen)
            else:
                start = built
            try:
                p.set(start)
            except ParameterError as exc:
                raise SceneError(f"{self.spec.source}: [[param]] {fp.path} init: {exc}") from None
            p.initial = p.value.detach().clone()

    @staticmethod
    def _smooth_dents(o: _Object, vertices: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """[V,3] displacements along the vertex normals with unit standard deviation, smooth over a
        few rings of neighbours: dents and bulges a camera can see, rather than per-vertex jitter."""
        topo = o.topology.to("cpu")
        h = torch.randn(vertices.shape[0], 1, generator=gen)
        for _ in range(_DENT_SMOOTHING):
            h = h - topo.laplacian(h)  # replace each value by its neighbours' mean
        h = (h - h.mean()) / h.std().clamp(min=1e-8)
        return h * vertex_normals(vertices, o.mesh.faces.cpu())

    def _object_of(self, p: Parameter) -> _Object:
        name = p.name.split(".")[0]
        return next((o for o in self.objects if o.name == name), self.objects[0])

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

    def _vertex_error(self) -> GroupError | None:
        """Geometry error of the optimised meshes in scene units (RMS over objects): vertex RMSE
        against the true vertices, or, with ``metric = "chamfer"`` and for objects fitted to a
        target mesh (no vertex correspondence), the symmetric point-to-surface Chamfer distance."""
        total, count = 0.0, 0
        values = self.params.values()
        with torch.no_grad():
            for o in self.objects:
                name = f"{o.name}.vertices"
                if not self.params[name].trainable:
                    continue
                x = self.object_vertices(o, values)
                truth = self._gt_vertices.get(name)
                if self._vertex_metric[name] == "rmse":
                    total += float((x - truth).square().sum(-1).mean())
                elif truth is not None:
                    total += float(surface_chamfer(x, o.mesh.faces, truth, o.mesh.faces)) ** 2
                else:
                    total += float(surface_chamfer(x, o.mesh.faces, o.target.vertices, o.target.faces)) ** 2
                count += 1
        return GroupError(math.sqrt(total / count), "units") if count else None

    def object_vertices(self, o: _Object, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Object-space vertex positions [V,3] of ``o``."""
        return values[f"{o.name}.vertices"]

    def fitted_meshes(self) -> list[tuple[torch.Tensor, MeshTopology]]:
        """(vertex positions, topology) of every object whose vertices are optimised (for
        regularisers), differentiable in the parameters."""
        values = self.params.values()
        return [(self.object_vertices(o, values), o.topology) for o in self.objects
                if self.params[f"{o.name}.vertices"].trainable]

    # ------------------------------------------------------------------ rendering

    @property
    def num_views(self) -> int:
        return len(self.view_offsets)

    def cameras(self, views: Sequence[int], values: Mapping[str, torch.Tensor]):
        """(mvp [B,4,4], eye [B,3], forward [B,3]) of the given views, differentiable in the camera."""
        az, el, dist = values["camera.azimuth"][0], values["camera.elevation"][0], values["camera.distance"][0]
        target = values["camera.target"]
        h, w = self.resolution
        proj = perspective(values["camera.fov"][0], w / h, 0.05, 50.0, device=self.device)
        mvps, eyes, fwds = [], [], []
        for v in views:
            daz, delev = self.view_offsets[v]
            eye = orbit_eye(az + daz, (el + delev).clamp(-_MAX_ELEVATION, _MAX_ELEVATION), dist, target)
            view = look_at(eye, target)
            mvps.append(proj @ view)
            eyes.append(eye)
            fwds.append(-view[2, :3])
        return torch.stack(mvps), torch.stack(eyes), torch.stack(fwds)

    def world_geometry(self, values: Mapping[str, torch.Tensor], target: bool = False):
        """World-space vertices [V,3], normals [V,3] and faces [T,3] of all objects."""
        verts, normals, faces = [], [], []
        offset = 0
        for o in self.objects:
            if target and o.target is not None:
                v_obj, f_obj = o.target.vertices, o.target.faces
            elif target and f"{o.name}.vertices" in self._gt_vertices:  # perturbed own vertices
                v_obj, f_obj = self._gt_vertices[f"{o.name}.vertices"], o.mesh.faces
            else:
                v_obj, f_obj = self.object_vertices(o, values), o.mesh.faces
            rot = quaternion_to_matrix(values[f"{o.name}.rotation"])
            v = (v_obj * values[f"{o.name}.scale"]) @ rot.T + values[f"{o.name}.position"]
            verts.append(v)
            normals.append(vertex_normals(v, f_obj))
            faces.append(f_obj + offset)
            offset += v.shape[0]
        return torch.cat(verts), torch.cat(normals), torch.cat(faces).int().contiguous()

    def lights(self, values: Mapping[str, torch.Tensor]) -> Lights:
        names = [light.name for light in self.spec.lights]
        if names:
            dirs = torch.stack([values[f"light.{n}.direction"] for n in names])
            cols = torch.stack([values[f"light.{n}.color"] * values[f"light.{n}.intensity"] for n in names])
        else:
            dirs = torch.zeros(0, 3, device=self.device)
            cols = torch.zeros(0, 3, device=self.device)
        return Lights(values["light.ambient"], dirs, cols, values.get("light.sh"), values.get("light.envmap"))

    def render(self, views: Sequence[int] | None = None, values: Mapping[str, torch.Tensor] | None = None,
               target: bool = False) -> RenderOutput:
        """Render views of the scene.

        Args:
            views: indices into the camera rig (default: all).
            values: parameter tensors by name (default: the live parameters).
            target: render the ground-truth scene (ground-truth values and target meshes).
        """
        if values is None:
            values = self.params.ground_truth_values() if target else self.params.values()
        views = list(range(self.num_views)) if views is None else list(views)
        mvp, eye, fwd = self.cameras(views, values)
        verts, normals, faces = self.world_geometry(values, target)
        pos = to_clip(verts, mvp).contiguous()
        colors = self._vertex_albedo(values, target)
        uv, uv_faces = self._uvs(target)
        topology = self._topology if faces.shape == self._faces.shape and not target else self._target_topo(faces)
        gb = raster_gbuffer(self.backend, pos, faces, self.resolution, world_pos=verts, normals=normals, eye=eye,
                            forward=fwd, colors=colors, uv=uv, uv_tri=uv_faces,
                            tri_object=self._tri_object if faces.shape == self._faces.shape else None,
                            antialias=bool(self.options.get("antialias", True)), topology=topology)
        return self.shade(gb, values)

    def shade(self, gb: GBuffer, values: Mapping[str, torch.Tensor]) -> RenderOutput:
        """Material, lighting and compositing on a G-buffer (shared by every renderer)."""
        albedo = gb.albedo if gb.albedo is not None else torch.zeros_like(gb.position)
        oid = gb.object_id.clamp(min=0)
        for i, o in enumerate(self.objects):
            if o.albedo_kind == "texture" and gb.uv is not None:
                tex = values[f"{o.name}.albedo"].unsqueeze(0).contiguous()
                sampled = self.backend.texture(tex, gb.uv.contiguous(), gb.uv_da.contiguous(),
                                               filter_mode=str(self.options.get("filter_mode", "linear-mipmap-linear")))
                albedo = torch.where((gb.object_id == i).unsqueeze(-1), sampled, albedo)
        spec = torch.stack([values[f"{o.name}.specular"][0] for o in self.objects])[oid].unsqueeze(-1)
        shin = torch.stack([values[f"{o.name}.shininess"][0] for o in self.objects])[oid].unsqueeze(-1)
        color = shade(gb, albedo, self.lights(values), self.spec.shading, spec, shin, self.backend)
        bg = torch.tensor(self.spec.background, dtype=color.dtype, device=color.device)
        composite = torch.cat([color * gb.alpha + bg * (1 - gb.alpha), gb.alpha], -1)
        out = gb.finish(composite)
        return RenderOutput(rgb=out[..., :3], alpha=out[..., 3:], gbuffer=gb, shaded=color)

    def _vertex_albedo(self, values: Mapping[str, torch.Tensor], target: bool) -> torch.Tensor:
        cols = []
        for o in self.objects:
            n = o.target.vertices.shape[0] if target and o.target is not None else o.mesh.vertices.shape[0]
            a = values[f"{o.name}.albedo"]
            if o.albedo_kind == "vertex" and a.shape[0] == n:
                cols.append(a)
            elif o.albedo_kind == "constant":
                cols.append(a.expand(n, 3))
            else:
                cols.append(torch.full((n, 3), 0.5, device=self.device))
        return torch.cat(cols)

    def _uvs(self, target: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if not any(o.albedo_kind == "texture" for o in self.objects):
            return None, None
        if target and any(o.target is not None for o in self.objects):
            return None, None
        uvs, faces, off = [], [], 0
        for o in self.objects:
            m = o.mesh
            if m.uv is not None:
                uvs.append(m.uv)
                faces.append(m.uv_faces + off)
                off += m.uv.shape[0]
            else:
                uvs.append(torch.zeros(1, 2, device=self.device))
                faces.append(torch.full_like(m.faces, off))
                off += 1
        return torch.cat(uvs).contiguous(), torch.cat(faces).int().contiguous()

    def _target_topo(self, faces: torch.Tensor):
        if self._target_faces is None or not torch.equal(self._target_faces, faces):
            self._target_faces = faces
            self._target_topology = self.backend.construct_topology(faces)
        return self._target_topology

    def render_targets(self) -> RenderOutput:
        """Ground-truth render of every view in the rig, without gradients."""
        with torch.no_grad():
            return self.render(target=True)
