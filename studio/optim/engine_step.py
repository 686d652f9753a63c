"""One optimisation step of the engine, and what it records: the curves and the step-through record.

Runs on the engine's worker only.  Each stage (render, losses, backward pass, optimiser update,
error metrics) is marked on the engine's heartbeat, so that the watchdog can say which one is
running when a step takes too long.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..scene.params import GROUPS, GroupError
from .engine_publish import frozen
from .engine_types import StepRecord
from .watchdog import Stage

if TYPE_CHECKING:
    from .engine import Engine

#: Consecutive failed (NaN/Inf) steps after which the engine pauses instead of spinning.
MAX_BAD_STEPS = 5
_MEASURE_BUDGET = 0.10  # fraction of the optimisation's time that measuring group errors may take


def sample_views(e: "Engine") -> list[int]:
    n = e.scene.num_views
    k = min(e.config.views_per_step, n)
    if k == n:
        return list(range(n))
    return sorted(torch.randperm(n, generator=e._gen)[:k].tolist())


def one_step(e: "Engine", recorded: bool = False) -> None:
    """One optimisation step; ``recorded`` also takes it apart into a :class:`StepRecord`."""
    n = e.step_count + 1
    if not e._searched:
        with e._beat.stage(Stage("the random search over orientations")):
            random_search(e)
    e._tuner.before_step()
    t0 = time.perf_counter()
    views = sample_views(e)
    target = e.targets.rgba(views)
    before_step = getattr(e.scene, "before_step", None)
    if before_step is not None:  # e.g. the SDF scene anneals its silhouette sharpness
        with e._beat.stage(Stage(f"the scene's changes before step {n}")):
            events = before_step(e.step_count, e.config.steps)
        if events:  # the scene changed its parameters' shapes (e.g. remeshed): a fresh optimiser
            e._scene_changed(events)
    with e._beat.stage(Stage(f"the render of step {n}")):
        out = e.scene.render(views)
    if recorded:  # keep d loss / d pixel, which backward would otherwise free on its way to the parameters
        for image in (out.rgb, out.alpha):
            if image.requires_grad:
                image.retain_grad()
    total, terms = e._loss(out, target, views)
    trainable = [p for p in e.params.trainable() if optimised(e, p)]
    before = {p.name: p.value.detach().cpu().numpy().copy() for p in trainable} if recorded else {}
    for p in e.params.trainable():
        p.value.grad = None
    ok = bool(torch.isfinite(total))
    if ok and total.requires_grad:
        with e._beat.stage(Stage(f"the backward pass of step {n}")):
            total.backward()
        ok = all(p.value.grad is None or bool(torch.isfinite(p.value.grad).all()) for p in trainable)
    e.step_count += 1
    if not ok:
        restore_good(e)
        e._bad_steps += 1
        e.skipped_steps += 1
        what = "loss" if not math.isfinite(float(total.detach())) else "gradient"
        e._event(f"step {e.step_count}: the {what} was NaN or Inf, so the step was skipped and the "
                 f"last good parameters were kept.")
        if e._bad_steps >= MAX_BAD_STEPS:
            e._running = False
            e._pending_steps = 0
            e._event(f"paused after {MAX_BAD_STEPS} steps in a row with NaN/Inf values; lower the learning "
                     f"rate, check the losses, or Reset.")
        if recorded:
            e._step_record = take_apart(e, views, out, target, total, terms, trainable, before, {}, True)
        return
    e._bad_steps = 0
    lrs: dict[str, float] = {}
    if e._optimizer is not None and trainable:
        for p in e.params.trainable():
            if not optimised(e, p):
                p.value.grad = None
        # Exponential decay (as in nvdiffrast's samples): large steps early, and little Adam
        # jitter around the optimum at the end of the budget.
        ramp = e.config.lr_decay ** (min(e.step_count, e.config.steps) / max(e.config.steps, 1))
        for pg in e._optimizer.param_groups:
            pg["lr"] = e.params[pg["name"]].lr * ramp
            lrs[pg["name"]] = float(pg["lr"])
        with e._beat.stage(Stage(f"the optimiser update of step {n}")):
            e._optimizer.step()
        for p in trainable:
            p.project_()
            e._good[p.name].copy_(p.value.detach())
    e._step_times.append(time.perf_counter() - t0)
    e._tuner.after_step(e._step_times[-1])
    record(e, float(total.detach()), terms)
    if recorded:
        e._step_record = take_apart(e, views, out, target, total, terms, trainable, before, lrs, False)


def take_apart(e: "Engine", views: list[int], out: Any, target: torch.Tensor, total: torch.Tensor,
               terms: dict[str, float], trainable: list[Any], before: dict[str, np.ndarray],
               lrs: dict[str, float], skipped: bool) -> StepRecord:
    """The :class:`StepRecord` of the step just taken (gradients are still on the tensors)."""
    def first(t: torch.Tensor | None, like: torch.Tensor) -> np.ndarray:
        return frozen((t if t is not None else torch.zeros_like(like))[0].detach().float().cpu().numpy())

    render, goal = first(out.rgb, out.rgb), first(target, target)
    error = np.square(render - goal[..., :3]).sum(-1)
    pixel_gradient = np.concatenate([first(out.rgb.grad, out.rgb), first(out.alpha.grad, out.alpha)], -1)
    norms = {p.name: float(p.value.grad.norm()) if p.value.grad is not None else 0.0 for p in trainable}
    groups: dict[str, float] = {}
    for p in trainable:
        groups[p.group] = groups.get(p.group, 0.0) + norms[p.name] ** 2
    return StepRecord(
        step=e.step_count, views=tuple(views), render=render, target=frozen(goal[..., :3].copy()),
        loss_image=frozen(error), pixel_gradient=frozen(pixel_gradient),
        loss=float(total.detach()), loss_terms=dict(terms), grad_norm=norms,
        group_grad_norm={g: math.sqrt(v) for g, v in groups.items()}, lr=lrs,
        before={k: frozen(v) for k, v in before.items()},
        after={p.name: frozen(p.value.detach().cpu().numpy().copy()) for p in trainable},
        optimizer=e.config.optimizer, skipped=skipped)


def optimised(e: "Engine", p: Any) -> bool:
    return e.group_enabled[p.group] and p.name not in e.frozen


def restore_good(e: "Engine") -> None:
    with torch.no_grad():
        for name, v in e._good.items():
            e.params[name].value.copy_(v)
            e.params[name].value.grad = None


def random_search(e: "Engine") -> None:
    """Greedy random restarts for rotation parameters before the gradient phase (the pose
    sample's trick against local minima): keep the best of ``restarts`` random orientations."""
    e._searched = True
    rots = [p for p in e.params.trainable() if p.metric == "rotation"]
    if not rots:
        return
    views = list(range(min(e.scene.num_views, max(1, e.config.views_per_step))))
    target = e.targets.rgba(views)
    with torch.no_grad():
        best = float(e._loss(e.scene.render(views), target, views)[0])
        best_values = [p.value.clone() for p in rots]
        for _ in range(e.config.restarts):
            for p in rots:
                p.value.copy_(torch.nn.functional.normalize(torch.randn(p.value.shape, generator=e._gen), dim=-1))
            loss = float(e._loss(e.scene.render(views), target, views)[0])
            if loss < best:
                best, best_values = loss, [p.value.clone() for p in rots]
        for p, v in zip(rots, best_values):
            p.value.copy_(v)
            e._good[p.name].copy_(v)
    e._event(f"random search: kept the best of {e.config.restarts} random orientations (loss {best:.4g}).")


def record(e: "Engine", loss: float, terms: dict[str, float]) -> None:
    """Append this step to the curves.  Group errors are evaluated every k steps, with k
    chosen so that measuring costs at most ~10% of the optimisation (Chamfer distances of
    big meshes are not free); other steps get NaN, which plots skip."""
    e._last_loss = loss
    e._last_terms = terms
    errs: dict[str, GroupError] = {}
    if e.step_count % e._metric_every == 0 or e.step_count <= 1:
        t0 = time.perf_counter()
        with e._beat.stage(Stage(f"measuring the errors at step {e.step_count}")):
            errs = e.params.group_errors()
        cost = time.perf_counter() - t0
        step = float(np.median(e._step_times[-20:])) if e._step_times else cost
        e._metric_every = max(1, min(50, math.ceil(cost / (_MEASURE_BUDGET * max(step, 1e-6)))))
    h = e._history
    h["step"].append(e.step_count)
    h["loss"].append(loss)
    for g in GROUPS:
        h[g].append(errs[g].value if g in errs else float("nan"))
    for t in e.terms:
        h.setdefault(f"loss:{t.name}", [float("nan")] * (len(h["step"]) - 1))
        h[f"loss:{t.name}"].append(terms.get(t.name, float("nan")))
    extra = getattr(e.scene, "curve_metrics", None)  # the scene's own curves, e.g. held-out PSNR: "metric:NAME"
    if extra is not None:
        with e._beat.stage(Stage(f"the scene's curves at step {e.step_count}")):
            values = extra(e.step_count)
        for name in values:
            h.setdefault(f"metric:{name}", [float("nan")] * (len(h["step"]) - 1))
        for key in [k for k in h if k.startswith("metric:")]:
            h[key].append(float(values.get(key[7:], float("nan"))))
