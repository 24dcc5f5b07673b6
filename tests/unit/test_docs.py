"""The front page and the documentation site's generated parts. ``make docs-check`` builds the site
strictly (links and anchors between its pages); the README is read on GitHub and is not part of
that build, so its links are checked here, and so is how the performance pages cut the bench report
into sections."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from devtools.docs_bench import MARKER, on_page_markdown, report_parts

BASE_DIR = Path(__file__).resolve().parent.parent.parent
LINK = re.compile(r"\]\((?!https?://|#)(?P<path>[^)#\s]+)(?:#[^)]*)?\)")

REPORT = """# Hybridsite bench (full run)

Machine: two CPUs.

## Read paths

| path | p50 µs |
|---|---:|
| hit | 188 |

## Lag over time

```
## not a heading: inside a fenced block
```

## Ratios

- hit vs floor: 0.88x
"""


def test_every_relative_link_of_the_readme_names_a_file_of_the_repository() -> None:
    readme = (BASE_DIR / "README.md").read_text(encoding="utf-8")
    paths = {match["path"] for match in LINK.finditer(readme)}
    assert "docs/index.md" in paths  # the check reads links at all
    assert sorted(path for path in paths if not (BASE_DIR / path).exists()) == []


def test_the_report_is_cut_at_its_headings_and_not_inside_fenced_blocks() -> None:
    whole, opening, sections = report_parts(REPORT)
    assert not whole.startswith("# ")
    assert opening == "Machine: two CPUs."
    assert list(sections) == ["Read paths", "Lag over time", "Ratios"]
    assert "## not a heading" in sections["Lag over time"]
    assert sections["Read paths"].endswith("| hit | 188 |")


class _File:
    src_path = "performance/x.md"


class _Page:
    file = _File()


@pytest.fixture
def config(tmp_path: Path) -> dict[str, str]:
    """A project whose committed report is ``REPORT``."""
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "latest.md").write_text(REPORT, encoding="utf-8")
    return {"config_file_path": str(tmp_path / "mkdocs.yml")}


def test_a_page_marker_becomes_the_section_of_the_committed_report(config: dict[str, str]) -> None:
    page = "# Read paths\n\n<!-- bench: Read paths -->\n\n<!-- bench: run -->\n"
    out = on_page_markdown(page, page=_Page(), config=config, files=None)
    assert "| hit | 188 |" in out and "Machine: two CPUs." in out and "<!--" not in out
    assert on_page_markdown("<!-- bench: all -->", page=_Page(), config=config, files=None).count("## ") == 4


def test_a_marker_naming_no_section_is_a_warning_that_fails_the_strict_build(
    config: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.bench"):
        out = on_page_markdown("<!-- bench: Backfill -->", page=_Page(), config=config, files=None)
    assert out == ""
    assert [record.name for record in caplog.records] == ["mkdocs.plugins.bench"]
    assert "Backfill" in caplog.records[0].getMessage()


def test_a_marker_may_name_another_kept_report(config: dict[str, str]) -> None:
    scale = "# Scale\n\n## Cost as the catalog grows (make bench SCALE=N)\n\n| figure | N = 10 |\n| seed | 5 |"
    (Path(config["config_file_path"]).parent / "bench" / "results" / "scale.md").write_text(scale, encoding="utf-8")
    marker = "<!-- bench scale.md: Cost as the catalog grows -->"
    out = on_page_markdown(marker, page=_Page(), config=config, files=None)
    assert out.endswith("| seed | 5 |") and "<!--" not in out


def test_an_optional_marker_says_the_kept_run_predates_its_section(
    config: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mkdocs.plugins.bench"):
        absent = on_page_markdown("<!-- bench: Backfill? -->", page=_Page(), config=config, files=None)
        present = on_page_markdown("<!-- bench: Ratios? -->", page=_Page(), config=config, files=None)
    assert caplog.records == []
    assert "predates" in absent and "Hybridsite bench (full run)" in absent and "“Backfill”" in absent
    assert present == "- hit vs floor: 0.88x"


PERFORMANCE = BASE_DIR / "docs" / "performance"
# The cost page's tables are AWS's list prices and the arithmetic on them, not measurements.
PRICED = {"cost.md"}


def test_no_performance_page_copies_a_figure_table_by_hand() -> None:
    """A table with right-aligned (figure) columns on a performance page comes from the bench's kept
    results through a marker, never typed in: a new run would leave a typed copy behind."""
    typed = {
        page.name: [line for line in page.read_text(encoding="utf-8").splitlines() if re.match(r"^\|[-|: ]*-:", line)]
        for page in PERFORMANCE.glob("*.md") if page.name not in PRICED
    }
    assert {name: lines for name, lines in typed.items() if lines} == {}
    assert any("<!-- bench" in page.read_text(encoding="utf-8") for page in PERFORMANCE.glob("*.md"))


def test_each_optional_marker_names_a_section_the_bench_prints() -> None:
    """An optional marker would hide a renamed section; it must name a heading some bench module writes."""
    printed = "\n".join(path.read_text(encoding="utf-8") for path in (BASE_DIR / "bench").glob("*.py"))
    optional = [
        match["name"] for page in PERFORMANCE.glob("*.md")
        for match in MARKER.finditer(page.read_text(encoding="utf-8")) if match["optional"]
    ]
    assert optional, "no optional marker: drop this test or the syntax"
    assert [name for name in optional if f'"## {name}' not in printed] == []
