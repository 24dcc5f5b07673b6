"""Fixtures of the ops tests: switches unset, a product not yet projected, staff callers, and the
host's metrics registry."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from ops.instruments import process_registry


@pytest.fixture(autouse=True)
def _flags(flags) -> None:
    """Read-only mode and the shapes are switches: every test here starts with them unset."""


@pytest.fixture
def staff():
    return get_user_model().objects.create_user("operator", password="a-long-test-password", is_staff=True)


@pytest.fixture
def staff_token(staff) -> str:
    return Token.objects.create(user=staff).key


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def registry():
    """What every process of this run has counted (gunicorn's and Celery's included): the launcher
    gives them all one PROMETHEUS_MULTIPROC_DIR."""
    assert settings.PROMETHEUS_MULTIPROC_DIR, "run the suite through `make test`: it sets PROMETHEUS_MULTIPROC_DIR"
    return process_registry()


class Sample:
    """A sample's value now, from a fresh read of the registry (0 when absent)."""

    def __init__(self, registry) -> None:
        self.registry = registry

    def __call__(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def sample(registry) -> Sample:
    return Sample(registry)
