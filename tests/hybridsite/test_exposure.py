"""What the site shows to whom: the schema per caller, proxies only when configured, no debug."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.authtoken.models import Token

BASE_DIR = Path(__file__).resolve().parents[2]
INTERNAL = {
    "/api/internal/products/{sku}/price/", "/api/internal/products/{sku}/stock/",
    "/api/internal/products/{sku}/history/",
}
PUBLIC = {"/api/products/", "/api/products/{sku}/", "/api/categories/", "/api/categories/{slug}/products/"}
# Any authenticated user (a customer) has a cart and orders.
CUSTOMER = {"/api/cart/", "/api/cart/items/{sku}/", "/api/orders/", "/api/orders/{order_id}/"}
DRAFTS = {"/api/internal/products/{sku}/draft/", "/api/internal/products/{sku}/draft/publish/"}
EXPORTS = {"/api/internal/exports/products.csv", "/api/internal/exports/orders.csv"}

pytestmark = pytest.mark.django_db


def schema(client: Client, **headers: str) -> dict:
    response = client.get("/api/schema/", **headers)
    assert response.status_code == 200
    return orjson.loads(response.content)


def schema_paths(client: Client, **headers: str) -> set[str]:
    return set(schema(client, **headers)["paths"])


def operations(document: dict) -> dict[str, dict]:
    return {f"{method.upper()} {path}": operation for path, item in document["paths"].items()
            for method, operation in item.items()}


def test_anonymous_callers_read_the_customer_api_with_its_security_but_not_the_staff_api(client):
    """A front-end developer reads the cart and order API before having an account: every customer
    operation, each with the credentials it needs; no staff operation."""
    document = schema(client)
    assert set(document["paths"]) == PUBLIC | CUSTOMER
    for name, operation in operations(document).items():
        schemes = {scheme for requirement in operation["security"] for scheme in requirement}
        if any(name.endswith(path) for path in PUBLIC):
            assert operation["security"] == [{}], name  # no credentials
        else:
            assert schemes and schemes <= set(document["components"]["securitySchemes"]), name
            assert {"401", "403"} <= set(operation["responses"]), name
    assert operations(document)["PUT /api/cart/items/{sku}/"]["security"] == [{"cachedTokenAuth": []}]


def test_a_customer_sees_what_an_anonymous_caller_sees(client):
    token = Token.objects.create(user=get_user_model().objects.create_user("shopper", password="x")).key
    assert schema(Client(), HTTP_AUTHORIZATION=f"Token {token}") == schema(client)


def test_operations_are_grouped_by_resource(client):
    document = schema(Client(), HTTP_AUTHORIZATION=f"Token {admin_token()}")
    tags = {name: operation["tags"] for name, operation in operations(document).items()}
    declared = [tag["name"] for tag in document["tags"]]
    assert declared == [
        "products", "categories", "cart", "orders", "prices", "stock", "drafts", "history", "exports",
    ]
    assert all(len(names) == 1 and names[0] in declared for names in tags.values()), tags
    assert {names[0] for names in tags.values()} == set(declared)
    assert tags["DELETE /api/cart/items/{sku}/"] == ["cart"] and tags["POST /api/orders/"] == ["orders"]
    assert tags["GET /api/categories/{slug}/products/"] == ["categories"]
    assert tags["GET /api/products/"] == ["products"] and tags["GET /api/internal/exports/orders.csv"] == ["exports"]


def test_staff_see_the_operations_their_permissions_allow(client):
    user = get_user_model().objects.create_user("pricing", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_price"))
    token = Token.objects.create(user=user).key
    assert schema_paths(client, HTTP_AUTHORIZATION=f"Token {token}") == (
        PUBLIC | CUSTOMER | {"/api/internal/products/{sku}/price/"}
    )
    assert schema_paths(Client(), HTTP_AUTHORIZATION=f"Token {admin_token()}") == (
        PUBLIC | CUSTOMER | INTERNAL | DRAFTS | EXPORTS
    )


def admin_token() -> str:
    return Token.objects.create(user=get_user_model().objects.create_superuser("root", password="x")).key


def test_a_browser_is_shown_the_schema_not_handed_a_download(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" not in response.get("Content-Disposition", "")
    assert client.get("/api/schema/?format=yaml")["Content-Type"].startswith("application/vnd.oai.openapi")


def settings_of(*names: str, **env: str) -> dict:
    """Production settings as a fresh process computes them from ``env``."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        f" print(json.dumps({{n: getattr(s, n) for n in {list(names)!r}}}))"
    )
    environ = {
        "PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "hybridsite.settings", "DEBUG": "0",
        "SECRET_KEY": "s" * 64, "DATABASE_URL": "postgresql://app@db.example.com/x", "REDIS_URL": "redis://cache:6379/0",
        **env,
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=environ, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout.splitlines()[-1])


def test_forwarded_proto_is_ignored_without_a_proxy_and_preload_is_opt_in():
    values = settings_of("SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_PRELOAD")
    assert values == {"SECURE_PROXY_SSL_HEADER": None, "SECURE_HSTS_PRELOAD": False}
    behind = settings_of(
        "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_PRELOAD", TRUSTED_PROXY_HOPS="1", SECURE_HSTS_PRELOAD="1"
    )
    assert behind == {"SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"], "SECURE_HSTS_PRELOAD": True}


def test_a_client_cannot_claim_https_by_header(client, settings):
    """With SSL redirects on and no proxy configured, X-Forwarded-Proto from the client changes nothing."""
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/api/categories/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301 and response["Location"].startswith("https://")


def test_errors_never_show_the_debug_page(client):
    response = client.get("/api/products/X%00/")
    assert response.status_code == 404 and b"Traceback" not in response.content
    assert orjson.loads(response.content)["error"]["code"] == "not_found"
