"""The pending-drafts report: who is editing what, from the drafts' Postgres copy, through the
admin's real URL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog import services
from drafts.models import DraftCopy

pytestmark = pytest.mark.django_db(transaction=True)

REPORT = reverse("admin:drafts_pending")


def test_pending_drafts_show_who_edits_what_and_which_could_not_be_published(admin_client: Client, tools):
    hammer = services.product_create(sku="SKU-1", name="Hammer", category=tools)
    saw = services.product_create(sku="SKU-2", name="Saw", category=tools)
    ann = get_user_model().objects.create_user("ann", is_staff=True)
    bob = get_user_model().objects.create_user("bob", is_staff=True)
    now = timezone.now()

    def draft(sku: str, user, base_version: int, changes: dict, age: timedelta, status=DraftCopy.Status.EDITING):
        DraftCopy.objects.create(sku=sku, user=user, version=1, base_version=base_version, changes=changes,
                                 status=status, updated_at=now - age)

    draft("SKU-1", ann, hammer.version, {"name": "Claw hammer", "attributes": {}}, timedelta(minutes=5))
    draft("SKU-1", bob, hammer.version, {"description": "..."}, timedelta(minutes=50))
    draft("SKU-2", ann, saw.version, {"name": "Saw"}, timedelta(hours=2), status=DraftCopy.Status.GONE)  # published
    draft("SKU-2", bob, saw.version, {"name": "Old saw"}, timedelta(days=31))  # past DRAFT_IDLE_SECONDS: expired
    services.product_update(product=hammer, description="changed since the drafts started")  # both now conflict
    draft("SKU-2", get_user_model().objects.create_user("cid", is_staff=True), saw.version, {"name": "Saw 2"},
          timedelta(seconds=30))

    response = admin_client.get(REPORT)

    assert response.status_code == 200
    rows = [(d.sku, d.name, d.editor, d.fields, d.conflicts) for d in response.context["drafts"]]
    assert rows == [
        ("SKU-1", "Hammer", "bob", ["description"], True),  # by product, then the oldest autosave
        ("SKU-1", "Hammer", "ann", ["attributes", "name"], True),
        ("SKU-2", "Saw", "cid", ["name"], False),
    ]
    content = response.content.decode()
    assert content.count("conflict: the product changed since") == 2
    assert REPORT in admin_client.get(reverse("admin:index")).content.decode()


def test_the_report_is_for_staff_only(client: Client):
    response = client.get(REPORT)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(get_user_model().objects.create_user("staff", is_staff=True))
    assert client.get(REPORT).status_code == 403  # staff, but without the permission to view drafts
