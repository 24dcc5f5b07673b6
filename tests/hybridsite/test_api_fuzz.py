"""schemathesis against /api/schema/: every operation a caller can see, with every check schemathesis
has and its own expected statuses (412 aside, for operations that take If-Match). Every caller gets
the public reads and the customer API; a staff token gets the internal API and the drafts too.

Each operation gets 100 positive and 100 negative examples from the caller it is for: the public
reads anonymously, the cart and orders with a customer's token, the internal API with a staff
token. The other callers send each operation they see 10 and 10: the public reads ignore
credentials (the same code answers), the customer API answers an anonymous caller 401 whatever
the input, and staff reach the customer API through the code a customer does."""

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
from projections.cursors import encode_cursor, encode_offset, encode_order_cursor
from projections.registry import order_key
from projections.relay import drain

# 800 to 2,000 requests per caller: a minute or less on an idle machine, more on a busy one.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]

load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())
LISTING = "/api/categories/{slug}/products/"
# schemathesis's own expectations, with one exception: a schema-valid If-Match that is not the
# cart's (or draft's) current ETag is refused with 412, HTTP's own answer to a stale precondition.
ACCEPTED = SchemathesisConfig().projects.default.checks.positive_data_acceptance.expected_statuses
STALE_IF_MATCH = {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "412"]}}
ORDERS = "/api/orders/"
HISTORY = "/api/internal/products/{sku}/history/"
SEARCH = "/api/products/"
FUZZ = hypothesis_settings(
    max_examples=100, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck),
)
SEEN = hypothesis_settings(FUZZ, max_examples=10)
"""For an operation another caller fuzzes in full: what this caller's credentials change is shown."""
ANONYMOUS, CUSTOMER, STAFF = "anonymous", "customer", "staff"


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


def _fuzz_test(strategy, name: str, calls: Counter[str], headers: dict[str, str] | None, examples):
    @examples
    @given(case=strategy)
    def run(case) -> None:
        calls[name] += 1
        case.call_and_validate(checks=ALL_CHECKS, headers=headers)

    return run


def signed_cursors(token: str | None) -> dict[str, dict[str, str]]:
    """A cursor is HMAC-signed (and an order cursor bound to its customer): a schema-valid string is
    still not one the API handed out, so positive examples send one it did."""
    cursors = {
        # A history cursor is bound to its SKU, which the fuzzer varies: the first page (an empty cursor).
        LISTING: {"cursor": encode_cursor("SKU-0")}, HISTORY: {"cursor": ""},
        SEARCH: {"cursor": encode_offset(1)},
    }
    if token is not None:
        user_id = Token.objects.get(key=token).user_id
        cursors[ORDERS] = {"cursor": encode_order_cursor(user_id, order_key(user_id, 1)["sk"])}
    return cursors


def caller_of(operation) -> str:
    """Whom an operation is for: anyone (no security requirement), staff (the internal API), or a
    customer."""
    if operation.path.startswith("/api/internal/"):
        return STAFF
    security = operation.definition.raw.get("security", [])
    return ANONYMOUS if not any(requirement for requirement in security) else CUSTOMER


def fuzz(caller: str, headers: dict[str, str] | None = None) -> list[str]:
    """Every operation of the schema this caller is served, positive then negative examples: in
    full for the operations that are for this caller (``caller_of``), ``SEEN`` for the others.

    Driven by hand rather than through ``schemathesis.pytest``: its lazy fixture loader does not
    run under pytest 9, and the staff schema needs a token from the test database.
    """
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application, headers=headers or {})
    conditional = [
        operation.definition.raw["operationId"] for operation in (result.ok() for result in schema.get_all_operations())
        if any(parameter.name == "If-Match" for parameter in operation.headers)
    ]
    exceptions = [{"include-operation-id": conditional, "checks": STALE_IF_MATCH}] if conditional else []
    config = SchemathesisConfig.from_dict({"operations": exceptions})
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=config, headers=headers or {})
    operations, failures = [], []
    calls: Counter[str] = Counter()
    token = (headers or {}).get("Authorization", "").removeprefix("Token ") or None
    cursors = signed_cursors(token)
    expected: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        operations.append(f"{operation.method.upper()} {operation.path}")
        examples = FUZZ if caller_of(operation) == caller else SEEN
        expected[operations[-1]] = 2 * examples.max_examples
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fixed = cursors.get(operation.path) if mode.is_positive and operation.method.upper() == "GET" else None
            strategy = operation.as_strategy(generation_mode=mode, query=fixed)
            run = _fuzz_test(strategy, operations[-1], calls, headers, examples)
            try:
                run()
            except Unsatisfiable:
                assert not mode.is_positive, operation  # nothing to get wrong: no parameters, no body
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all are reported, then the test fails
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    assert failures == [], "\n\n".join(failures)
    # Each operation with anything to vary got its examples (100 and 100 for this caller's own).
    varied = [name for name in operations if "{" in name or name.startswith(("PUT", "POST"))]
    assert [name for name in varied if calls[name] < expected[name]] == [], calls
    assert sum(examples == 2 * FUZZ.max_examples for examples in expected.values()) > 0  # some are this caller's
    return operations


@pytest.mark.proof
def test_public_api_as_anonymous(catalog):
    """The customer API is listed for everyone (answering 401 without credentials), the staff API
    for no one without its permissions."""
    operations = fuzz(ANONYMOUS)
    assert sorted(operations) == [
        "DELETE /api/cart/", "DELETE /api/cart/items/{sku}/", "GET /api/cart/", "GET /api/categories/",
        "GET /api/categories/{slug}/products/", "GET /api/orders/", "GET /api/orders/{order_id}/",
        "GET /api/products/", "GET /api/products/{sku}/", "POST /api/orders/", "PUT /api/cart/items/{sku}/",
    ]


@pytest.mark.proof
def test_whole_api_with_a_staff_token(staff_token):
    operations = fuzz(STAFF, {"Authorization": f"Token {staff_token}"})
    assert len(operations) == 20, operations


@pytest.fixture
def customer_token(catalog) -> str:
    """A customer (not staff) with something in stock in their cart."""
    return _token_with_a_cart(get_user_model().objects.create_user("shopper", password="x"), "SKU-1")


@pytest.mark.proof
def test_customer_api_with_a_customer_token(customer_token):
    operations = fuzz(CUSTOMER, {"Authorization": f"Token {customer_token}"})
    assert not [name for name in operations if "/api/internal/" in name]  # the staff API stays unlisted
    customer = {
        "GET /api/cart/", "PUT /api/cart/items/{sku}/", "POST /api/orders/", "GET /api/orders/",
        "GET /api/orders/{order_id}/",
    }
    assert customer <= set(operations)
