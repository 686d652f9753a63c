"""Typed handles on Dear PyGui input items: ``.value`` to read and write, ``on_change`` for edits.

The rest of the GUI never passes string tags around: a panel keeps the handles it built and calls
``handle.sync(engine_value)`` once per snapshot.  ``sync`` leaves a control alone while the user
is dragging or typing in it, and for a moment after an edit (until the engine has applied it), so
two-way controls neither fight the user nor jump back.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Generic, Sequence, TypeVar

import dearpygui.dearpygui as dpg

T = TypeVar("T")

#: Seconds after a user edit during which engine values do not overwrite the control.
EDIT_HOLD_S = 0.4


class Control(Generic[T]):
    """One input item.  ``on_change(value)`` runs on the GUI thread after a user edit (never after
    a programmatic ``.value = ...``)."""

    def __init__(self, item: int | str, on_change: Callable[[T], None] | None = None):
        self.item = item
        self.on_change = on_change
        self._edited_at = -math.inf
        dpg.set_item_callback(item, self._changed)

    # -- value ---------------------------------------------------------------------------------
    def _decode(self, raw: Any) -> T:
        return raw

    def _encode(self, value: T) -> Any:
        return value

    @property
    def value(self) -> T:
        return self._decode(dpg.get_value(self.item))

    @value.setter
    def value(self, value: T) -> None:
        dpg.set_value(self.item, self._encode(value))

    def _changed(self, sender: Any = None, app_data: Any = None, user_data: Any = None) -> None:
        self._edited_at = time.monotonic()
        if self.on_change is not None:
            self.on_change(self.value)

    def edit(self, value: T) -> None:
        """Set the value as a user edit would (``on_change`` runs): for scripts and tests."""
        self.value = value
        self._changed()

    # -- state ---------------------------------------------------------------------------------
    @property
    def editing(self) -> bool:
        """The user is dragging or typing in it, or just did."""
        return dpg.is_item_active(self.item) or time.monotonic() - self._edited_at < EDIT_HOLD_S

    def sync(self, value: T) -> None:
        """Show a value from the engine unless the user is editing this control."""
        if not self.editing and not self._same(self.value, value):
            self.value = value

    @staticmethod
    def _same(a: Any, b: Any) -> bool:
        return a == b

    def show(self, on: bool = True) -> None:
        dpg.configure_item(self.item, show=on)

    def rect(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) in viewport pixels, as last drawn."""
        x, y = dpg.get_item_rect_min(self.item)
        w, h = dpg.get_item_rect_size(self.item)
        return int(x), int(y), int(w), int(h)

    def tooltip(self, text: str) -> None:
        if text:
            with dpg.tooltip(self.item):
                dpg.add_text(text, wrap=360)


class FloatSlider(Control[float]):
    """A scalar slider (ctrl+click to type a value)."""

    @classmethod
    def add(cls, label: str, lo: float, hi: float, value: float, *, parent: int | str, width: int = -1,
            fmt: str = "%.3f", on_change: Callable[[float], None] | None = None) -> "FloatSlider":
        item = dpg.add_slider_float(label=label, min_value=lo, max_value=hi, default_value=float(value),
                                    format=fmt, width=width, parent=parent)
        return cls(item, on_change)

    def _decode(self, raw: Any) -> float:
        return float(raw)

    def _encode(self, value: float) -> float:
        return float(value)

    @staticmethod
    def _same(a: float, b: float) -> bool:
        return abs(a - b) <= 1e-6 * max(1.0, abs(b))


class VectorSlider(Control[tuple]):
    """2 to 4 sliders sharing one range (a small vector such as a colour or a direction)."""

    def __init__(self, item: int | str, size: int, on_change: Callable[[tuple], None] | None = None):
        self.size = size
        super().__init__(item, on_change)

    @classmethod
    def add(cls, label: str, lo: float, hi: float, value: Sequence[float], *, parent: int | str, width: int = -1,
            fmt: str = "%.3f", on_change: Callable[[tuple], None] | None = None) -> "VectorSlider":
        vals = [float(v) for v in value]
        item = dpg.add_slider_floatx(label=label, size=len(vals), min_value=lo, max_value=hi,
                                     default_value=vals + [0.0] * (4 - len(vals)), format=fmt, width=width,
                                     parent=parent)
        return cls(item, len(vals), on_change)

    def _decode(self, raw: Any) -> tuple:
        return tuple(float(v) for v in raw[: self.size])

    def _encode(self, value: Sequence[float]) -> list:
        vals = [float(v) for v in value]
        return vals + [0.0] * (4 - len(vals))

    @staticmethod
    def _same(a: Sequence[float], b: Sequence[float]) -> bool:
        return len(a) == len(b) and all(abs(x - y) <= 1e-6 * max(1.0, abs(y)) for x, y in zip(a, b))


class IntSlider(Control[int]):
    """An integer slider (ctrl+click to type a value)."""

    @classmethod
    def add(cls, label: str, lo: int, hi: int, value: int, *, parent: int | str, width: int = -1,
            on_change: Callable[[int], None] | None = None) -> "IntSlider":
        item = dpg.add_slider_int(label=label, min_value=int(lo), max_value=int(hi), default_value=int(value),
                                  width=width, parent=parent)
        return cls(item, on_change)

    def _decode(self, raw: Any) -> int:
        return int(raw)


class Checkbox(Control[bool]):
    @classmethod
    def add(cls, label: str, value: bool, *, parent: int | str,
            on_change: Callable[[bool], None] | None = None) -> "Checkbox":
        return cls(dpg.add_checkbox(label=label, default_value=bool(value), parent=parent), on_change)

    def _decode(self, raw: Any) -> bool:
        return bool(raw)


class Combo(Control[str]):
    """A drop-down list of strings."""

    @classmethod
    def add(cls, label: str, items: Sequence[str], value: str, *, parent: int | str, width: int = 120,
            on_change: Callable[[str], None] | None = None) -> "Combo":
        return cls(dpg.add_combo(list(items), label=label, default_value=value, width=width, parent=parent), on_change)

    @property
    def items(self) -> list[str]:
        return list(dpg.get_item_configuration(self.item)["items"])

    @items.setter
    def items(self, items: Sequence[str]) -> None:
        dpg.configure_item(self.item, items=list(items))


class NumberInput(Control[float]):
    """A number typed in (applied on Enter), e.g. a learning rate."""

    @classmethod
    def add(cls, label: str, value: float, *, parent: int | str, width: int = 90, fmt: str = "%.4g",
            lo: float = 0.0, on_change: Callable[[float], None] | None = None) -> "NumberInput":
        item = dpg.add_input_float(label=label, default_value=float(value), format=fmt, width=width, step=0,
                                   min_value=lo, min_clamped=True, on_enter=True, parent=parent)
        return cls(item, on_change)

    def _decode(self, raw: Any) -> float:
        return float(raw)

    @staticmethod
    def _same(a: float, b: float) -> bool:
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))


class IntInput(Control[int]):
    """A whole number typed in, clamped to [lo, hi]; ``on_change`` runs on every edit."""

    @classmethod
    def add(cls, label: str, value: int, *, parent: int | str, width: int = 90, lo: int = 0,
            hi: int = 2**31 - 1, on_change: Callable[[int], None] | None = None) -> "IntInput":
        item = dpg.add_input_int(label=label, default_value=int(value), width=width, step=0, min_value=lo,
                                 max_value=hi, min_clamped=True, max_clamped=True, parent=parent)
        return cls(item, on_change)

    def _decode(self, raw: Any) -> int:
        return int(raw)


class TextInput(Control[str]):
    """A line of text typed in (a folder, a value word)."""

    @classmethod
    def add(cls, label: str, value: str, *, parent: int | str, width: int = 200, hint: str = "",
            on_change: Callable[[str], None] | None = None) -> "TextInput":
        return cls(dpg.add_input_text(label=label, default_value=value, hint=hint, width=width, parent=parent),
                   on_change)


class ProgressBar:
    """A progress bar with its text (``show(fraction, text)``); not an input."""

    def __init__(self, *, parent: int | str, width: int = -1):
        self.item = dpg.add_progress_bar(default_value=0.0, overlay="", width=width, parent=parent)

    @property
    def fraction(self) -> float:
        return float(dpg.get_value(self.item))

    @property
    def text(self) -> str:
        return str(dpg.get_item_configuration(self.item)["overlay"])

    def show(self, fraction: float, text: str) -> None:
        if (fraction, text) != (self.fraction, self.text):
            dpg.set_value(self.item, min(max(float(fraction), 0.0), 1.0))
            dpg.configure_item(self.item, overlay=text)


class Button:
    """A push button whose label can change (Start / Pause)."""

    def __init__(self, label: str, on_click: Callable[[], None], *, parent: int | str, width: int = 0):
        self.on_click = on_click
        self.item = dpg.add_button(label=label, width=width, parent=parent, callback=self._clicked)

    def _clicked(self, sender: Any = None, app_data: Any = None, user_data: Any = None) -> None:
        self.on_click()

    @property
    def label(self) -> str:
        return dpg.get_item_label(self.item)

    @label.setter
    def label(self, text: str) -> None:
        if dpg.get_item_label(self.item) != text:
            dpg.set_item_label(self.item, text)

    @property
    def enabled(self) -> bool:
        return bool(dpg.get_item_configuration(self.item).get("enabled", True))

    @enabled.setter
    def enabled(self, on: bool) -> None:
        dpg.configure_item(self.item, enabled=on)

    def rect(self) -> tuple[int, int, int, int]:
        x, y = dpg.get_item_rect_min(self.item)
        w, h = dpg.get_item_rect_size(self.item)
        return int(x), int(y), int(w), int(h)

    def tooltip(self, text: str) -> None:
        with dpg.tooltip(self.item):
            dpg.add_text(text)


class Text:
    """A line of text that is only touched when it changes."""

    def __init__(self, text: str = "", *, parent: int | str, color: Sequence[int] | None = None, wrap: int = -1):
        kw = {"color": tuple(color)} if color is not None else {}
        self.item = dpg.add_text(text, parent=parent, wrap=wrap, **kw)
        self._text = text

    @property
    def value(self) -> str:
        return self._text

    @value.setter
    def value(self, text: str) -> None:
        if text != self._text:
            self._text = text
            dpg.set_value(self.item, text)

    def color(self, rgba: Sequence[int]) -> None:
        dpg.configure_item(self.item, color=tuple(rgba))

    def show(self, on: bool = True) -> None:
        dpg.configure_item(self.item, show=on)
