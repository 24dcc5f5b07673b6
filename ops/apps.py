from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the site: metrics and SLOs, traces, read-only mode, drift watch, staff exports."""

    name = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"
    # The replication heartbeat's table: the base reads it (health), ops writes it (beat).
    dynamodb_tables = "hybridsite.heartbeat.TABLES"

    def ready(self) -> None:
        from django.contrib import admin
        from django.db.backends.signals import connection_created

        from hybridsite.tracing import tracing_install

        from . import exports, stores

        connection_created.connect(stores.postgres_install, dispatch_uid="ops.postgres_install")
        stores.dynamodb_install()
        exports.admin_actions_install(admin.site)  # the admin has registered every app's models
        tracing_install()  # when the settings turn traces on; before any request is handled
