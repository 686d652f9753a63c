"""The Dear PyGui studio: the only package that imports dearpygui.

Modules, each named for what it does:

- ``app``: the window, our own render loop (manual callback management), layout and actions;
- ``controls``: typed handles (``.value``, ``on_change``, ``sync``) on Dear PyGui inputs;
- ``params_panel``, ``loss_panel``: sliders built from parameter and loss metadata;
- ``images``: target | render | difference textures, render-mode and view pickers;
- ``gradient_views``: the derivative image's parameter picker and the vertex gradient arrows;
- ``plots``: live error-per-group and loss curves (ImPlot);
- ``teaching_panel``: the Teaching tab (lesson, ``teaching_switches``, gradient views,
  ``step_through``); ``compare_window``: a scenario run twice with a switch off and on;
- ``export_dialog``: File > Export dataset... (synthetic YOLO datasets);
- ``toolbar``, ``status``, ``dialogs``, ``theme``: the rest of the window;
- ``exports``, ``jobs``, ``display``, ``errors``: headless helpers (no dearpygui import) for
  exports, background work and progress, the "is there a display?" check and one-sentence errors;
- ``testing``: a virtual X server and input events for the GUI tests and ``bench/gui.py``.

Text shown in the window stays within Latin-1: Dear ImGui's default font has no other glyphs
(a θ would show as "?"), so the GUI writes "theta".
"""
