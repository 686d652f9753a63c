"""Multi-view captures (photos with calibrated cameras) read into one :class:`Capture`.

``load_capture(path, res=None, images=None, masks=None, holdout=None)`` reads a NeRF/Blender
(``transforms*.json``) or COLMAP (text or binary model) capture; ``write_nerf`` and
``write_colmap`` write views in those layouts; :mod:`.synth` renders synthetic captures.
"""

from .colmap import write_colmap
from .errors import CaptureError
from .load import load_capture
from .model import Capture, Intrinsics, Normalisation, View
from .nerf import write_nerf

__all__ = ["Capture", "CaptureError", "Intrinsics", "Normalisation", "View", "load_capture", "write_colmap",
           "write_nerf"]
