"""The operator's kit against a real scrape: /metrics passes Prometheus's own linter, and every
query of the dashboard and the alert rules names only metrics the app exports (or that the rules
record)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from catalog.models import Product
from hybridsite import heartbeat
from projections import follow
from tests.monitoring import MONITORING, promtool, rules

pytestmark = pytest.mark.django_db

# What a PromQL identifier can be besides a metric: operators and modifiers (functions and
# aggregations are told by the parenthesis that follows them).
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}


@pytest.fixture
def scrape(staff_client: Client, product: Product) -> str:
    """A scrape after a read of each kind (a miss, a hit, a 404), a replication heartbeat and one
    followed by cache_follow, so the labelled and the replication families show."""
    heartbeat.heartbeat_write()
    follow.apply(follow.Changes(heartbeat=time.time()))
    for path in (f"/api/products/{product.sku}/", f"/api/products/{product.sku}/", "/api/products/NO-SUCH-SKU/"):
        assert staff_client.get(path).status_code in (200, 404)
    response = staff_client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def metric_names(expr: str) -> set[str]:
    """The metrics a PromQL expression selects: label matchers, strings, ranges and grouping
    clauses taken out, then every identifier that is neither a keyword nor called."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = re.findall(r"(?<![\w.$:])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()", expr)
    return {name for name in names if name not in KEYWORDS}


def dashboard_queries() -> Iterator[str]:
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            yield target["expr"]


def test_the_name_reader_finds_metrics_and_nothing_else() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{le="0.1",x=~"b|c"}[$__rate_interval])))'
        " / on (slo) group_left () ns:b:ratio offset 5m > bool 2 and max without (i) (c_total)"
    ) == {"a_bucket", "ns:b:ratio", "c_total"}


def test_promtool_finds_no_problem_in_a_scrape(scrape: str) -> None:
    for family in ("hybridsite_read_seconds", "hybridsite_store_call_seconds", "hybridsite_writeback_parked"):
        assert f"# TYPE {family} " in scrape
    checked = subprocess.run([promtool(), "check", "metrics"], input=scrape, capture_output=True, text=True, timeout=60)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, ""), scrape


def test_every_query_names_a_metric_the_app_exports(scrape: str) -> None:
    exported = {sample.name for family in text_string_to_metric_families(scrape) for sample in family.samples}
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    queries = {"dashboard": list(dashboard_queries()), "rules": [rule["expr"] for rule in rules()]}
    assert len(queries["dashboard"]) >= 15
    for source, exprs in queries.items():
        named = {name for expr in exprs for name in metric_names(expr)}
        assert named, source
        assert named - exported - recorded == set(), (source, sorted(exported))
