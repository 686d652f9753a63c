"""Ray stays optional: only studio.scale imports it, and only where a Ray path runs."""

from __future__ import annotations

import subprocess
import sys

from tests.test_architecture import STUDIO, imported_modules


def test_only_the_scale_package_imports_ray():
    for path in sorted(STUDIO.rglob("*.py")):
        if path.relative_to(STUDIO).parts[0] != "scale":
            bad = [m for m in imported_modules(path) if m.split(".")[0] == "ray"]
            assert not bad, f"{path.relative_to(STUDIO)} imports {bad}"


def test_the_command_line_and_the_scale_package_load_without_importing_ray():
    code = "import sys, studio.cli, studio.scale; sys.exit(1 if 'ray' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
