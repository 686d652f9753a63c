"""The prompt for a stuck step: what is running (the watchdog's sentence) and a way out.

When the engine's watchdog reports a step running past its limit (``Engine.stalled``), a modal
window says which loss or stage is running and offers to disable that loss and restart from the
last good state (a new engine; the stuck thread is abandoned as a daemon), or to keep waiting.
:meth:`StallPrompt.restart` is the button's entry point, for scripted use and tests.
"""

from __future__ import annotations

from typing import Callable

import dearpygui.dearpygui as dpg

from ..optim.watchdog import Stall
from .controls import Button, Text


class StallPrompt:
    """Args:
        on_restart: called with the loss to disable (None when no loss is to blame) when the user
            chooses to restart from the last good state.
    """

    def __init__(self, on_restart: Callable[[str | None], None]):
        self.on_restart = on_restart
        self.stall: Stall | None = None
        self._dismissed: Stall | None = None
        with dpg.window(label="A step is taking too long", show=False, modal=True, no_collapse=True, width=560,
                        height=120, pos=(360, 240)) as self.item:
            self.text = Text("", parent=self.item, wrap=540)
            row = dpg.add_group(horizontal=True, parent=self.item)
            self.restart_button = Button("Restart from the last good state", self.restart, parent=row)
            Button("Keep waiting", self.keep_waiting, parent=row)

    @property
    def visible(self) -> bool:
        return bool(dpg.is_item_shown(self.item))

    def update(self, stall: Stall | None) -> None:
        """Show the prompt for a new stall; hide it when the step finished after all."""
        if stall is None:
            self.stall = None
            if self.visible:
                dpg.hide_item(self.item)
            return
        if stall is self.stall or stall is self._dismissed:
            return
        self.stall = stall
        loss = stall.stage.loss
        self.text.value = (f"{stall.sentence}.  The run's state is kept as it was after step {stall.step}."
                           + (f"  Disable {loss!r} and go on from there?" if loss else ""))
        self.restart_button.label = (f"Disable {loss!r} and restart from step {stall.step}" if loss
                                     else f"Restart from step {stall.step}")
        dpg.show_item(self.item)

    def restart(self) -> None:
        if self.stall is None:
            return
        loss, self._dismissed = self.stall.stage.loss, self.stall
        dpg.hide_item(self.item)
        self.on_restart(loss)

    def keep_waiting(self) -> None:
        self._dismissed = self.stall
        dpg.hide_item(self.item)
