"""schemathesis against /api/schema/: every operation a caller can see, at least 100 examples each,
positive and negative, with every check schemathesis has. Anonymous callers get the public schema;
a staff token gets the internal API, the drafts and a cart too."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from carts.services import cart_line_set
from catalog import services
from catalog.models import Category, Product, Warehouse
from hybridsite.wsgi import application
from projections.cursors import encode_cursor, encode_offset
from projections.relay import drain

pytestmark = pytest.mark.django_db(transaction=True)

load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())
LISTING = "/api/categories/{slug}/products/"
SEARCH = "/api/products/"
# A schema-valid stock adjustment can still be refused by the data it meets: a warehouse code that
# does not exist, or stock that would go below zero; so can a cart line (a SKU not on sale, a full
# cart). All are 400 naming the field, by design. A schema-valid If-Match that is not the current
# ETag is a 412, by design too. A schema-valid checkout meets the customer's cart: empty (400), or
# holding more than is in stock (409).
REFUSED_BY_DATA = {
    "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409", "412", "429"]},
}
CONFIG = SchemathesisConfig.from_dict({
    "operations": [
        {"include-path": "/api/internal/products/{sku}/stock/", "include-method": "POST", "checks": REFUSED_BY_DATA},
        {"include-path": "/api/cart/items/{sku}/", "include-method": "PUT", "checks": REFUSED_BY_DATA},
        {"include-path": "/api/cart/items/{sku}/", "include-method": "DELETE", "checks": REFUSED_BY_DATA},
        {"include-path": "/api/cart/", "include-method": "DELETE", "checks": REFUSED_BY_DATA},
        {"include-path": "/api/internal/products/{sku}/draft/", "include-method": "PUT", "checks": REFUSED_BY_DATA},
        {"include-path": "/api/orders/", "include-method": "POST", "checks": REFUSED_BY_DATA},
        # A schema-valid date range can still end before it starts: 400 naming `until`.
        {"include-path": "/api/internal/exports/products.csv", "include-method": "GET", "checks": REFUSED_BY_DATA},
        {"include-path": "/api/internal/exports/orders.csv", "include-method": "GET", "checks": REFUSED_BY_DATA},
    ],
})
FUZZ = hypothesis_settings(
    max_examples=100, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def catalog(dynamodb, redis_clean, settings) -> None:
    """Something to find, and limits high enough that the fuzzer tests the API, not the throttle."""
    settings.THROTTLE_ANON_PER_MINUTE = 10**9
    settings.THROTTLE_CACHE_FILLS_PER_MINUTE = 10**9
    settings.THROTTLE_SEARCH_PER_MINUTE = settings.THROTTLE_SEARCH_FILLS_PER_MINUTE = 10**9
    settings.THROTTLE_RATES = {scope: 10**9 for scope in settings.THROTTLE_RATES}
    tools = Category.objects.create(slug="tools", name="Tools")
    Warehouse.objects.create(code="AMS1", name="Amsterdam")
    for n in range(3):
        product = services.product_create(sku=f"SKU-{n}", name=f"Product {n}", category=tools)
        services.price_set(product=product, currency="EUR", amount=Decimal("9.99"))
    drain(5)


def _token_with_a_cart(user, sku: str) -> str:
    """The user's token; their cart holds two of ``sku``, in stock, so that a checkout can succeed."""
    services.stock_adjust(product=Product.objects.get(sku=sku), warehouse=Warehouse.objects.get(), delta=10)
    cart_line_set(user_id=user.pk, sku=sku, quantity=2)
    return Token.objects.create(user=user).key


@pytest.fixture
def staff_token(catalog) -> str:
    """A superuser with something in stock in their cart."""
    return _token_with_a_cart(get_user_model().objects.create_superuser("fuzzer", password="x"), "SKU-0")


def _fuzz_test(strategy, name: str, calls: Counter[str], headers: dict[str, str] | None):
    @FUZZ
    @given(case=strategy)
    def run(case) -> None:
        calls[name] += 1
        case.call_and_validate(checks=ALL_CHECKS, headers=headers)

    return run


def fuzz(headers: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Every operation of the schema this caller is served, positive then negative examples.

    Driven by hand rather than through ``schemathesis.pytest``: its lazy fixture loader does not
    run under pytest 9, and the staff schema needs a token from the test database.
    """
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG, headers=headers or {})
    operations, failures = [], []
    calls: Counter[str] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations.append(f"{operation.method.upper()} {operation.path}")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            # A cursor is HMAC-signed: a schema-valid string is still not one the API handed out.
            fixed = {"cursor": encode_cursor("SKU-0")} if mode.is_positive and operation.path == LISTING else None
            if mode.is_positive and operation.path == SEARCH:
                fixed = {"cursor": encode_offset(1)}

            run = _fuzz_test(operation.as_strategy(generation_mode=mode, query=fixed), operations[-1], calls, headers)
            try:
                run()
            except Unsatisfiable:
                assert not mode.is_positive, operation  # nothing to get wrong: no parameters, no body
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all are reported, then the test fails
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    # Each operation with anything to vary got its 100 positive and 100 negative examples.
    varied = [name for name in operations if "{" in name or name.startswith(("PUT", "POST"))]
    assert all(calls[name] >= 2 * FUZZ.max_examples for name in varied), calls
    return operations, failures


@pytest.mark.proof
def test_public_api_as_anonymous(catalog):
    operations, failures = fuzz()
    assert sorted(operations) == [
        "GET /api/categories/", "GET /api/categories/{slug}/products/", "GET /api/products/",
        "GET /api/products/{sku}/",
    ]
    assert failures == [], "\n\n".join(failures)


@pytest.mark.proof
@pytest.mark.timeout(900)  # every operation, 200 examples each: minutes on a busy machine
def test_whole_api_with_a_staff_token(staff_token):
    operations, failures = fuzz({"Authorization": f"Token {staff_token}"})
    assert len(operations) == 19, operations
    assert failures == [], "\n\n".join(failures)


@pytest.fixture
def customer_token(catalog) -> str:
    """A customer (not staff) with something in stock in their cart."""
    return _token_with_a_cart(get_user_model().objects.create_user("shopper", password="x"), "SKU-1")


@pytest.mark.proof
def test_customer_api_with_a_customer_token(customer_token):
    operations, failures = fuzz({"Authorization": f"Token {customer_token}"})
    assert not [name for name in operations if "/api/internal/" in name]  # the staff API stays unlisted
    customer = {"GET /api/cart/", "PUT /api/cart/items/{sku}/", "POST /api/orders/", "GET /api/orders/{order_id}/"}
    assert customer <= set(operations)
    assert failures == [], "\n\n".join(failures)
