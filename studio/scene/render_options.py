"""A scene's render options, with ``visibility`` the one source of truth for visibility gradients.

``visibility`` is one of :data:`studio.render.raster_pass.VISIBILITY_MODES` ("antialias", "edge",
"soft", "none").  The older switches stay working as aliases onto it, whoever sets them (the CLI's
``--antialias``/``--soft``, ``Engine.set_option``, a compare run):

- ``antialias = True`` / ``False`` means ``visibility = "antialias"`` / ``"none"``;
- ``soft_sigma = s`` (> 0) means ``visibility = "soft"`` with blur s px²; ``soft_sigma = None``
  (or 0) leaves soft rasterization for the mode used before it.

After every change ``antialias`` and ``soft_sigma`` are rewritten to agree with ``visibility``
(``antialias`` is True only for "antialias", ``soft_sigma`` is None unless soft), so readers of
either see what is rendered.  Other options (``filter_mode``, ``sdf_alpha``...) are plain entries.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..render.raster_pass import VISIBILITY_MODES
from .spec import SceneError


class RenderOptions(dict):
    """A dict of render options that keeps ``visibility``, ``antialias`` and ``soft_sigma`` in step.

    Args:
        default_visibility: the scene's mode, before ``options`` (applied in order) change it.

    Raises:
        SceneError: ``visibility`` set to an unknown mode, or ``soft_sigma`` not a number.
    """

    def __init__(self, default_visibility: str = "antialias", /, **options: Any):
        super().__init__()
        self._before_soft = "antialias"
        self["visibility"] = default_visibility
        self.update(options)

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "visibility":
            if value not in VISIBILITY_MODES:
                raise SceneError(f"visibility must be one of {', '.join(VISIBILITY_MODES)}, got {value!r}.")
            mode, sigma = value, (self.get("soft_sigma") if value == "soft" else None)
        elif key == "antialias":
            mode, sigma = ("antialias" if value else "none"), None
        elif key == "soft_sigma":
            try:
                sigma = float(value) if value else None
            except (TypeError, ValueError):
                raise SceneError(f"soft_sigma must be a number of squared pixels, got {value!r}.") from None
            current = self.get("visibility", "antialias")
            mode = "soft" if sigma else (self._before_soft if current == "soft" else current)
        else:
            super().__setitem__(key, value)
            return
        current = self.get("visibility")
        if mode == "soft" and current not in (None, "soft"):
            self._before_soft = current
        super().__setitem__("visibility", mode)
        super().__setitem__("antialias", mode == "antialias")
        super().__setitem__("soft_sigma", sigma)

    def update(self, other: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), **kw: Any) -> None:
        for key, value in (dict(other, **kw)).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]
