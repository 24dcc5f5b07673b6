"""The alert rules (ops/monitoring/rules.yml): valid for promtool, each alert fired and resolved by
promtool's unit tests, the burn-rate thresholds those of ops/slo.py's objectives, and a runbook
section for every alert."""

from __future__ import annotations

import re
import subprocess
from itertools import groupby
from pathlib import Path
from typing import Any

import yaml

from hybridsite.heartbeat import LAG_BUCKETS as REPLICATION_LAG_BUCKETS
from ops import slo
from ops.instruments import READ_BUCKETS
from projections.metrics import LAG_BUCKETS as PROJECTION_LAG_BUCKETS
from tests.monitoring import BASE_DIR, MONITORING, promtool, rules
from writeback.metrics import LAG_BUCKETS as WRITEBACK_LAG_BUCKETS

RULES = MONITORING / "rules.yml"
RUNBOOKS = BASE_DIR / "docs" / "operations" / "runbooks.md"
BUCKETS = {
    "read": READ_BUCKETS, "projection_lag": PROJECTION_LAG_BUCKETS, "writeback_lag": WRITEBACK_LAG_BUCKETS,
    "replication_lag": REPLICATION_LAG_BUCKETS,
}
# The SRE workbook's pairs: (long window, short window, factor of the budget).
BURNS = {"FastBurn": ("1h", "5m", 14.4), "SlowBurn": ("6h", "30m", 6.0)}


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def run(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rules() -> None:
    checked = run("check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_unit_tests_pass() -> None:
    tested = run("test", "rules", "rules_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_unit_tests_fail_when_the_alerts_always_fire(tmp_path: Path) -> None:
    """They assert quiet moments too: rules whose alerts fire on anything do not pass them."""
    broken = RULES.read_text()
    broken = re.sub(r"(- alert: \w+\n\s+expr:) (\|\n(?:\s{10}.*\n)+|.*\n)", r"\1 vector(1)\n", broken)
    assert broken.count("expr: vector(1)") == len(alerts())
    (tmp_path / "rules.yml").write_text(broken)
    (tmp_path / "rules_test.yml").write_text((MONITORING / "rules_test.yml").read_text())
    assert run("test", "rules", "rules_test.yml", cwd=tmp_path).returncode != 0


def test_each_alert_is_fired_then_resolved_by_a_unit_test() -> None:
    """Within one test's series: quiet, then firing, then resolved."""
    shown: set[str] = set()
    for test in yaml.safe_load((MONITORING / "rules_test.yml").read_text())["tests"]:
        moments: dict[str, list[tuple[int, bool]]] = {}
        for case in test["alert_rule_test"]:
            minutes = int(case["eval_time"].removesuffix("m"))
            moments.setdefault(case["alertname"], []).append((minutes, bool(case["exp_alerts"])))
        for name, seen in moments.items():
            if [firing for firing, _ in groupby(firing for _, firing in sorted(seen))] == [False, True, False]:
                shown.add(name)
    assert set(alerts()) - shown == set()


def test_the_burn_rate_alerts_follow_the_objectives() -> None:
    """Each objective's ratios count as bad what ops/slo.py counts (above a bucket bound equal to
    its threshold), and its alerts burn its own budget at the workbook's factors."""
    recorded = {(rule["labels"]["slo"], rule["record"]): rule["expr"] for rule in rules() if "record" in rule}
    found = alerts()
    for objective in slo.objectives():
        title = "".join(part.title() for part in objective.key.split("_"))
        for window in {window for long, short, _ in BURNS.values() for window in (long, short)}:
            expr = recorded[(objective.key, f"hybridsite:slo_errors:ratio_rate{window}")]
            assert f"[{window}]" in expr and slo.HISTOGRAMS[objective.source] in expr
            if objective.is_latency:
                bound = re.search(r'le="([^"]+)"', expr)
                assert bound and float(bound[1]) == objective.threshold, (objective.key, expr)
                assert objective.threshold in BUCKETS[objective.source]
            else:
                assert 'outcome="error"' in expr
        for speed, (long, short, factor) in BURNS.items():
            expr = found[f"{title}{speed}"]["expr"]
            limit = f"> ({factor:g} * {objective.allowed:g})"
            for window in (long, short):
                assert f'hybridsite:slo_errors:ratio_rate{window}{{slo="{objective.key}"}} {limit}' in expr, expr


def test_every_alert_has_a_runbook_section() -> None:
    lines = RUNBOOKS.read_text().splitlines()
    headings = {line.removeprefix("## ").strip() for line in lines if line.startswith("## ")}
    for name, rule in alerts().items():
        assert name in headings
        assert rule["annotations"]["runbook_url"] == f"docs/operations/runbooks.md#{name.lower()}"
