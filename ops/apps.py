from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the site: read-only mode, drift watch."""

    name = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"
