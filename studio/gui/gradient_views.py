"""The render picture's gradient views: the scalar that the derivative image differentiates by, and
vertex gradient arrows drawn over the render.

- :class:`DerivativePicker` sits beside the render-mode picker and shows in the "d image / d param"
  mode: the user picks a parameter and one of its components θ, and the engine publishes dI/dθ
  (:func:`studio.optim.gradient_views.derivative_image`, the channels' mean) as a diverging map
  (:func:`studio.render.modes.signed_colors`: red where the pixel brightens as θ grows, blue where
  it darkens, black where it does not change, one symmetric scale).  The picker shows that scale.
- :class:`ArrowOverlay` draws Snapshot.arrows, the screen projection of each optimised vertex's
  descent direction, on the render picture's draw layer.  Arrows are drawn by Dear PyGui rather
  than burnt into the image: at 64x64 pixels a burnt-in arrow is a few blocky pixels, while drawn
  arrows stay sharp at any picture size, and the engine does not re-render when the window is
  resized.

The parameter metadata (shape, unit, metric) is read once per scene on the GUI thread; it never
changes while the scene lives.
"""

from __future__ import annotations

from typing import Callable

import dearpygui.dearpygui as dpg
import numpy as np

from ..optim.engine import Snapshot
from ..render.modes import ALL_MODES, VERTEX_ARROWS
from ..scene.params import Parameter, ParameterSet
from .controls import Combo, IntInput, Text

#: The longest arrow, as a fraction of the picture's width: arrows show directions and relative
#: sizes, so they are scaled to be readable (their length in scene units is not meaningful).
LONGEST_ARROW = 0.14
ARROW_COLOR = (255, 225, 40, 255)
#: How a parameter's unit reads after "per" in the derivative's scale.
UNIT_NAMES = {"units": "scene unit", "deg": "degree", "rgb": "unit of colour"}
_MIN_ARROW_PX = 1.5  # shorter arrows are points, and would only add clutter
_GREY = (150, 150, 150)


def modes_for(params: ParameterSet) -> list[str]:
    """The render modes worth offering for a scene: the vertex arrows only when vertices are fitted."""
    fits_vertices = any(p.name.endswith(".vertices") for p in params.trainable())
    return [m for m in ALL_MODES if m != VERTEX_ARROWS or fits_vertices]


def component_names(p: Parameter) -> list[str] | None:
    """Names of a small parameter's components (x, y, z; r, g, b; w, x, y, z for a quaternion), or
    None for a big tensor, whose components are picked by their flat (row-major) index."""
    n = p.value.numel()
    if n > 4:
        return None
    if n == 1:
        return ["value"]
    if p.metric == "rotation" and n == 4:
        return ["w", "x", "y", "z"]
    if p.unit == "rgb" and n == 3:
        return ["r", "g", "b"]
    return ["x", "y", "z", "w"][:n]


class DerivativePicker:
    """Parameter, component and the colour scale of the derivative image.

    Args:
        parent: the row it is added to.
        on_pick: called with (parameter name, flat component index) when the user picks one.
    """

    def __init__(self, parent: int | str, on_pick: Callable[[str, int], None]):
        self.on_pick = on_pick
        self.group = dpg.add_group(horizontal=True, parent=parent, show=False)
        self.param = Combo.add("##theta", [], "", parent=self.group, width=165, on_change=self._param_changed)
        self.param.tooltip("theta: the parameter the render is differentiated by (fitted ones first).")
        self.component = Combo.add("##component", [], "", parent=self.group, width=70,
                                   on_change=lambda _: self._send())
        self.component.tooltip("Which component of theta.")
        self.element = IntInput.add("##element", 0, parent=self.group, width=60, on_change=self._element_changed)
        self.element.tooltip("Which element of this tensor (row-major index, e.g. vertex i's y is 3i + 1).")
        self.where = Text("", parent=self.group, color=_GREY)
        self.scale = Text("", parent=self.group, color=_GREY)
        self.scale_tip = dpg.add_tooltip(self.scale.item)
        dpg.add_text("dI/dtheta, the mean over R, G, B of how fast each pixel's linear colour changes as theta grows: "
                     "red brightens, blue darkens, black does not change. Full colour is the scale shown, the same "
                     "for both signs: the 95th percentile of |dI/dtheta|, so the few faster pixels (often on a "
                     "moving outline) saturate.", parent=self.scale_tip, wrap=360)
        self._params: dict[str, Parameter] = {}

    def attach(self, params: ParameterSet) -> None:
        """A new scene: its parameters, fitted ones first."""
        ordered = params.trainable() + [p for p in params if not p.trainable]
        self._params = {p.name: p for p in ordered}
        self.param.items = list(self._params)
        if ordered:
            self._show_components(ordered[0].name, 0)

    def show(self, on: bool) -> None:
        dpg.configure_item(self.group, show=on)

    def _param_changed(self, name: str) -> None:
        self._show_components(name, 0)
        self._send()

    def _show_components(self, name: str, index: int) -> None:
        p = self._params[name]
        self.param.value = name
        names = component_names(p)
        self.component.show(names is not None)
        self.element.show(names is None)
        if names is not None:
            self.component.items = names
            self.component.value = names[min(index, len(names) - 1)]
            self.where.value = ""
        else:
            n = p.value.numel()
            dpg.configure_item(self.element.item, max_value=n - 1)
            self.element.value = min(index, n - 1)
            self._show_where()

    def _show_where(self) -> None:
        """The element's index in the tensor's own shape, e.g. [3, 0] for vertex 3's x."""
        p = self._params[self.param.value]
        where = np.unravel_index(self._index(), tuple(p.value.shape))
        self.where.value = "[" + ", ".join(str(int(i)) for i in where) + "]"

    def _element_changed(self, _: int) -> None:
        self._show_where()
        self._send()

    def _index(self) -> int:
        p = self._params[self.param.value]
        names = component_names(p)
        if names is None:
            return min(max(self.element.value, 0), p.value.numel() - 1)
        return names.index(self.component.value) if self.component.value in names else 0

    def _send(self) -> None:
        if self.param.value in self._params:
            self.on_pick(self.param.value, self._index())

    def update(self, snap: Snapshot) -> None:
        """Follow the engine's choice (it picks one itself until the user does) and show its scale."""
        if snap.derivative is None or snap.derivative[0] not in self._params:
            return
        name, index = snap.derivative
        if not (self.param.editing or self.component.editing or self.element.editing) \
                and (name, index) != (self.param.value, self._index()):
            self._show_components(name, index)
        unit = UNIT_NAMES.get(self._params[name].unit, self._params[name].unit or "unit")
        self.scale.value = f"\u00b1{snap.display_scale:.3g} per {unit}"


class ArrowOverlay:
    """Vertex gradient arrows on a picture's draw layer, redrawn only when the arrows or the picture
    size change."""

    def __init__(self, layer: int | str):
        self.layer = layer
        self._drawn: tuple | None = None
        self.count = 0  # arrows drawn

    def draw(self, arrows: np.ndarray | None, resolution: tuple[int, int], shown: tuple[int, int]) -> None:
        """Draw ``arrows`` [N,4] (x, y, dx, dy in pixels of an image of ``resolution`` (h, w)) on a
        picture shown at ``shown`` (width, height) pixels; None clears the layer."""
        key = (id(arrows), shown)
        if key == self._drawn:
            return
        self._drawn = key
        dpg.delete_item(self.layer, children_only=True)
        self.count = 0
        if arrows is None or len(arrows) == 0:
            return
        h, w = resolution
        sx, sy = shown[0] / w, shown[1] / h
        tails = arrows[:, :2] * (sx, sy)
        vectors = arrows[:, 2:] * (sx, sy)
        longest = float(np.linalg.norm(vectors, axis=1).max())
        if longest <= 0:
            return
        tips = tails + vectors * (LONGEST_ARROW * shown[0] / longest)
        for (x0, y0), (x1, y1) in zip(tails.tolist(), tips.tolist()):
            if abs(x1 - x0) + abs(y1 - y0) >= _MIN_ARROW_PX:
                dpg.draw_arrow((x1, y1), (x0, y0), color=ARROW_COLOR, thickness=1.5, size=3, parent=self.layer)
                self.count += 1

