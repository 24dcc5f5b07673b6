"""What a new user meets first: a home page, the admin with its styles, readable labels, offline
API docs, and static files served by the app itself (gunicorn serves none)."""

from __future__ import annotations

import re
import urllib.request
from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.factories import ProductFactory, StockLevelFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


class Assets(HTMLParser):
    """The scripts, stylesheets and images a page asks the browser to load."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.urls.append(values["src"])
        elif tag == "link" and values.get("rel") in ("stylesheet", "icon") and values.get("href"):
            self.urls.append(values["href"])
        elif tag == "img" and values.get("src"):
            self.urls.append(values["src"])


def assets_of(html: bytes) -> list[str]:
    parser = Assets()
    parser.feed(html.decode())
    return parser.urls


def test_the_home_page_points_to_the_admin_and_the_docs(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b'href="/admin/"' in response.content and b'href="/api/docs/"' in response.content


def test_view_site_leads_somewhere(admin_client):
    index = admin_client.get("/admin/")
    assert b'href="/"' in index.content  # "View site"
    assert Client().get("/").status_code == 200


def test_the_admin_names_the_project(client, admin_client):
    for page in (client.get("/admin/login/"), admin_client.get("/admin/")):
        assert b"Hybridsite administration" in page.content
        assert b"Django administration" not in page.content


def test_stock_rows_read_as_sku_and_warehouse(admin_client):
    product = ProductFactory(sku="KETTLE-1")
    StockLevelFactory(product=product, warehouse=WarehouseFactory(code="AMS1"), quantity=237)
    page = admin_client.get(f"/admin/catalog/product/{product.pk}/change/").content.decode()
    assert "KETTLE-1 at AMS1" in page
    assert not re.search(r"\d+@\d+: 237", page)


def test_unknown_pages_outside_the_api_get_the_site_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content and b"Hybridsite" in response.content


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_api_docs_load_nothing_from_elsewhere(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn." not in html and "//unpkg" not in html and "jsdelivr" not in html
    urls = assets_of(response.content)
    assert urls, html
    for url in urls:
        assert url.startswith("/static/"), url
        assert client.get(url).status_code == 200, url


def test_gunicorn_serves_the_admin_styles(web):
    """Under gunicorn, as under `make run`: the login page's CSS and JS load, with hashed names
    cached for long."""
    with urllib.request.urlopen(f"{web.url}/admin/login/") as response:
        urls = assets_of(response.read())
    stylesheets = [url for url in urls if url.endswith(".css")]
    assert stylesheets, urls
    for url in urls:
        with urllib.request.urlopen(f"{web.url}{url}") as response:
            assert response.status == 200, url
            if url.endswith(".css"):
                assert response.headers["Content-Type"].startswith("text/css")
                assert "max-age=315360000" in response.headers["Cache-Control"]
