from django.apps import AppConfig


class CartsConfig(AppConfig):
    name = "carts"
    default_auto_field = "django.db.models.BigAutoField"
    dynamodb_tables = "carts.tables.TABLES"

    def ready(self) -> None:
        from hybridsite import authentication

        authentication.connect()
