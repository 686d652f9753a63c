"""Is there a screen to open a window on?  Asked before Dear PyGui is touched.

Dear PyGui aborts the whole process (a C assertion inside GLFW) when it cannot open a display or
create an OpenGL context, so the studio asks first: it opens GLFW through the ``glfw`` package,
creates a hidden 16x16 window with an OpenGL 3 context, and closes both (about 0.1 s).  No
dearpygui import here.
"""

from __future__ import annotations

import os
import sys

HEADLESS_HINT = ("use the headless `studio optimize SCENE --out DIR` instead (it writes the images, "
                 "curves and progress.gif; --video run.mp4 adds a video of the run)")


def display_problem() -> str | None:
    """One sentence saying why no window can be opened here, or None when one can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "there is no display here (DISPLAY is not set), so the studio window cannot open"
    try:
        import glfw
    except Exception as exc:  # noqa: BLE001 - a missing or broken GLFW shared library
        return f"the GLFW library cannot be loaded ({type(exc).__name__}), so the studio window cannot open"
    previous = glfw.ERROR_REPORTING
    glfw.ERROR_REPORTING = "ignore"
    try:
        if not glfw.init():
            why = _glfw_error(glfw) or "no details"
            return f"the display cannot be opened ({why}), so the studio window cannot open"
        try:
            glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
            glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
            glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 0)
            window = glfw.create_window(16, 16, "studio display probe", None, None)
            if not window:
                return (f"no OpenGL 3 context can be created on this display ({_glfw_error(glfw) or 'no details'}), "
                        "so the studio window cannot open")
            glfw.destroy_window(window)
        finally:
            glfw.default_window_hints()
            glfw.terminate()
    finally:
        glfw.ERROR_REPORTING = previous
    return None


def _glfw_error(glfw) -> str:
    code, text = glfw.get_error()
    if not code:
        return ""
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)
