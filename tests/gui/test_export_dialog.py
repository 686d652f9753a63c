"""File > Export dataset...: the dialog writes a small YOLO dataset in the background, with a
progress bar, Cancel, one-sentence errors and the preview sheet, while the window stays live."""

from __future__ import annotations

import time

import dearpygui.dearpygui as dpg
import numpy as np
import pytest

from studio.gui.testing import Xdo, crop, grab, pump

pytestmark = pytest.mark.gui


def test_the_export_dialog_writes_a_dataset_and_the_window_stays_live(session_app, tmp_path):
    app = session_app
    dpg.get_item_callback(app.menu["Export dataset..."])()  # what clicking File > Export dataset... calls
    dialog = app.export_dialog
    assert pump(app, lambda: dialog.visible, timeout=5), "the menu did not open the dialog"
    assert dialog.scene.value == app.ws.scene.spec.name, "a scene with class names is the default"
    assert "objects" in dialog.scene.items and "sdf" not in dialog.scene.items
    dialog.scene.value = "objects"
    dialog.n.value, dialog.imgsz.value = 4, 64
    out = tmp_path / "objects"
    dialog.out.value = str(out)
    xdo = Xdo(app)
    xdo.click_item(dialog.export.rect())
    stamps, fractions = [], []

    def watch() -> bool:
        stamps.append(time.perf_counter())
        fractions.append(dialog.bar.fraction)
        return not dialog.busy

    assert pump(app, watch, timeout=120), "the export did not finish"
    gaps = np.diff(stamps)
    assert len(stamps) > 10 and gaps.max() < 0.5, f"the window froze for {gaps.max():.2f} s during the export"
    assert 0 < min(f for f in fractions if f > 0) < 1.0, "the bar must show progress before the end"
    assert dialog.bar.fraction == 1.0 and dialog.bar.text == "4/4 images"
    assert len(list((out / "images").rglob("*.png"))) == 4 and len(list((out / "labels").rglob("*.txt"))) == 4
    assert (out / "data.yaml").exists() and (out / "preview.png").exists()
    assert dialog.message.value.startswith("exported 4 images") and app.messages[-1] == dialog.message.value
    assert dialog.preview_shown
    sheet = crop(grab(app), dialog.preview_rect())
    assert sheet.std() > 20, "the preview sheet is shown in the dialog"

    # The same folder again without "overwrite": one sentence, nothing overwritten.
    xdo.click_item(dialog.export.rect())
    assert pump(app, lambda: not dialog.busy and dialog.message.value and not dialog.message.value.startswith(
        "exported"), timeout=60)
    sentence = dialog.message.value
    assert "already holds files" in sentence and "\n" not in sentence and "Traceback" not in sentence
    assert app.status.message.value.endswith(sentence)

    # A long export stops at Cancel with complete pairs.
    dialog.n.value, dialog.out.value = 500, str(tmp_path / "long")
    dialog.start()
    assert pump(app, lambda: dialog.job.progress is not None and dialog.job.progress.latest[0] >= 1, timeout=60)
    xdo.click_item(dialog.cancel.rect())
    assert pump(app, lambda: not dialog.busy, timeout=60), "Cancel did not stop the export"
    assert "cancelled after" in dialog.message.value
    written = len(list((tmp_path / "long" / "images").rglob("*.png")))
    assert 1 <= written < 500 and written == len(list((tmp_path / "long" / "labels").rglob("*.txt")))
    dpg.hide_item(dialog.window)
