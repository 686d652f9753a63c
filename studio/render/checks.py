"""Argument checks shared by all backends: one clear sentence per mistake, as RenderInputError.

The checks run before any work so a bad call never yields a silent black image or a CUDA
assertion deep inside a kernel.
"""

from __future__ import annotations

import torch

from .backend import RenderInputError


def _shape(t: torch.Tensor) -> str:
    return "[" + ",".join(str(s) for s in t.shape) + "]"


def check_tensor(
    name: str,
    t: object,
    *,
    dtype: torch.dtype | tuple[torch.dtype, ...],
    ndims: tuple[int, ...],
    device: torch.device,
    last: int | tuple[int, ...] | None = None,
    expected: str,
) -> torch.Tensor:
    """Check a tensor argument's type, dtype, rank, last dimension and device.

    ``expected`` is the human description used in the message, e.g. "[B,V,4] float32".
    """
    if not isinstance(t, torch.Tensor):
        raise RenderInputError(f"{name} must be a torch.Tensor {expected}, got {type(t).__name__}.")
    dtypes = dtype if isinstance(dtype, tuple) else (dtype,)
    if t.dtype not in dtypes:
        raise RenderInputError(f"{name} must be {expected}, got dtype {t.dtype}.")
    if t.dim() not in ndims:
        raise RenderInputError(f"{name} must be {expected}, got shape {_shape(t)}.")
    lasts = (last,) if isinstance(last, int) else last
    if lasts is not None and t.shape[-1] not in lasts:
        raise RenderInputError(f"{name} must be {expected}, got shape {_shape(t)}.")
    if t.device != device and not (device.type == t.device.type and device.index is None):
        raise RenderInputError(
            f"{name} is on {t.device} but the backend runs on {device}; move it with .to({str(device)!r})."
        )
    return t


def check_finite(name: str, t: torch.Tensor) -> None:
    """Reject NaN/Inf, which would otherwise rasterize as nothing without a word."""
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise RenderInputError(
            f"{name} contains {bad} NaN/Inf value(s); check the transform or the parameters that produced it."
        )


def check_resolution(resolution: object) -> tuple[int, int]:
    """(height, width) as two positive ints."""
    try:
        h, w = (int(r) for r in resolution)  # type: ignore[union-attr]
        if h != resolution[0] or w != resolution[1]:  # type: ignore[index]
            raise TypeError
    except (TypeError, ValueError):
        raise RenderInputError(f"resolution must be (height, width) integers, got {resolution!r}.") from None
    if h <= 0 or w <= 0 or h > 16384 or w > 16384:
        raise RenderInputError(f"resolution must be between 1 and 16384 pixels per side, got {(h, w)}.")
    return h, w


FLOAT32 = (torch.float32,)
# The torch backend also accepts float64 so that gradients can be checked with gradcheck.
FLOAT32_64 = (torch.float32, torch.float64)


def check_pos_tri(
    pos: object,
    tri: object,
    ranges: object,
    device: torch.device,
    float_dtypes: tuple[torch.dtype, ...] = FLOAT32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Validate rasterize/antialias geometry inputs; returns (pos, tri, ranges)."""
    fname = "float32" if float_dtypes == FLOAT32 else "float32 (or float64)"
    if ranges is None:
        pos = check_tensor("pos", pos, dtype=float_dtypes, ndims=(3,), last=4, device=device,
                           expected=f"[B,V,4] {fname} clip-space positions (or [V,4] with ranges)")
    else:
        pos = check_tensor("pos", pos, dtype=float_dtypes, ndims=(2,), last=4, device=device,
                           expected=f"[V,4] {fname} clip-space positions when ranges is given")
        if not isinstance(ranges, torch.Tensor) or ranges.dtype != torch.int32 or ranges.dim() != 2 \
                or ranges.shape[1] != 2 or ranges.device.type != "cpu":
            raise RenderInputError("ranges must be a [B,2] int32 CPU tensor of (first triangle, count).")
    tri = check_tensor("tri", tri, dtype=torch.int32, ndims=(2,), last=3, device=device,
                       expected="[T,3] int32 vertex indices")
    num_vertices = pos.shape[-2]
    if tri.numel() > 0:
        lo, hi = int(tri.min()), int(tri.max())
        if lo < 0 or hi >= num_vertices:
            raise RenderInputError(
                f"tri holds vertex index {lo if lo < 0 else hi} but pos has {num_vertices} vertices "
                f"(valid indices 0..{num_vertices - 1})."
            )
    if ranges is not None:
        r = ranges.to(torch.int64)
        if bool((r < 0).any()) or bool(((r[:, 0] + r[:, 1]) > tri.shape[0]).any()):
            raise RenderInputError(f"ranges must select triangles within 0..{tri.shape[0]} (start >= 0, count >= 0).")
    check_finite("pos", pos)
    return pos, tri, ranges


def check_rast(
    name: str, rast: object, device: torch.device, float_dtypes: tuple[torch.dtype, ...] = FLOAT32
) -> torch.Tensor:
    """Validate a [B,H,W,4] rasterizer output (``rast`` or ``rast_db``)."""
    return check_tensor(name, rast, dtype=float_dtypes, ndims=(4,), last=4, device=device,
                        expected="[B,H,W,4] output of rasterize")
