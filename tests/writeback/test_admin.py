"""The write-back in the admin: dead letters listed and retried, leases, resyncs and the copies
shown. (Postgres only: runs on both engines.)"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from carts.models import CartCopy
from carts.tables import Cart
from hybridsite.dynamodb import table_name
from writeback.models import DeadLetter

pytestmark = pytest.mark.django_db(transaction=True)


def cart_record(user_id: int, version: int) -> dict:
    """A cart INSERT as a stream delivers it (Lambda event shape)."""
    return {
        "eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1",
        "eventSourceARN": f"arn:aws:dynamodb:eu-west-1:000000000000:table/{table_name(Cart)}/stream/2026",
        "dynamodb": {
            "Keys": {"user_id": {"S": str(user_id)}}, "SequenceNumber": "000000000000000000042",
            "NewImage": {
                "user_id": {"S": str(user_id)}, "version": {"N": str(version)},
                "lines": {"M": {"SKU-1": {"N": "2"}}}, "updated_at": {"S": "2026-11-23T04:00:00.000000+0000"},
                "expires_at": {"N": "1900000000"},
            },
        },
    }


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    return client


def test_dead_letters_are_listed_and_retried_from_the_admin(admin_client):
    customer = get_user_model().objects.create_user("ann", password="x")
    parked = DeadLetter.objects.create(
        table_name=table_name(Cart), sequence_number="000000000000000000042",
        record=cart_record(customer.pk + 1000, 7), error="IntegrityError: no such user",
    )
    fixed = DeadLetter.objects.create(
        table_name=table_name(Cart), sequence_number="000000000000000000043",
        record=cart_record(customer.pk, 7), error="IntegrityError: no such user (then)",
    )
    page = admin_client.get("/admin/writeback/deadletter/")
    assert page.status_code == 200 and b"no such user" in page.content

    response = admin_client.post(
        "/admin/writeback/deadletter/", {"action": "retry", "_selected_action": [parked.pk, fixed.pk]}, follow=True
    )
    assert b"1 applied and removed, 1 failed again." in response.content
    assert list(DeadLetter.objects.values_list("pk", "attempts")) == [(parked.pk, 2)]
    assert CartCopy.objects.get(user_id=customer.pk).lines == {"SKU-1": 2}


@pytest.mark.parametrize("url", [
    "/admin/writeback/shardlease/", "/admin/writeback/resync/", "/admin/carts/cartcopy/", "/admin/drafts/draftcopy/",
])
def test_write_back_pages_render(admin_client, url):
    assert admin_client.get(url).status_code == 200
