from django.urls import path

from catalog import converters  # noqa: F401  (registers <sku:...>)

from . import apis

urlpatterns = [
    path("products/<sku:sku>/draft/", apis.DraftApi.as_view(), name="internal-draft"),
    path("products/<sku:sku>/draft/publish/", apis.DraftPublishApi.as_view(), name="internal-draft-publish"),
]
