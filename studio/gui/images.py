"""The image row: target | current render | difference heatmap (with its colour legend).

Each picture is a Dear PyGui dynamic texture at the render resolution, drawn scaled to the space
the layout gives it.  Textures are only written when a new snapshot arrives.  The render picture
shows the render mode the user picked (computed by the engine, see studio.render.modes); a view
selector appears when the scene has several target views, and the gradient views bring their own
controls and drawings (studio.gui.gradient_views).
"""

from __future__ import annotations

from typing import Callable

import dearpygui.dearpygui as dpg
import numpy as np

from ..images import heatmap, linear_to_srgb
from ..optim.engine import Snapshot
from ..render.modes import ALL_MODES, DERIVATIVE, LOSS_GRADIENT, NEGATIVE_COLOR, POSITIVE_COLOR, SHADED, VERTEX_ARROWS
from ..scene.params import ParameterSet
from .controls import Combo, Text
from .gradient_views import ArrowOverlay, DerivativePicker, modes_for

#: |render - target| (linear, mean over RGB) that maps to the top of the heatmap.
DIFF_VMAX = 0.25
#: The heatmap ramp of studio.images.heatmap as colormap stops (for the legend).
HEAT_STOPS = [(0, 0, 0, 255), (255, 0, 0, 255), (255, 255, 0, 255), (255, 255, 255, 255)]
#: studio.render.modes.signed_colors as colormap stops: -scale blue, 0 black, +scale red (sRGB).
DIVERGING_STOPS = [(*(int(255 * c + 0.5) for c in linear_to_srgb(np.array(NEGATIVE_COLOR))), 255), (0, 0, 0, 255),
                   (*(int(255 * c + 0.5) for c in linear_to_srgb(np.array(POSITIVE_COLOR))), 255)]
_CAPTION_COLOR = (200, 200, 200)
#: Largest texture side a picture is enlarged to (a 4096-pixel render is shown at 1:1 anyway).
MAX_TEXTURE_PX = 2048
#: The "display" picker: how many screen pixels per render pixel ("fit": the most that fit the pane).
DISPLAY_FACTORS = ["fit", "1x", "2x", "3x", "4x", "6x", "8x"]


def _rgba(image: np.ndarray) -> np.ndarray:
    """[H,W,3] display colours in [0,1] -> flat float32 RGBA for a dynamic texture."""
    h, w, _ = image.shape
    out = np.ones((h, w, 4), np.float32)
    out[..., :3] = image
    return out.ravel()


class ImageView:
    """One captioned picture backed by a dynamic texture, shown at a whole multiple of its
    resolution (nearest-neighbour: each image pixel becomes k x k screen pixels, so small renders
    stay crisp; Dear PyGui's own scaling would blur them).

    The picture is drawn in a drawlist, so that :attr:`overlay` (a draw layer above it) can carry
    drawings in picture pixels, e.g. gradient arrows.
    """

    def __init__(self, parent: int | str, caption: str, registry: int | str):
        self._registry = registry
        self.group = dpg.add_group(parent=parent)
        self.caption = Text(caption, parent=self.group, color=_CAPTION_COLOR)
        self.image = dpg.add_drawlist(64, 64, parent=self.group)
        self._picture: int | None = None
        self.overlay = dpg.add_draw_layer(parent=self.image)
        self.texture: int | None = None
        self.size = 64
        self.factor = 1  # screen pixels per image pixel (each way)
        self.resolution = (0, 0)
        self._shown: np.ndarray | None = None  # the last image, to upload again at a new factor

    def set_resolution(self, h: int, w: int) -> None:
        """(Re)create the texture for ``h`` x ``w`` images (grey until the first update)."""
        if (h, w) == self.resolution:
            return
        self.resolution = (h, w)
        self._shown = np.full((h, w, 3), 0.2, np.float32)
        self._make_texture()
        self.set_size(self.size)

    def _make_texture(self) -> None:
        if self._picture is not None:
            dpg.delete_item(self._picture)
            dpg.delete_item(self.texture)
        h, w = self.resolution
        k = self.factor
        self.texture = dpg.add_dynamic_texture(w * k, h * k, self._texels(self._shown), parent=self._registry)
        self._picture = dpg.draw_image(self.texture, (0, 0), (w * k, h * k), parent=self.image, before=self.overlay)

    def _texels(self, image: np.ndarray) -> np.ndarray:
        k = self.factor
        return _rgba(image if k == 1 else image.repeat(k, 0).repeat(k, 1))

    def update(self, image: np.ndarray) -> None:
        """Show [H,W,3] display colours in [0,1] (already sRGB-encoded)."""
        if self.texture is not None and image.shape[:2] == self.resolution:
            self._shown = image
            dpg.set_value(self.texture, self._texels(image))

    @property
    def shown_size(self) -> tuple[int, int]:
        """(width, height) of the picture on screen, in pixels."""
        h, w = self.resolution
        if not h or not w:
            return self.size, self.size
        return w * self.factor, h * self.factor

    def set_size(self, px: int, factor: int | None = None) -> None:
        """Show the picture ``factor`` times its resolution, or (None) the largest whole multiple that
        fits a ``px`` square (at least 1: never smaller than the render)."""
        self.size = px
        h, w = self.resolution
        if h and w:
            k = factor if factor else max(1, px // max(h, w))
            k = max(1, min(k, MAX_TEXTURE_PX // max(h, w)))
            if k != self.factor:
                self.factor = k
                self._make_texture()
        w_px, h_px = self.shown_size
        dpg.configure_item(self.image, width=w_px, height=h_px)

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
        on_derivative: called with (parameter, component) when the user picks what the derivative
            mode differentiates by.
    """

    def __init__(self, parent: int | str, on_mode: Callable[[str], None], on_view: Callable[[int], None],
                 on_derivative: Callable[[str, int], None], on_display: Callable[[], None] = lambda: None):
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
        with dpg.colormap_registry():
            self._diverging = dpg.add_colormap(DIVERGING_STOPS, qualitative=False)
        self.gradient_legend = dpg.add_group(parent=row, show=False)
        self.gradient_caption = Text("", parent=self.gradient_legend, color=_CAPTION_COLOR)
        self.gradient_scale = dpg.add_colormap_scale(colormap=self._colormap, min_scale=0.0, max_scale=1.0, width=66,
                                                     height=64, format="%.2g", parent=self.gradient_legend)
        self.gradient_tip = Text("", parent=dpg.add_tooltip(self.gradient_scale), wrap=320)
        pickers = dpg.add_group(horizontal=True, parent=parent)
        self.mode = Combo.add("render mode", ALL_MODES, SHADED, parent=pickers, width=150, on_change=on_mode)
        self.mode.tooltip("What the middle picture shows: the shaded render, or the renderer's normals, depth, "
                          "coverage, triangle ids, or a gradient view: d image / d param (how the picture changes "
                          "with one parameter), vertex gradients (where descent moves each vertex), loss gradient "
                          "(how strongly each pixel pulls on the loss, |d loss / d pixel|).")
        self.view = Combo.add("view", ["0"], "0", parent=pickers, width=70,
                              on_change=lambda v: on_view(int(v)))
        self.view.tooltip("Which camera view of the target rig to show.")
        self.view.show(False)
        self.display = Combo.add("display", DISPLAY_FACTORS, "fit", parent=pickers, width=60,
                                 on_change=lambda _: on_display())
        self.display.tooltip("Display resolution: screen pixels per render pixel (fit: the most that fit the window). "
                             "It only changes how the pictures are shown; the optimiser renders at the scene's "
                             "resolution (--res).")
        self.derivative = DerivativePicker(pickers, on_derivative)
        self.arrow_note = Text("", parent=pickers, color=_CAPTION_COLOR)
        self.arrows = ArrowOverlay(self.render.overlay)
        self._views = 1
        self._last: Snapshot | None = None

    def attach(self, resolution: tuple[int, int], num_views: int, params: ParameterSet) -> None:
        """A new scene: textures at its resolution, a view selector when it has several views, the
        render modes that apply to it and its parameters for the derivative picker."""
        h, w = resolution
        for v in (self.target, self.render, self.diff):
            v.set_resolution(h, w)
        self._views = num_views
        self.view.items = [str(i) for i in range(num_views)]
        self.view.value = "0"
        self.view.show(num_views > 1)
        self.mode.items = modes_for(params)
        if self.mode.value not in self.mode.items:
            self.mode.value = SHADED
        self.derivative.attach(params)
        self._last = None
        self.arrows.draw(None, resolution, self.render.shown_size)

    def preview(self, target: np.ndarray, caption: str) -> None:
        """A target view while the scene is still loading: [H,W,3] linear RGB in the target pane."""
        h, w = target.shape[:2]
        self.target.set_resolution(h, w)
        self.target.update(linear_to_srgb(target))
        self.target.caption.value = caption

    def update(self, snap: Snapshot) -> None:
        self._last = snap
        self.target.caption.value = "target"
        self.target.update(linear_to_srgb(snap.target))
        mode = self.mode.value
        if snap.display is not None and snap.display_mode == mode:
            self.render.update(snap.display)
        elif mode == SHADED or snap.display_mode == SHADED:
            self.render.update(linear_to_srgb(snap.render))
        self.render.caption.value = "render" if snap.display_mode == SHADED else f"render ({snap.display_mode})"
        self.diff.update(heatmap(snap.diff, vmax=DIFF_VMAX))
        self.view.sync(str(snap.view))
        self.derivative.show(mode == DERIVATIVE)
        self.derivative.update(snap)
        self._show_gradient_scale(snap)
        self._draw_arrows()

    def _show_gradient_scale(self, snap: Snapshot) -> None:
        """The colour scale of a gradient view beside the difference legend: 0 to the value shown as
        white for the loss gradient, -s to +s for d image / d param."""
        mode = snap.display_mode if snap.display_mode == self.mode.value else None
        shown = mode in (LOSS_GRADIENT, DERIVATIVE) and snap.display_scale > 0
        dpg.configure_item(self.gradient_legend, show=shown)
        if not shown:
            return
        s = float(snap.display_scale)
        # Tick labels must tell 3.0e-04 from 2.5e-04; "%.2g" would print both as 0.0003.
        dpg.configure_item(self.gradient_scale, format="%.3g" if 0.01 <= s < 1000 else "%.1e")
        if mode == LOSS_GRADIENT:
            self.gradient_caption.value = "|dL/dpx|"
            dpg.configure_item(self.gradient_scale, colormap=self._colormap, min_scale=0.0, max_scale=s)
            self.gradient_tip.value = (f"|d loss / d pixel|, per unit of linear RGB: black is 0, white {s:.3g} (the 99th "
                                       "percentile of this view) and more.")
        else:
            self.gradient_caption.value = "dI/dtheta"
            dpg.configure_item(self.gradient_scale, colormap=self._diverging, min_scale=-s, max_scale=s)
            self.gradient_tip.value = (f"dI/dtheta: full red is +{s:.3g}, full blue -{s:.3g} (linear RGB per unit of "
                                       "theta), black 0.")

    def _draw_arrows(self) -> None:
        snap = self._last
        shown = snap is not None and snap.display_mode == VERTEX_ARROWS == self.mode.value
        self.arrows.draw(snap.arrows if shown else None, self.render.resolution, self.render.shown_size)
        if not shown:
            self.arrow_note.value = ""
        elif self.arrows.count:
            self.arrow_note.value = "arrows: where one descent step moves each visible vertex (relative lengths)"
        else:
            self.arrow_note.value = "no vertex feels a gradient in this view"

    def set_size(self, px: int) -> int:
        """Fit the pictures to ``px`` squares (or show them at the chosen display factor); returns the
        height they take on screen."""
        factor = None if self.display.value == "fit" else int(self.display.value.rstrip("x"))
        for v in (self.target, self.render, self.diff):
            v.set_size(px, factor)
        height = self.target.shown_size[1]
        dpg.configure_item(self.legend, height=height)
        dpg.configure_item(self.gradient_scale, height=height)
        self._draw_arrows()
        return height
