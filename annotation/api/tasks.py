"""Task queue endpoints for annotators: lease the next task, answer it, list own answers."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.common import ErrorSerializer, item_image_url
from annotation.api.errors import error_response, service_error_response
from annotation.models import Judgement, Lease
from annotation.selectors import condition_get, dataset_get, judgement_list_for_annotator, task_get
from annotation.services.annotators import annotator_for_user, annotator_touch
from annotation.services.answers import judgement_record
from annotation.services.leasing import TaskQueueError, task_lease_next


class JudgementSerializer(serializers.ModelSerializer):
    class Meta:
        model = Judgement
        fields = [
            "id",
            "task",
            "choice",
            "chosen_item",
            "left_item",
            "right_item",
            "response_ms",
            "client_token",
            "after_lease_expired",
            "created_at",
        ]
        read_only_fields = fields


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["tie", "skip"]}]})
class AnswerChoiceField(serializers.Field):
    """A candidate item id (a JSON integer), "tie" or "skip"."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        if data in ("tie", "skip"):
            return data
        raise serializers.ValidationError(
            f'invalid choice {data!r}: send a candidate item id (a JSON integer), "tie" or "skip"'
        )

    def to_representation(self, value):
        return value


class StrictIntegerField(serializers.IntegerField):
    """An integer field that rejects strings, floats and booleans instead of converting them."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError(f"invalid value {data!r}: send a JSON integer")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID field that accepts only strings (DRF's UUIDField also turns integers into UUIDs)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(f"invalid UUID {data!r}: send the UUID as a string")
        return super().to_internal_value(data)


class TaskItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    image_url = serializers.CharField(help_text="Root-relative URL of the image.")


class TaskConditionSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    prompt = serializers.CharField(help_text="The question to show the annotator.")


class LeasedTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Task id, to answer at /api/v1/tasks/{id}/answer/.")
    dataset = serializers.SlugField()
    condition = TaskConditionSerializer()
    anchor = TaskItemSerializer()
    candidates = TaskItemSerializer(
        many=True, help_text="The two candidates in the order to show them, left first."
    )
    lease_expires_at = serializers.DateTimeField()


class TaskNextApi(APIView):
    class TaskNextQuerySerializer(serializers.Serializer):
        dataset = serializers.SlugField(help_text="Slug of the dataset to take a task from.")
        condition = serializers.SlugField(
            required=False, help_text="Slug of a condition, to take only that condition's tasks."
        )

    @staticmethod
    def lease_data(lease: Lease) -> dict:
        task = lease.task
        return {
            "id": task.pk,
            "dataset": task.dataset.slug,
            "condition": {
                "slug": task.condition.slug,
                "name": task.condition.name,
                "prompt": task.condition.prompt,
            },
            "anchor": {"id": task.anchor_id, "image_url": item_image_url(task.anchor)},
            "candidates": [
                {"id": lease.left_item_id, "image_url": item_image_url(lease.left_item)},
                {"id": lease.right_item_id, "image_url": item_image_url(lease.right_item)},
            ],
            "lease_expires_at": lease.expires_at,
        }

    @extend_schema(
        operation_id="tasks_next",
        summary="Lease the next task",
        description=(
            "Leases the next task of the dataset to the calling annotator: the highest priority "
            "first, never one they answered or skipped. Returns the same task and candidate order "
            "again while the caller holds an unexpired, unanswered lease in that dataset. "
            "Returns 204 when no task is left for the caller."
        ),
        parameters=[TaskNextQuerySerializer],
        responses={
            200: LeasedTaskSerializer,
            204: OpenApiResponse(description="No task left for this annotator."),
            400: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def get(self, request):
        query = self.TaskNextQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)

        dataset = dataset_get(slug=query.validated_data["dataset"])
        if dataset is None:
            slug = query.validated_data["dataset"]
            return error_response(
                status.HTTP_404_NOT_FOUND,
                f"dataset {slug!r} not found; check the slug in the link you followed",
                field="dataset",
                code="not_found",
            )
        condition = None
        if "condition" in query.validated_data:
            condition = condition_get(dataset=dataset, slug=query.validated_data["condition"])
            if condition is None:
                slug = query.validated_data["condition"]
                return error_response(
                    status.HTTP_404_NOT_FOUND,
                    f"condition {slug!r} not found in dataset {dataset.slug!r}",
                    field="condition",
                    code="not_found",
                )

        annotator = annotator_for_user(user=request.user)
        try:
            lease = task_lease_next(annotator=annotator, dataset=dataset, condition=condition)
        except TaskQueueError as error:
            return service_error_response(error)
        annotator_touch(annotator=annotator)

        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        lease = Lease.objects.select_related(
            "task__dataset", "task__condition", "task__anchor", "left_item", "right_item"
        ).get(pk=lease.pk)
        return Response(LeasedTaskSerializer(self.lease_data(lease)).data)


class TaskAnswerApi(APIView):
    # JSON only: form encoding would turn the integer choice and response_ms into strings.
    parser_classes = [JSONParser]

    class AnswerInputSerializer(serializers.Serializer):
        choice = AnswerChoiceField(
            help_text='Id of the candidate closer to the anchor, or "tie", or "skip".'
        )
        client_token = StrictUUIDField(
            help_text="A new random UUID per answer; sending it again returns the stored answer."
        )
        response_ms = StrictIntegerField(
            min_value=0,
            max_value=2**31 - 1,
            help_text="Milliseconds from showing the task to the answer.",
        )
        dataset = serializers.SlugField(
            required=False,
            help_text="Slug of the task's dataset; rejected if it is another dataset.",
        )

    @extend_schema(
        operation_id="tasks_answer",
        summary="Answer a leased task",
        description=(
            "Stores the caller's answer to a task leased to them. Returns 201 with the new "
            "judgement, or 200 with the stored one when the client_token was used for this answer "
            "before. Answers after the lease expired are stored with after_lease_expired=true."
        ),
        request=AnswerInputSerializer,
        responses={
            200: JudgementSerializer,
            201: JudgementSerializer,
            400: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    def post(self, request, task_id: int):
        task = task_get(task_id=task_id)
        if task is None:
            return error_response(
                status.HTTP_404_NOT_FOUND,
                f"task {task_id} not found",
                field="task",
                code="not_found",
            )

        payload = self.AnswerInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data

        if "dataset" in data and data["dataset"] != task.dataset.slug:
            return error_response(
                status.HTTP_400_BAD_REQUEST,
                f"task {task.pk} belongs to dataset {task.dataset.slug!r}, not {data['dataset']!r}",
                field="dataset",
            )

        annotator = annotator_for_user(user=request.user)
        try:
            judgement, created = judgement_record(
                annotator=annotator,
                task=task,
                choice=data["choice"],
                client_token=data["client_token"],
                response_ms=data["response_ms"],
            )
        except TaskQueueError as error:
            return service_error_response(error)

        return Response(
            JudgementSerializer(judgement).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class JudgementPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class JudgementMineApi(generics.ListAPIView):
    """List the caller's own judgements, newest first."""

    serializer_class = JudgementSerializer
    pagination_class = JudgementPagination

    def get_queryset(self):
        annotator = annotator_for_user(user=self.request.user)
        return judgement_list_for_annotator(annotator=annotator)

    @extend_schema(operation_id="judgements_mine", summary="List the caller's own judgements")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
