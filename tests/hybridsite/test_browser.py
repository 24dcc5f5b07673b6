"""A real browser (Debian's chromium, headless) through what a new user does first: log in to the
admin, open the product list, a product and the report, then the API docs. Every stylesheet, script
and image must load and the console must stay free of errors. Screenshots go to the test's temp
folder (printed), to look at."""

from __future__ import annotations

import os
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests.factories import CategoryFactory, PriceFactory, ProductFactory, StockLevelFactory, WarehouseFactory

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
    kitchen = CategoryFactory(slug="kitchen", name="Kitchen")
    ams = WarehouseFactory(code="AMS1", name="Amsterdam")
    kettle = ProductFactory(sku="KETTLE-1", name="Steel Kettle", category=kitchen)
    PriceFactory(product=kettle, currency="EUR", amount=Decimal("19.99"))
    StockLevelFactory(product=kettle, warehouse=ams, quantity=237)
    ProductFactory(sku="MUG-1", name="Blue Mug", category=kitchen)
    get_user_model().objects.create_superuser("admin", password="a-long-test-password")
    return {"product_id": str(kettle.pk)}


def test_a_new_user_walks_through_admin_and_docs(web, catalog, tmp_path, redis_clean):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            watch = Watch(page)

            def visit(name: str, url: str | None = None) -> None:
                if url:
                    page.goto(f"{web.url}{url}", wait_until="networkidle")
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

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
            assert page.locator("#result_list tbody tr").count() == 2
            page.click("text=KETTLE-1")
            page.wait_for_load_state("networkidle")
            visit("product")
            assert "KETTLE-1 at AMS1" in page.content()

            visit("report", "/admin/catalog/product/report/")
            assert page.locator("#stock-by-warehouse").is_visible()

            page.goto(f"{web.url}/api/docs/", wait_until="networkidle")
            page.wait_for_selector(".opblock", timeout=15_000)
            visit("docs")
            assert page.locator(".opblock").count() >= 5  # staff session: the internal API too

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
