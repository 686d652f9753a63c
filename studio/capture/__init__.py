"""Multi-view captures (photos with calibrated cameras) read into one :class:`Capture`."""

from .model import Capture, Intrinsics, Normalisation, View

__all__ = ["Capture", "Intrinsics", "Normalisation", "View"]
