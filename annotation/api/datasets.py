"""Staff endpoints: datasets with their counts, and the triplet export."""

import csv
import io
import json
import logging
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.common import ErrorSerializer, IgnoreAcceptNegotiation
from annotation.api.errors import error_response
from annotation.selectors import (
    EXPORT_COLUMNS,
    dataset_get,
    dataset_get_with_counts,
    dataset_list_with_counts,
    triplet_export_rows,
)

logger = logging.getLogger(__name__)

EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


class DatasetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    item_count = serializers.IntegerField()
    condition_count = serializers.IntegerField()
    active_condition_count = serializers.IntegerField()
    task_count = serializers.IntegerField()
    open_task_count = serializers.IntegerField()
    judgement_count = serializers.IntegerField()
    triplet_count = serializers.IntegerField()


class DatasetConditionSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    prompt = serializers.CharField()
    index = serializers.IntegerField(help_text="Row of the model's mask for this condition.")
    is_active = serializers.BooleanField()


class DatasetDetailSerializer(DatasetSerializer):
    conditions = DatasetConditionSerializer(many=True, source="conditions.all")


def _dataset_not_found(slug: str) -> Response:
    return error_response(
        status.HTTP_404_NOT_FOUND, f"dataset {slug!r} not found", field="dataset", code="not_found"
    )


class DatasetListApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="datasets_list",
        summary="List datasets with their counts (staff)",
        responses={200: DatasetSerializer(many=True), 403: ErrorSerializer},
    )
    def get(self, request):
        return Response(DatasetSerializer(dataset_list_with_counts(), many=True).data)


class DatasetDetailApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="datasets_retrieve",
        summary="Show a dataset with its counts and conditions (staff)",
        responses={200: DatasetDetailSerializer, 403: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request, slug: str):
        dataset = dataset_get_with_counts(slug=slug)
        if dataset is None:
            return _dataset_not_found(slug)
        return Response(DatasetDetailSerializer(dataset).data)


def _csv_lines(rows: Iterator[dict]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _jsonl_lines(rows: Iterator[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row) + "\n"


class TripletExportApi(APIView):
    permission_classes = [IsAdminUser]
    content_negotiation_class = IgnoreAcceptNegotiation

    @extend_schema(
        operation_id="datasets_triplets_export",
        summary="Export every ordered triplet of a dataset (staff)",
        description=(
            "Streams one row per triplet with the columns "
            + ", ".join(EXPORT_COLUMNS)
            + ". `annotator` is the annotator's pseudonym (empty for imported triplets)."
        ),
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=list(EXPORT_FORMATS),
                default="csv",
                description="csv (with a header) or jsonl.",
            )
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="CSV with a header row."
            ),
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="One JSON object a line."
            ),
            400: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def get(self, request, slug: str):
        export_format = request.query_params.get("format", "csv")
        if export_format not in EXPORT_FORMATS:
            return error_response(
                status.HTTP_400_BAD_REQUEST,
                f"unknown format {export_format!r}; use one of: {', '.join(EXPORT_FORMATS)}",
                field="format",
            )
        dataset = dataset_get(slug=slug)
        if dataset is None:
            return _dataset_not_found(slug)

        rows = triplet_export_rows(dataset=dataset)
        lines = _csv_lines(rows) if export_format == "csv" else _jsonl_lines(rows)
        response = StreamingHttpResponse(lines, content_type=EXPORT_FORMATS[export_format])
        response["Content-Disposition"] = (
            f'attachment; filename="{dataset.slug}-triplets.{export_format}"'
        )
        logger.info(
            "user %s exported the triplets of dataset %s as %s",
            request.user.pk,
            dataset.slug,
            export_format,
        )
        return response
