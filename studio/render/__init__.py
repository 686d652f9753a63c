"""Differentiable rendering primitives (no scene knowledge).

``get_backend("auto")`` returns nvdiffrast on CUDA when it is installed, else the pure-PyTorch
backend; both implement :class:`Backend` with nvdiffrast's conventions.
"""

from .backend import Backend, BackendUnavailableError, RenderInputError, get_backend

__all__ = ["Backend", "BackendUnavailableError", "RenderInputError", "get_backend"]
