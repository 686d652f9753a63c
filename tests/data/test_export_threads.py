"""The exporter picks its CPU thread count with the engine's tuner and says which."""

from __future__ import annotations

import pytest
import torch

from studio.data import cli as data_cli
from studio.data import export_dataset
from studio.optim.threads import candidates

from .test_export import cli_args, config, mini  # noqa: F401 - mini is a fixture


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_export_measures_its_thread_count_and_reports_it(mini, tmp_path, capsys):  # noqa: F811
    # 2 warm-up images and 2 rounds of 2 images per candidate count decide it on a 2-core machine.
    n = 2 + 4 * len(candidates()) + 1
    result = export_dataset(config(mini, tmp_path / "a", n=n, imgsz=32, preview=0))
    assert result.threads in candidates()
    assert len(candidates()) == 1 or "thread" in result.threads_reason
    code = data_cli.run(cli_args(str(mini), "--n", "2", "--out", str(tmp_path / "b"), "--imgsz", "32",
                                 "--backend", "torch", "--device", "cpu", "--no-hard-case"))
    assert code == 0 and "CPU threads: " in capsys.readouterr().out
