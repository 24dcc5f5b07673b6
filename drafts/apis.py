"""Drafts in the internal API: staff holding ``catalog.change_product`` autosave their own draft of
a product (DynamoDB only) and publish it (Postgres, through the catalog services). An editor only
ever reaches their own draft: the editor comes from the token, never from the URL."""

from __future__ import annotations

import json
from typing import Any, cast

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.apis import TEXT_PATTERN, StaffWithPermission, StrictInputSerializer
from catalog.models import Product
from hybridsite.conditions import if_match_parameter, if_match_version
from projections.readpath import DYNAMODB_ERRORS

from . import services
from .selectors import DraftState, draft_get

MAX_ATTRIBUTES_BYTES = 16_384
PERMISSION = "catalog.change_product"


class DraftChanged(exceptions.APIException):
    status_code = 412
    default_code = "precondition_failed"
    default_detail = "The draft changed since the version in If-Match; read it again."


class DraftConflicts(exceptions.APIException):
    status_code = 409
    default_code = "conflict"


class DraftsUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "unavailable"
    default_detail = "Drafts cannot be reached right now; retry shortly."


class DraftOutputSerializer(serializers.Serializer):
    sku = serializers.CharField()
    version = serializers.IntegerField(help_text="The draft's version (also its ETag).")
    base_version = serializers.IntegerField(help_text="The product version the draft started from.")
    changes = serializers.DictField(help_text="The edited fields.")
    updated_at = serializers.DateTimeField()


class AttributesField(serializers.DictField):
    """Product attributes: any JSON object that Postgres's jsonb can hold, so no NUL character in
    a key or a string at any depth (refused here, not at publish)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.JSONField(allow_null=True), **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        encoded = json.dumps(value)
        if len(encoded) > MAX_ATTRIBUTES_BYTES:
            raise serializers.ValidationError(f"At most {MAX_ATTRIBUTES_BYTES} bytes of JSON.")
        if "\\u0000" in encoded:
            raise serializers.ValidationError("No NUL characters.")
        return value


JSON_VALUE = ResolvedComponent(
    name="JsonValue", type=ResolvedComponent.SCHEMA, object="JsonValue",
    schema={
        "description": "Any JSON value without a NUL character in a key or a string.",
        "nullable": True,
        "anyOf": [
            {"type": "string", "pattern": TEXT_PATTERN},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
            {
                "type": "object", "propertyNames": {"pattern": TEXT_PATTERN},
                "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
            },
        ],
    },
)


class AttributesFieldSchema(OpenApiSerializerFieldExtension):
    """The attributes' schema says what the field refuses: NUL characters, at any depth."""

    target_class = AttributesField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        auto_schema.registry.register_on_missing(JSON_VALUE)
        return {
            "type": "object", "propertyNames": {"pattern": TEXT_PATTERN}, "additionalProperties": JSON_VALUE.ref,
            "description": f"At most {MAX_ATTRIBUTES_BYTES} bytes of JSON.",
        }


def editor_id(request: Request) -> int:
    """The caller's user id (the permission check has run: the user is a saved one)."""
    return cast(int, request.user.pk)


@extend_schema(tags=["drafts"])
class DraftBaseApi(APIView):
    def respond(self, draft: DraftState) -> Response:
        response = Response(DraftOutputSerializer(draft).data)
        response["ETag"] = f'"{draft.version}"'
        return response

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.DraftVersionMismatch):
            exc = DraftChanged()
        elif isinstance(exc, services.DraftConflict):
            exc = DraftConflicts(
                f"The product changed since this draft started (draft from version {exc.base_version}, "
                f"product now at {exc.product_version}); start a new draft from the current product."
            )
        elif isinstance(exc, DYNAMODB_ERRORS):
            exc = DraftsUnavailable()
        return super().handle_exception(exc)


class DraftApi(DraftBaseApi):
    permission_classes = [StaffWithPermission.for_methods(GET=PERMISSION, PUT=PERMISSION)]

    class DraftSaveInputSerializer(StrictInputSerializer):
        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(max_length=20_000, required=False, allow_blank=True)
        attributes = AttributesField(required=False)

    @extend_schema(
        operation_id="internal_draft_detail",
        responses={200: DraftOutputSerializer, 503: OpenApiResponse(description="Drafts cannot be reached; retry.")},
    )
    def get(self, request: Request, sku: str) -> Response:
        draft = draft_get(sku=sku, user_id=editor_id(request))
        if draft is None:
            raise exceptions.NotFound("No draft of this product by you.")
        return self.respond(draft)

    @extend_schema(
        operation_id="internal_draft_save", request=DraftSaveInputSerializer,
        responses={200: DraftOutputSerializer, 412: OpenApiResponse(description="The draft changed since If-Match.")},
        parameters=[if_match_parameter("The draft's ETag this save is based on: 412 if it changed.")],
    )
    def put(self, request: Request, sku: str) -> Response:
        serializer = self.DraftSaveInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        expected = if_match_version(request, "An ETag of this draft.")
        draft = services.draft_save(
            sku=sku, user_id=editor_id(request), changes=serializer.validated_data, expected=expected
        )
        return self.respond(draft)


class DraftPublishApi(DraftBaseApi):
    permission_classes = [StaffWithPermission.for_methods(POST=PERMISSION)]

    class DraftPublishOutputSerializer(serializers.Serializer):
        sku = serializers.CharField()
        version = serializers.IntegerField(help_text="The product's version after this write.")

    @extend_schema(
        operation_id="internal_draft_publish", request=None,
        responses={
            200: DraftPublishOutputSerializer,
            400: OpenApiResponse(description="The draft's values are refused by the product's validation."),
            409: OpenApiResponse(description="The product changed since the draft started; the draft is kept."),
        },
    )
    def post(self, request: Request, sku: str) -> Response:
        product: Product = services.draft_publish(sku=sku, user_id=editor_id(request))
        return Response(self.DraftPublishOutputSerializer({"sku": product.sku, "version": product.version}).data)
