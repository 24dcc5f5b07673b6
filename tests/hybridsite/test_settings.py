"""The environment is parsed in one place and a bad value stops the process with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hybridsite.settings import Env, ImproperlyConfiguredEnv, build_env

BASE_DIR = Path(__file__).resolve().parents[2]


def fails_naming(name: str, env: Env, method: str, *args: object) -> str:
    """Call ``env.<method>(name, ...)``, expecting the one-line error naming ``name``."""
    with pytest.raises(ImproperlyConfiguredEnv) as raised:
        getattr(env, method)(name, *args)
    message = str(raised.value.code)
    assert "\n" not in message
    assert f" {name} " in message
    return message


def test_configuration_error_exits_instead_of_raising_an_exception() -> None:
    """A SystemExit makes Python print the message alone, without a traceback."""
    error = ImproperlyConfiguredEnv("X_VAR", "is wrong")
    assert isinstance(error, SystemExit)
    assert error.code == "hybridsite: configuration error: X_VAR is wrong"


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", " on "])
def test_bool_true_spellings(raw: str) -> None:
    assert Env({"FLAG": raw}).bool("FLAG", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off", ""])
def test_bool_false_spellings(raw: str) -> None:
    assert Env({"FLAG": raw}).bool("FLAG", True) is False


def test_bool_missing_uses_default() -> None:
    assert Env({}).bool("FLAG", True) is True
    assert Env({}).bool("FLAG", False) is False


def test_bool_rejects_other_words() -> None:
    message = fails_naming("FLAG", Env({"FLAG": "maybe"}), "bool")
    assert "'maybe'" in message


def test_int_parses_and_defaults() -> None:
    env = Env({"N": "42", "EMPTY": ""})
    assert env.int("N", 7) == 42
    assert env.int("EMPTY", 7) == 7
    assert env.int("MISSING", 7) == 7


def test_int_rejects_non_integers_and_values_below_minimum() -> None:
    assert "'abc'" in fails_naming("N", Env({"N": "abc"}), "int", 1)
    assert "'1.5'" in fails_naming("N", Env({"N": "1.5"}), "int", 1)
    assert ">= 1" in fails_naming("N", Env({"N": "0"}), "int", 5, 1)


def test_float_parses_and_defaults() -> None:
    env = Env({"T": "0.25", "EMPTY": ""})
    assert env.float("T", 2.0) == 0.25
    assert env.float("EMPTY", 2.0) == 2.0
    assert env.float("MISSING", 2.0) == 2.0


def test_float_rejects_non_numbers_and_values_below_minimum() -> None:
    assert "'fast'" in fails_naming("T", Env({"T": "fast"}), "float", 1.0)
    assert ">= 0.05" in fails_naming("T", Env({"T": "0.01"}), "float", 1.0, 0.05)


def test_list_splits_on_commas_and_drops_blanks() -> None:
    env = Env({"HOSTS": " a.example, b.example,, ,c "})
    assert env.list("HOSTS") == ["a.example", "b.example", "c"]
    assert env.list("MISSING", "x,y") == ["x", "y"]
    assert env.list("MISSING") == []


def test_url_accepts_listed_schemes_and_strips_spaces() -> None:
    env = Env({"DB": " postgresql://u@db:5432/app "})
    assert env.url("DB", ("postgres", "postgresql")) == "postgresql://u@db:5432/app"


def test_url_default_and_optional_missing() -> None:
    assert Env({}).url("BROKER", ("redis",), default="redis://r:6379/0") == "redis://r:6379/0"
    assert Env({}).url("ENDPOINT", ("http", "https")) == ""
    assert Env({"ENDPOINT": "  "}).url("ENDPOINT", ("http", "https")) == ""


def test_url_rejects_other_schemes_and_empty_locations() -> None:
    message = fails_naming("DB", Env({"DB": "mysql://x"}), "url", ("postgres", "postgresql"))
    assert "postgres/postgresql" in message
    fails_naming("DB", Env({"DB": "postgresql://"}), "url", ("postgres", "postgresql"))
    fails_naming("DB", Env({"DB": "localhost:5432"}), "url", ("postgres", "postgresql"))


def test_url_required_but_missing() -> None:
    assert "is not set" in fails_naming("DB", Env({}), "url", ("postgresql",), "", True)
    fails_naming("DB", Env({"DB": ""}), "url", ("postgresql",), "", True)


def test_process_environment_wins_over_env_file(tmp_path: Path) -> None:
    """An empty value set in the process still overrides the file: unsetting is explicit."""
    path = tmp_path / "services.env"
    path.write_text("REDIS_URL=redis://file:6379/0\nDYNAMODB_ENDPOINT=http://file:8000\nSECRET_KEY=from-file\n")
    merged = build_env({"REDIS_URL": "redis://process:6379/0", "SECRET_KEY": ""}, path)
    assert merged == {
        "REDIS_URL": "redis://process:6379/0",
        "DYNAMODB_ENDPOINT": "http://file:8000",
        "SECRET_KEY": "",
    }


def clean_env(**overrides: str) -> dict[str, str]:
    """A process environment for hybridsite.settings that names every service, and nothing else."""
    return {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "hybridsite.settings",
        "SECRET_KEY": "s" * 64,
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/unused",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        **overrides,
    }


def start_django(**overrides: str) -> subprocess.CompletedProcess[str]:
    """``django.setup()`` with hybridsite.settings in a clean environment that names every service."""
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR, env=clean_env(**{"DEBUG": "0", **overrides}), capture_output=True, text=True, timeout=60,
    )


def assert_one_line_naming(result: subprocess.CompletedProcess[str], name: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"hybridsite: configuration error: {name} ")


def test_valid_environment_starts() -> None:
    """The control case: the failures below come from the one bad variable."""
    result = start_django()
    assert result.returncode == 0, result.stderr


def test_missing_secret_key_in_production_stops_with_one_line() -> None:
    assert_one_line_naming(start_django(SECRET_KEY=""), "SECRET_KEY")


def test_unsupported_database_scheme_stops_with_one_line() -> None:
    assert_one_line_naming(start_django(DATABASE_URL="mysql://x"), "DATABASE_URL")


def test_non_integer_batch_size_stops_with_one_line() -> None:
    assert_one_line_naming(start_django(OUTBOX_BATCH_SIZE="abc"), "OUTBOX_BATCH_SIZE")


def test_choice_accepts_listed_values_and_defaults_when_empty() -> None:
    env = Env({"ENGINE": " moto ", "EMPTY": ""})
    assert env.choice("ENGINE", ("moto", "dynamodb-local"), "dynamodb-local") == "moto"
    assert env.choice("EMPTY", ("moto", "dynamodb-local"), "dynamodb-local") == "dynamodb-local"
    assert env.choice("MISSING", ("moto",), "moto") == "moto"


def test_choice_rejects_other_values() -> None:
    assert "one of moto, dynamodb-local" in fails_naming("ENGINE", Env({"ENGINE": "dynalite"}), "choice",
                                                         ("moto", "dynamodb-local"), "moto")


def engine(**overrides: str) -> str:
    """settings.DYNAMODB_ENGINE as a process started with these variables sees it."""
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.DYNAMODB_ENGINE)"],
        cwd=BASE_DIR, env=clean_env(**overrides), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_dynamodb_engine_is_aws_without_an_endpoint_and_dynamodb_local_with_one() -> None:
    assert engine(DYNAMODB_ENDPOINT="", DYNAMODB_ENGINE="") == "aws"
    assert engine(DYNAMODB_ENDPOINT="http://127.0.0.1:8000", DYNAMODB_ENGINE="") == "dynamodb-local"
    assert engine(DYNAMODB_ENDPOINT="http://127.0.0.1:8000", DYNAMODB_ENGINE="moto") == "moto"


def test_unknown_dynamodb_engine_stops_with_one_line() -> None:
    assert_one_line_naming(start_django(DYNAMODB_ENGINE="dynalite"), "DYNAMODB_ENGINE")
