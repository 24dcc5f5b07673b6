"""The ``KEY=value`` file format of ``var/services.env``: one parser, for settings and the launcher alike.

Pure: it reads the file it is given and never the process environment (that is settings' job).
"""

from __future__ import annotations

from pathlib import Path


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``KEY=value`` lines; blank lines, ``#`` comments and lines without ``=`` are ignored.
    A missing file is empty."""
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values
