"""Admin login: a username is locked out from one client after repeated failures (django-axes), and
one client's attempts are rate limited across usernames."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user():
    return get_user_model().objects.create_superuser("admin", password="right-password")


def attempt(client: Client, username: str, password: str) -> int:
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return response.status_code


def test_repeated_failures_lock_the_username_out_even_with_the_right_password(admin_user, settings, redis_clean):
    settings.AXES_FAILURE_LIMIT = 3
    attacker = Client(REMOTE_ADDR="198.51.100.7")
    assert [attempt(attacker, "admin", f"guess-{n}") for n in range(3)][:2] == [200, 200]
    assert attempt(attacker, "admin", "right-password") == 429
    assert "_auth_user_id" not in attacker.session


def test_the_lockout_is_per_client(admin_user, settings, redis_clean):
    settings.AXES_FAILURE_LIMIT = 3
    attacker = Client(REMOTE_ADDR="198.51.100.7")
    for n in range(3):
        attempt(attacker, "admin", f"guess-{n}")
    owner = Client(REMOTE_ADDR="192.0.2.10")
    assert attempt(owner, "admin", "right-password") == 302


def test_one_client_cannot_spray_passwords_over_many_usernames(admin_user, settings, redis_clean):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login": 4}
    sprayer = Client(REMOTE_ADDR="198.51.100.9")
    statuses = [attempt(sprayer, f"user{n}", "Summer2024!") for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert attempt(Client(REMOTE_ADDR="192.0.2.10"), "admin", "right-password") == 302
