from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import schema  # noqa: F401  (schema: registers the schema extensions before any schema is built)
from .health import health

handler404 = "hybridsite.errors.json_404"
handler500 = "hybridsite.errors.json_500"

admin.site.site_header = "Hybridsite administration"
admin.site.site_title = "Hybridsite admin"
admin.site.index_title = "Catalog, projections and reports"


class SchemaApi(SpectacularAPIView):
    """JSON first, so that a browser shows the schema instead of downloading it; ?format=yaml
    still gives YAML. What a caller sees depends on its permissions (SERVE_PUBLIC off)."""

    renderer_classes = [OpenApiJsonRenderer2, OpenApiJsonRenderer, OpenApiYamlRenderer, OpenApiYamlRenderer2]


urlpatterns = [
    # The customer API first: its reads are most of the traffic, and resolve in one step.
    path("api/", include("projections.urls")),
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("admin/", admin.site.urls),
    path("api/health/", health, name="health"),
    path("", include("ops.urls")),
    path("api/internal/", include("catalog.urls")),
    path("api/internal/", include("drafts.urls")),
    path("api/cart/", include("carts.urls")),
    path("api/orders/", include("orders.urls")),
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]
