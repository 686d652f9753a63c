"""Paths as users type them, in every dialog and command-line option.

``~`` is the home folder, a relative path is taken from the working directory (in a file dialog,
from the folder the dialog shows), and the result is absolute, so messages name the file that was
actually tried.
"""

from __future__ import annotations

import os
from pathlib import Path


def user_path(text: str | os.PathLike[str], base: str | os.PathLike[str] | None = None) -> Path:
    """The absolute path for ``text``: ``~`` expanded, relative paths joined to ``base`` (default: the
    working directory).  Symbolic links are kept (only ``..`` and ``.`` are folded)."""
    p = Path(text).expanduser()
    if not p.is_absolute():
        p = Path(base).expanduser() / p if base is not None else Path.cwd() / p
    return Path(os.path.normpath(p))
