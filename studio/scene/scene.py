"""Mesh scenes: triangle-mesh objects rasterized into a G-buffer.

``Scene(spec, backend).render(views)`` turns the current parameter values into images; the same
call with ``target=True`` renders the ground truth of a synthetic scenario.  Images are [B,H,W,3]
linear RGB composited over the background, top row first, with an antialiased alpha [B,H,W,1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

import torch

from ..render.gbuffer import GBuffer
from ..render.raster_pass import raster_gbuffer
from ..render.shadow import SHADOW_MODES, check_mode, shadow_gbuffer_term
from .assets import resolve_mesh, resolve_texture
from .base import RenderOutput, SceneBase
from .camera import quaternion_to_matrix, to_clip
from .mesh import Mesh, MeshTopology, vertex_normals
from .params import GroupError, Parameter
from .spec import FreeParamSpec, SceneError
from .surface_distance import surface_chamfer

# Rounds of neighbour averaging that turn per-vertex noise into dents a few rings wide.
_DENT_SMOOTHING = 12
#: The scene file's [shadows] section and its defaults (soft shadows when the section is there;
#: without it, mode "off": no shadow pass at all).
SHADOW_KEYS = {"mode": "soft", "resolution": 512, "bias": 0.01}


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
    textured_maps: tuple[str, ...] = ()  # PBR maps read from a texture ("roughness", "metallic")


class Scene(SceneBase):
    """A scene of triangle-mesh objects (``kind = "mesh"``), rendered by rasterization.

    Args:
        spec: the parsed scene file.
        backend: rendering backend (its device is the scene's device).
        options: render switches, see :class:`SceneBase`; ``shadows`` ("off", "hard" or "soft",
            default: the [shadows] section's ``mode``) picks how the fit is shadowed (the targets
            always use the scene file's mode).
    """

    def __init__(self, spec, backend, **options: object):
        if spec.kind != "mesh":
            raise SceneError(f"{spec.source}: Scene renders mesh scenes; use studio.workspace.build_scene for {spec.kind!r}.")
        self.objects: list[_Object] = []
        self._gt_vertices: dict[str, torch.Tensor] = {}
        self._vertex_metric: dict[str, str] = {}
        self.shadow_settings = self._shadow_settings(spec)
        super().__init__(spec, backend, **{"shadows": self.shadow_settings["mode"], **options})

    @staticmethod
    def _shadow_settings(spec) -> dict:
        given = spec.extra.get("shadows", {})
        unknown = set(given) - set(SHADOW_KEYS)
        if unknown:
            raise SceneError(f"{spec.source}: unknown key {sorted(unknown)[0]!r} in [shadows]; known keys are "
                             f"{', '.join(sorted(SHADOW_KEYS))}.")
        settings = {**SHADOW_KEYS, "mode": "soft" if "shadows" in spec.extra else "off", **given}
        if settings["mode"] not in SHADOW_MODES:
            raise SceneError(f"{spec.source}: [shadows] mode must be one of {', '.join(SHADOW_MODES)}, "
                             f"got {settings['mode']!r}.")
        if not isinstance(settings["resolution"], int) or not 8 <= settings["resolution"] <= 4096:
            raise SceneError(f"{spec.source}: [shadows] resolution must be a whole number of texels from 8 to 4096, "
                             f"got {settings['resolution']!r}.")
        if not isinstance(settings["bias"], (int, float)) or settings["bias"] <= 0:
            raise SceneError(f"{spec.source}: [shadows] bias must be a positive distance in scene units, "
                             f"got {settings['bias']!r}.")
        return settings

    @property
    def has_shadows(self) -> bool:
        """Whether the scene file has a [shadows] section (its bias and penumbra parameters exist)."""
        return "shadows" in self.spec.extra

    # ------------------------------------------------------------------ building

    def _build_content(self) -> None:
        self._build_objects()
        self._faces = torch.cat([o.mesh.faces + o.vertex_offset for o in self.objects]).to(self.device).int().contiguous()
        self._tri_object = torch.cat([torch.full((o.mesh.faces.shape[0],), i, dtype=torch.long)
                                      for i, o in enumerate(self.objects)]).to(self.device)
        self._topology = self.backend.construct_topology(self._faces)
        self._target_faces: torch.Tensor | None = None
        self._target_topology = None

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
            if self.spec.shading == "pbr":
                self._add_pbr_maps(obj, o, mesh)

    def _add_pbr_maps(self, obj: _Object, o, mesh: Mesh) -> None:
        """``NAME.roughness`` and ``NAME.metallic``: a number in [0, 1] each, or a texture
        ("texture:NAME[:SIZE]", its first channel, read through the mesh's UVs)."""
        about = {"roughness": "GGX perceptual roughness (0 mirror, 1 matte)",
                 "metallic": "metallic (0 dielectric with 4% reflectance, 1 metal tinted by its colour)"}
        textured = []
        for key in ("roughness", "metallic"):
            ref = getattr(o, key)
            if isinstance(ref, str) and ref.startswith("texture:"):
                if mesh.uv is None:
                    raise SceneError(f"{self.spec.source}: object {o.name!r} has a {key} texture but its mesh has no UVs.")
                value = resolve_texture(ref[len("texture:"):], self.spec.base_dir)[..., :1].clamp(0.0, 1.0)
                textured.append(key)
            else:
                try:
                    value = torch.tensor([float(ref)])
                except (TypeError, ValueError):
                    raise SceneError(f"{self.spec.source}: object {o.name!r} {key} must be a number in [0, 1] or "
                                     f"\"texture:NAME\", got {ref!r}.") from None
            self._add(name=f"{o.name}.{key}", group="material", value=value.to(self.device),
                      lower=0.02 if key == "roughness" else 0.0, upper=1.0, lr=0.01,
                      description=f"{about[key]} of {o.name}")
        obj.textured_maps = tuple(textured)

    def _build_lights(self) -> None:
        super()._build_lights()
        if not self.has_shadows:
            return
        dev = self.device
        self._add(name="shadow.bias", group="lighting", value=torch.tensor([float(self.shadow_settings["bias"])], device=dev),
                  lower=1e-4, upper=0.2, unit="units", lr=0.001,
                  description="shadow-map depth bias (scene units): larger removes self-shadowing, too large "
                              "detaches shadows from their casters")
        for light in self.spec.lights:
            self._add(name=f"light.{light.name}.penumbra", group="lighting",
                      value=torch.tensor([float(light.penumbra)], device=dev), lower=0.0, upper=30.0, unit="deg",
                      lr=0.2, description=f"angular radius of light {light.name} (degrees): the width of its "
                                          "soft shadows' penumbra")

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

    def _configure_free_param(self, p: Parameter, fp: FreeParamSpec) -> bool:
        if not p.name.endswith(".vertices"):
            return False
        o = self._object_of(p)
        # A mesh fitted to a target mesh has no vertex correspondence (vertices may slide along
        # the surface), so it is measured by Chamfer distance; otherwise the truth is the scene's
        # own vertices.  The scene measures meshes (group error), so the parameter reports none.
        if o.target is None:
            self._gt_vertices[p.name] = p.value.detach().clone()
        if fp.metric not in (None, "rmse", "chamfer"):
            raise SceneError(f"{self.spec.source}: [[param]] {fp.path}: vertices are measured by "
                             f"\"rmse\" or \"chamfer\", not {fp.metric!r}.")
        self._vertex_metric[p.name] = fp.metric or ("chamfer" if o.target is not None else "rmse")
        p.ground_truth = None
        return True

    def _after_free_params(self) -> None:
        if any(self.params[f"{o.name}.vertices"].trainable for o in self.objects):
            self.params.derived_metrics["geometry"] = self._vertex_error
        if self.spec.shading == "pbr":
            self.params.derived_metrics["material"] = self._material_error
        self._weigh_texels()

    def _material_error(self) -> GroupError | None:
        """Material error of a PBR scene: the mean RMSE of every fitted material parameter (base
        colour, roughness, metallic, ...), all on [0, 1] scales, so roughness and metallic count
        as much as colour."""
        errs = [e for p in self.params.in_group("material") if p.trainable and (e := p.error()) is not None]
        return GroupError(sum(errs) / len(errs), "rgb") if errs else None

    def _truth(self, p: Parameter) -> torch.Tensor:
        if p.name in self._gt_vertices:
            return self._gt_vertices[p.name].detach().cpu()
        return super()._truth(p)

    def _perturbed(self, p: Parameter, fp: FreeParamSpec, truth: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if fp.along == "normal":
            return truth + float(fp.perturb) * self._smooth_dents(self._object_of(p), truth, gen)
        return super()._perturbed(p, fp, truth, gen)

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

    def _vertex_error(self) -> GroupError | None:
        """Geometry error of the optimised meshes in world space, scene units (RMS over objects):
        vertex RMSE against the true vertices, or, with ``metric = "chamfer"`` and for objects fitted
        to a target mesh (no vertex correspondence), the symmetric point-to-surface Chamfer distance.

        Both sides are placed by their object's position, rotation and scale (the fit's current
        ones, the truth's ground truth), so moving, turning or scaling an object is an error too."""
        total, count = 0.0, 0
        values = self.params.values()
        truth_pose = {n: self._truth(self.params[n]).to(self.device) for n in values
                      if n.endswith((".position", ".rotation", ".scale"))}
        with torch.no_grad():
            for o in self.objects:
                name = f"{o.name}.vertices"
                if not self.params[name].trainable:
                    continue
                x = self._to_world(o, self.object_vertices(o, values), values)
                truth = self._gt_vertices.get(name)
                if self._vertex_metric[name] == "rmse":
                    total += float((x - self._to_world(o, truth, truth_pose)).square().sum(-1).mean())
                elif truth is not None:
                    total += float(surface_chamfer(x, o.mesh.faces, self._to_world(o, truth, truth_pose),
                                                   o.mesh.faces)) ** 2
                else:
                    total += float(surface_chamfer(x, o.mesh.faces, self._to_world(o, o.target.vertices, truth_pose),
                                                   o.target.faces)) ** 2
                count += 1
        return GroupError(math.sqrt(total / count), "units") if count else None

    @staticmethod
    def _to_world(o: _Object, v_obj: torch.Tensor, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Object-space vertices [V,3] of ``o`` -> world space with its scale, rotation and position."""
        rot = quaternion_to_matrix(values[f"{o.name}.rotation"])
        return (v_obj * values[f"{o.name}.scale"]) @ rot.T + values[f"{o.name}.position"]

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
            v = self._to_world(o, v_obj, values)
            verts.append(v)
            normals.append(vertex_normals(v, f_obj))
            faces.append(f_obj + offset)
            offset += v.shape[0]
        return torch.cat(verts), torch.cat(normals), torch.cat(faces).int().contiguous()

    def _render(self, views: list[int], values: Mapping[str, torch.Tensor], target: bool) -> RenderOutput:
        """Rasterize and shade; ``target`` also swaps in target meshes."""
        mvp, eye, fwd = self.cameras(views, values)
        verts, normals, faces = self.world_geometry(values, target)
        pos = to_clip(verts, mvp).contiguous()
        colors = self._vertex_albedo(values, target)
        uv, uv_faces = self._uvs(target)
        topology = self._topology if faces.shape == self._faces.shape and not target else self._target_topo(faces)
        gb = raster_gbuffer(self.backend, pos, faces, self.resolution, world_pos=verts, normals=normals, eye=eye,
                            forward=fwd, colors=colors, uv=uv, uv_tri=uv_faces,
                            tri_object=self._tri_object if faces.shape == self._faces.shape else None,
                            visibility=self.options["visibility"], topology=topology,
                            soft_sigma=self.options.get("soft_sigma"))
        return self.shade(self._with_shadows(gb, verts, faces, topology, values, target), values)

    def _with_shadows(self, gb: GBuffer, verts: torch.Tensor, faces: torch.Tensor, topology: object,
                      values: Mapping[str, torch.Tensor], target: bool) -> GBuffer:
        """``gb`` with its ``shadow`` field filled from shadow maps of every directional light
        (:mod:`studio.render.shadow`); targets use the scene file's mode, the fit the ``shadows`` option."""
        mode = self.shadow_settings["mode"] if target else check_mode(self.options.get("shadows", "off"))
        if mode == "off" or not self.spec.lights:
            return gb
        if not self.has_shadows:
            raise SceneError(f"{self.spec.source}: shadows {mode!r} need a [shadows] section in the scene file "
                             "(mode, resolution, bias; see assets/scenes/mesh-shadow.toml).")
        lights = self.lights(values)
        penumbra = torch.cat([values[f"light.{light.name}.penumbra"] for light in self.spec.lights])
        shadow = shadow_gbuffer_term(self.backend, verts, faces, lights.directions, gb.position, gb.normal, mode=mode,
                                     bias=values["shadow.bias"], penumbra_deg=penumbra,
                                     size=int(self.shadow_settings["resolution"]), topology=topology)
        return replace(gb, shadow=shadow)

    def material_maps(self, gb: GBuffer, values: Mapping[str, torch.Tensor]):
        albedo = gb.albedo if gb.albedo is not None else torch.zeros_like(gb.position)
        albedo = self._textured(gb, values, "albedo", albedo, [o.albedo_kind == "texture" for o in self.objects])
        oid = gb.object_id.clamp(min=0)
        spec = torch.stack([values[f"{o.name}.specular"][0] for o in self.objects])[oid].unsqueeze(-1)
        shin = torch.stack([values[f"{o.name}.shininess"][0] for o in self.objects])[oid].unsqueeze(-1)
        return albedo, spec, shin

    def pbr_maps(self, gb: GBuffer, values: Mapping[str, torch.Tensor]):
        oid = gb.object_id.clamp(min=0)
        maps = []
        for key in ("roughness", "metallic"):
            # A textured object's entry here is a placeholder, replaced by its texture below.
            per_object = torch.stack([values[f"{o.name}.{key}"].reshape(-1)[0] for o in self.objects])
            maps.append(self._textured(gb, values, key, per_object[oid].unsqueeze(-1),
                                       [key in o.textured_maps for o in self.objects]))
        return tuple(maps)

    def _textured(self, gb: GBuffer, values: Mapping[str, torch.Tensor], key: str, image: torch.Tensor,
                  textured: list[bool]) -> torch.Tensor:
        """``image`` [B,H,W,C] with the pixels of every object whose ``key`` is a texture replaced
        by that texture, sampled at the G-buffer's UVs."""
        if gb.uv is None:
            return image
        for i, o in enumerate(self.objects):
            if textured[i]:
                tex = values[f"{o.name}.{key}"].unsqueeze(0).contiguous()
                sampled = self.backend.texture(tex, gb.uv.contiguous(), gb.uv_da.contiguous(),
                                               filter_mode=str(self.options.get("filter_mode", "linear-mipmap-linear")))
                image = torch.where((gb.object_id == i).unsqueeze(-1), sampled, image)
        return image

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
        if not any(o.albedo_kind == "texture" or o.textured_maps for o in self.objects):
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
