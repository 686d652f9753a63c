"""The Dear PyGui studio: the only package that imports dearpygui.

Modules, each named for what it does:

- ``app``: the window, our own render loop (manual callback management), layout and actions;
- ``controls``: typed handles (``.value``, ``on_change``, ``sync``) on Dear PyGui inputs;
- ``params_panel``, ``loss_panel``: sliders built from parameter and loss metadata;
- ``images``: target | render | difference textures, render-mode and view pickers;
- ``plots``: live error-per-group and loss curves (ImPlot);
- ``toolbar``, ``status``, ``dialogs``, ``theme``: the rest of the window;
- ``exports``, ``jobs``, ``display``: headless helpers (no dearpygui import) for exports,
  background work and the "is there a display?" check;
- ``testing``: a virtual X server and input events for the GUI tests and ``bench/gui.py``.
"""
