"""What the tests of the operator's kit share: the files of ops/monitoring, and promtool.

`make promtool` puts promtool in .promtool/ (from Debian's prometheus package); one on PATH does
too. Without either, the tests that need it skip and say why, except in CI (``CI=true``), where
`make test` installs it: there its absence fails them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parent.parent
MONITORING = BASE_DIR / "ops" / "monitoring"


def promtool() -> str:
    local = BASE_DIR / ".promtool" / "promtool"
    found = str(local) if local.is_file() else shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI: `make test` installs it (make promtool)")
        pytest.skip("promtool is not installed: `make promtool` takes it from Debian's prometheus package (needs apt)")
    return found


def rules() -> list[dict[str, Any]]:
    """Every recording and alerting rule of rules.yml, in order."""
    groups = yaml.safe_load((MONITORING / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]
