"""Edge-case search: a few gradient steps on chosen parameters of one image before it is rendered.

Declared in a scene's ``[export.hard_case]`` (see :mod:`studio.data.config`): the objective (a
hard-case objective from :mod:`studio.data.objectives` or any registered loss, plugins included),
the parameters it may move (names or globs such as ``"*.position"``), how many images and steps,
and the resolution of the search renders (small: the search only has to find a direction).

The search starts from the image's randomised values, runs Adam with each parameter's own learning
rate times ``lr_scale``, keeps every parameter inside its bounds (and unit length where it is a
direction or quaternion), and hands the moved values back; the labels then come from the final
full-resolution render of those values, so they are exact whatever the search did.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Mapping

import torch

from ..images import resize
from ..optim.losses import REGISTRY, LossDef, LossFailure, call_loss
from .config import DatasetError, HardCaseSpec
from .objectives import OBJECTIVES, HardCaseContext

log = logging.getLogger("studio.data")


def resolve_objective(name: str, plugin_dirs: list[str]) -> LossDef:
    """The objective called ``name``: a hard-case objective, else a loss of the main registry
    (plugins are discovered first when it is not there yet).

    Raises:
        DatasetError: no objective or loss has that name.
    """
    if name in OBJECTIVES:
        return OBJECTIVES.get(name)
    if name not in REGISTRY:
        from ..optim.plugins import discover_plugins

        for problem in discover_plugins(plugin_dirs):
            log.warning("%s", problem)
    if name in REGISTRY:
        return REGISTRY.get(name)
    raise DatasetError(f"unknown hard-case objective {name!r}; objectives are {', '.join(OBJECTIVES.names())}, "
                       "and any loss that `studio losses` lists works too.")


class HardCaseSearch:
    """The search of one export, bound to its scene.

    Args:
        scene: the export's scene (its ``resolution`` is changed during a search and restored).
        spec: the validated ``[export.hard_case]`` section.
        labelled: per object, whether it has a class (only those can be the focus).
        plugin_dirs: extra plugin folders, for objectives from plugins.

    Raises:
        DatasetError: unknown objective, objective parameter or focus object, or a parameter
            pattern that matches nothing.
    """

    def __init__(self, scene, spec: HardCaseSpec, labelled: list[bool], plugin_dirs: list[str]):
        self.scene = scene
        self.spec = spec
        self.labelled = labelled
        self.objective = resolve_objective(spec.objective, plugin_dirs)
        unknown = set(spec.objective_params) - set(self.objective.params)
        if unknown:
            known = ", ".join(self.objective.params) or "none"
            raise DatasetError(f"hard-case objective {spec.objective!r} has no parameter {sorted(unknown)[0]!r}; "
                               f"its parameters are {known}.")
        self.objective_params = {**self.objective.default_params(), **spec.objective_params}
        names = scene.params.names()
        self.param_names: list[str] = []
        for pattern in spec.params:
            hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise DatasetError(f"[export.hard_case] params pattern {pattern!r} matches no parameter of the "
                                   f"scene; e.g. {', '.join(names[:6])}.")
            self.param_names += [n for n in hits if n not in self.param_names]
        object_names = [o.name for o in scene.objects]
        if spec.focus != "random" and spec.focus not in object_names:
            raise DatasetError(f"[export.hard_case] focus must be \"random\" or one of {', '.join(object_names)}, "
                               f"got {spec.focus!r}.")

    def search(self, values: Mapping[str, torch.Tensor], background: torch.Tensor, focus_draw: float,
               absent: frozenset[str]) -> tuple[dict[str, torch.Tensor], int | None]:
        """Move the searched parameters of one image towards the objective.

        Args:
            values: the image's parameter tensors by name (not modified).
            background: [H,W,3] the image's linear background (CPU), resized for the search.
            focus_draw: U(0, 1) that picks the focus among the labelled objects visible at the start.
            absent: objects left out of the image (their parameters are not searched).

        Returns:
            The new values (searched ones replaced, detached) and the focus object's index, or
            the input values and None when no labelled object is visible.
        """
        scene = self.scene
        res = self.spec.resolution
        bg = resize(background, (res, res)).to(scene.device).unsqueeze(0)
        saved = scene.resolution
        scene.resolution = (res, res)
        try:
            with torch.no_grad():
                start = scene.render([0], values)
                focus = self._focus(start.gbuffer.object_id, focus_draw)
                if focus is None:
                    return dict(values), None
                target = torch.cat([start.rgb + bg * (1 - start.alpha), start.alpha], -1)
            leaves = {n: values[n].detach().clone().requires_grad_(True) for n in self.param_names
                      if n.split(".")[0] not in absent}
            if not leaves:
                return dict(values), focus
            optimizer = torch.optim.Adam([{"params": [t], "lr": scene.params[n].lr * self.spec.lr_scale}
                                          for n, t in leaves.items()])
            for step in range(self.spec.steps):
                current = {**values, **leaves}
                loss = self._objective(current, bg, target, focus, step)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                self._project(leaves)
        finally:
            scene.resolution = saved
        return {**values, **{n: t.detach() for n, t in leaves.items()}}, focus

    def _focus(self, object_id: torch.Tensor, draw: float) -> int | None:
        if self.spec.focus != "random":
            return [o.name for o in self.scene.objects].index(self.spec.focus)
        seen = torch.unique(object_id[object_id >= 0]).tolist()
        candidates = [k for k in seen if self.labelled[k]]
        return candidates[min(int(draw * len(candidates)), len(candidates) - 1)] if candidates else None

    def _coverage(self, out, k: int | None = None) -> torch.Tensor:
        """[1,h,w,K] antialiased one-hot object coverage (or [1,h,w] of object ``k``)."""
        oid = out.gbuffer.object_id
        if k is not None:
            return out.gbuffer.finish((oid == k).float().unsqueeze(-1).contiguous())[..., 0]
        n = len(self.scene.objects)
        one_hot = torch.nn.functional.one_hot(oid.clamp(min=0), n).float() * (oid >= 0).unsqueeze(-1).float()
        return out.gbuffer.finish(one_hot.contiguous())

    def _objective(self, values: dict[str, torch.Tensor], bg: torch.Tensor, target: torch.Tensor, focus: int,
                   step: int) -> torch.Tensor:
        scene = self.scene
        out = scene.render([0], values)
        rgba = torch.cat([out.rgb + bg * (1 - out.alpha), out.alpha], -1)

        def unoccluded() -> torch.Tensor:
            alone = dict(values)
            for i, o in enumerate(scene.objects):
                if i != focus:
                    alone[f"{o.name}.scale"] = torch.zeros_like(values[f"{o.name}.scale"])
            return self._coverage(scene.render([0], alone), focus)

        ctx = HardCaseContext(params=dict(self.objective_params), mask=target[..., 3:], render_alpha=out.alpha,
                              parameters=scene.params, scene=scene, gbuffer=out.gbuffer, iteration=step,
                              device=rgba.device, focus=focus, coverage=self._coverage(out),
                              background=bg, values=values, unoccluded=unoccluded)
        try:
            return call_loss(self.objective, rgba, target, ctx, needs_grad=True)
        except LossFailure as exc:
            raise DatasetError(f"{exc}; fix the objective or change [export.hard_case] params "
                               "(an objective needs a gradient path to them).") from None

    def _project(self, leaves: dict[str, torch.Tensor]) -> None:
        """Clamp into each parameter's bounds and renormalise directions and quaternions."""
        with torch.no_grad():
            for n, t in leaves.items():
                p = self.scene.params[n]
                if p.lower is not None or p.upper is not None:
                    t.clamp_(p.lower, p.upper)
                if p.normalize:
                    t.div_(t.norm(dim=-1, keepdim=True).clamp(min=1e-8))
