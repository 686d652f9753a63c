"""File dialogs (Dear PyGui's own, so they work the same on every platform and under Xvfb).

A :class:`FileDialog` calls ``on_choose(path)`` on the GUI thread when the user picks a file;
:meth:`FileDialog.choose` is that same entry point, for scripted use and tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import dearpygui.dearpygui as dpg

from ..paths import user_path


class FileDialog:
    """Args:
        title: window title, e.g. "Load mesh".
        extensions: (".obj", "OBJ mesh") pairs; the first is the default filter.  A final
            (".*", "all files") entry is added.
        on_choose: called with the chosen path.
        save: a save dialog (the user types a new file name; ``default_name`` pre-fills it).
        directory: choose a folder instead of a file (``extensions`` is then empty).
    """

    def __init__(self, title: str, extensions: Sequence[tuple[str, str]], on_choose: Callable[[Path], None],
                 save: bool = False, default_name: str = "", directory: bool = False):
        self.title = title
        self.on_choose = on_choose
        self.save = save
        self.directory = directory
        self._default_ext = extensions[0][0] if extensions else ""
        with dpg.file_dialog(label=title, show=False, modal=True, width=720, height=440, directory_selector=directory,
                             default_filename=Path(default_name).stem if default_name else "",
                             callback=self._ok, cancel_callback=lambda *a: None) as self.item:
            if not directory:  # a folder chooser lists folders only
                for ext, label in extensions:
                    dpg.add_file_extension(ext, custom_text=f"[{label}]")
                dpg.add_file_extension(".*", custom_text="[all files]")

    def open(self, folder: str | Path | None = None) -> None:
        if folder is not None:
            dpg.configure_item(self.item, default_path=str(folder))
        dpg.show_item(self.item)

    @property
    def visible(self) -> bool:
        return bool(dpg.is_item_shown(self.item))

    def _ok(self, sender: Any, app_data: dict, user_data: Any = None) -> None:
        p = chosen_path(app_data or {}, self.save or self.directory)
        if p is None:
            return
        if self.save and not p.suffix and self._default_ext not in ("", ".*"):
            p = p.with_suffix(self._default_ext)
        self.choose(p)

    def choose(self, path: str | Path) -> None:
        """Act as if the user had picked ``path`` (``~`` and relative paths as in :func:`user_path`)."""
        self.on_choose(user_path(path))


def chosen_path(app_data: dict, typed_only: bool = False) -> Path | None:
    """The path a Dear PyGui file dialog's ``app_data`` means, or None when nothing was chosen.

    Dear PyGui joins the typed name to the folder shown (``file_path_name``), also when the user
    typed an absolute or ``~`` path; such a name is taken as it is.  A file clicked in the list
    (``selections``) wins unless ``typed_only`` (save and folder dialogs, where a typed name is meant).
    """
    typed = str(app_data.get("file_name", "") or "").strip()
    folder = app_data.get("current_path") or None
    if typed.endswith(".*"):  # Dear PyGui appends the "all files" filter to a typed name
        typed = typed[:-2]
    if typed.startswith(("/", "~")) or Path(typed).is_absolute():
        return user_path(typed)
    selections = list(app_data.get("selections", {}).values())
    path = selections[0] if selections and not typed_only else str(app_data.get("file_path_name", "") or "")
    if path.endswith(".*"):
        path = path[:-2]
    if not path and typed:
        path = typed
    return user_path(path, folder) if path else None
