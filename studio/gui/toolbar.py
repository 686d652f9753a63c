"""The toolbar: run controls (Start/Pause, Step, Reset, Randomise) and the scene/backend/device pickers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import dearpygui.dearpygui as dpg
import torch

from .controls import Button, Combo

BACKENDS = ("auto", "torch", "nvdiffrast")
DEFAULT_DEVICE = "default"


def device_choices() -> list[str]:
    """Devices this machine has: "default" (CUDA when available, else CPU), cpu, cuda, mps."""
    out = [DEFAULT_DEVICE, "cpu"]
    if torch.cuda.is_available():
        out.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


@dataclass
class ToolbarActions:
    toggle_run: Callable[[], None]
    step: Callable[[], None]
    reset: Callable[[], None]
    randomize: Callable[[], None]
    scenario: Callable[[str], None]
    backend: Callable[[str], None]
    device: Callable[[str], None]


class Toolbar:
    def __init__(self, parent: int | str, actions: ToolbarActions, scenarios: list[str]):
        row = dpg.add_group(horizontal=True, parent=parent)
        self.start = Button("Start", actions.toggle_run, parent=row, width=70)
        self.start.tooltip("Run the optimiser to the scene's step budget (then Start again runs on until "
                           "you pause it); Space does the same.")
        self.step = Button("Step", actions.step, parent=row)
        self.step.tooltip("One optimisation step, then pause (S).")
        self.reset = Button("Reset", actions.reset, parent=row)
        self.reset.tooltip("Back to the initial guess, a fresh optimiser and empty curves (R).")
        self.randomize = Button("Randomise", actions.randomize, parent=row)
        self.randomize.tooltip("Draw a new random initial guess for every fitted parameter (and reset).")
        dpg.add_spacer(width=12, parent=row)
        self.scenario = Combo.add("scene", scenarios, scenarios[0] if scenarios else "", parent=row, width=110,
                                  on_change=actions.scenario)
        self.scenario.tooltip("Built-in teaching scenarios (`studio scenes` lists them).")
        self.backend = Combo.add("backend", BACKENDS, "auto", parent=row, width=100, on_change=actions.backend)
        self.backend.tooltip("auto: nvdiffrast on CUDA when installed, else the pure-PyTorch rasterizer.")
        self.device = Combo.add("device", device_choices(), DEFAULT_DEVICE, parent=row, width=80,
                                on_change=actions.device)
        self.device.tooltip("Where the scene is rendered and optimised; switching rebuilds the scene.")
        self._state: tuple[bool, bool] | None = None

    def update(self, running: bool, ready: bool) -> None:
        if (running, ready) == self._state:
            return
        self._state = (running, ready)
        self.start.label = "Pause" if running else "Start"
        for b in (self.start, self.step, self.reset, self.randomize):
            b.enabled = ready
