"""The Teaching tab: the scenario's lesson, its live switches, Compare, the gradient views and
step-through, one collapsing section each.

- Lesson: the scene file's ``lesson`` (What is optimised / What to watch / What to try).
- Switches (:mod:`studio.gui.teaching_switches`): only those that apply to the scene, and a
  "Compare off vs on..." button that opens :mod:`studio.gui.compare_window` on the lesson's switch.
- Gradient views: buttons that put the render picture in one of the three gradient modes, with a
  line on what each shows (the modes themselves are computed by the engine, see
  :mod:`studio.render.modes` and :mod:`studio.optim.gradient_views`).
- Step-through (:mod:`studio.gui.step_through`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import dearpygui.dearpygui as dpg

from ..optim.engine import Snapshot
from ..render.modes import DERIVATIVE, LOSS_GRADIENT, VERTEX_ARROWS
from .controls import Button, Control, Text
from .gradient_views import modes_for
from .step_through import StepThrough
from .teaching_switches import SendOption, TeachingSwitches

_GREY = (150, 150, 150)
#: The gradient views, in the order of the chain rule: how the image moves with θ, where the
#: loss pulls each pixel, and what that makes of each vertex.
GRADIENT_VIEWS = (
    (DERIVATIVE, ("dI/dtheta: how every pixel changes when one parameter component grows (pick it under the "
                  "pictures); red brighter, blue darker. Forward-mode automatic differentiation.")),
    (LOSS_GRADIENT, "|d loss / d pixel|: how hard each pixel pulls on the loss; backpropagation starts here."),
    (VERTEX_ARROWS, ("Vertex gradients: the direction one descent step moves each visible fitted vertex, as "
                     "arrows over the render.")),
)


@dataclass
class TeachingActions:
    """What the Teaching tab asks of the window."""

    set_option: SendOption  # Engine.set_option of the interactive run
    show_mode: Callable[[str], None]  # put the render picture in a render mode
    compare: Callable[[], None]  # open the Compare window


def lesson_text(spec: Any) -> str:
    """The scene's description and lesson as paragraphs (the scene file's line breaks are not the
    panel's: each paragraph is re-flowed to the panel's width)."""
    paragraphs = [f"{spec.name}: {spec.description}"]
    paragraphs += [" ".join(p.split()) for p in spec.lesson.split("\n\n") if p.strip()]
    return "\n\n".join(paragraphs)


class TeachingPanel:
    """The Teaching tab of one scene at a time (:meth:`attach`)."""

    def __init__(self, parent: int | str, actions: TeachingActions):
        self.actions = actions
        with dpg.texture_registry() as registry:
            pass
        self.lesson_header = dpg.add_collapsing_header(label="Lesson", default_open=True, parent=parent)
        self.lesson = Text("", parent=self.lesson_header, wrap=0)

        switches = dpg.add_collapsing_header(label="Switches", default_open=True, parent=parent)
        self.switches = TeachingSwitches(switches, actions.set_option)
        self.compare = Button("Compare off vs on...", actions.compare, parent=switches)
        self.compare.tooltip("Run this scenario twice in the background, with a switch off and on, and overlay "
                             "both runs' error curves (the interactive run goes on).")

        self.views_header = dpg.add_collapsing_header(label="Gradient views", default_open=True, parent=parent)
        views = self.views_header
        self.view_rows: dict[str, int] = {}
        self.view_buttons: dict[str, Button] = {}
        for mode, about in GRADIENT_VIEWS:
            row = dpg.add_group(horizontal=True, parent=views)
            self.view_buttons[mode] = Button("show", lambda m=mode: actions.show_mode(m), parent=row, width=44)
            dpg.add_text(about, parent=row, wrap=0, color=_GREY)
            self.view_rows[mode] = row

        stepping = dpg.add_collapsing_header(label="Step-through", default_open=True, parent=parent)
        self.step_through = StepThrough(stepping, registry, on_toggle=self._fold_for_step_through)

    def _fold_for_step_through(self, on: bool) -> None:
        """Step-through needs the panel's height for its picture and numbers: the long sections
        fold while it is on, and open again after."""
        for header in (self.lesson_header, self.views_header):
            dpg.set_value(header, not on)

    def attach(self, scene: Any, engine: Any) -> None:
        """A new scene and its engine."""
        self.lesson.value = lesson_text(scene.spec)
        self.switches.attach(scene)
        available = modes_for(scene.params)
        for mode, row in self.view_rows.items():
            dpg.configure_item(row, show=mode in available)
        self.step_through.attach(engine.step_recorded)

    def update(self, snap: Snapshot) -> None:
        self.switches.update(snap)

    def controls(self) -> list[Control]:
        return self.switches.controls() + [self.step_through.enabled]
