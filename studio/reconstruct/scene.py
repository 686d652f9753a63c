"""A reconstruction is a scene like any other: the unknown mesh, its colours and the lights, seen
by the capture's calibrated cameras.

:class:`ReconstructionScene` renders through the same rasterizer, shading and compositing as every
mesh scene (:class:`studio.scene.base.SceneBase`), so the Engine, the GUI, the curves and the losses
(plugins included) work unchanged.  What is particular to it:

- geometry is a large-steps latent ``shape.u`` (positions ``x = (I + λL)^-1 u``, see
  :mod:`studio.reconstruct.large_steps`) optimised with :class:`UniformAdam`;
- the run moves through :class:`Stage` s (coarse mesh, finer mesh, texture).  Between stages the
  mesh is remeshed isotropically or unwrapped and its colours baked into a texture; the engine
  rebuilds its optimiser and logs the event (``before_step`` returns the events);
- held-out views are rendered every few steps for the held-out PSNR curve (``curve_metrics``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from ..capture.model import Capture, View
from ..render.backend import Backend
from ..render.gbuffer import GBuffer
from ..render.raster_pass import raster_gbuffer
from ..scene.base import RenderOutput, SceneBase
from ..scene.camera import to_clip
from ..scene.mesh import Mesh, vertex_normals
from ..scene.spec import LightSpec, SceneSpec
from .hull import visual_hull
from .large_steps import SmoothSolver, UniformAdam
from .metrics import mask_iou, psnr
from .remesh import isotropic_remesh
from .texture import bake, unwrap

log = logging.getLogger("studio.reconstruct")

NEAR, FAR = 0.05, 20.0


@dataclass(frozen=True)
class Stage:
    """One phase of a reconstruction.

    Attributes:
        name: shown in the log and on the curves.
        start: fraction of the step budget at which it begins.
        edge: target edge length of the remeshed surface (unit-sphere units); None keeps the mesh.
        shape_lr: step size of the shape latent (unit-sphere units per step); 0 holds the shape.
        smoothing: λ of the large-steps parametrisation.
        texture: unwrap and fit a UV texture (instead of vertex colours).
    """

    name: str
    start: float
    edge: float | None
    shape_lr: float
    smoothing: float
    texture: bool = False


#: Coarse to fine: a coarse mesh finds the silhouette, a finer one the detail, then the texture.
DEFAULT_STAGES = (
    Stage("coarse", 0.0, 0.07, 4e-3, 20.0),
    Stage("fine", 0.35, 0.035, 2e-3, 20.0),
    Stage("texture", 0.75, None, 7e-4, 20.0, texture=True),
)


def _spec(capture: Capture, steps: int, views_per_step: int, visibility: str | None) -> SceneSpec:
    h, w = capture.resolution
    src = capture.source
    name = src.parent.name if src.suffix.lower() == ".json" else src.name  # the capture's folder
    return SceneSpec(name=f"reconstruct:{name}", kind="reconstruct", resolution=(h, w),
                     shading="lambert", background=[0.0, 0.0, 0.0], steps=steps, views_per_step=views_per_step,
                     ambient=[0.0, 0.0, 0.0], lights=[LightSpec("sun", [0.3, 0.8, 0.5], [1.0, 1.0, 1.0], 0.5)],
                     sh=[[1.5, 1.5, 1.5]] + [[0.0, 0.0, 0.0]] * 8, losses=[], source=str(capture.source),
                     visibility=visibility)


class ReconstructionScene(SceneBase):
    """The mesh, colours and lights of a capture's object, rendered from the capture's cameras.

    Args:
        capture: the views (training views are the scene's camera rig; ``test_views`` are held out).
        backend: rendering backend.
        steps: the step budget the stages are fractions of.
        views_per_step: training views rendered per step.
        stages: the schedule (default :data:`DEFAULT_STAGES`).
        hull_resolution: voxels per axis of the visual hull.
        texture_size: texels per side of the UV texture.
        heldout_every: steps between held-out evaluations (0: about 20 per run).
        options: render switches, as for every scene.
    """

    #: Scenario objects (front ends list them, e.g. for the mipmap switch): a reconstruction has none,
    #: its one mesh is its own (:meth:`mesh`).
    objects: tuple = ()

    def __init__(self, capture: Capture, backend: Backend, steps: int = 600, views_per_step: int = 4,
                 stages: Sequence[Stage] = DEFAULT_STAGES, hull_resolution: int = 64, texture_size: int = 512,
                 heldout_every: int = 0, **options: object):
        self.capture = capture
        self.stages = tuple(stages)
        self.hull_resolution = hull_resolution
        self.texture_size = texture_size
        self.heldout_every = heldout_every or max(1, steps // 20)
        self.stage_index = -1
        self.notes: list[str] = []
        visibility = options.pop("visibility", None)  # the spec carries it (SceneBase resolves its aliases)
        super().__init__(_spec(capture, steps, views_per_step, visibility), backend, **options)
        for name in ("light.sun.direction", "light.sun.intensity", "light.sh"):
            self.params[name].trainable = True
        self.enter_stage(0)

    # ------------------------------------------------------------------ building

    def _build_content(self) -> None:
        v, f, note = visual_hull(self.capture, self.hull_resolution)
        self.notes.append(note)
        self._hull = (v, f)  # where a Reset starts again
        dev = self.device
        self._add(name="shape.u", group="geometry", value=torch.zeros(len(v), 3, device=dev), unit="units",
                  lr=1e-3, trainable=True, metric="none",
                  description="large-steps latent of the vertex positions, u = (I + λL) x (unit-sphere units)")
        self._add(name="shape.albedo", group="material", value=torch.full((len(v), 3), 0.5, device=dev),
                  lower=0.0, upper=1.0, unit="rgb", lr=0.02, trainable=True, metric="none",
                  description="per-vertex diffuse colour (linear RGB)")
        self._add(name="shape.texture", group="material", value=torch.full((1, 1, 3), 0.5, device=dev),
                  lower=0.0, upper=1.0, unit="rgb", lr=0.01, metric="none",
                  description="diffuse texture (linear RGB, texel row 0 at v = 0), after the unwrap")
        self.uv: torch.Tensor | None = None
        self.uv_faces: torch.Tensor | None = None
        self._set_mesh(v, f, np.full((len(v), 3), 0.5))

    def _build_camera(self) -> None:
        self.view_offsets = [(0.0, 0.0)] * len(self.capture.views)  # the rig size, for SceneBase.num_views
        self._rig = _cameras(self.capture.views, self.device)

    def _set_mesh(self, vertices: np.ndarray, faces: np.ndarray, albedo: np.ndarray) -> None:
        """Replace the surface (new topology): positions [V,3], faces [T,3], colours [V,3]."""
        stage = self.stages[max(self.stage_index, 0)]
        self.faces = torch.from_numpy(np.ascontiguousarray(faces)).int().to(self.device)
        self.solver = SmoothSolver(faces, len(vertices), stage.smoothing)
        self._topology = self.backend.construct_topology(self.faces)
        x = torch.from_numpy(vertices).float().to(self.device)
        for name, value in (("shape.u", self.solver.to_latent(x)),
                            ("shape.albedo", torch.from_numpy(albedo).float().clamp(0, 1).to(self.device))):
            p = self.params[name]
            p.value = value.detach().clone()
            p.initial = p.value.clone()

    # ------------------------------------------------------------------ stages (engine events)

    def stage_at(self, step: int, total: int) -> int:
        """Index of the stage that step ``step`` of ``total`` belongs to."""
        frac = step / max(total, 1)
        return max(i for i, s in enumerate(self.stages) if s.start <= frac or i == 0)

    def before_step(self, step: int, total: int) -> list[str]:
        """Engine hook: enter the stage this step belongs to.  Returns the events (remeshing, stage
        changes) as sentences; a non-empty list means the parameters changed shape."""
        want = self.stage_at(step, total)
        if want == self.stage_index:
            return []
        events = []
        if want < self.stage_index:  # the run was reset: start again from the visual hull
            self.stage_index = -1
            self.uv = self.uv_faces = None
            self.params["shape.texture"].trainable = False
            self.params["shape.albedo"].trainable = True
            self._set_mesh(*self._hull, np.full((len(self._hull[0]), 3), 0.5))
            events.append("back to the visual hull.")
        for i in range(self.stage_index + 1, want + 1):
            events.extend(self.enter_stage(i))
        return events

    def enter_stage(self, index: int) -> list[str]:
        """Switch to stage ``index``: remesh or unwrap as it says.  Returns the events."""
        stage = self.stages[index]
        self.stage_index = index
        events = []
        x = self.positions().detach().cpu().double().numpy()
        f = self.faces.cpu().long().numpy()
        albedo = self.params["shape.albedo"].value.detach().cpu().double().numpy()
        if stage.edge is not None:
            r = isotropic_remesh(x, f, stage.edge, iterations=4, attributes=albedo)
            self._set_mesh(r.vertices, r.faces, r.attributes)
            events.append(f"stage {stage.name}: remeshed to edges of {stage.edge:g} units, {len(r.faces)} triangles.")
        elif abs(stage.smoothing - self.solver.lam) > 0:
            self._set_mesh(x, f, albedo)
        if stage.texture and self.uv is None:
            events.append(self._start_texture())
        self.params["shape.u"].lr = stage.shape_lr
        self.params["shape.u"].trainable = stage.shape_lr > 0
        if not events:
            events.append(f"stage {stage.name}.")
        return events

    def _start_texture(self) -> str:
        x = self.positions().detach().cpu().numpy()
        unwrapped = unwrap(x, self.faces.cpu().numpy())
        if unwrapped is None:
            return ("stage texture: xatlas is not installed (pip install -e '.[reconstruct]'), so the "
                    "colours stay per vertex.")
        uv, uv_faces = unwrapped
        self.uv = torch.from_numpy(uv).to(self.device)
        self.uv_faces = torch.from_numpy(uv_faces).to(self.device)
        with torch.no_grad():
            tex = bake(self.backend, self.uv, self.uv_faces, self.faces, self.params["shape.albedo"].value,
                       self.texture_size)
        p = self.params["shape.texture"]
        p.value = tex.clamp(0, 1).detach().clone()
        p.initial = p.value.clone()
        p.trainable = True
        self.params["shape.albedo"].trainable = False
        return (f"stage texture: unwrapped into {len(uv)} UV vertices and baked the vertex colours into a "
                f"{self.texture_size}x{self.texture_size} texture.")

    def make_optimizer(self, groups: list[dict]) -> torch.optim.Optimizer:
        """Engine hook: uniform Adam for the shape latent, per-entry Adam for the rest."""
        return UniformAdam([{**g, "uniform": g["name"] == "shape.u"} for g in groups])

    # ------------------------------------------------------------------ geometry

    def positions(self, values: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Vertex positions [V,3] (unit-sphere units), differentiable in ``shape.u``."""
        values = self.params.values() if values is None else values
        return self.solver(values["shape.u"])

    def mesh(self) -> Mesh:
        """The current surface as a CPU Mesh (positions, faces, UVs when unwrapped, vertex colours)."""
        with torch.no_grad():
            return Mesh(vertices=self.positions().float().cpu(), faces=self.faces.cpu(),
                        uv=None if self.uv is None else self.uv.cpu(),
                        uv_faces=None if self.uv_faces is None else self.uv_faces.cpu(),
                        vertex_colors=self.params["shape.albedo"].value.detach().float().cpu(), name="reconstruction")

    def fitted_meshes(self):
        """(positions, topology) for the mesh regularisers of the loss registry."""
        from ..scene.mesh import MeshTopology

        return [(self.positions(), MeshTopology.from_faces(self.faces))]

    # ------------------------------------------------------------------ rendering

    def _render(self, views: list[int], values: Mapping[str, torch.Tensor], target: bool) -> RenderOutput:
        idx = torch.as_tensor(views, device=self.device)
        mvp, eye, fwd = (t.index_select(0, idx) for t in self._rig)
        return self.render_cameras(mvp, eye, fwd, self.resolution, values)

    def render_cameras(self, mvp: torch.Tensor, eye: torch.Tensor, forward: torch.Tensor,
                       resolution: tuple[int, int], values: Mapping[str, torch.Tensor] | None = None) -> RenderOutput:
        """Render from any cameras: world-to-clip [B,4,4], eyes [B,3], unit viewing directions [B,3]."""
        values = self.params.values() if values is None else values
        x = self.positions(values)
        textured = self.uv is not None
        gb = raster_gbuffer(self.backend, to_clip(x, mvp).contiguous(), self.faces, resolution, world_pos=x,
                            normals=vertex_normals(x, self.faces), eye=eye, forward=forward,
                            colors=None if textured else values["shape.albedo"],
                            uv=self.uv, uv_tri=self.uv_faces,
                            visibility=self.options["visibility"], topology=self._topology,
                            soft_sigma=self.options.get("soft_sigma"))
        return self.shade(gb, values)

    def material_maps(self, gb: GBuffer, values: Mapping[str, torch.Tensor]):
        if self.uv is not None and gb.uv is not None:
            tex = values["shape.texture"].unsqueeze(0).contiguous()
            albedo = self.backend.texture(tex, gb.uv.contiguous(), gb.uv_da.contiguous(),
                                          filter_mode=str(self.options.get("filter_mode", "linear-mipmap-linear")))
            albedo = albedo * gb.mask
        else:
            albedo = gb.albedo
        zero = torch.zeros_like(gb.mask)
        return albedo, zero, zero + 1.0

    def render_views(self, views: Sequence[View], batch: int = 4) -> RenderOutput:
        """Render capture views (e.g. the held-out ones) at their own resolution, without gradients."""
        rig = _cameras(views, self.device)
        h, w = int(views[0].image.shape[0]), int(views[0].image.shape[1])
        outs = []
        with torch.no_grad():
            for i in range(0, len(views), batch):
                outs.append(self.render_cameras(*(t[i:i + batch] for t in rig), (h, w)))
        rgb = torch.cat([o.rgb for o in outs])
        alpha = torch.cat([o.alpha for o in outs])
        return RenderOutput(rgb=rgb, alpha=alpha, gbuffer=outs[0].gbuffer, shaded=rgb)

    # ------------------------------------------------------------------ metrics

    def heldout_metrics(self) -> dict[str, float]:
        """Mean PSNR (dB, RGB over black) and silhouette IoU over the held-out views ({} without any)."""
        views = self.capture.test_views
        if not views:
            return {}
        out = self.render_views(views)
        p, iou = [], []
        for i, v in enumerate(views):
            target, mask = _target(v)
            p.append(psnr(out.rgb[i].cpu(), target))
            iou.append(mask_iou(out.alpha[i, ..., 0].cpu(), mask))
        return {"heldout_psnr": float(np.mean(p)), "heldout_iou": float(np.mean(iou))}

    def curve_metrics(self, step: int) -> dict[str, float]:
        """Engine hook: extra curves at this step (held-out PSNR and IoU every ``heldout_every`` steps)."""
        if step % self.heldout_every and step > 1:
            return {}
        return self.heldout_metrics()

    def lighting(self) -> dict[str, object]:
        """The fitted lights as plain numbers (for summary.json)."""
        v = self.params.numpy_values()
        return {"sun_direction": np.round(v["light.sun.direction"], 4).tolist(),
                "sun_intensity": round(float(v["light.sun.intensity"][0]), 4),
                "sh": np.round(v["light.sh"], 4).tolist()}


def _cameras(views: Sequence[View], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(world-to-clip [N,4,4], eyes [N,3], viewing directions [N,3]) of capture views."""
    mvp = torch.stack([v.world_to_clip(NEAR, FAR) for v in views]).to(device)
    eye = torch.stack([v.cam_to_world[:3, 3] for v in views]).to(device)
    fwd = torch.stack([-v.cam_to_world[:3, 2] for v in views]).to(device)
    return mvp, eye, torch.nn.functional.normalize(fwd, dim=-1)


def _target(view: View) -> tuple[torch.Tensor, torch.Tensor]:
    """A view's image over black [H,W,3] and its mask [H,W] (ones without a mask)."""
    mask = view.mask if view.mask is not None else torch.ones(view.image.shape[:2])
    return view.image * mask[..., None], mask


def targets_of(capture: Capture, device: torch.device):
    """Engine targets of the training views: RGB over black and masks."""
    from ..optim.engine import Targets

    pairs = [_target(v) for v in capture.views]
    rgb = torch.stack([p[0] for p in pairs]).to(device)
    mask = torch.stack([p[1] for p in pairs]).unsqueeze(-1).to(device)
    return Targets(rgb, mask)
