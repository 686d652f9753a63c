"""`studio gui` as a command: the screenshot mode for docs and tests, and the no-display message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def studio(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.gui
def test_screenshot_after_steps_saves_the_window_and_exits(display, tmp_path):
    out = tmp_path / "shot.png"
    r = studio("gui", "cube", "--res", "48", "--backend", "torch", "--device", "cpu", "--run",
               "--screenshot", str(out), "--after-steps", "5")
    assert r.returncode == 0, r.stderr[-2000:]
    img = np.asarray(iio.imread(out))[..., :3]
    assert img.shape[:2] == (800, 1280)
    assert img.std() > 20 and (img.max(-1) > 100).mean() > 0.05, "the screenshot is blank"
    assert f"saved a screenshot to {out}" in r.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY decides only on Linux")
def test_without_a_display_studio_says_so_in_one_sentence():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = studio("gui", "cube", env=env, timeout=120)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "display" in lines[0] and "studio optimize" in lines[0] and "Traceback" not in r.stderr
