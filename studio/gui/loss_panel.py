"""The loss panel: which losses are on, their weights and declared parameters, and plugin reload.

One row per loss in use: a tick box (``set_loss_enabled``), a weight slider (``set_loss_weight``),
the latest value of the term, and a slider per declared parameter (``LossDef.params``,
``set_loss_param``); the loss's description is the tooltip.  "Add" puts another registered loss in
use, "Reload plugins" re-imports plugin files on the engine's worker between steps.
"""

from __future__ import annotations

from typing import Callable

import dearpygui.dearpygui as dpg

from ..optim.engine import Engine, Snapshot
from ..optim.losses import REGISTRY, LossError
from .controls import Button, Checkbox, Combo, Control, FloatSlider, Text

_GREY = (150, 150, 150)
_LABEL_PX = 110


def reload_plugin_losses(engine: Engine) -> str | None:
    """Ask the engine to re-import plugin losses (``studio.optim.plugins.reload_plugins``) and rebind
    the losses in use.  Returns a sentence when plugin reloading is not available, else None."""
    try:
        from ..optim.plugins import reload_plugins
    except ImportError:
        return "plugin reloading is not available in this build (studio.optim.plugins.reload_plugins is missing)."
    engine.reload_losses(reload_plugins)
    return None


class LossRow:
    def __init__(self, parent: int | str, name: str, weight: float, enabled: bool, params: dict[str, float],
                 engine: Engine):
        self.name = name
        d = REGISTRY.get(name) if name in REGISTRY else None
        self.group = dpg.add_group(parent=parent)
        head = dpg.add_group(horizontal=True, parent=self.group)
        self.enabled = Checkbox.add(name, enabled, parent=head, on_change=lambda on: engine.set_loss_enabled(name, on))
        about = (d.description if d is not None and d.description else name)
        self.enabled.tooltip(f"{about}\nUntick to leave this loss out of the total.")
        self.value = Text("", parent=head, color=_GREY)
        hi = 4.0 * weight if weight > 0 else 1.0  # ctrl+click types any value beyond
        self.weight = FloatSlider.add("weight", 0.0, hi, weight, parent=self.group, width=-_LABEL_PX, fmt="%.4g",
                                      on_change=lambda w: engine.set_loss_weight(name, w))
        self.weight.tooltip(f"Weight of {name} in the total loss (ctrl+click to type any value).")
        self.params: dict[str, FloatSlider] = {}
        for key, spec in (d.params.items() if d is not None else ()):
            s = FloatSlider.add(key, spec.min, spec.max, params.get(key, spec.default), parent=self.group,
                                width=-_LABEL_PX, fmt="%.4g",
                                on_change=lambda v, key=key: engine.set_loss_param(name, key, v))
            s.tooltip(spec.description or key)
            self.params[key] = s
        dpg.add_separator(parent=self.group)

    def update(self, weight: float, enabled: bool, params: dict[str, float], value: float | None) -> None:
        self.enabled.sync(enabled)
        self.weight.sync(weight)
        for key, s in self.params.items():
            if key in params:
                s.sync(params[key])
        self.value.value = f"{value:.4g}" if value is not None else ("off" if not enabled else "")


class LossPanel:
    """The losses of the engine in use; rows are rebuilt when the set of losses changes."""

    def __init__(self, parent: int | str, engine: Engine, report: Callable[[str], None]):
        self.engine = engine
        self.root = dpg.add_group(parent=parent)
        bar = dpg.add_group(horizontal=True, parent=self.root)
        self.reload = Button("Reload plugins", self._reload, parent=bar)
        self.reload.tooltip("Re-import plugin loss files that changed (plugins/, --plugins folders, STUDIO_PLUGINS) "
                            "without stopping the run.")
        self._report = report
        add = dpg.add_group(horizontal=True, parent=self.root)
        self.choice = Combo.add("##add loss", [], "", parent=add, width=150)
        self.add = Button("Add loss", self._add_loss, parent=add)
        self.add.tooltip("Put the chosen registered loss in use with its default weight.")
        dpg.add_text("Values shown are unweighted terms; the total loss is their weighted sum.", parent=self.root,
                     color=_GREY, wrap=0)
        dpg.add_separator(parent=self.root)
        self.rows_parent = dpg.add_group(parent=self.root)
        self.rows: dict[str, LossRow] = {}
        self._shape: tuple | None = None
        self._losses: tuple = ()
        self._addable: list[str] = []

    def _reload(self) -> None:
        problem = reload_plugin_losses(self.engine)
        if problem:
            self._report(problem)

    def _add_loss(self) -> None:
        name = self.choice.value
        if not name:
            return
        current = [(n, w, dict(p)) for n, w, _, p in self._losses]
        if name in (n for n, *_ in current):
            return
        try:
            d = REGISTRY.get(name)
        except LossError as exc:
            self._report(str(exc))
            return
        self.engine.set_losses(current + [(name, d.weight, d.default_params())])

    def update(self, snap: Snapshot) -> None:
        self._losses = snap.losses
        names = tuple(n for n, *_ in snap.losses)
        # Rows are rebuilt when losses come or go, or a reloaded plugin declares other parameters.
        shape = tuple((n, tuple(k for k, _ in p)) for n, _, _, p in snap.losses)
        if shape != self._shape:
            for row in self.rows.values():
                dpg.delete_item(row.group)
            self.rows = {n: LossRow(self.rows_parent, n, w, on, dict(p), self.engine) for n, w, on, p in snap.losses}
            self._shape = shape
        addable = [n for n in REGISTRY.names() if n not in names]
        if addable != self._addable:
            self._addable = addable
            self.choice.items = addable
        for n, w, on, p in snap.losses:
            self.rows[n].update(w, on, dict(p), snap.loss_terms.get(n))

    def controls(self) -> list[Control]:
        out: list[Control] = [self.choice]
        for r in self.rows.values():
            out += [r.enabled, r.weight, *r.params.values()]
        return out

    def destroy(self) -> None:
        dpg.delete_item(self.root)
