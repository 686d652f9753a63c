"""The image row: target | current render | difference heatmap (with its colour legend).

Each picture is a Dear PyGui dynamic texture at the render resolution, drawn scaled to the space
the layout gives it.  Textures are only written when a new snapshot arrives.  The render picture
shows the render mode the user picked (computed by the engine, see studio.render.modes); a view
selector appears when the scene has several target views.
"""

from __future__ import annotations

from typing import Callable

import dearpygui.dearpygui as dpg
import numpy as np

from ..images import heatmap, linear_to_srgb
from ..optim.engine import Snapshot
from ..render.modes import MODES, SHADED
from .controls import Combo, Text

#: |render - target| (linear, mean over RGB) that maps to the top of the heatmap.
DIFF_VMAX = 0.25
#: The heatmap ramp of studio.images.heatmap as colormap stops (for the legend).
HEAT_STOPS = [(0, 0, 0, 255), (255, 0, 0, 255), (255, 255, 0, 255), (255, 255, 255, 255)]
_CAPTION_COLOR = (200, 200, 200)


def _rgba(image: np.ndarray) -> np.ndarray:
    """[H,W,3] display colours in [0,1] -> flat float32 RGBA for a dynamic texture."""
    h, w, _ = image.shape
    out = np.ones((h, w, 4), np.float32)
    out[..., :3] = image
    return out.ravel()


class ImageView:
    """One captioned picture backed by a dynamic texture."""

    def __init__(self, parent: int | str, caption: str, registry: int | str):
        self._registry = registry
        self.group = dpg.add_group(parent=parent)
        self.caption = Text(caption, parent=self.group, color=_CAPTION_COLOR)
        self._holder = dpg.add_group(parent=self.group)
        self.texture: int | None = None
        self.image: int | None = None
        self.size = 64
        self.resolution = (0, 0)

    def set_resolution(self, h: int, w: int) -> None:
        """(Re)create the texture for ``h`` x ``w`` images (grey until the first update)."""
        if (h, w) == self.resolution:
            return
        if self.image is not None:
            dpg.delete_item(self.image)
            dpg.delete_item(self.texture)
        self.texture = dpg.add_dynamic_texture(w, h, _rgba(np.full((h, w, 3), 0.2, np.float32)).tolist(),
                                               parent=self._registry)
        self.image = dpg.add_image(self.texture, parent=self._holder, width=self.size, height=self.size)
        self.resolution = (h, w)

    def update(self, image: np.ndarray) -> None:
        if self.texture is not None and image.shape[:2] == self.resolution:
            dpg.set_value(self.texture, _rgba(image))

    def set_size(self, px: int) -> None:
        self.size = px
        if self.image is not None:
            h, w = self.resolution
            dpg.configure_item(self.image, width=int(px * w / max(h, w)), height=int(px * h / max(h, w)))

    def rect(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the picture in viewport pixels, as last drawn."""
        x, y = dpg.get_item_rect_min(self.image)
        w, h = dpg.get_item_rect_size(self.image)
        return int(x), int(y), int(w), int(h)


class ImageRow:
    """Target, render and difference side by side, the heatmap legend, and the mode/view pickers.

    Args:
        parent: container item.
        on_mode: called with a render mode name when the user picks one.
        on_view: called with a view index when the user picks one.
    """

    def __init__(self, parent: int | str, on_mode: Callable[[str], None], on_view: Callable[[int], None]):
        with dpg.texture_registry() as registry:
            pass
        with dpg.colormap_registry():
            self._colormap = dpg.add_colormap(HEAT_STOPS, qualitative=False)
        row = dpg.add_group(horizontal=True, parent=parent)
        self.target = ImageView(row, "target", registry)
        self.render = ImageView(row, "render", registry)
        self.diff = ImageView(row, "difference", registry)
        legend = dpg.add_group(parent=row)
        dpg.add_text("|diff|", parent=legend, color=_CAPTION_COLOR)
        self.legend = dpg.add_colormap_scale(colormap=self._colormap, min_scale=0.0, max_scale=DIFF_VMAX,
                                             width=58, height=64, format="%.2f", parent=legend)
        with dpg.tooltip(self.legend):
            dpg.add_text(f"Per-pixel |render - target| in linear RGB (mean of the channels); "
                         f"{DIFF_VMAX} and more is white.", wrap=320)
        pickers = dpg.add_group(horizontal=True, parent=parent)
        self.mode = Combo.add("render mode", MODES, SHADED, parent=pickers, width=130, on_change=on_mode)
        self.mode.tooltip("What the middle picture shows: the shaded render, or the renderer's normals, depth, "
                          "coverage, triangle ids, or how strongly each pixel pulls on the loss (|d loss / d pixel|).")
        self.view = Combo.add("view", ["0"], "0", parent=pickers, width=70,
                              on_change=lambda v: on_view(int(v)))
        self.view.tooltip("Which camera view of the target rig to show.")
        self.view.show(False)
        self._views = 1

    def attach(self, resolution: tuple[int, int], num_views: int) -> None:
        """A new scene: textures at its resolution, a view selector when it has several views."""
        h, w = resolution
        for v in (self.target, self.render, self.diff):
            v.set_resolution(h, w)
        self._views = num_views
        self.view.items = [str(i) for i in range(num_views)]
        self.view.value = "0"
        self.view.show(num_views > 1)

    def update(self, snap: Snapshot) -> None:
        self.target.update(linear_to_srgb(snap.target))
        mode = self.mode.value
        if snap.display is not None and snap.display_mode == mode:
            self.render.update(snap.display)
        elif mode == SHADED or snap.display_mode == SHADED:
            self.render.update(linear_to_srgb(snap.render))
        self.render.caption.value = "render" if snap.display_mode == SHADED else f"render ({snap.display_mode})"
        self.diff.update(heatmap(snap.diff, vmax=DIFF_VMAX))
        self.view.sync(str(snap.view))

    def set_size(self, px: int) -> None:
        for v in (self.target, self.render, self.diff):
            v.set_size(px)
        dpg.configure_item(self.legend, height=px)
