"""The rendering Backend protocol (nvdiffrast's four primitives) and backend selection.

Every backend follows nvdiffrast's conventions so that code written for one runs on the other:

- ``pos`` is clip space [B,V,4] float32 (x, y, z, w as an OpenGL vertex shader would output), or
  [V,4] together with ``ranges`` [B,2] int32 (start, count) of triangles per image;
- ``tri`` is [T,3] int32 vertex indices;
- ``rast`` is [B,H,W,4] float32 = (u, v, z/w, triangle_id + 1), all zeros where no triangle
  covers the pixel centre, and row 0 is NDC y = -1 (bottom-up, as in OpenGL).  The scene layer
  flips images to top-row-first; the primitives never do.
"""

from __future__ import annotations

import logging
import os
from typing import Protocol, runtime_checkable

import torch

log = logging.getLogger("studio.render")

BACKEND_NAMES = ("auto", "torch", "nvdiffrast")

NVDIFFRAST_INSTALL_HINT = (
    "install it with `pip install -e '.[nvdiffrast]'` (or `pip install diffrp-nvdiffrast ninja`) "
    "on a machine with an NVIDIA GPU, CUDA and nvcc, or use --backend torch"
)


class RenderInputError(ValueError):
    """A render primitive was given an argument of the wrong dtype, shape, device or value.

    The message is one sentence naming the argument and what was expected.
    """


class BackendUnavailableError(RuntimeError):
    """The requested backend or device cannot be used here; the message says what to do."""


@runtime_checkable
class Backend(Protocol):
    """nvdiffrast's four differentiable primitives, and ``edge_grad``, behind one object.

    A backend object is the rendering context (as ``RasterizeCudaContext`` is in nvdiffrast):
    it owns its device and any caches (mesh topology for antialiasing).
    """

    name: str
    device: torch.device

    def rasterize(
        self,
        pos: torch.Tensor,
        tri: torch.Tensor,
        resolution: tuple[int, int],
        ranges: torch.Tensor | None = None,
        grad_db: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rasterize triangles.

        Args:
            pos: [B,V,4] float32 clip-space positions, or [V,4] when ``ranges`` is given.
            tri: [T,3] int32 vertex indices.
            resolution: (height, width) in pixels.
            ranges: optional [B,2] int32 CPU tensor of (first triangle, triangle count) per image.
            grad_db: also compute ``rast_db``.

        Returns:
            ``rast`` [B,H,W,4] = (u, v, z/w, triangle_id + 1), zeros where empty, row 0 at
            NDC y = -1; ``rast_db`` [B,H,W,4] = (du/dX, du/dY, dv/dX, dv/dY) in pixels, or
            [B,H,W,0] when ``grad_db`` is False.  Gradients flow from u, v, z/w (and rast_db)
            to ``pos``.
        """
        ...

    def interpolate(
        self,
        attr: torch.Tensor,
        rast: torch.Tensor,
        tri: torch.Tensor,
        rast_db: torch.Tensor | None = None,
        diff_attrs: str | list[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Interpolate vertex attributes with the perspective-correct barycentrics of ``rast``.

        Args:
            attr: [B,V,C] (or [1,V,C] / [V,C], broadcast over the batch) float32 attributes.
            rast: [B,H,W,4] output of :meth:`rasterize`.
            tri: [T,3] int32, the triangles that were rasterized.
            rast_db: [B,H,W,4] screen-space barycentric derivatives, needed for ``diff_attrs``.
            diff_attrs: "all" or a list of attribute channel indices whose screen-space
                derivatives to return.

        Returns:
            ``out`` [B,H,W,C] (zeros where empty) and ``out_da`` [B,H,W,2*len(diff_attrs)] =
            (dA/dX, dA/dY) per listed channel in pixels, or [B,H,W,0] without ``diff_attrs``.
        """
        ...

    def texture(
        self,
        tex: torch.Tensor,
        uv: torch.Tensor,
        uv_da: torch.Tensor | None = None,
        mip_level_bias: torch.Tensor | None = None,
        filter_mode: str = "auto",
        boundary_mode: str = "wrap",
        max_mip_level: int | None = None,
    ) -> torch.Tensor:
        """Sample a texture with nvdiffrast's filtering and boundary semantics.

        Args:
            tex: [B,Ht,Wt,C] (or [1,...] broadcast) float32 texture, or [B,6,Ht,Wt,C] cube map
                when ``boundary_mode == "cube"``.
            uv: [B,H,W,2] texture coordinates (texel (i, j) centred at ((j+.5)/Wt, (i+.5)/Ht)),
                or [B,H,W,3] lookup directions for cube maps.
            uv_da: [B,H,W,4] (du/dX, du/dY, dv/dX, dv/dY) (or [B,H,W,6] for cube maps), the
                pixel footprint that selects the mip level.
            mip_level_bias: [B,H,W] added to the computed mip level.
            filter_mode: "auto", "nearest", "linear", "linear-mipmap-nearest" or
                "linear-mipmap-linear".
            boundary_mode: "wrap", "clamp", "zero" or "cube".
            max_mip_level: cap on the number of mip levels built (None = down to 1x1).

        Returns:
            [B,H,W,C] sampled values; gradients flow to ``tex``, ``uv`` (and ``uv_da`` and
            ``mip_level_bias`` in mipmapped modes).
        """
        ...

    def antialias(
        self,
        color: torch.Tensor,
        rast: torch.Tensor,
        pos: torch.Tensor,
        tri: torch.Tensor,
        topology_hash: object | None = None,
        pos_gradient_boost: float = 1.0,
    ) -> torch.Tensor:
        """Analytic silhouette antialiasing (Laine et al. 2020, section 3.3).

        Args:
            color: [B,H,W,C] shaded image in the rasterizer's (bottom-up) layout.
            rast: [B,H,W,4] output of :meth:`rasterize` for the same ``pos``/``tri``.
            pos, tri: as given to :meth:`rasterize` (shared vertices: a mesh whose vertices are
                duplicated per triangle treats every edge as a silhouette).
            topology_hash: optional result of :meth:`construct_topology` to skip the analysis.
            pos_gradient_boost: multiplier for the gradient that reaches ``pos``.

        Returns:
            [B,H,W,C] colours blended across silhouette edges; gradients reach ``color`` and
            the screen positions of silhouette-edge vertices in ``pos``.
        """
        ...

    def edge_grad(
        self,
        color: torch.Tensor,
        rast: torch.Tensor,
        pos: torch.Tensor,
        tri: torch.Tensor,
        depth_tolerance: float = 0.01,
    ) -> torch.Tensor:
        """Visibility gradients at every triangle boundary (rasterized edge gradients, Pidhorskyi
        et al. 2024); see :func:`studio.render.edge_grad.edge_grad`.

        Args:
            color: [B,H,W,C] shaded image in the rasterizer's (bottom-up) layout.
            rast: [B,H,W,4] output of :meth:`rasterize` for the same ``pos``/``tri``.
            pos, tri: as given to :meth:`rasterize` (no topology needed).
            depth_tolerance: relative depth gap below which two neighbouring pixels are one
                continuous surface (no visibility gradient between them).

        Returns:
            [B,H,W,C] equal to ``color`` (not antialiased); its backward is the identity for
            ``color`` plus, for ``pos``, the motion of every pixel-boundary micro-edge between
            different triangles (or background) times the colour step across it.
        """
        ...

    def construct_topology(self, tri: torch.Tensor) -> object:
        """Edge adjacency of ``tri`` for :meth:`antialias` (nvdiffrast's topology hash)."""
        ...


def get_backend(name: str = "auto", device: torch.device | str | None = None,
                compiled: bool | None = None) -> Backend:
    """Return a rendering backend.

    Args:
        name: "auto" (nvdiffrast on CUDA when importable, else the torch backend),
            "torch" or "nvdiffrast".
        device: torch device for the torch backend; default CUDA when available, else CPU.
            nvdiffrast always runs on CUDA.
        compiled: the torch backend's ``compiled`` option (``torch.compile`` of its
            interpolation pass, see :mod:`studio.render.compiled`); None reads the ``STUDIO_COMPILE``
            environment variable (set and not "0": on), so the CLI and the app can be switched
            without a flag.

    Raises:
        BackendUnavailableError: nvdiffrast asked for but not importable or no CUDA device, or
            an unusable device.
        ValueError: unknown backend name.
    """
    if name not in BACKEND_NAMES:
        raise ValueError(f"backend must be one of {', '.join(BACKEND_NAMES)}, got {name!r}.")
    if device is not None:
        try:
            device = torch.device(device)
        except RuntimeError as exc:
            raise BackendUnavailableError(
                f"device {str(device)!r} is not a torch device; use cpu, cuda, cuda:N or mps."
            ) from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"device {device} was asked for but this torch has no CUDA device; use --device cpu."
            )
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise BackendUnavailableError(
                f"device {device} was asked for but MPS is not available here; use --device cpu."
            )

    if name in ("auto", "nvdiffrast"):
        cuda_ok = torch.cuda.is_available() and (device is None or device.type == "cuda")
        if cuda_ok:
            try:
                from .nvdr import NvdiffrastBackend

                backend: Backend = NvdiffrastBackend(device)
                log.info("render backend: nvdiffrast on %s", backend.device)
                return backend
            except ImportError as exc:
                if name == "nvdiffrast":
                    raise BackendUnavailableError(
                        f"nvdiffrast is not importable ({exc}); {NVDIFFRAST_INSTALL_HINT}."
                    ) from exc
                log.warning("nvdiffrast is not installed; falling back to the torch backend.")
        elif name == "nvdiffrast":
            where = f"device {device}" if device is not None else "this machine"
            raise BackendUnavailableError(
                f"nvdiffrast needs a CUDA GPU and {where} has none; use --backend torch, or "
                f"{NVDIFFRAST_INSTALL_HINT}."
            )

    from .torch_raster import TorchBackend

    if compiled is None:
        compiled = os.environ.get("STUDIO_COMPILE", "") not in ("", "0")
    backend = TorchBackend(device, compiled=compiled)
    how = ", compiled" if compiled else ""
    if name == "auto" and backend.device.type != "cuda":
        log.info("render backend: torch on %s%s (no CUDA GPU for nvdiffrast)", backend.device, how)
    else:
        log.info("render backend: torch on %s%s", backend.device, how)
    return backend
