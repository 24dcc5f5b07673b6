"""promtool for the tests: `make promtool` puts it in .promtool/ (from Debian's prometheus
package); one on PATH does too. Without either, the tests that need it skip and say why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent


def promtool() -> str:
    local = BASE_DIR / ".promtool" / "promtool"
    found = str(local) if local.is_file() else shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed: `make promtool` takes it from Debian's prometheus package (needs apt)")
    return found
