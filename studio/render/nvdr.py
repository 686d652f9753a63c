"""The Backend protocol over ``nvdiffrast.torch`` (CUDA only, optional dependency).

nvdiffrast is research-licensed and installed by the user (``pip install -e '.[nvdiffrast]'``);
it is imported lazily so that the rest of the studio never needs it.  ``edge_grad`` is not an
nvdiffrast primitive: it runs the studio's own pure-torch implementation on nvdiffrast's
``rasterize`` output (same code path as the torch backend).  Arguments are checked with
the same rules as the torch backend so both fail with the same one-sentence errors instead of a
CUDA assertion.
"""

from __future__ import annotations

import torch

from .checks import check_finite, check_pos_tri, check_rast, check_resolution, check_tensor
from .edge_grad import DEFAULT_DEPTH_TOLERANCE, checked_edge_grad


class NvdiffrastBackend:
    """nvdiffrast's primitives with a :class:`RasterizeCudaContext` per backend object.

    Raises:
        ImportError: nvdiffrast is not installed (``get_backend`` turns this into advice).
    """

    name = "nvdiffrast"

    def __init__(self, device: torch.device | str | None = None):
        import nvdiffrast.torch as dr  # noqa: PLC0415 - optional, CUDA-only dependency

        self._dr = dr
        device = torch.device("cuda") if device is None else torch.device(device)
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        self._ctx = dr.RasterizeCudaContext(device=device)

    def __repr__(self) -> str:
        return f"NvdiffrastBackend(device={self.device})"

    def rasterize(self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int],
                  ranges: torch.Tensor | None = None, grad_db: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        pos, tri, ranges = check_pos_tri(pos, tri, ranges, self.device)
        h, w = check_resolution(resolution)
        return self._dr.rasterize(self._ctx, pos.contiguous(), tri.contiguous(), (h, w), ranges=ranges, grad_db=grad_db)

    def interpolate(self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor,
                    rast_db: torch.Tensor | None = None,
                    diff_attrs: str | list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        attr = check_tensor("attr", attr, dtype=torch.float32, ndims=(2, 3), device=self.device,
                            expected="[B,V,C] or [V,C] float32 vertex attributes")
        rast = check_rast("rast", rast, self.device)
        if attr.dim() == 3 and attr.shape[0] == 1 and rast.shape[0] > 1:
            attr = attr[0]  # nvdiffrast broadcasts [V,C], not [1,V,C]
        return self._dr.interpolate(attr.contiguous(), rast, tri.contiguous(), rast_db=rast_db, diff_attrs=diff_attrs)

    def texture(self, tex: torch.Tensor, uv: torch.Tensor, uv_da: torch.Tensor | None = None,
                mip_level_bias: torch.Tensor | None = None, filter_mode: str = "auto",
                boundary_mode: str = "wrap", max_mip_level: int | None = None) -> torch.Tensor:
        uv = check_tensor("uv", uv, dtype=torch.float32, ndims=(4,), last=(2, 3), device=self.device,
                          expected="[B,H,W,2] float32 texture coordinates (3 for cube maps)")
        check_finite("uv", uv)
        return self._dr.texture(tex.contiguous(), uv.contiguous(), uv_da=uv_da, mip_level_bias=mip_level_bias,
                                filter_mode=filter_mode, boundary_mode=boundary_mode, max_mip_level=max_mip_level)

    def construct_topology(self, tri: torch.Tensor) -> object:
        return self._dr.antialias_construct_topology_hash(tri.contiguous())

    def antialias(self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor,
                  topology_hash: object | None = None, pos_gradient_boost: float = 1.0) -> torch.Tensor:
        color = check_tensor("color", color, dtype=torch.float32, ndims=(4,), device=self.device,
                             expected="[B,H,W,C] float32 image")
        rast = check_rast("rast", rast, self.device)
        ranges = torch.zeros(0, 2, dtype=torch.int32) if isinstance(pos, torch.Tensor) and pos.dim() == 2 else None
        pos, tri, _ = check_pos_tri(pos, tri, ranges, self.device)
        return self._dr.antialias(color.contiguous(), rast, pos.contiguous(), tri.contiguous(),
                                  topology_hash=topology_hash, pos_gradient_boost=pos_gradient_boost)

    def edge_grad(self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor,
                  depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE) -> torch.Tensor:
        return checked_edge_grad(color, rast, pos, tri, self.device, depth_tolerance=depth_tolerance)
