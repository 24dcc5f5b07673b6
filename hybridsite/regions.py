"""Projections are written in the home region only (docs/architecture/regions.md).

Global tables (multi-Region eventual consistency) check a write's condition against the local copy
alone and settle conflicts between regions by last writer wins: the version condition
(``version < :v``) keeps its meaning only while one region writes. So a process of a replica region
that would write projections (the relay, the backfill, a repair) is refused at start, with Django's
check message, and the projector refuses every projection write there too (a misconfigured process
that started anyway, or a reader's miss).
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.management.base import SystemCheckError


def is_home_region() -> bool:
    return settings.HYBRIDSITE_REGION == settings.HOME_REGION


def home_region_errors(*, process: str) -> list[checks.CheckMessage]:
    """The check a projection writer runs at start: an error in any region but the home region."""
    if is_home_region():
        return []
    return [checks.Error(
        f"{process} writes projections, and this process is in replica region {settings.HYBRIDSITE_REGION}",
        hint=(
            f"projections are written in the home region only: run {process} with "
            f"HYBRIDSITE_REGION={settings.HOME_REGION}; the replica's tables receive them by replication"
        ),
        id="projections.E001",
    )]


def require_home_region(*, process: str) -> None:
    """Stop ``process`` at start outside the home region (a management command prints the message
    and exits 1)."""
    errors = home_region_errors(process=process)
    if errors:
        raise SystemCheckError("\n".join(str(error) for error in errors))


def replica_write_refusal(*, table: str) -> str | None:
    """Why a version-conditioned write into ``table`` is refused here; None in the home region."""
    if is_home_region():
        return None
    return (
        f"refused a version-conditioned write into {table} in replica region {settings.HYBRIDSITE_REGION}: "
        f"projections are written in the home region ({settings.HOME_REGION}) only"
    )
