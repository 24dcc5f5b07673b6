"""``var/services.env`` is parsed by one function, so settings and the launcher read the same values."""

from __future__ import annotations

from pathlib import Path

from devtools import launcher
from hybridsite.envfile import read_env_file
from hybridsite.settings import build_env


def test_read_env_file_ignores_comments_blank_and_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "services.env"
    path.write_text(
        "# written by the launcher\n"
        "\n"
        "   \n"
        "  # indented comment\n"
        "REDIS_URL=redis://127.0.0.1:6379/0\n"
        " SPACED = value with spaces \n"
        "QUERY=postgresql://h/db?sslmode=require\n"
        "not a setting\n"
    )
    assert read_env_file(path) == {
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SPACED": "value with spaces",
        "QUERY": "postgresql://h/db?sslmode=require",
    }


def test_read_env_file_missing_is_empty(tmp_path: Path) -> None:
    assert read_env_file(tmp_path / "absent.env") == {}


def test_settings_and_the_launcher_read_the_same_values(tmp_path: Path) -> None:
    path = tmp_path / "services.env"
    path.write_text("# written by devtools.launcher\nLAUNCHER_PID=1\nDATABASE_URL=postgresql://u:p@127.0.0.1:5/db \n")
    assert build_env({}, path) == launcher.read_recorded(path) == read_env_file(path)
