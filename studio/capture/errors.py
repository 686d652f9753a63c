"""The one error type of capture import: a capture the studio cannot use."""

from __future__ import annotations


class CaptureError(ValueError):
    """A capture (folder, json, COLMAP model, image or mask) the studio cannot use; the message is
    one sentence naming the file and what to do."""
