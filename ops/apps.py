from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the site: read-only mode, drift watch."""

    name = "ops"
    default_auto_field = "django.db.models.BigAutoField"
