"""A live preview window for plain optimisation scripts: glfw + a few OpenGL 1.1 calls.

Scripts written in the style of nvdiffrast's samples get a live view without the studio::

    from studio.viewer import LiveWindow

    with LiveWindow("fit") as w:
        for it in range(steps):
            ...                                   # render, loss, backward, optimizer step
            w.show(img, caption=f"it {it}  loss {loss.item():.4g}")
            if w.closed:                          # the user closed the window: stop early
                break

``show`` never blocks: it converts and draws at most ``max_fps`` frames a second and never spends
more than about a tenth of the script's time on drawing; the calls in between only look at the
clock (and poll window events every few milliseconds so the window stays responsive).

Threading: glfw windows belong to the main thread (macOS enforces it, and glfw documents it for
every platform), so create the window and call ``show`` from the script's main thread; other
threads get a :class:`LiveWindowError`.  The window draws with its own OpenGL context and puts
back any other glfw context that was current.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import sys
import threading
import time
from typing import Any

import numpy as np

log = logging.getLogger("studio.viewer")

__all__ = ["LiveWindow", "LiveWindowError", "NoDisplayError", "to_display_rgb8"]

_WITHOUT_WINDOW = ("or go without a window (LiveWindow(..., headless_ok=True), `studio optimize`, or save "
                   "images with studio.images.save_png)")
_BACKGROUND = (0.12, 0.12, 0.12)  # letterbox grey, so black image borders stay visible
_POLL_INTERVAL = 0.005  # seconds between event polls inside show()
_TARGET_SIDE = 512  # a new window magnifies small images by an integer factor up to about this size
_SRGB_LUT_SIZE = 16384  # 14-bit linear -> sRGB 8-bit table: within 1 level of the exact conversion


class LiveWindowError(RuntimeError):
    """The live window cannot be used this way (wrong thread); the message says what to do."""


class NoDisplayError(LiveWindowError):
    """No display or no OpenGL to open a window on; the message says what to do instead.

    Attributes:
        reason: the first half of the message, what is missing.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


# ----------------------------------------------------------------------------- image conversion

_lut: np.ndarray | None = None


def _srgb_lut() -> np.ndarray:
    global _lut
    if _lut is None:
        from .images import linear_to_srgb

        x = np.linspace(0.0, 1.0, _SRGB_LUT_SIZE, dtype=np.float64)
        _lut = (linear_to_srgb(x) * 255.0 + 0.5).astype(np.uint8)
    return _lut


def _float_to_rgb8(a: np.ndarray, encoded: bool) -> np.ndarray:
    y = np.fmax(a, np.float32(0.0))  # fmax turns NaN into 0 (np.clip would keep it)
    np.fmin(y, np.float32(1.0), out=y)
    if encoded:
        y *= 255.0
        y += 0.5
        return y.astype(np.uint8)
    y *= _SRGB_LUT_SIZE - 1
    y += 0.5
    return np.take(_srgb_lut(), y.astype(np.uint16))


def _check_shape(shape: tuple[int, ...]) -> None:
    if len(shape) == 4 and shape[0] != 1:
        raise ValueError(f"show() takes one image, got a batch of {shape[0]} {list(shape)}; "
                         "pass img[0], or put them side by side with torch.cat(list(img), 1).")
    hw_c = shape[1:] if len(shape) == 4 else shape
    if not (len(hw_c) == 2 or (len(hw_c) == 3 and hw_c[2] in (1, 3, 4))) or 0 in hw_c[:2]:
        raise ValueError(f"show() takes an image [H,W,3|4] (or [1,H,W,C], [H,W,1], [H,W]), got shape {list(shape)}.")


def to_display_rgb8(img: Any, encoded: bool = False) -> np.ndarray:
    """Convert an image to what the window draws: a C-contiguous numpy uint8 [H,W,3] array.

    Args:
        img: torch tensor (any device, gradients ignored) or numpy array, [H,W,3|4],
            [1,H,W,C], [H,W,1] or [H,W], top row first.  Float values are linear RGB
            (clipped to [0, 1], NaN shown black) unless ``encoded``; uint8 values are taken as
            display-encoded (sRGB) 0..255.  Alpha is ignored.
        encoded: float values are already display-encoded (sRGB) in [0, 1], e.g. the images of
            nvdiffrast's samples or a texture read with ``studio.images.read_image``.

    Raises:
        ValueError: a batch of several images, a shape that is not an image, or a dtype that is
            neither float, uint8 nor bool.
    """
    torch = sys.modules.get("torch")  # a torch tensor implies torch is imported already
    if torch is not None and isinstance(img, torch.Tensor):
        _check_shape(tuple(img.shape))
        t = img.detach()
        t = t[0] if t.dim() == 4 else t
        t = t[..., :3] if t.dim() == 3 and t.shape[2] == 4 else t
        if t.dtype == torch.bool:
            t = t.to(torch.uint8) * 255
        if t.dtype == torch.uint8:
            a = t.cpu().numpy()
        elif t.is_floating_point():
            if t.device.type == "cpu":
                a = _float_to_rgb8(t.float().resolve_neg().numpy(), encoded)
            else:  # convert where the data is; only the uint8 image crosses to the host
                from .images import linear_to_srgb

                t = torch.nan_to_num(t.float(), nan=0.0).clamp(0.0, 1.0)
                t = t if encoded else linear_to_srgb(t)
                a = (t * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
        else:
            raise ValueError(f"show() takes float (linear or, with encoded=True, sRGB), uint8 or bool images, got {t.dtype}.")
    else:
        a = np.asarray(img)
        _check_shape(a.shape)
        a = a[0] if a.ndim == 4 else a
        a = a[..., :3] if a.ndim == 3 and a.shape[2] == 4 else a
        if a.dtype == np.bool_:
            a = a.astype(np.uint8) * 255
        if a.dtype.kind == "f":
            a = _float_to_rgb8(a if a.dtype == np.float32 else a.astype(np.float32), encoded)
        elif a.dtype != np.uint8:
            raise ValueError(f"show() takes float (linear or, with encoded=True, sRGB), uint8 or bool images, got {a.dtype}.")
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


# ----------------------------------------------------------------------------- OpenGL via ctypes

GL_TEXTURE_2D = 0x0DE1
GL_COLOR_BUFFER_BIT = 0x4000
GL_QUADS = 0x0007
GL_UNPACK_ALIGNMENT = 0x0CF5
GL_UNPACK_ROW_LENGTH = 0x0CF2
GL_TEXTURE_MIN_FILTER = 0x2801
GL_TEXTURE_MAG_FILTER = 0x2800
GL_TEXTURE_WRAP_S = 0x2802
GL_TEXTURE_WRAP_T = 0x2803
GL_CLAMP_TO_EDGE = 0x812F
GL_NEAREST = 0x2600
GL_LINEAR = 0x2601
GL_RGB = 0x1907
GL_RGB8 = 0x8051
GL_UNSIGNED_BYTE = 0x1401
GL_TEXTURE_ENV = 0x2300
GL_TEXTURE_ENV_MODE = 0x2200
GL_REPLACE = 0x1E01
GL_MAX_TEXTURE_SIZE = 0x0D33

_c = ctypes
_GL_SIGNATURES = {
    "glViewport": (None, _c.c_int, _c.c_int, _c.c_int, _c.c_int),
    "glClearColor": (None, _c.c_float, _c.c_float, _c.c_float, _c.c_float),
    "glClear": (None, _c.c_uint),
    "glEnable": (None, _c.c_uint),
    "glGenTextures": (None, _c.c_int, _c.POINTER(_c.c_uint)),
    "glDeleteTextures": (None, _c.c_int, _c.POINTER(_c.c_uint)),
    "glBindTexture": (None, _c.c_uint, _c.c_uint),
    "glTexParameteri": (None, _c.c_uint, _c.c_uint, _c.c_int),
    "glTexEnvi": (None, _c.c_uint, _c.c_uint, _c.c_int),
    "glPixelStorei": (None, _c.c_uint, _c.c_int),
    "glTexImage2D": (None, _c.c_uint, _c.c_int, _c.c_int, _c.c_int, _c.c_int, _c.c_int, _c.c_uint, _c.c_uint, _c.c_void_p),
    "glTexSubImage2D": (None, _c.c_uint, _c.c_int, _c.c_int, _c.c_int, _c.c_int, _c.c_int, _c.c_uint, _c.c_uint, _c.c_void_p),
    "glBegin": (None, _c.c_uint),
    "glEnd": (None,),
    "glTexCoord2f": (None, _c.c_float, _c.c_float),
    "glVertex2f": (None, _c.c_float, _c.c_float),
    "glGetIntegerv": (None, _c.c_uint, _c.POINTER(_c.c_int)),
}


class _GL:
    """The dozen OpenGL 1.1 entry points the window needs, looked up through glfw.

    glfw returns the functions of the context it created (GLX, EGL, WGL or NSGL), so no second
    OpenGL binding (and no guess about the platform) is involved.  Needs the context current.
    """

    def __init__(self, glfw: Any) -> None:
        functype = ctypes.WINFUNCTYPE if sys.platform == "win32" else ctypes.CFUNCTYPE
        for name, (restype, *argtypes) in _GL_SIGNATURES.items():
            address = glfw.get_proc_address(name)
            if not address:
                raise OSError(f"the OpenGL function {name} is missing")
            setattr(self, name[2:], functype(restype, *argtypes)(address))


# ----------------------------------------------------------------------------- glfw bookkeeping

_open_windows = 0  # LiveWindows alive in this process
_owns_glfw = False  # glfw was initialised by LiveWindow (so it terminates glfw after the last one)


class _CapturedErrors:
    """Collect glfw errors instead of letting pyglfw print warnings (restored on exit)."""

    def __init__(self, glfw: Any) -> None:
        self.glfw = glfw
        self.errors: list[tuple[int, str]] = []

    def __enter__(self) -> _CapturedErrors:
        self.previous = self.glfw.set_error_callback(self._record)
        return self

    def _record(self, code: int, description: bytes) -> None:
        self.errors.append((code, description.decode(errors="replace") if description else ""))

    def __exit__(self, *exc: object) -> None:
        self.glfw.set_error_callback(self.previous)

    def describe(self) -> str:
        return "; ".join(d.rstrip(".") for _, d in self.errors) or "no reason given"


def _display_name() -> str | None:
    """The X11/Wayland display a window would open on ("" on macOS and Windows, None if unset)."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY") or None
    return ""


def _no_display(reason: str, remedy: str) -> NoDisplayError:
    return NoDisplayError(f"{reason}; {remedy}, {_WITHOUT_WINDOW}.", reason)


def _address(pointer: Any) -> int | None:
    return ctypes.cast(pointer, ctypes.c_void_p).value if pointer else None


# ----------------------------------------------------------------------------- the window


class LiveWindow:
    """A small non-blocking window that shows the latest image a script hands it.

    Args:
        title: window title; ``show(..., caption=...)`` appends its caption to it.
        size: (width, height) of the window in screen units.  By default the window opens on the
            first ``show``, sized to the image (magnified by a whole number up to about 512
            pixels, shrunk to fit the screen); later images are letterboxed into the window,
            which the user may resize.
        max_fps: most frames drawn per second.  Frames are also spaced so that drawing takes at
            most about a tenth of the script's time (``overhead_budget``): large images on slow
            machines are drawn less often instead of slowing the script down.  Vsync is off, so
            drawing never waits for the screen.
        smooth: magnify with bilinear filtering; the default shows each image pixel as a sharp
            block (minification is always bilinear).
        headless_ok: where no window can be opened, log one warning and become a no-op
            (``active`` False, ``show`` does nothing) instead of raising
            :class:`NoDisplayError`; for scripts that should also run over ssh or in CI.
        enabled: False makes the window a no-op without trying to open it (for a script's
            ``--no-window`` switch).

    Raises:
        NoDisplayError: no display, or no OpenGL on it (unless ``headless_ok``); one sentence
            saying what to do.
        LiveWindowError: created outside the main thread.

    Attributes:
        frames: number of frames drawn so far.
    """

    overhead_budget = 0.1  # fraction of wall time that drawing may take

    def __init__(self, title: str = "studio", size: tuple[int, int] | None = None, *, max_fps: float = 60.0,
                 smooth: bool = False, headless_ok: bool = False, enabled: bool = True) -> None:
        if max_fps <= 0:
            raise ValueError(f"max_fps must be positive, got {max_fps}.")
        self.title = str(title)
        self.frames = 0
        self._min_interval = 1.0 / max_fps
        self._smooth = smooth
        self._win: Any = None
        self._glfw: Any = None
        self._closed = False
        self._thread = threading.get_ident()
        self._pending: tuple | None = None
        self._wanted_at: float | None = None  # when wants_frame last said True
        self._next_present = 0.0
        self._next_poll = 0.0
        self._tex_size: tuple[int, int] | None = None
        self._bottom_up = False
        self._shown_title = self.title
        self._sized = size is not None
        if not enabled:
            return
        if threading.current_thread() is not threading.main_thread():
            raise LiveWindowError("LiveWindow must be created on the main thread (glfw windows belong to it); "
                                  "run the optimisation loop in the main thread and call show() from there.")
        try:
            self._open(size)
        except NoDisplayError as exc:
            if not headless_ok:
                raise
            log.warning("%s; continuing without a live window.", exc.reason)

    # ------------------------------------------------------------------ opening and closing

    def _open(self, size: tuple[int, int] | None) -> None:
        global _open_windows, _owns_glfw
        try:
            import glfw
        except Exception as exc:  # noqa: BLE001 - pyglfw raises ImportError or OSError for a missing library
            raise _no_display(f"LiveWindow cannot load the glfw library ({exc})",
                              "reinstall it with `pip install --force-reinstall glfw`") from None
        with _CapturedErrors(glfw) as captured:
            first = _open_windows == 0
            if first:
                glfw.get_time()  # reports GLFW_NOT_INITIALIZED if nobody else initialised glfw
                ours = any(code == glfw.NOT_INITIALIZED for code, _ in captured.errors)
                captured.errors.clear()
                if not glfw.init():
                    display = _display_name()
                    if display is None:
                        raise _no_display("LiveWindow found no display (DISPLAY and WAYLAND_DISPLAY are unset)",
                                          "run the script on a desktop or under a virtual screen "
                                          "(`xvfb-run -a python script.py`)") from None
                    if not display:
                        raise _no_display(f"LiveWindow could not start glfw ({captured.describe()})",
                                          "run the script in a desktop session") from None
                    raise _no_display(f"LiveWindow could not open the display {display} ({captured.describe()})",
                                      "check that it is running and reachable, run the script under a virtual "
                                      "screen (`xvfb-run -a python script.py`)") from None
                _owns_glfw = ours
            glfw.default_window_hints()
            glfw.window_hint(glfw.VISIBLE, False)
            glfw.window_hint(glfw.FOCUS_ON_SHOW, False)  # the terminal keeps the keyboard (Ctrl-C)
            glfw.window_hint(glfw.SCALE_TO_MONITOR, True)
            glfw.window_hint(glfw.CLIENT_API, glfw.OPENGL_API)
            glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 2)  # any compatibility context >= 2.1
            glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 1)
            glfw.window_hint(glfw.DEPTH_BITS, 0)
            glfw.window_hint(glfw.STENCIL_BITS, 0)
            width, height = size if size is not None else (_TARGET_SIDE, _TARGET_SIDE)
            win = glfw.create_window(max(1, int(width)), max(1, int(height)), self.title, None, None)
            glfw.default_window_hints()
            if not win:
                self._terminate_if_unused(glfw)
                where = f"the display {_display_name()} but " if _display_name() else ""
                raise _no_display(f"LiveWindow found {where}no usable OpenGL ({captured.describe()})",
                                  "install OpenGL drivers (Debian/Ubuntu: apt-get install libgl1 libglx-mesa0 "
                                  "libgl1-mesa-dri) on a display with GLX") from None
            previous = glfw.get_current_context()
            glfw.make_context_current(win)
            try:
                self._gl = _GL(glfw)
            except OSError as exc:
                glfw.make_context_current(previous)
                glfw.destroy_window(win)
                self._terminate_if_unused(glfw)
                raise _no_display(f"LiveWindow found an OpenGL without what it needs ({exc})",
                                  "update the graphics driver") from None
        self._glfw, self._win = glfw, win
        _open_windows += 1
        glfw.swap_interval(0)  # never wait for vsync inside show()
        gl = self._gl
        tex = ctypes.c_uint(0)
        gl.GenTextures(1, ctypes.byref(tex))
        self._tex = tex
        gl.BindTexture(GL_TEXTURE_2D, tex.value)
        gl.TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR)
        gl.TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_LINEAR if self._smooth else GL_NEAREST)
        gl.TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE)
        gl.TexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE)
        gl.TexEnvi(GL_TEXTURE_ENV, GL_TEXTURE_ENV_MODE, GL_REPLACE)
        gl.PixelStorei(GL_UNPACK_ALIGNMENT, 1)
        gl.PixelStorei(GL_UNPACK_ROW_LENGTH, 0)
        gl.Enable(GL_TEXTURE_2D)
        max_size = ctypes.c_int(0)
        gl.GetIntegerv(GL_MAX_TEXTURE_SIZE, ctypes.byref(max_size))
        self._max_tex = max(64, max_size.value)
        gl.ClearColor(*_BACKGROUND, 1.0)
        glfw.set_window_refresh_callback(win, self._on_refresh)
        glfw.set_key_callback(win, self._on_key)
        if size is not None:
            self._draw()
            glfw.show_window(win)
        self._restore(previous)

    def _terminate_if_unused(self, glfw: Any) -> None:
        global _owns_glfw
        if _open_windows == 0 and _owns_glfw:
            glfw.terminate()
            _owns_glfw = False

    def close(self) -> None:
        """Close the window (safe to call more than once; ``show`` is a no-op afterwards)."""
        global _open_windows
        glfw, win = self._glfw, self._win
        if win is None:
            return
        self._check_thread("close")
        self._win = None
        self._closed = True
        self._pending = None
        previous = glfw.get_current_context()
        glfw.make_context_current(win)
        self._gl.DeleteTextures(1, ctypes.byref(self._tex))
        glfw.make_context_current(None)
        glfw.destroy_window(win)
        if _address(previous) not in (None, _address(win)):
            glfw.make_context_current(previous)
        _open_windows -= 1
        glfw.poll_events()  # let the window system unmap it now
        self._terminate_if_unused(glfw)

    def __enter__(self) -> LiveWindow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def active(self) -> bool:
        """True while a real window is open (False when disabled, headless or closed)."""
        return self._win is not None

    @property
    def wants_frame(self) -> bool:
        """True when the next ``show`` will draw: a window is open and the frame limit allows it.

        For images made only for the window (a fixed display camera, as nvdiffrast's samples use
        ``display_interval``): ``if w.wants_frame: w.show(render_display_view())``.  The time from
        this check to that ``show`` counts as drawing time, so the extra rendering stays within the
        drawing budget too.
        """
        if self._win is None:
            return False
        now = time.perf_counter()
        if now < self._next_present:
            return False
        self._wanted_at = now
        return True

    @property
    def handle(self) -> Any:
        """The glfw window handle while the window is open (None otherwise), for glfw calls of your own."""
        return self._win

    @property
    def closed(self) -> bool:
        """True once the window was closed, by the user (close button, Esc or Q) or by ``close()``.

        Stays False for a disabled or headless no-op window, so ``if w.closed: break`` only stops
        a script when someone closed a real window.
        """
        return self._closed

    # ------------------------------------------------------------------ showing

    def show(self, img: Any, caption: str | None = None, *, encoded: bool = False, bottom_up: bool = False,
             force: bool = False) -> None:
        """Hand the window the latest image; returns at once.

        Args:
            img: torch tensor (CPU or GPU) or numpy array [H,W,3|4] or [1,H,W,C] (also [H,W,1],
                [H,W]), top row first; linear RGB floats unless ``encoded``, or uint8 sRGB.
                See :func:`to_display_rgb8`.
            caption: text shown after the title, e.g. ``f"it {it}  loss {loss:.4g}"``.
            encoded: float values are already display-encoded (sRGB), not linear.
            bottom_up: row 0 is the bottom row (nvdiffrast's raw ``rast`` layout); flipped
                while drawing, at no cost.
            force: draw this image now even if the frame-rate limit says to skip it.

        Frames over the limit are not converted at all; the window keeps a reference to the
        latest one and draws it from ``poll`` or ``hold`` if no newer ``show`` comes (an image
        modified in place meanwhile shows its newer values).  Does nothing once the window is
        closed.

        Raises:
            ValueError: not a single image (see :func:`to_display_rgb8`), checked when drawn.
            LiveWindowError: called from a thread other than the one that created the window.
        """
        if self._win is None:
            return
        self._check_thread("show")
        now = time.perf_counter()
        wanted_at, self._wanted_at = self._wanted_at, None
        if now >= self._next_poll:
            self._poll_events(now)
            if self._win is None:
                return
        if force or now >= self._next_present:
            self._present(img, caption, encoded, bottom_up, now if wanted_at is None else wanted_at)
        else:
            torch = sys.modules.get("torch")
            if torch is not None and isinstance(img, torch.Tensor):
                img = img.detach()  # keep the data, not the autograd graph
            self._pending = (img, caption, encoded, bottom_up)

    def poll(self) -> None:
        """Process window events and draw a skipped frame once it is due; for long steps without ``show``."""
        if self._win is None:
            return
        self._check_thread("poll")
        now = time.perf_counter()
        self._poll_events(now)
        if self._pending is not None and self._win is not None and now >= self._next_present:
            self._present(*self._pending, now)

    def hold(self, timeout: float | None = None) -> None:
        """Draw the latest image, then keep the window open until the user closes it.

        Returns when the window is closed (close button, Esc or Q), after ``timeout`` seconds,
        or at once without a window; blocks (Ctrl-C still works).
        """
        if self._win is None:
            return
        self._check_thread("hold")
        if self._pending is not None:
            self._present(*self._pending, time.perf_counter())
        end = None if timeout is None else time.perf_counter() + timeout
        while self._win is not None:
            wait = 0.1 if end is None else min(0.1, end - time.perf_counter())
            if wait <= 0:
                break
            self._glfw.wait_events_timeout(wait)
            self._poll_events(time.perf_counter(), wait=False)

    # ------------------------------------------------------------------ internals

    def _check_thread(self, method: str) -> None:
        if threading.get_ident() != self._thread:
            raise LiveWindowError(f"LiveWindow.{method}() was called from another thread; glfw windows belong to "
                                  f"the main thread, so call {method}() from the loop that created the window.")

    def _poll_events(self, now: float, wait: bool = True) -> None:
        if wait:
            self._glfw.poll_events()
        self._next_poll = now + _POLL_INTERVAL
        if self._win is not None and self._glfw.window_should_close(self._win):
            self.close()

    def _present(self, img: Any, caption: str | None, encoded: bool, bottom_up: bool, start: float) -> None:
        self._pending = None
        rgb = to_display_rgb8(img, encoded)
        h, w = rgb.shape[:2]
        if max(h, w) > self._max_tex:
            step = math.ceil(max(h, w) / self._max_tex)
            rgb, h, w = np.ascontiguousarray(rgb[::step, ::step]), (h + step - 1) // step, (w + step - 1) // step
        glfw, gl = self._glfw, self._gl
        previous = glfw.get_current_context()
        glfw.make_context_current(self._win)
        if (h, w) != self._tex_size:
            gl.TexImage2D(GL_TEXTURE_2D, 0, GL_RGB8, w, h, 0, GL_RGB, GL_UNSIGNED_BYTE, rgb.ctypes.data)
            self._tex_size = (h, w)
        else:
            gl.TexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, w, h, GL_RGB, GL_UNSIGNED_BYTE, rgb.ctypes.data)
        self._bottom_up = bottom_up
        if not self._sized:
            self._size_to(w, h)
        self._draw()
        self._restore(previous)
        title = self.title if not caption else f"{self.title} \u2014 {caption}"
        if title != self._shown_title:
            glfw.set_window_title(self._win, title)
            self._shown_title = title
        self.frames += 1
        spent = time.perf_counter() - start
        self._next_present = start + max(self._min_interval, spent / self.overhead_budget)

    def _size_to(self, w: int, h: int) -> None:
        """Size the hidden window to the first image, then show it."""
        glfw = self._glfw
        self._sized = True
        win_w, _ = glfw.get_window_size(self._win)
        fb_w, _ = glfw.get_framebuffer_size(self._win)
        scale_x, _ = glfw.get_window_content_scale(self._win)
        dpi = scale_x / (fb_w / win_w) if win_w and fb_w else 1.0  # macOS already counts in points
        zoom = float(max(1, _TARGET_SIDE // max(h, w)))
        monitor = glfw.get_primary_monitor()
        if monitor:
            _, _, area_w, area_h = glfw.get_monitor_workarea(monitor)
            if area_w > 0 and area_h > 0:
                zoom = min(zoom, 0.9 * area_w / (w * dpi), 0.9 * area_h / (h * dpi))
        glfw.set_window_size(self._win, max(1, round(w * zoom * dpi)), max(1, round(h * zoom * dpi)))
        glfw.show_window(self._win)

    def _draw(self) -> None:
        """Letterbox the texture into the window and swap; needs the context current."""
        gl = self._gl
        fb_w, fb_h = self._glfw.get_framebuffer_size(self._win)
        gl.Clear(GL_COLOR_BUFFER_BIT)
        if self._tex_size is not None and fb_w > 0 and fb_h > 0:
            h, w = self._tex_size
            scale = min(fb_w / w, fb_h / h)
            dw, dh = max(1, round(w * scale)), max(1, round(h * scale))
            gl.Viewport((fb_w - dw) // 2, (fb_h - dh) // 2, dw, dh)
            top, bottom = (1.0, 0.0) if self._bottom_up else (0.0, 1.0)
            gl.Begin(GL_QUADS)
            gl.TexCoord2f(0.0, bottom)
            gl.Vertex2f(-1.0, -1.0)
            gl.TexCoord2f(1.0, bottom)
            gl.Vertex2f(1.0, -1.0)
            gl.TexCoord2f(1.0, top)
            gl.Vertex2f(1.0, 1.0)
            gl.TexCoord2f(0.0, top)
            gl.Vertex2f(-1.0, 1.0)
            gl.End()
        self._glfw.swap_buffers(self._win)

    def _restore(self, previous: Any) -> None:
        if _address(previous) != _address(self._win):
            self._glfw.make_context_current(previous)

    def _on_refresh(self, win: Any) -> None:
        if self._win is None:
            return
        previous = self._glfw.get_current_context()
        self._glfw.make_context_current(self._win)
        self._draw()
        self._restore(previous)

    def _on_key(self, win: Any, key: int, scancode: int, action: int, mods: int) -> None:
        glfw = self._glfw
        if action == glfw.PRESS and key in (glfw.KEY_ESCAPE, glfw.KEY_Q):
            glfw.set_window_should_close(win, True)
