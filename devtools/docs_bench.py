"""MkDocs hook: the performance pages show the tables of the last `make bench` as
``bench/results/latest.md`` holds them, so a new run updates the documentation and no figure of
it is copied by hand.

A line ``<!-- bench: all -->`` in a page becomes the whole report but its title;
``<!-- bench: run -->`` its opening paragraphs (machine, data, duration); ``<!-- bench: <heading> -->``
the body of the report's ``## <heading>`` section (the first whose heading starts with that text).
A marker that finds nothing is a warning, so ``mkdocs build --strict`` fails when the report's
sections change under the pages."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

REPORT = Path("bench") / "results" / "latest.md"
MARKER = re.compile(r"^<!-- bench: (?P<name>.+?) -->$", re.MULTILINE)

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


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if not MARKER.search(markdown):
        return markdown
    path = Path(config["config_file_path"]).parent / REPORT
    whole, opening, sections = report_parts(path.read_text(encoding="utf-8"))

    def part(match: re.Match[str]) -> str:
        name = match["name"]
        if name == "all":
            return whole
        if name == "run":
            return opening
        found = [body for heading, body in sections.items() if heading.startswith(name)]
        if not found:
            log.warning("%s: %s has no section '## %s...'", page.file.src_path, REPORT, name)
            return ""
        return found[0]

    return MARKER.sub(part, markdown)
