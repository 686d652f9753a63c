"""The status bar (one line of figures and the latest message) and the log panel (the details).

Problems reach the user as one sentence in the status bar, never as a traceback dialog; the
traceback, when there is one, goes to the Log tab together with every earlier message.
"""

from __future__ import annotations

import time

import dearpygui.dearpygui as dpg

from .controls import Button, Text

INFO, WARNING, ERROR = "info", "warning", "error"
_COLORS = {INFO: (170, 200, 255), WARNING: (255, 190, 70), ERROR: (255, 110, 100)}
_MAX_LOG_LINES = 400


class StatusBar:
    def __init__(self, parent: int | str):
        row = dpg.add_group(horizontal=True, parent=parent)
        self.info = Text("starting...", parent=row, color=(200, 200, 200))
        self.message = Text("", parent=row, color=_COLORS[INFO])
        self._level = INFO

    def show(self, figures: str) -> None:
        self.info.value = figures

    def say(self, sentence: str, level: str = WARNING) -> None:
        self.message.value = f"|  {sentence}" if sentence else ""
        if level != self._level:
            self._level = level
            self.message.color(_COLORS[level])


class LogPanel:
    """Every message with its details, newest last; engine events are merged in as they appear."""

    def __init__(self, parent: int | str):
        bar = dpg.add_group(horizontal=True, parent=parent)
        Button("Clear", self.clear, parent=bar)
        dpg.add_text("messages and details, newest last", parent=bar, color=(150, 150, 150))
        self.box = dpg.add_child_window(parent=parent, border=True, height=-1)
        self._lines = 0
        self._seen_events: tuple[str, ...] = ()

    def add(self, text: str, level: str = WARNING) -> None:
        stamp = time.strftime("%H:%M:%S")
        dpg.add_text(f"{stamp}  {text}", parent=self.box, wrap=0, color=_COLORS.get(level, _COLORS[INFO]))
        self._lines += 1
        if self._lines > _MAX_LOG_LINES:
            children = dpg.get_item_children(self.box, 1)
            for item in children[: self._lines - _MAX_LOG_LINES]:
                dpg.delete_item(item)
            self._lines = _MAX_LOG_LINES
        dpg.set_y_scroll(self.box, 1e9)  # clamped to the bottom by Dear ImGui

    def add_events(self, events: tuple[str, ...]) -> None:
        """Log the engine events not logged yet (``events`` is the engine's recent list, oldest first)."""
        if events == self._seen_events:
            return
        seen = self._seen_events
        # The engine keeps a bounded list: find where the old tail ends in the new one.
        start = 0
        if seen:
            for k in range(min(len(seen), len(events)), 0, -1):
                if events[:k] == seen[-k:]:
                    start = k
                    break
        for e in events[start:]:
            self.add(e, WARNING)
        self._seen_events = events

    def forget_events(self) -> None:
        """A new engine: its events start afresh."""
        self._seen_events = ()

    def clear(self) -> None:
        dpg.delete_item(self.box, children_only=True)
        self._lines = 0
