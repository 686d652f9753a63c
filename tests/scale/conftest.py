"""One local Ray instance for every test in tests/scale that asks for it (start-up takes seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.test_export import MINI, write_scene


@pytest.fixture(scope="package")
def ray_local():
    """A local Ray instance with two CPU slots and no dashboard; skips when Ray is not installed."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="package")
def mini(tmp_path_factory) -> Path:
    """The small randomised three-object scene of the export tests."""
    return write_scene(tmp_path_factory.mktemp("scene"), MINI, "mini")
