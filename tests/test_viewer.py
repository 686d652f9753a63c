"""studio.viewer.LiveWindow: image conversion, the no-display message, and a real window on Xvfb.

The window tests start a private Xvfb (skipped where it is not installed), read the screen back
with ImageMagick's ``import`` and press keys with ``xdotool`` (each skipped where missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from studio.gui.testing import start_xvfb, stop_process
from studio.images import to_uint8
from studio.viewer import LiveWindow, LiveWindowError, NoDisplayError, to_display_rgb8

SCREEN = (480, 640)  # Xvfb screen (height, width)
BACKGROUND = 31  # letterbox grey 0.12 * 255

# 20x20 linear image: red | green over blue | grey (linear 0.214 = sRGB 127)
QUADRANTS = np.zeros((20, 20, 3), np.float32)
QUADRANTS[:10, :10] = (1, 0, 0)
QUADRANTS[:10, 10:] = (0, 1, 0)
QUADRANTS[10:, :10] = (0, 0, 1)
QUADRANTS[10:, 10:] = 0.214
RED, GREEN, BLUE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (127, 127, 127)


# ----------------------------------------------------------------------------- conversion


def test_linear_floats_become_srgb_bytes():
    x = np.random.default_rng(0).random((9, 7, 3), dtype=np.float32)
    out = to_display_rgb8(x)
    assert out.dtype == np.uint8 and out.shape == (9, 7, 3) and out.flags.c_contiguous
    assert np.abs(out.astype(int) - to_uint8(x).astype(int)).max() <= 1
    assert np.array_equal(to_display_rgb8(x, encoded=True), (x * 255 + 0.5).astype(np.uint8))


def test_layouts_dtypes_and_devices():
    x = torch.rand(1, 6, 5, 4, requires_grad=True)  # [1,H,W,4] with alpha and a graph
    assert np.array_equal(to_display_rgb8(x), to_display_rgb8(x.detach()[0, ..., :3].numpy()))
    flipped = np.random.default_rng(1).random((6, 5, 3)).astype(np.float64)[::-1]  # float64, negative strides
    assert np.array_equal(to_display_rgb8(flipped), to_display_rgb8(np.ascontiguousarray(flipped, np.float32)))
    u8 = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    assert np.array_equal(to_display_rgb8(u8), u8) and np.array_equal(to_display_rgb8(torch.from_numpy(u8)), u8)
    grey = to_display_rgb8(torch.full((3, 4), 1.0))
    assert grey.shape == (3, 4, 3) and (grey == 255).all()
    assert (to_display_rgb8(np.ones((2, 2, 1), bool)) == 255).all()
    odd = to_display_rgb8(np.array([[[np.nan, np.inf, -np.inf]]], np.float32))
    assert odd.tolist() == [[[0, 255, 0]]]
    half = torch.rand(4, 4, 3).half()
    assert np.abs(to_display_rgb8(half).astype(int) - to_display_rgb8(half.float()).astype(int)).max() <= 1
    if torch.cuda.is_available():
        g = torch.rand(8, 8, 3)
        assert np.abs(to_display_rgb8(g.cuda()).astype(int) - to_display_rgb8(g).astype(int)).max() <= 1


@pytest.mark.parametrize("bad, words", [
    (np.zeros((2, 4, 4, 3), np.float32), "batch of 2"),
    (np.zeros((4, 4, 2), np.float32), "[H,W,3|4]"),
    (np.zeros((0, 4, 3), np.float32), "[H,W,3|4]"),
    (np.zeros((4, 4, 3), np.int32), "int32"),
])
def test_rejects_what_is_not_one_image(bad, words):
    with pytest.raises(ValueError, match=None) as info:
        to_display_rgb8(bad)
    assert words in str(info.value)


def test_disabled_window_is_a_noop():
    w = LiveWindow("off", enabled=False)
    w.show(QUADRANTS)
    w.poll()
    w.hold()
    w.close()
    assert not w.active and not w.closed and w.frames == 0


def test_must_be_created_on_the_main_thread():
    caught = []
    t = threading.Thread(target=lambda: caught.append(_raises(lambda: LiveWindow("t"))))
    t.start()
    t.join()
    assert isinstance(caught[0], LiveWindowError) and "main thread" in str(caught[0])


def _raises(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return exc
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY only decides this on Linux")
def test_without_a_display_one_clear_sentence():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    code = (
        "import numpy as np\n"
        "from studio.viewer import LiveWindow, NoDisplayError\n"
        "try:\n"
        "    LiveWindow('fit')\n"
        "except NoDisplayError as exc:\n"
        "    assert isinstance(exc, RuntimeError)\n"
        "    print(exc)\n"
        "w = LiveWindow('fit', headless_ok=True)\n"
        "w.show(np.zeros((4, 4, 3)))\n"
        "w.hold()\n"
        "print(w.active, w.closed)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    message, state = r.stdout.strip().splitlines()
    assert "no display" in message and "xvfb-run" in message and "headless_ok=True" in message
    assert message.endswith(".") and message.count(". ") == 0  # one sentence
    assert state == "False False"
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and "GLFW" not in r.stderr
    assert "no display" in r.stderr and "continuing without a live window" in r.stderr


# ----------------------------------------------------------------------------- a real window on Xvfb


def _start_xvfb(*options: str):
    try:
        return start_xvfb(SCREEN[1], SCREEN[0], "-noreset", *options)
    except RuntimeError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def xvfb():
    proc, name = _start_xvfb("-br")  # black root window
    yield name
    stop_process(proc)


@pytest.fixture
def display(xvfb, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    return xvfb


def _screen(display: str) -> np.ndarray:
    if shutil.which("import") is None:
        pytest.skip("ImageMagick's import is not installed")
    raw = subprocess.run(["import", "-display", display, "-window", "root", "-depth", "8", "rgb:-"],
                         capture_output=True, check=True, timeout=20).stdout
    return np.frombuffer(raw, np.uint8).reshape(*SCREEN, 3)


def _until(window: LiveWindow, condition, timeout: float = 3.0) -> bool:
    end = time.perf_counter() + timeout
    while True:
        window.poll()
        if condition():
            return True
        if time.perf_counter() > end:
            return False
        time.sleep(0.02)


def _looks(display: str, window: LiveWindow, expected: dict[tuple[int, int], tuple[int, int, int]]) -> dict:
    """Pixels at window-relative (x, y) that differ from what is expected ({} when all match)."""
    import glfw

    x0, y0 = glfw.get_window_pos(window.handle)
    wrong = {}

    def check():
        wrong.clear()
        shot = _screen(display)
        for (x, y), rgb in expected.items():
            got = tuple(int(v) for v in shot[y0 + y, x0 + x])
            if max(abs(a - b) for a, b in zip(got, rgb)) > 2:
                wrong[(x, y)] = (got, rgb)
        return not wrong

    _until(window, check)  # the X server may draw a moment after the swap
    return wrong


@pytest.mark.gui
def test_show_draws_the_image_letterboxed_and_keeps_it_on_resize(display):
    import glfw

    with LiveWindow("test", size=(320, 160)) as w:
        img = torch.cat([torch.from_numpy(QUADRANTS), torch.ones(20, 20, 1)], -1)[None]  # [1,H,W,4]
        w.show(img, caption="it 1")
        assert w.active and w.frames == 1 and glfw.get_window_size(w.handle) == (320, 160)
        # the 20x20 image fills x 80..240 of the 320x160 window, top row first, in sRGB
        assert _looks(display, w, {(120, 40): RED, (200, 40): GREEN, (120, 120): BLUE, (200, 120): GREY,
                                   (40, 80): (BACKGROUND,) * 3, (280, 80): (BACKGROUND,) * 3}) == {}
        glfw.set_window_size(w.handle, 160, 320)  # no new show(): the last frame is redrawn
        assert _looks(display, w, {(40, 120): RED, (120, 120): GREEN, (40, 200): BLUE, (120, 200): GREY,
                                   (80, 40): (BACKGROUND,) * 3, (80, 280): (BACKGROUND,) * 3}) == {}
        w.show(to_display_rgb8(QUADRANTS), bottom_up=True, force=True)  # uint8, row 0 at the bottom
        assert _looks(display, w, {(40, 120): BLUE, (120, 120): GREY, (40, 200): RED, (120, 200): GREEN}) == {}


@pytest.mark.gui
def test_new_window_fits_the_first_image(display):
    import glfw

    with LiveWindow("test") as w:
        w.show(np.ones((30, 40, 3), np.float32))
        assert glfw.get_window_size(w.handle) == (480, 360)  # magnified 12x, up to about 512 pixels
        assert _looks(display, w, {(5, 5): (255, 255, 255), (475, 355): (255, 255, 255)}) == {}


@pytest.mark.gui
def test_closed_by_the_user_then_show_is_a_noop(display):
    import glfw

    w = LiveWindow("test", size=(200, 100))
    w.show(QUADRANTS)
    assert not w.closed
    glfw.set_window_should_close(w.handle, True)  # what the close button does
    assert _until(w, lambda: w.closed)
    assert not w.active and w.handle is None
    w.show(QUADRANTS)
    w.poll()
    w.close()
    assert w.frames == 1

    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed")
    with LiveWindow("test", size=(200, 100)) as w:
        w.show(QUADRANTS)
        x, y = glfw.get_window_pos(w.handle)
        subprocess.run(["xdotool", "mousemove", str(x + 50), str(y + 50), "key", "Escape"], check=True,
                       capture_output=True, timeout=10)
        assert _until(w, lambda: w.closed)
    # gone from the screen: the black root window shows where it was
    assert (_screen(display)[y:y + 100, x:x + 200] == 0).all()


@pytest.mark.gui
def test_throttled_show_is_cheap_and_the_last_frame_is_drawn(display):
    img = torch.rand(256, 256, 3)
    with LiveWindow("test", max_fps=10) as w:
        w.show(img)
        assert w.frames == 1
        costs = []
        for _ in range(200):
            t = time.perf_counter()
            w.show(img)
            costs.append(time.perf_counter() - t)
        assert w.frames <= 3
        assert np.median(costs) < 50e-6, f"median show() over the frame limit took {np.median(costs) * 1e6:.0f} us"
        frames = w.frames
        assert _until(w, lambda: w.frames == frames + 1)  # poll() draws the latest skipped frame once due
        w.show(img)
        w.hold(timeout=0.05)  # draws the pending frame, then waits
        assert w.frames == frames + 2
        assert not w.wants_frame
        assert _until(w, lambda: w.wants_frame)
        w.show(img)
        assert w.frames == frames + 3
    assert w.closed and not w.wants_frame


@pytest.mark.gui
def test_show_from_another_thread_raises(display):
    with LiveWindow("test", size=(100, 100)) as w:
        caught = []
        t = threading.Thread(target=lambda: caught.append(_raises(lambda: w.show(QUADRANTS))))
        t.start()
        t.join()
        assert isinstance(caught[0], LiveWindowError) and "main thread" in str(caught[0])
        assert w.frames == 0


@pytest.mark.gui
def test_display_without_opengl_one_clear_sentence(monkeypatch, capfd):
    proc, name = _start_xvfb("-extension", "GLX")
    try:
        monkeypatch.setenv("DISPLAY", name)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        with pytest.raises(NoDisplayError) as info:
            LiveWindow("test")
        assert LiveWindow("test", headless_ok=True).active is False
    finally:
        stop_process(proc)
    message = str(info.value)
    assert f"found the display {name} but no usable OpenGL" in message and "headless_ok=True" in message
    assert message.endswith(".") and message.count(". ") == 0
    assert "GLFW" not in capfd.readouterr().err
