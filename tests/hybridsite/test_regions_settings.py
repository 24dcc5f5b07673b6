"""Regions in the settings: one region unless told, each region's endpoints named per region, and a
configuration that would make a replica write as the home region stops the process at start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hybridsite.settings import Env, ImproperlyConfiguredEnv
from tests.hybridsite.test_settings import clean_env

BASE_DIR = Path(__file__).resolve().parents[2]
SHOWN = (
    "HYBRIDSITE_REGION", "HOME_REGION", "REGIONS", "AWS_REGION", "DYNAMODB_ENDPOINT", "REDIS_URL",
    "DYNAMODB_REGION_ENDPOINTS", "REDIS_REGION_URLS",
)


def region_settings(**overrides: str) -> dict[str, object] | str:
    """The region settings a process started with these variables sees, or its one-line error."""
    env = clean_env(**{"DYNAMODB_ENDPOINT": "", "AWS_REGION": "", **overrides})
    script = (
        "import json; from django.conf import settings;"
        f" print(json.dumps({{n: getattr(settings, n) for n in {SHOWN!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )
    if result.returncode:
        assert "Traceback" not in result.stderr, result.stderr
        return result.stderr.strip()
    return json.loads(result.stdout)


def test_one_region_by_default_the_home_region() -> None:
    seen = region_settings(DYNAMODB_ENDPOINT="http://127.0.0.1:8000")
    assert seen == {
        "HYBRIDSITE_REGION": "eu-west-1", "HOME_REGION": "eu-west-1", "REGIONS": ["eu-west-1"],
        "AWS_REGION": "eu-west-1", "DYNAMODB_ENDPOINT": "http://127.0.0.1:8000",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "DYNAMODB_REGION_ENDPOINTS": {"eu-west-1": "http://127.0.0.1:8000"},
        "REDIS_REGION_URLS": {"eu-west-1": "redis://127.0.0.1:6379/15"},
    }


def test_aws_region_names_the_one_region() -> None:
    seen = region_settings(AWS_REGION="us-east-1")
    assert isinstance(seen, dict)
    assert (seen["HYBRIDSITE_REGION"], seen["HOME_REGION"], seen["AWS_REGION"]) == ("us-east-1",) * 3


def test_one_environment_serves_each_region_by_its_per_region_names() -> None:
    """The same variables for every process; HYBRIDSITE_REGION picks this region's endpoints."""
    shared = {
        "REGIONS": "eu-west-1,us-east-1", "HOME_REGION": "eu-west-1", "REDIS_URL": "",
        "DYNAMODB_ENDPOINT_EU_WEST_1": "http://127.0.0.1:8001", "DYNAMODB_ENDPOINT_US_EAST_1": "http://127.0.0.1:8002",
        "REDIS_URL_EU_WEST_1": "redis://127.0.0.1:6381/0", "REDIS_URL_US_EAST_1": "redis://127.0.0.1:6382/0",
    }
    home = region_settings(HYBRIDSITE_REGION="eu-west-1", **shared)
    replica = region_settings(HYBRIDSITE_REGION="us-east-1", **shared)
    assert isinstance(home, dict) and isinstance(replica, dict)
    assert (home["DYNAMODB_ENDPOINT"], home["REDIS_URL"]) == ("http://127.0.0.1:8001", "redis://127.0.0.1:6381/0")
    assert (replica["DYNAMODB_ENDPOINT"], replica["REDIS_URL"]) == ("http://127.0.0.1:8002", "redis://127.0.0.1:6382/0")
    assert replica["HOME_REGION"] == home["HOME_REGION"] == "eu-west-1"
    assert replica["AWS_REGION"] == "us-east-1"
    assert replica["DYNAMODB_REGION_ENDPOINTS"] == home["DYNAMODB_REGION_ENDPOINTS"] == {
        "eu-west-1": "http://127.0.0.1:8001", "us-east-1": "http://127.0.0.1:8002",
    }


def test_several_regions_without_a_home_region_stop_the_process() -> None:
    error = region_settings(REGIONS="eu-west-1,us-east-1")
    assert error == "hybridsite: configuration error: HOME_REGION is required: REGIONS names eu-west-1, us-east-1"


def test_a_local_region_needs_every_region_endpoint() -> None:
    """Else a replica on DynamoDB Local would read the home region's tables from AWS itself."""
    error = region_settings(
        HYBRIDSITE_REGION="us-east-1", HOME_REGION="eu-west-1", DYNAMODB_ENDPOINT="http://127.0.0.1:8002"
    )
    assert error == (
        "hybridsite: configuration error: DYNAMODB_ENDPOINT_EU_WEST_1 is not set, and this region's DynamoDB is local"
    )


def test_a_region_and_an_aws_region_that_disagree_stop_the_process() -> None:
    error = region_settings(HYBRIDSITE_REGION="us-east-1", AWS_REGION="eu-west-1")
    assert isinstance(error, str) and error.startswith("hybridsite: configuration error: HYBRIDSITE_REGION ")


def test_this_region_s_two_names_for_one_endpoint_must_agree() -> None:
    error = region_settings(REDIS_URL_EU_WEST_1="redis://127.0.0.1:6390/0")
    assert error == (
        "hybridsite: configuration error: REDIS_URL_EU_WEST_1 and REDIS_URL differ in this region (eu-west-1)"
    )


@pytest.mark.parametrize("raw", ["EU-WEST-1", "eu_west_1", "-eu", "eu west"])
def test_region_names_are_checked(raw: str) -> None:
    with pytest.raises(ImproperlyConfiguredEnv, match="HYBRIDSITE_REGION must name regions"):
        Env({"HYBRIDSITE_REGION": raw}).region("HYBRIDSITE_REGION", "eu-west-1")
    with pytest.raises(ImproperlyConfiguredEnv, match="REGIONS must name regions"):
        Env({"REGIONS": f"eu-west-1,{raw}"}).regions("REGIONS", ["eu-west-1"])


def test_regions_keep_the_first_and_name_each_once() -> None:
    env = Env({"REGIONS": "us-east-1, eu-west-1,us-east-1"})
    assert env.regions("REGIONS", ["eu-west-1"]) == ["eu-west-1", "us-east-1"]
    assert Env({}).regional_name("REDIS_URL", "ap-southeast-2") == "REDIS_URL_AP_SOUTHEAST_2"
