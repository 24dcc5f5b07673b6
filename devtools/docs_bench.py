"""MkDocs hook: the performance pages show the tables of the bench's kept results (``bench/results/``)
as the bench wrote them, so a new run updates the documentation and no figure is copied by hand.

A line ``<!-- bench: all -->`` in a page becomes the whole report of the last ``make bench``
(``bench/results/latest.md``) but its title; ``<!-- bench: run -->`` its opening paragraphs
(machine, data, duration); ``<!-- bench: <heading> -->`` the body of the report's ``## <heading>``
section (the first whose heading starts with that text). ``<!-- bench scale.md: <heading> -->``
reads another report the bench keeps there (``make bench SCALE=N`` writes ``scale.md``).

A marker that finds nothing is a warning, so ``mkdocs build --strict`` fails when the report's
sections change under the pages. A marker ending in ``?`` names a section that the bench prints
but the kept run may predate: it becomes a note saying so until a run that has it is committed
(``tests/unit/test_docs.py`` checks that some bench module prints each such heading)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

RESULTS = Path("bench") / "results"
REPORT = "latest.md"
MARKER = re.compile(
    r"^<!-- bench(?: (?P<report>[\w.-]+\.md))?: (?P<name>.+?)(?P<optional>\?)? -->$", re.MULTILINE
)

# MkDocs counts this logger's warnings: `--strict` turns them into a failed build.
log = logging.getLogger("mkdocs.plugins.bench")


def report_parts(text: str) -> tuple[str, str, dict[str, str]]:
    """The report without its title, its opening paragraphs, and each ``##`` section's body by heading
    (a ``##`` inside a fenced block is text, not a heading)."""
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    opening: list[str] = []
    sections: dict[str, list[str]] = {}
    current = opening
    fenced = False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
            continue
        current.append(line)
    return "\n".join(lines).strip(), "\n".join(opening).strip(), {h: "\n".join(b).strip() for h, b in sections.items()}


def _title(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first.removeprefix("# ").strip()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if not MARKER.search(markdown):
        return markdown
    results = Path(config["config_file_path"]).parent / RESULTS
    texts: dict[str, str] = {}

    def part(match: re.Match[str]) -> str:
        report, name = match["report"] or REPORT, match["name"]
        if report not in texts:
            path = results / report
            if not path.exists():
                log.warning("%s: %s does not exist", page.file.src_path, RESULTS / report)
                return ""
            texts[report] = path.read_text(encoding="utf-8")
        whole, opening, sections = report_parts(texts[report])
        if name == "all":
            return whole
        if name == "run":
            return opening
        found = [body for heading, body in sections.items() if heading.startswith(name)]
        if found:
            return found[0]
        if match["optional"]:
            return (
                f"*The run kept in `{RESULTS / report}` ({_title(texts[report])}) predates this measurement:"
                f" `make bench` prints it under “{name}”, and this page shows it once such a run is committed.*"
            )
        log.warning("%s: %s has no section '## %s...'", page.file.src_path, RESULTS / report, name)
        return ""

    return MARKER.sub(part, markdown)
