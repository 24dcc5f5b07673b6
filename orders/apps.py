from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"
    dynamodb_tables = "orders.tables.TABLES"

    def ready(self) -> None:
        from projections import registry

        from .projection import ORDER_AGGREGATE
        from .reads import order_address_named

        registry.register(ORDER_AGGREGATE, addresses={"order": order_address_named})
