"""The project's URLs plus the bench-only views under /bench/."""

from django.urls import include, path

from . import views

handler404 = "hybridsite.errors.json_404"
handler500 = "hybridsite.errors.json_500"

urlpatterns = [
    path("bench/floor/", views.FloorApi.as_view()),
    path("bench/orm/<str:sku>/", views.ProductOrmApi.as_view()),
    path("bench/cachalot/<str:sku>/", views.ProductCachalotApi.as_view()),
    path("", include("hybridsite.urls")),
]
