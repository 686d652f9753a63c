"""The Teaching tab's live switches: the render options a scenario's lesson is about.

Which switches a scene gets (:func:`switches_for`, named as ``studio compare --switch``):

- mesh scenes: ``visibility``, where the gradients that move outlines come from ("antialias":
  silhouette blending; "edge": ``edge_grad`` at every triangle boundary; "soft": soft
  rasterization; "none": no visibility gradient), ``soft`` (the soft-rasterization blur σ in
  squared pixels, shown while visibility is soft), ``mip`` (trilinear mipmapping) when an
  object is textured, ``restarts`` (greedy random search over orientations before the first
  gradient step) when a rotation is fitted, ``shadows`` (off / hard / soft shadow maps,
  :mod:`studio.render.shadow`) when the scene file has a [shadows] section;
- SDF scenes: ``sdf_alpha``, the silhouette sharpness α of the soft mask sigmoid(-α·f_min), in
  1/scene units: annealed from soft to sharp over the step budget, or fixed.

Every edit is one ``Engine.set_option`` (the render follows at the next publish); the controls
follow ``Snapshot.options``, so they always show what the engine uses.
"""

from __future__ import annotations

from typing import Any, Callable

import dearpygui.dearpygui as dpg

from ..optim.engine import Snapshot
from ..render.raster_pass import VISIBILITY_MODES
from ..render.shadow import SHADOW_MODES
from ..render.soft_raster import DEFAULT_SIGMA
from .controls import Checkbox, Combo, Control, FloatSlider, IntSlider

MIPMAPPED, PLAIN = "linear-mipmap-linear", "linear"
SIGMA_RANGE = (0.1, 8.0)  # px²: from barely soft to a blur of several pixels
MAX_RESTARTS = 256
_GREY = (150, 150, 150)
_LABEL_PX = 120

SendOption = Callable[[str, Any], None]


def switches_for(scene: Any) -> tuple[str, ...]:
    """The teaching switches that apply to ``scene`` (see the module docstring)."""
    if scene.spec.kind == "sdf":
        return ("sdf_alpha",)
    out = ["visibility", "soft"]
    if any(getattr(o, "albedo_kind", "") == "texture" for o in scene.objects):
        out.append("mip")
    if any(p.metric == "rotation" for p in scene.params.trainable()):
        out.append("restarts")
    if getattr(scene, "has_shadows", False):
        out.append("shadows")
    return tuple(out)


def sdf_alpha_range(scene: Any) -> tuple[float, float]:
    """Slider range of a fixed α: from half the scene's starting sharpness to twice its final one."""
    return 0.5 * float(scene.settings["alpha"]), 2.0 * float(scene.settings["alpha_max"])


class TeachingSwitches:
    """The switches of one scene at a time (:meth:`attach`), each in its own row so that rows that
    do not apply, or not in the current state, can hide."""

    def __init__(self, parent: int | str, send: SendOption):
        self.send = send
        self.root = dpg.add_group(parent=parent)

        self.visibility_row = dpg.add_group(parent=self.root)
        self.visibility = Combo.add("visibility gradient", VISIBILITY_MODES, "antialias", parent=self.visibility_row,
                                    width=-_LABEL_PX, on_change=self._visibility_changed)
        self.visibility.tooltip("Where the gradients that move outlines (shapes, poses, the camera) come from. "
                                "antialias: silhouette pixels are blended by their distance to the edge. "
                                "edge: edge_grad, every pixel boundary between two triangles moves with the nearer "
                                "one (right on dense meshes, where antialias gets most of it wrong). "
                                "soft: every triangle covers nearby pixels a little (a blurred outline). "
                                "none: outlines are hard steps with no gradient, and they stop moving.")

        self.soft_row = dpg.add_group(parent=self.root)
        self.sigma = FloatSlider.add("sigma (px\u00b2)", *SIGMA_RANGE, DEFAULT_SIGMA, parent=self.soft_row,
                                     width=-_LABEL_PX, fmt="%.2f", on_change=self._sigma_changed)
        self.sigma.tooltip("Blur of the soft silhouette in squared pixels: at 1 the coverage is 0.73 one pixel "
                           "inside the outline and 0.27 one pixel outside; larger is blurrier and reaches further.")

        self.mip_row = dpg.add_group(parent=self.root)
        self.mip = Checkbox.add("mipmapping", True, parent=self.mip_row,
                                on_change=lambda on: self.send("filter_mode", MIPMAPPED if on else PLAIN))
        self.mip.tooltip("Trilinear mipmapping: a minified texture is read from a pre-filtered level, so each "
                         "pixel's gradient spreads over all the texels it covers. Off, one bilinear lookup per "
                         "pixel: far-away texels alias and get noisy, speckled gradients.")

        self.restarts_row = dpg.add_group(parent=self.root)
        self.restarts = IntSlider.add("random restarts", 0, MAX_RESTARTS, 0, parent=self.restarts_row,
                                      width=-_LABEL_PX, on_change=lambda n: self.send("restarts", n))
        self.restarts.tooltip("Random orientations tried (greedy: the best is kept) before gradient descent starts; "
                              "0 leaves gradients alone with the initial guess.")
        dpg.add_text("Takes effect at Reset or Randomise: the search runs before the first gradient step.",
                     parent=self.restarts_row, color=_GREY, wrap=0)

        self.shadows_row = dpg.add_group(parent=self.root)
        self.shadows = Combo.add("shadows", SHADOW_MODES, "soft", parent=self.shadows_row, width=90,
                                 on_change=lambda mode: self.send("shadows", mode))
        self.shadows.tooltip("Shadow maps from each sun. soft: a smooth depth comparison filtered over a penumbra "
                             "as wide as the sun's angular size, so the shadow's edge slides under gradients. hard: "
                             "each pixel is lit or not, which gives the light no gradient from its shadow. The "
                             "bias and the penumbra are sliders in the lighting group.")

        self.sdf_row = dpg.add_group(parent=self.root)
        self.anneal = Checkbox.add("anneal silhouette sharpness", True, parent=self.sdf_row,
                                   on_change=self._anneal_changed)
        self.anneal.tooltip("The SDF outline is the soft mask sigmoid(-alpha * f_min) of the smallest distance along "
                            "each missed ray. Annealed, alpha grows from soft to sharp over the step budget: wide "
                            "gradients first, precision at the end.")
        self.alpha = FloatSlider.add("alpha (1/unit)", 1.0, 400.0, 200.0, parent=self.sdf_row, width=-_LABEL_PX,
                                     fmt="%.1f", on_change=self._alpha_changed)
        self.alpha.tooltip("The fixed sharpness: high values make the outline gradient a thin band, and shapes that "
                           "start apart from their targets stop moving (Reset to see it from the start).")
        self.applies: tuple[str, ...] = ()
        self._refresh()

    def attach(self, scene: Any) -> None:
        """Show the switches that apply to ``scene``, set to its options."""
        self.applies = switches_for(scene)
        opts = scene.options
        self.visibility.value = str(opts.get("visibility", "antialias"))
        if opts.get("soft_sigma"):
            self.sigma.value = float(opts["soft_sigma"])
        self.mip.value = opts.get("filter_mode", MIPMAPPED) != PLAIN
        self.shadows.value = str(opts.get("shadows", "off"))
        if "sdf_alpha" in self.applies:
            lo, hi = sdf_alpha_range(scene)
            dpg.configure_item(self.alpha.item, min_value=lo, max_value=hi)
            fixed = opts.get("sdf_alpha")
            self.anneal.value = fixed is None
            self.alpha.value = float(fixed) if fixed is not None else float(scene.settings["alpha_max"])
        self._refresh()

    def _visibility_changed(self, mode: str) -> None:
        # Soft goes with its sigma (setting soft_sigma selects soft rasterization).
        if mode == "soft":
            self.send("soft_sigma", self.sigma.value)
        else:
            self.send("visibility", mode)
        self._refresh()

    def _sigma_changed(self, sigma: float) -> None:
        if self.visibility.value == "soft":
            self.send("soft_sigma", sigma)

    def _alpha_changed(self, alpha: float) -> None:
        if not self.anneal.value:
            self.send("sdf_alpha", alpha)

    def _anneal_changed(self, on: bool) -> None:
        self.send("sdf_alpha", None if on else self.alpha.value)
        self._refresh()

    def _refresh(self) -> None:
        """Rows that apply to this scene, in the current state."""
        on = set(self.applies)
        dpg.configure_item(self.visibility_row, show="visibility" in on)
        dpg.configure_item(self.soft_row, show="soft" in on and self.visibility.value == "soft")
        dpg.configure_item(self.mip_row, show="mip" in on)
        dpg.configure_item(self.restarts_row, show="restarts" in on)
        dpg.configure_item(self.shadows_row, show="shadows" in on)
        dpg.configure_item(self.sdf_row, show="sdf_alpha" in on)
        self.alpha.show(not self.anneal.value)

    def update(self, snap: Snapshot) -> None:
        """Follow the options the engine uses."""
        opts = snap.options
        if not opts:
            return
        self.visibility.sync(str(opts.get("visibility", "antialias")))
        sigma = opts.get("soft_sigma")
        if sigma:
            self.sigma.sync(float(sigma))
        self.mip.sync(opts.get("filter_mode", MIPMAPPED) != PLAIN)
        self.restarts.sync(int(opts.get("restarts", 0)))
        self.shadows.sync(str(opts.get("shadows", "off")))
        if "sdf_alpha" in self.applies:
            fixed = opts.get("sdf_alpha")
            self.anneal.sync(fixed is None)
            if fixed is not None:
                self.alpha.sync(float(fixed))
        self._refresh()

    def controls(self) -> list[Control]:
        """Every input (for the keyboard-shortcut guard)."""
        return [self.visibility, self.sigma, self.mip, self.restarts, self.shadows, self.anneal, self.alpha]
