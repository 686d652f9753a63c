"""The parameter panel: one collapsing section per group, built from the ParameterSet metadata.

Each section has an "optimise" switch and a learning rate for the group, its current error, then a
row per parameter: a slider (or a small vector of sliders) for scalars and small vectors, and a
summary row (norm, freeze, reset) for large tensors such as vertex positions or textures.  Sliders
are two-way: they follow the optimiser through snapshots, and dragging one sends ``set_param``.
"""

from __future__ import annotations

from typing import Any, Callable

import dearpygui.dearpygui as dpg
import numpy as np

from ..optim.engine import Engine, Snapshot
from ..scene.params import GROUP_COLORS, GROUPS, Parameter, ParameterSet
from .controls import Button, Checkbox, Control, FloatSlider, NumberInput, Text, VectorSlider
from .theme import header_theme

FIT_MARK, FIXED_MARK = "fit", "   "
_GREY = (150, 150, 150)
_LABEL_PX = 150  # room left of a slider for its label


def _marked_row(parent: int | str, p: Parameter) -> int | str:
    """A horizontal row that starts with the parameter's fit mark (in its group colour) or fixed mark."""
    row = dpg.add_group(horizontal=True, parent=parent)
    dpg.add_text(FIT_MARK if p.trainable else FIXED_MARK, parent=row,
                 color=GROUP_COLORS[p.group] if p.trainable else _GREY)
    return row


class SliderRow:
    """A scalar or small vector parameter as slider(s)."""

    def __init__(self, parent: int | str, p: Parameter, engine: Engine):
        self.name = p.name
        row = _marked_row(parent, p)
        lo, hi = p.slider.min, p.slider.max
        fmt = "%.3f" if hi - lo <= 20 else "%.2f"
        value = p.value.detach().cpu().reshape(-1).tolist()
        label = p.name
        send: Callable[[Any], None] = lambda v: engine.set_param(p.name, v)
        if len(value) == 1:
            self.control: Control = FloatSlider.add(label, lo, hi, value[0], parent=row, width=-_LABEL_PX, fmt=fmt,
                                                    on_change=send)
        else:
            self.control = VectorSlider.add(label, lo, hi, value, parent=row, width=-_LABEL_PX, fmt=fmt,
                                            on_change=send)
        role = "fitted by the optimiser" if p.trainable else "fixed (not fitted; drag it to see what it does)"
        self.control.tooltip(f"{p.description or p.name}\n{role}; range {lo:g} to {hi:g}. Ctrl+click to type a value.")

    def update(self, snap: Snapshot) -> None:
        v = snap.params.get(self.name)
        if v is None:
            return
        flat = v.reshape(-1)
        self.control.sync(float(flat[0]) if flat.size == 1 else tuple(float(x) for x in flat))


class SummaryRow:
    """A large tensor: its shape and norm, a freeze switch (trainable ones) and a reset button."""

    def __init__(self, parent: int | str, p: Parameter, engine: Engine):
        self.name = p.name
        row = _marked_row(parent, p)
        shape = "x".join(str(s) for s in p.value.shape)
        label = dpg.add_text(f"{p.name} [{shape}]", parent=row)
        with dpg.tooltip(label):
            dpg.add_text(p.description or p.name, wrap=360)
        tools = dpg.add_group(horizontal=True, parent=parent, indent=34)
        self.norm = Text("", parent=tools, color=_GREY)
        self.freeze: Checkbox | None = None
        if p.trainable:
            self.freeze = Checkbox.add("freeze", False, parent=tools,
                                       on_change=lambda on: engine.set_frozen(p.name, on))
            self.freeze.tooltip("Hold this tensor fixed while the rest of its group is optimised.")
        self.reset = Button("reset", lambda: engine.reset_param(p.name), parent=tools)
        self.reset.tooltip("Back to its initial value (the run goes on).")

    def update(self, snap: Snapshot) -> None:
        v = snap.params.get(self.name)
        if v is not None:
            self.norm.value = f"norm {float(np.linalg.norm(v)):<9.4g}"
        if self.freeze is not None:
            self.freeze.sync(self.name in snap.frozen)


class GroupSection:
    def __init__(self, parent: int | str, group: str, params: list[Parameter], engine: Engine):
        self.group = group
        trainable = [p for p in params if p.trainable]
        self.header = dpg.add_collapsing_header(label=group, default_open=True, parent=parent)
        dpg.bind_item_theme(self.header, header_theme(GROUP_COLORS[group]))
        bar = dpg.add_group(horizontal=True, parent=self.header)
        self.optimise: Checkbox | None = None
        self.lr: NumberInput | None = None
        if trainable:
            self.optimise = Checkbox.add("optimise", True, parent=bar,
                                         on_change=lambda on: engine.set_group_enabled(group, on))
            self.optimise.tooltip(f"Let the optimiser change the {group} parameters marked 'fit'; untick to "
                                  "hold them fixed (their error curve keeps updating).")
            self.lr = NumberInput.add("lr", trainable[0].lr, parent=bar, width=80,
                                      on_change=lambda lr: engine.set_lr(group, lr))
            self.lr.tooltip(f"Learning rate of every {group} parameter (Adam step size); press Enter to apply.")
        else:
            dpg.add_text("nothing to fit in this scene", parent=bar, color=_GREY)
        self.error = Text("", parent=bar, color=GROUP_COLORS[group])
        self.rows: list[SliderRow | SummaryRow] = []
        for p in params:
            self.rows.append(SliderRow(self.header, p, engine) if p.slider is not None and p.is_small
                             else SummaryRow(self.header, p, engine))
        dpg.add_spacer(height=4, parent=self.header)

    def update(self, snap: Snapshot) -> None:
        if self.optimise is not None:
            self.optimise.sync(snap.group_enabled.get(self.group, True))
        if self.lr is not None and self.group in snap.group_lr:
            self.lr.sync(snap.group_lr[self.group])
        err = snap.group_errors.get(self.group)
        self.error.value = f"error {err.value:.4g} {err.unit}" if err is not None else ""
        for r in self.rows:
            r.update(snap)


class ParamsPanel:
    """All groups of one scene.  Rebuilt (``destroy`` then a new panel) when the scene changes."""

    def __init__(self, parent: int | str, params: ParameterSet, engine: Engine):
        self.root = dpg.add_group(parent=parent)
        dpg.add_text("'fit' marks what the optimiser changes; drag any slider to edit the scene.",
                     parent=self.root, color=_GREY, wrap=0)
        self.sections = [GroupSection(self.root, g, params.in_group(g), engine) for g in GROUPS if params.in_group(g)]

    def update(self, snap: Snapshot) -> None:
        for s in self.sections:
            s.update(snap)

    def controls(self) -> list[Control]:
        """Every input control (for keyboard-shortcut guards and tests)."""
        out: list[Control] = []
        for s in self.sections:
            out += [c for c in (s.optimise, s.lr) if c is not None]
            out += [r.control for r in s.rows if isinstance(r, SliderRow)]
            out += [r.freeze for r in s.rows if isinstance(r, SummaryRow) and r.freeze is not None]
        return out

    def slider(self, name: str) -> Control:
        """The slider of parameter ``name``."""
        for s in self.sections:
            for r in s.rows:
                if isinstance(r, SliderRow) and r.name == name:
                    return r.control
        raise KeyError(name)

    def destroy(self) -> None:
        dpg.delete_item(self.root)
