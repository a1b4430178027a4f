"""Staff endpoints of the training loop: request and list training runs, list model versions."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.common import ErrorSerializer
from annotation.api.errors import error_response
from annotation.models import Dataset
from annotation.selectors import dataset_get
from training import csn
from training.models import LoopSettings, ModelVersion, TrainingRun
from training.services.execute import TRAIN_FIELDS, validate_run_settings
from training.services.runs import training_run_request


def metrics_summary(metrics: dict) -> dict:
    """Drop the per-epoch history, which list views do not need."""
    return {key: value for key, value in metrics.items() if key != "history"}


class TrainingRunSerializer(serializers.ModelSerializer):
    dataset = serializers.SlugField(source="dataset.slug")
    model_version = serializers.SerializerMethodField(
        help_text="Number of the model version the run produced; null until it succeeds."
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "dataset",
            "variant",
            "status",
            "settings",
            "metrics",
            "error",
            "reason",
            "created_at",
            "started_at",
            "finished_at",
            "model_version",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_model_version(self, run: TrainingRun) -> int | None:
        try:
            return run.model_version.number
        except ModelVersion.DoesNotExist:
            return None


class TrainingRunRequestedSerializer(TrainingRunSerializer):
    joined = serializers.BooleanField(
        help_text="True when the request joined a run that was already queued or running."
    )

    class Meta(TrainingRunSerializer.Meta):
        fields = [*TrainingRunSerializer.Meta.fields, "joined"]
        read_only_fields = fields


class TrainingRunListItemSerializer(TrainingRunSerializer):
    metrics = serializers.SerializerMethodField(help_text="Final metrics without the epoch history.")

    @extend_schema_field(serializers.DictField())
    def get_metrics(self, run: TrainingRun) -> dict:
        return metrics_summary(run.metrics)


class ModelVersionSerializer(serializers.ModelSerializer):
    run = serializers.IntegerField(source="run_id", help_text="Id of the training run that produced it.")
    metrics = serializers.SerializerMethodField(help_text="Final metrics without the epoch history.")

    class Meta:
        model = ModelVersion
        fields = [
            "number",
            "run",
            "is_published",
            "metrics",
            "triplet_count",
            "created_at",
            "published_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField())
    def get_metrics(self, version: ModelVersion) -> dict:
        return metrics_summary(version.metrics)


class TrainingPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="Page number, from 1."),
    OpenApiParameter("page_size", int, description="Rows per page, at most 100 (default 20)."),
]


def page_serializer(name: str, item_serializer: serializers.Serializer) -> serializers.Serializer:
    """Describe one page of TrainingPagination's output in the schema."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(help_text="Rows on all pages."),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item_serializer,
        },
    )


def _dataset_not_found(slug: str) -> Response:
    return error_response(
        status.HTTP_404_NOT_FOUND, f"dataset {slug!r} not found", field="dataset", code="not_found"
    )


def _paginated(request, view, queryset, serializer_class) -> Response:
    paginator = TrainingPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class TrainingRunListApi(APIView):
    permission_classes = [IsAdminUser]
    # JSON only: form encoding cannot carry the settings object.
    parser_classes = [JSONParser]

    class RunRequestInputSerializer(serializers.Serializer):
        variant = serializers.ChoiceField(
            choices=TrainingRun.Variant.choices,
            required=False,
            help_text="Model variant; the dataset's loop settings decide when omitted.",
        )
        settings = serializers.DictField(
            required=False,
            help_text=(
                "Overrides of the model and training defaults, such as epochs or backbone; "
                "the dataset's loop settings decide when omitted."
            ),
        )
        reason = serializers.CharField(max_length=200, required=False, allow_blank=True)

        def validate_settings(self, value: dict) -> dict:
            try:
                validate_run_settings(value)
                csn.TrainConfig(**{key: item for key, item in value.items() if key in TRAIN_FIELDS})
            except (ValueError, TypeError) as error:
                raise serializers.ValidationError(f"invalid training settings: {error}") from error
            return value

    @extend_schema(
        operation_id="training_runs_list",
        tags=["training"],
        summary="List a dataset's training runs, newest first (staff)",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_serializer("TrainingRunPage", TrainingRunListItemSerializer(many=True)),
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def get(self, request, slug: str):
        dataset = dataset_get(slug=slug)
        if dataset is None:
            return _dataset_not_found(slug)
        runs = (
            TrainingRun.objects.filter(dataset=dataset)
            .select_related("dataset", "model_version")
            .order_by("-created_at", "-id")
        )
        return _paginated(request, self, runs, TrainingRunListItemSerializer)

    @extend_schema(
        operation_id="training_runs_request",
        tags=["training"],
        summary="Request a training run of a dataset (staff)",
        description=(
            "Queues a training run, or joins the run that is already queued or running: a dataset "
            "trains one run at a time. Returns 202 with the run; `joined` tells whether it was an "
            "existing one, whose variant and settings then apply instead of the requested ones."
        ),
        request=RunRequestInputSerializer,
        responses={
            202: TrainingRunRequestedSerializer,
            400: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def post(self, request, slug: str):
        dataset = dataset_get(slug=slug)
        if dataset is None:
            return _dataset_not_found(slug)
        payload = self.RunRequestInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)

        variant, settings = run_defaults_for(dataset)
        run, created = training_run_request(
            dataset=dataset,
            variant=payload.validated_data.get("variant", variant),
            settings=payload.validated_data.get("settings", settings),
            requested_by=request.user,
            reason=payload.validated_data.get("reason", ""),
        )
        # Without a broker the run trained eagerly on commit, so read its current state.
        run = TrainingRun.objects.select_related("dataset", "model_version").get(pk=run.pk)
        run.joined = not created
        return Response(TrainingRunRequestedSerializer(run).data, status=status.HTTP_202_ACCEPTED)


def run_defaults_for(dataset: Dataset) -> tuple[str, dict]:
    """Return the variant and training settings of the dataset's loop settings, if it has any."""
    loop_settings = LoopSettings.objects.filter(dataset=dataset).first()
    if loop_settings is None:
        return TrainingRun.Variant.LEARNED, {}
    return loop_settings.variant, loop_settings.training_settings


class ModelVersionListApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="model_versions_list",
        tags=["training"],
        summary="List a dataset's model versions, newest first (staff)",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_serializer("ModelVersionPage", ModelVersionSerializer(many=True)),
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def get(self, request, slug: str):
        dataset = dataset_get(slug=slug)
        if dataset is None:
            return _dataset_not_found(slug)
        versions = ModelVersion.objects.filter(dataset=dataset).order_by("-number")
        return _paginated(request, self, versions, ModelVersionSerializer)
