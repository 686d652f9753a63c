"""The errors that are the user's input, not the studio's bugs.

Front ends show these as their one-sentence message (the CLI exits with code 2, the GUI puts the
sentence in the status bar); anything else is a bug and gets a traceback in the log.
"""

from __future__ import annotations


class UsageError(ValueError):
    """A command-line argument the studio cannot use (``--out`` naming a file, ``--mask`` without
    ``--target``); the message is one sentence."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception classes whose message is meant for the user."""
    from .capture.errors import CaptureError
    from .data.config import DatasetError
    from .images import ImageError
    from .optim.compare import CompareError
    from .optim.engine import EngineError
    from .optim.losses import LossError
    from .optim.plugins import PluginError
    from .reconstruct.hull import ReconstructionError
    from .optim.watchdog import StallError
    from .render.backend import BackendUnavailableError, RenderInputError
    from .scale.cluster import ScaleError
    from .scene.mesh import MeshError
    from .scene.params import ParameterError
    from .outputs import ParamsFileError
    from .scene.spec import SceneError
    from .video import VideoError

    return (SceneError, MeshError, ImageError, ParameterError, LossError, RenderInputError,
            BackendUnavailableError, EngineError, PluginError, CompareError, DatasetError, StallError, UsageError,
            CaptureError, VideoError, ParamsFileError, ScaleError,
            ReconstructionError)


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that the CPU or GPU ran out of memory (torch raises several kinds)."""
    text = str(exc)
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text


def memory_advice(exc: BaseException) -> str:
    """What to do when :func:`out_of_memory` holds, as the end of a sentence."""
    where = "GPU" if "CUDA" in str(exc) or "HIP" in str(exc) else "computer"
    return (f"the {where} ran out of memory; lower the resolution or the views per step (or use a smaller mesh), "
            f"then try again.")
