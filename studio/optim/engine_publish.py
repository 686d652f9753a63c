"""What the engine's worker publishes: an immutable :class:`Snapshot` of the displayed view, its
curves and settings, plus the images of the selected render mode.

Called on the worker only (between steps); the result goes into the engine's latest-value slot.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..render import modes as render_modes
from . import gradient_views
from .engine_types import Snapshot

if TYPE_CHECKING:
    from .engine import Engine

#: Vertex arrows published at most (the longest ones): more would hide the render under them.
ARROWS = 250


def frozen(a: np.ndarray) -> np.ndarray:
    """``a`` made read-only (snapshots are shared with other threads)."""
    a.flags.writeable = False
    return a


def make_snapshot(engine: "Engine", finished: bool = False) -> Snapshot:
    """A new snapshot of ``engine`` (renders the displayed view once)."""
    e = engine
    v = e.display_view
    with torch.no_grad():
        out = e.scene.render([v])
    render = frozen(out.rgb[0].clamp(0, 1).float().cpu().numpy())
    target = frozen(e.targets.rgb[v].clamp(0, 1).float().cpu().numpy())
    shown = display_fields(e, out, v)  # first: a failing view's message belongs in this snapshot
    recent = e._step_times[-20:]
    ms = 1000.0 * float(np.median(recent)) if recent else 0.0
    errors = e.params.group_errors()
    h = e._history
    if h["step"] and h["step"][-1] == e.step_count:
        # Measured anyway for the snapshot: fill the curves' point for this step if the
        # throttled metrics skipped it, so every run's curves end with a value.
        for g, err in errors.items():
            if math.isnan(h[g][-1]):
                h[g][-1] = err.value
    return Snapshot(
        step=e.step_count,
        running=e._running,
        view=v,
        render=render,
        target=target,
        diff=frozen(np.abs(render - target).mean(-1)),
        alpha=frozen(out.alpha[0, ..., 0].float().cpu().numpy()),
        params={k: frozen(x) for k, x in e.params.numpy_values().items()},
        loss=e._last_loss,
        loss_terms=dict(e._last_terms),
        group_errors=errors,
        history={k: frozen(np.asarray(vals, dtype=np.float64)) for k, vals in h.items()},
        ms_per_step=ms,
        it_per_s=1000.0 / ms if ms > 0 else 0.0,
        threads=e._tuner.threads,
        threads_measuring=e._tuner.measuring,
        message=e._message,
        skipped_steps=e.skipped_steps,
        finished=finished,
        losses=tuple((t.name, t.weight, t.enabled, tuple(t.params.items())) for t in e.terms),
        events=e.events(),
        frozen=tuple(sorted(e.frozen)),
        group_enabled=dict(e.group_enabled),
        group_lr=group_lr(e),
        options={**e.scene.options, "restarts": e.config.restarts},
        step_record=e._step_record,
        stalled=e._stall,
        marks=tuple(e._marks),
        **shown,
    )


def group_lr(engine: "Engine") -> dict[str, float]:
    """The learning rate of each group with trainable parameters (that of its first one)."""
    out: dict[str, float] = {}
    for p in engine.params.trainable():
        out.setdefault(p.group, p.lr)
    return out


def display_fields(engine: "Engine", out: Any, view: int) -> dict[str, Any]:
    """Snapshot fields of the selected render mode: ``display_mode`` and ``display`` (None for the
    shaded image itself), plus ``derivative`` and ``display_scale`` or ``arrows`` for the gradient
    views.  Those run a derivative per publish, so they cost only while their mode is selected."""
    e = engine
    mode = e.display_mode
    fields: dict[str, Any] = {"display_mode": mode, "display": None}
    if mode == render_modes.SHADED:
        return fields
    target = e.targets.rgba([view])

    def loss_of(render: Any, goal: torch.Tensor) -> torch.Tensor:
        return e._loss(render, goal, [view])[0]

    try:
        if mode == render_modes.DERIVATIVE:
            if e.derivative is None:
                e.derivative = default_derivative(e, view, loss_of, target)
            name, index = e.derivative
            d_image = gradient_views.derivative_image(e.scene, name, index, view)
            # The channels' mean: one signed number per pixel, in linear RGB per parameter unit.
            image, scale = render_modes.signed_colors(d_image.mean(-1).unsqueeze(0))
            fields.update(derivative=(name, index), display_scale=scale)
        elif mode == render_modes.VERTEX_ARROWS:
            points, vectors = gradient_views.vertex_gradient_field(e.scene, loss_of, target, view, max_arrows=ARROWS)
            fields["arrows"] = frozen(torch.cat([points, vectors], 1).float().cpu().numpy())
            image = render_modes.shaded(out.rgb)
        else:
            def loss_fn(rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
                return loss_of(replace(out, rgb=rgb, alpha=alpha), target)

            image, fields["display_scale"] = render_modes.display_image_scaled(mode, out, loss_fn)
    except Exception as exc:  # noqa: BLE001 - a failing view must not end the worker; the run goes on
        e.display_mode = render_modes.SHADED
        e._event(f"the {mode!r} view failed ({type(exc).__name__}: {exc}), so the render shows the shaded image again.",
                 traceback.format_exc())
        return {"display_mode": render_modes.SHADED, "display": None}
    fields["display"] = frozen(image[0].float().cpu().numpy())
    return fields


def default_derivative(engine: "Engine", view: int, loss_of: Callable[[Any, torch.Tensor], torch.Tensor],
                       target: torch.Tensor) -> tuple[str, int]:
    """The derivative mode's scalar until one is chosen: the trainable component the loss pulls
    on hardest in this view (the largest |d loss / d θ|), so the first picture is never of a
    component that moves nothing on screen.  Kept from then on (it becomes ``derivative``)."""
    trainable = engine.params.trainable()
    if not trainable:
        return engine.params.names()[0], 0
    values = dict(engine.params.values())
    leaves = {p.name: p.value.detach().clone().requires_grad_(True) for p in trainable}
    values.update(leaves)
    loss = loss_of(engine.scene.render([view], values=values), target)
    if not loss.requires_grad:  # every loss is off: no component is pulled on
        return trainable[0].name, 0
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    best = max(((float(g.abs().max()), name, int(g.abs().argmax())) for name, g in zip(leaves, grads)
                if g is not None), default=(0.0, trainable[0].name, 0))
    return best[1], best[2]

