"""A real browser (Debian's chromium, headless) through what a new user does first: log in to the
admin, open the product list, a product, the reports (stock and catalog, orders, abandoned carts,
pending drafts) and the SLO page, then the API docs. Every stylesheet, script and image must load
and the console must stay free of errors. Screenshots go to the test's temp folder (printed), to
look at; with ``UPDATE_SCREENSHOTS=1``, those the documentation shows (the reports, the SLO page,
the drift runs, a product's history and the API docs) also to ``docs/screenshots/`` (a plain run
leaves the repository as it is)."""

from __future__ import annotations

import math
import os
import shutil
import urllib.request
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from prometheus_client.utils import floatToGoString

from carts.models import CartCopy
from catalog import services
from catalog.models import Product
from drafts.models import DraftCopy
from ops import slo
from ops.drift_watch import drift_watch_run
from ops.instruments import READ_BUCKETS
from ops.models import SloSample
from ops.services import slo_sample_record
from projections.metrics import LAG_BUCKETS
from projections.projector import project
from tests.factories import CategoryFactory, PriceFactory, ProductFactory, StockLevelFactory, WarehouseFactory

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ASSET_TYPES = {"stylesheet", "script", "image", "font"}

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: `make test` installs Debian's package when run as root with apt-get; "
        "otherwise install `chromium` (or set CHROMIUM=/path/to/chromium)",
        allow_module_level=True,
    )


class Watch:
    """Everything a page asked for that did not arrive, and every console error."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        self.assets: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.problems.append(f"console: {message.text}"))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url} {request.failure}"))
        page.on("response", self._response)

    def _response(self, response) -> None:
        if response.request.resource_type in ASSET_TYPES:
            self.assets.append(response.url)
            if response.status >= 400:
                self.problems.append(f"{response.status}: {response.url}")


@pytest.fixture
def catalog() -> dict[str, str]:
    """A small shop: a category tree, four warehouses, products with prices and stock, a few low."""
    home = CategoryFactory(slug="home", name="Home")
    kitchen = CategoryFactory(slug="home-kitchen", name="Kitchen", parent=home)
    bath = CategoryFactory(slug="home-bath", name="Bath", parent=home)
    garden = CategoryFactory(slug="garden", name="Garden")
    tools = CategoryFactory(slug="tools", name="Tools")
    warehouses = [
        WarehouseFactory(code=code, name=name)
        for code, name in (("AMS1", "Amsterdam"), ("BER1", "Berlin"), ("LYS1", "Lyon"), ("MAD1", "Madrid"))
    ]
    kettle = ProductFactory(sku="KETTLE-1", name="Steel Kettle", category=kitchen)
    PriceFactory(product=kettle, currency="EUR", amount=Decimal("19.99"))
    StockLevelFactory(product=kettle, warehouse=warehouses[0], quantity=237)
    ProductFactory(sku="MUG-1", name="Blue Mug", category=kitchen)
    for n, category in enumerate([kitchen, kitchen, bath, bath, bath, garden, garden, tools, tools, tools, tools] * 2):
        product = ProductFactory(sku=f"ITEM-{n:03d}", name=f"{category.name} item {n}", category=category)
        for w, warehouse in enumerate(warehouses):
            StockLevelFactory(product=product, warehouse=warehouse, quantity=(n * 7 + w * 13) % (40 if n % 5 else 3))
    admin = get_user_model().objects.create_superuser("admin", password="a-long-test-password")
    # What the write-back consumer copies: a customer's cart left for two days, a draft being edited.
    now = timezone.now()
    customer = get_user_model().objects.create_user("ann", email="ann@example.com")
    CartCopy.objects.create(user=customer, version=1, lines={"KETTLE-1": 2},
                            updated_at=now - timedelta(days=2), expires_at=now + timedelta(days=12))
    kettle.refresh_from_db()  # its version as its stock left it: the draft can be published
    DraftCopy.objects.create(sku="KETTLE-1", user=admin, version=3, base_version=kettle.version,
                             changes={"name": "Steel kettle, 1.7 l"}, updated_at=now - timedelta(minutes=3))
    return {"product_id": str(kettle.pk)}


def _histogram(bounds: tuple[float, ...], total: int, share_at: list[float]) -> dict:
    """A histogram whose cumulative share at each bound is ``share_at`` (the last, +Inf, is 1)."""
    labels = [floatToGoString(bound) for bound in bounds] + ["+Inf"]
    return slo.histogram({label: round(total * share) for label, share in zip(labels, [*share_at, 1.0], strict=True)})


def a_day_of_history() -> None:
    """Samples as beat records them, for the day before the browser's own reads: a calm day with a
    slow spell half an hour ago and a lagging projection for a while in the afternoon."""
    now = timezone.now()
    samples = []
    for minute in range(1, 24 * 60):
        if minute > 60 and minute % 5:
            continue  # older than an hour: one sample per 5 minutes is enough to draw
        wave = (math.sin(minute / 37) + 1) / 2
        slow = 0.3 if 30 <= minute <= 45 else 0.01 + 0.02 * wave
        reads = 300 + int(200 * wave)
        fast = [share * (1 - slow) for share in (0.1, 0.4, 0.7, 0.8, 0.9, 0.95)]
        fast += [1 - slow, 1 - slow / 3, 1 - slow / 10, 1, 1, 1]  # slow: above 100 ms
        lagging = 600 <= minute <= 700
        lag_shares = [0.3, 0.6, 0.85, 0.95, 0.98, 0.99, 1, 1, 1, 1, 1, 1, 1] if not lagging else [
            0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 0.95, 1, 1, 1, 1, 1]
        samples.append(SloSample(at=now - timedelta(minutes=minute), delta={
            "read": _histogram(READ_BUCKETS, reads, fast),
            "read_errors": 2 if 35 <= minute <= 38 else 0,
            "projection_lag": _histogram(LAG_BUCKETS, 50 + int(30 * wave), lag_shares),
        }))
    SloSample.objects.bulk_create(samples)


def test_a_new_user_walks_through_admin_and_docs(web, catalog, tmp_path, redis_clean):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    # The SLO page's history: a day as beat would have sampled it, then a sample of real reads
    # through gunicorn (before the browser starts: Django's ORM refuses Playwright's event loop).
    a_day_of_history()
    for sku in ("KETTLE-1", "MUG-1", "KETTLE-1"):
        with urllib.request.urlopen(f"{web.url}/api/products/{sku}/", timeout=10) as response:
            assert response.status == 200
    slo_sample_record()
    kettle = Product.objects.get(pk=catalog["product_id"])  # two versions in its history
    project("product", kettle.pk)
    services.product_update(product=kettle, name="Steel Kettle, 1.7 l")
    project("product", kettle.pk)
    drift_watch_run(sample=50)  # one stored run for the drift page
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            watch = Watch(page)

            def visit(name: str, url: str | None = None) -> None:
                if url:
                    page.goto(f"{web.url}{url}", wait_until="networkidle")
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

            def keep(name: str) -> None:
                """The documentation shows it: into docs/screenshots/ (committed) when asked to."""
                if os.environ.get("UPDATE_SCREENSHOTS") == "1":
                    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(shots / f"{name}.png", DOCS_SCREENSHOTS / f"{name}.png")

            visit("home", "/")
            visit("login", "/admin/login/")
            page.fill("#id_username", "admin")
            page.fill("#id_password", "a-long-test-password")
            page.click("input[type=submit]")
            page.wait_for_load_state("networkidle")
            assert page.url == f"{web.url}/admin/"
            visit("index")
            assert "Hybridsite administration" in page.inner_text("#site-name")

            visit("products", "/admin/catalog/product/")
            assert page.locator("#result_list tbody tr").count() == 24
            page.click("text=KETTLE-1")
            page.wait_for_load_state("networkidle")
            visit("product")
            assert "KETTLE-1 at AMS1" in page.content()
            page.click("a.historylink")
            page.wait_for_load_state("networkidle")
            visit("product-history")
            assert page.locator("tr.product-version").count() == 2
            assert "name: Steel Kettle → Steel Kettle, 1.7 l" in page.locator("#product-versions").inner_text()
            keep("product-history")

            visit("report", "/admin/catalog/product/report/")
            assert page.locator("#stock-by-warehouse").is_visible()
            assert page.locator("#totals").inner_text().count("\n") >= 4
            assert page.locator("svg.bar-chart").count() == 3
            assert page.locator("#products-per-category svg rect.bar").count() == 3  # Home, Garden, Tools
            keep("report")

            visit("orders-report", "/admin/orders/order/report/")
            assert page.locator("#orders-per-day").is_visible() and page.locator("#demand").is_visible()

            visit("abandoned-carts", "/admin/carts/cartcopy/abandoned/")
            assert "39.98 EUR" in page.locator("#abandoned-carts").inner_text()  # 2 kettles, idle for 2 days
            keep("abandoned-carts")

            visit("pending-drafts", "/admin/drafts/draftcopy/pending/")
            assert page.locator("#pending-drafts tbody tr").count() == 1
            keep("pending-drafts")

            visit("slo", "/admin/ops/slosample/")
            assert page.locator(".slo").count() == 5
            assert page.locator("svg.chart polyline.chart-line").count() >= 6  # 3 objectives with data, 2 windows
            # The write-back's objective: "no data", or what consumers in this run's processes applied.
            assert "Write-back lag" in page.locator("#slo-writeback_lag").inner_text()
            assert "missed" in page.locator("#slo-read_latency").inner_text()  # the slow spell spent the hour's budget
            keep("slo")

            visit("drift", "/admin/ops/driftrun/")
            assert page.locator("#result_list tbody tr").count() == 1
            keep("drift")

            page.goto(f"{web.url}/api/docs/", wait_until="networkidle")
            page.wait_for_selector(".opblock", timeout=15_000)
            visit("api-docs")
            assert page.locator(".opblock").count() >= 5  # staff session: the internal API too
            keep("api-docs")

            # The admin's own stylesheet really applied: the header has its dark background.
            page.goto(f"{web.url}/admin/", wait_until="networkidle")
            background = page.eval_on_selector("#header", "element => getComputedStyle(element).backgroundColor")
            assert background not in ("rgba(0, 0, 0, 0)", "transparent"), background
        finally:
            browser.close()
    assert watch.assets, "no asset was loaded at all"
    elsewhere = [url for url in watch.assets if not url.startswith(f"{web.url}/")]
    assert elsewhere == []  # nothing from a CDN: the docs and the admin work offline
    assert any("/static/drf_spectacular_sidecar/" in url for url in watch.assets)
    assert watch.problems == []
    if os.environ.get("KEEP_SCREENSHOTS"):
        shutil.copytree(shots, os.environ["KEEP_SCREENSHOTS"], dirs_exist_ok=True)
