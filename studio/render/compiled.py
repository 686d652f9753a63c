"""Optional ``torch.compile`` (Inductor) twin of the torch backend's per-pixel interpolation pass.

The eager pass runs one ATen kernel per operation, each reading and writing every covered pixel;
Inductor fuses its gathers, arithmetic and scatter (and the same for the backward) into a few C++
loops.  Measured by ``python bench/raster.py --compiled`` (the README's Performance section): at
1024² interpolate takes 8 instead of 19 ms and the step's backward 55 instead of 71 ms.  The other
passes stay eager: the visibility search ran slower compiled, the barycentrics did not compile.

Opt in with ``TorchBackend(compiled=True)`` (``get_backend("torch", compiled=True)``).  It is
off by default because the first call compiles: 8-22 s on a 2-core machine (Inductor caches the
result on disk, about 2 s afterwards), once per dtype, thread count and gradient pattern, which
would delay the studio's first picture for no gain at the 64-128 px of the teaching scenarios.

A kernel whose compilation fails (no C++ compiler, an unsupported platform) logs one warning and
runs eagerly from then on; the results are the same either way (the tests run both).
"""

from __future__ import annotations

import logging
from typing import Callable

import torch

log = logging.getLogger(__name__)


def interpolate_rows(attr_flat: torch.Tensor, verts: torch.Tensor, uv: torch.Tensor, pix: torch.Tensor,
                     rows: int) -> torch.Tensor:
    """Barycentric interpolation of vertex attributes at covered pixels, scattered into rows.

    Args:
        attr_flat: [P,C] float vertex attributes (all images' vertices stacked; differentiable).
        verts: [N,3] int64 rows of ``attr_flat`` of each covered pixel's triangle.
        uv: [N,2] float barycentrics (u, v) of vertices 0 and 1 (differentiable).
        pix: [N] int64 flat output row of each covered pixel.
        rows: number of output rows (B*H*W).

    Returns:
        [rows,C]: a0 u + a1 v + a2 (1 - u - v) at ``pix``, zero elsewhere.
    """
    a0, a1, a2 = (attr_flat.index_select(0, verts[:, k]) for k in range(3))
    u, v = uv[:, 0:1], uv[:, 1:2]
    vals = a2 + u * (a0 - a2) + v * (a1 - a2)
    return vals.new_zeros(rows, vals.shape[1]).index_copy(0, pix, vals)


class Kernel:
    """``fn`` or its compiled twin, chosen at construction; the twin is dropped for good (with one
    warning) the first time it fails, and that call is repeated eagerly, so an error of the inputs
    themselves still surfaces from the eager function."""

    def __init__(self, fn: Callable[..., torch.Tensor], compiled: bool):
        self.fn = fn
        self.twin: Callable[..., torch.Tensor] | None = None
        if compiled:  # importing the compiler stack takes a second or two: only when asked for
            import torch._functorch.config

            self._aot_config = torch._functorch.config
            self.twin = torch.compile(fn, dynamic=True)

    @property
    def compiled(self) -> bool:
        """True while the compiled twin is in use."""
        return self.twin is not None

    def __call__(self, *args: object) -> torch.Tensor:
        if self.twin is not None:
            try:
                # With dynamic shapes AOTAutograd compiles the backward at the first forward but
                # only warns when that fails, and fails again inside ``backward()`` later, where
                # it can abort the process; lowering it now makes every failure an exception here.
                with self._aot_config.patch(force_non_lazy_backward_lowering=True):
                    return self.twin(*args)
            except Exception as exc:  # noqa: BLE001 - any compiler failure: render eagerly instead
                log.warning("torch.compile of %s failed (%s: %s); the torch backend runs it eagerly from now on.",
                            self.fn.__name__, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                self.twin = None
        return self.fn(*args)
