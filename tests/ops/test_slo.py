"""SLOs: the histogram arithmetic, the history beat records, and the admin page over it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from ops import slo, tasks
from ops.models import SloSample
from ops.selectors import slo_report
from ops.services import slo_sample_record

SLO_PAGE = reverse("admin:ops_slosample_changelist")


def histogram(**cumulative: int) -> slo.Histogram:
    """``histogram(le_0_1=3, inf=4)``: cumulative counts by upper bound."""
    buckets = {
        key.removeprefix("le_").replace("_", ".") if key != "inf" else "+Inf": n for key, n in cumulative.items()
    }
    return slo.histogram(buckets)


class Fixed(Collector):
    """Families given up front, in a real registry: what the recorder would read from processes."""

    def __init__(self, *families) -> None:
        self.families = families

    def collect(self):
        return list(self.families)


def registry_with(ok: list[tuple[str, int]], errors: list[tuple[str, int]] = (), lag: list[tuple[str, int]] = ()):
    read = HistogramMetricFamily("hybridsite_read_seconds", "reads", labels=["route", "served_from", "outcome"])
    read.add_metric(["product-detail", "cache", "ok"], buckets=ok, sum_value=0)
    if errors:
        read.add_metric(["product-detail", "none", "error"], buckets=list(errors), sum_value=0)
    families = [read]
    if lag:
        projection = HistogramMetricFamily("hybridsite_projection_lag_seconds", "lag")
        projection.add_metric([], buckets=list(lag), sum_value=0)
        families.append(projection)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed(*families))
    return registry


# --- arithmetic -----------------------------------------------------------------------------------


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    item = histogram(le_0_1=50, le_0_2=90, le_0_4=100, inf=100)
    assert slo.quantile(item, 0.5) == pytest.approx(0.1)
    assert slo.quantile(item, 0.95) == pytest.approx(0.3)  # halfway through (0.2, 0.4]
    assert slo.quantile(histogram(le_0_1=1, inf=3), 0.95) == pytest.approx(0.1)  # in +Inf: the last bound
    assert slo.quantile(histogram(inf=0), 0.95) is None


def test_count_above_a_threshold_between_bounds() -> None:
    item = histogram(le_0_1=50, le_0_2=90, le_0_4=100, inf=100)
    assert slo.count_above(item, 0.2) == pytest.approx(10)
    assert slo.count_above(item, 0.3) == pytest.approx(5)
    assert slo.count_above(item, 5.0) == 0
    assert slo.count_above(histogram(le_1=3, inf=5), 2.0) == 2  # beyond the last bound: the +Inf ones


def test_a_counter_that_went_down_was_reset_and_counts_whole() -> None:
    before = {"read": histogram(le_0_1=8, inf=10), "read_errors": 4}
    later = {"read": histogram(le_0_1=9, inf=13), "read_errors": 5}
    assert slo.totals_delta(later, before) == {"read": histogram(le_0_1=1, inf=3), "read_errors": 1}
    restarted = {"read": histogram(le_0_1=2, inf=2), "read_errors": 0}
    assert slo.totals_delta(restarted, later) == restarted


def test_the_registry_is_added_up_over_labels_with_read_errors_apart() -> None:
    registry = registry_with(
        ok=[("0.1", 8), ("+Inf", 10)], errors=[("0.1", 1), ("+Inf", 2)], lag=[("0.5", 3), ("+Inf", 3)]
    )
    totals = slo.registry_totals(registry)
    assert totals == {
        "read": histogram(le_0_1=9, inf=12),
        "read_errors": 2,
        "projection_lag": histogram(le_0_5=3, inf=3),
    }


# --- the history and the page ---------------------------------------------------------------------


@pytest.mark.django_db
def test_samples_store_the_difference_and_old_ones_go(settings) -> None:
    now = timezone.now()
    old = SloSample.objects.create(at=now - timedelta(days=settings.SLO_KEEP_DAYS, minutes=1))
    slo_sample_record(at=now - timedelta(minutes=1), registry=registry_with(ok=[("0.1", 10), ("+Inf", 10)]))
    second = slo_sample_record(at=now, registry=registry_with(ok=[("0.1", 14), ("+Inf", 15)]))
    assert second.delta == {"read": histogram(le_0_1=4, inf=5), "read_errors": 0}
    assert not SloSample.objects.filter(pk=old.pk).exists()


@pytest.mark.django_db
def test_budget_and_burn_rate_over_the_hour_and_the_day(settings) -> None:
    """100 reads in the hour, 10 of them slower than the objective: twice the 5 % budget. The day
    adds 900 fast reads earlier: 1 % slow, a fifth of its budget."""
    settings.SLO_READ_P95_MS = 100
    now = timezone.now()
    early = {"read": histogram(le_0_1=900, inf=900), "read_errors": 0}
    SloSample.objects.create(at=now - timedelta(hours=5), delta=early)
    recent = {"read": histogram(le_0_1=90, le_0_25=100, inf=100), "read_errors": 3}
    SloSample.objects.create(at=now - timedelta(minutes=10), delta=recent)

    reports = {report.objective.key: report for report in slo_report(now=now)}
    hour, day = reports["read_latency"].windows
    assert (hour.total, hour.bad) == (100, 10)
    assert hour.burn_rate == pytest.approx(2.0) and hour.budget_left == pytest.approx(-1.0) and hour.met is False
    assert (day.total, day.bad) == (1000, 10)
    assert day.burn_rate == pytest.approx(0.2) and day.budget_left == pytest.approx(0.8) and day.met is True

    errors_hour = reports["read_errors"].windows[0]
    assert errors_hour.value == pytest.approx(3.0)  # percent
    assert errors_hour.burn_rate == pytest.approx(0.03 / (settings.SLO_READ_ERROR_PERCENT / 100))
    assert sum(point is not None for _, point in hour.points) == 1  # one minute had reads
    assert not reports["writeback_lag"].windows[0].has_data


@pytest.mark.django_db
def test_the_page_is_for_staff_only(client: Client, staff_client: Client) -> None:
    login = f"{reverse('admin:login')}?next={SLO_PAGE}"
    assert (client.get(SLO_PAGE).status_code, client.get(SLO_PAGE).url) == (302, login)
    client.force_login(get_user_model().objects.create_user("customer", password="a-long-test-password"))
    assert client.get(SLO_PAGE).url == login
    assert staff_client.get(SLO_PAGE).status_code == 200
    assert staff_client.get(reverse("admin:ops_slosample_add")).status_code == 403  # beat writes the history


@pytest.mark.django_db
def test_real_reads_reach_the_page_through_beats_sample(client: Client, staff_client: Client, product) -> None:
    """Reads through the API, the beat task samples the host's registry, the page shows them."""
    tasks.slo_sample.apply()
    for _ in range(5):
        assert client.get("/api/products/SKU-1/").status_code == 200
    tasks.slo_sample.apply()
    latest = SloSample.objects.order_by("-at").first()
    assert latest.delta["read"]["count"] == 5

    response = staff_client.get(SLO_PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    latency = page.split('id="slo-read_latency"')[1].split('id="slo-read_errors"')[0]
    events = sum(delta.get("read", {}).get("count", 0) for delta in SloSample.objects.values_list("delta", flat=True))
    assert "<svg" in latency and f"<dd>{events} (" in latency  # the first sample holds the run's earlier reads
    writeback = page.split('id="slo-writeback_lag"')[1]
    assert "no data" in writeback
    assert "p95 ≤ 100 ms" in page


def test_histograms_with_other_bounds_still_add_up() -> None:
    """A deploy that changed the buckets: each histogram counts at the other's bounds as far as it knows."""
    total = slo.histogram_sum([histogram(le_0_1=2, inf=4), histogram(le_0_2=3, inf=3)])
    assert total == histogram(le_0_1=2, le_0_2=5, inf=7)
