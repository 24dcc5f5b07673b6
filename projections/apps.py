from django.apps import AppConfig


class ProjectionsConfig(AppConfig):
    name = "projections"
    default_auto_field = "django.db.models.BigAutoField"
    dynamodb_tables = "projections.tables.TABLES"

    def ready(self) -> None:
        from . import signals

        signals.connect()
