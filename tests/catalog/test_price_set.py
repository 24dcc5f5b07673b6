"""``price_set`` is an upsert: two writers setting a product's first price in one currency at once
both succeed, the later commit's amount kept (found by the two-region chaos test, where a staff
price change through the replica region's API met the catalog writer's)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from catalog import services
from catalog.models import Price
from devtools.net import wait_for
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_writers_setting_a_new_currency_at_once_both_succeed_and_the_later_commit_wins() -> None:
    product = ProductFactory()
    first_wrote, first_may_commit = threading.Event(), threading.Event()
    second_pid: list[int] = []
    errors: list[BaseException] = []

    def first_writer() -> None:
        try:
            with transaction.atomic():
                services.price_set(product=product, currency="USD", amount=Decimal("1.00"))
                first_wrote.set()
                first_may_commit.wait(10)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def second_writer() -> None:
        try:
            connection.ensure_connection()
            second_pid.append(connection.connection.get_backend_pid())
            services.price_set(product=product, currency="USD", amount=Decimal("2.00"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=first_writer)
    first.start()
    assert first_wrote.wait(10)
    second = threading.Thread(target=second_writer)
    second.start()

    def second_waits_on_a_lock() -> bool:
        if not second_pid:
            return False
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [second_pid[0]])
            row = cursor.fetchone()
        return row is not None and row[0] == "Lock"

    wait_for(second_waits_on_a_lock, 10, 0.02, "the second writer to wait for the first")
    first_may_commit.set()
    first.join(10)
    second.join(10)
    assert errors == []
    assert list(Price.objects.filter(product=product, currency="USD").values_list("amount", flat=True)) == [
        Decimal("2.00")
    ]
