from django.apps import AppConfig


class CartsConfig(AppConfig):
    name = "carts"
    default_auto_field = "django.db.models.BigAutoField"
    dynamodb_tables = "carts.tables.TABLES"

    def ready(self) -> None:
        from hybridsite import authentication
        from writeback import registry

        from .tables import Cart
        from .writeback import apply_cart_change, resync_carts

        authentication.connect()
        registry.register(model=Cart, apply=apply_cart_change, resync=resync_carts)
