"""The CDK app: ``cdk synth`` / ``cdk deploy`` run ``python -m infra.app`` (see ``infra/cdk.json``).

The tables come from the apps' models, so Django is set up first: with the project's settings and,
where they are not set, placeholders for the three values the settings need to import (nothing
connects at synth).
"""

from __future__ import annotations

import os
from typing import Any

import aws_cdk as cdk

from .config import Config

PLACEHOLDERS = {
    "DATABASE_URL": "postgresql://synth@127.0.0.1:9/synth", "REDIS_URL": "redis://127.0.0.1:9/0", "SECRET_KEY": "synth",
}


def setup_django() -> None:
    import django

    for name, value in PLACEHOLDERS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hybridsite.settings")
    django.setup(set_prefix=False)


def build(app: cdk.App, *, checks: bool = True) -> cdk.Stack:
    """The stack, with cdk-nag's packs on the app unless told otherwise; Django must be set up."""
    from writeback.registry import registered

    from .nag import checked
    from .stack import HybridsiteStack
    from .tables import base_name, table_specs

    config = Config.from_context(app.node.try_get_context)
    stack = HybridsiteStack(
        app, "Hybridsite", config=config, tables=table_specs(),
        writeback_tables=[base_name(w.model) for w in registered()],
        env=cdk.Environment(region=config.region) if config.region else None,
        description="Hybridsite: web, workers, the write-back, Aurora PostgreSQL, ElastiCache, DynamoDB",
    )
    return checked(app, stack) if checks else stack


def synthesized(app: cdk.App, *, checks: bool = True) -> tuple[Any, dict[str, Any]]:
    """The stack and its template, synthesized (a finding of cdk-nag not acknowledged raises)."""
    stack = build(app, checks=checks)
    return stack, app.synth().get_stack_by_name(stack.stack_name).template


def main() -> None:
    setup_django()
    app = cdk.App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
