"""What a plugin author imports: ``from studio.plugins import loss, Param``.

A loss plugin is a ``.py`` file (in the project's ``plugins/``, a ``--plugins DIR``, a folder
listed in ``STUDIO_PLUGINS``, or an installed package exposing the ``studio.losses`` entry-point
group) that declares one or more losses::

    from studio.plugins import loss, Param

    @loss(name="red_only", weight=1.0, description="L2 on the red channel only",
          params={"power": Param(2.0, min=1.0, max=4.0)})
    def red_only(render, target, ctx):
        return ((render[..., 0] - target[..., 0]).abs() ** ctx.params["power"]).mean()

``render`` and ``target`` are [B,H,W,4] linear RGB + coverage (alpha), top row first, one image
per camera view in the step; ``ctx`` is a :class:`LossContext` (masks, the scene's parameters,
``ctx.meshes()`` for regularisers, the iteration, the device, and ``ctx.params``, this loss's own
hyper-parameter values).  Return a scalar tensor with a gradient path to the parameters.  The
plugins in the project's ``plugins/`` folder are worked examples.
"""

from __future__ import annotations

from typing import Callable

import torch

from .optim.losses import LossContext, Param
from .optim.losses import loss as _register

__all__ = ["loss", "Param", "LossContext"]


def loss(name: str | None = None, weight: float = 1.0, description: str = "",
         params: dict[str, Param] | None = None, *,
         override: bool = False) -> Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]:
    """Declare ``fn(render, target, ctx) -> scalar tensor`` as a loss.

    Args:
        name: the name used in scene files (``[[loss]] name = ...``), ``--loss NAME=WEIGHT`` and
            the GUI (default: the function's name); letters, digits, ``_``, ``.``, ``-``.
        weight: default weight of the term in the total loss.
        description: one line for the GUI tooltip and ``studio losses`` (default: the first
            line of the function's docstring).
        params: hyper-parameters by name, each a :class:`Param` (default and slider range);
            their current values are ``ctx.params[name]`` (floats).
        override: replace the built-in loss of the same name (a warning is logged).  Without it
            a plugin cannot take a built-in's name.

    Returns:
        The decorator; it returns the function unchanged, so it can still be called directly.
    """
    return _register(name, weight, description, params, override=override)
