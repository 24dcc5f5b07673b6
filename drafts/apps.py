from django.apps import AppConfig


class DraftsConfig(AppConfig):
    name = "drafts"
    default_auto_field = "django.db.models.BigAutoField"
    dynamodb_tables = "drafts.tables.TABLES"

    def ready(self) -> None:
        from writeback import registry

        from .tables import Draft
        from .writeback import apply_draft_change, resync_drafts

        registry.register(model=Draft, apply=apply_draft_change, resync=resync_drafts)
