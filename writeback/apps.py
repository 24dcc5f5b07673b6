from django.apps import AppConfig


class WritebackConfig(AppConfig):
    name = "writeback"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "write-back (DynamoDB Streams)"
