"""Read queries for the API: datasets with counts, an annotator's judgements, triplet exports."""

from collections.abc import Iterator

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from annotation.models import Annotator, Condition, Dataset, Item, Judgement, Triplet, TripletTask

EXPORT_CHUNK_SIZE = 2000

# Columns of the triplet export, in order.
# `annotator` is the annotator's pseudonym, never a username or crowd id.
EXPORT_COLUMNS = (
    "id",
    "condition",
    "anchor_external_id",
    "closer_external_id",
    "farther_external_id",
    "anchor_id",
    "closer_id",
    "farther_id",
    "source",
    "annotator",
    "created_at",
)


def _count_of(queryset: QuerySet, field: str = "dataset") -> Coalesce:
    """Return a subquery counting `queryset` rows per dataset, so the outer query needs no joins."""
    counts = (
        queryset.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def dataset_list_with_counts() -> QuerySet[Dataset]:
    """Return all datasets, annotated with counts of items, conditions, tasks and triplets."""
    return Dataset.objects.annotate(
        item_count=_count_of(Item.objects.all()),
        condition_count=_count_of(Condition.objects.all()),
        active_condition_count=_count_of(Condition.objects.filter(is_active=True)),
        task_count=_count_of(TripletTask.objects.all()),
        open_task_count=_count_of(TripletTask.objects.filter(status=TripletTask.Status.OPEN)),
        judgement_count=_count_of(Judgement.objects.all(), field="task__dataset"),
        triplet_count=_count_of(Triplet.objects.all()),
    ).order_by("slug")


def dataset_get(*, slug: str) -> Dataset | None:
    return Dataset.objects.filter(slug=slug).first()


def dataset_get_with_counts(*, slug: str) -> Dataset | None:
    return dataset_list_with_counts().filter(slug=slug).prefetch_related("conditions").first()


def condition_get(*, dataset: Dataset, slug: str) -> Condition | None:
    return Condition.objects.filter(dataset=dataset, slug=slug).first()


def task_get(*, task_id: int) -> TripletTask | None:
    return TripletTask.objects.filter(pk=task_id).select_related("dataset", "condition").first()


def item_get(*, item_id: int) -> Item | None:
    return Item.objects.filter(pk=item_id).first()


def judgement_list_for_annotator(*, annotator: Annotator) -> QuerySet[Judgement]:
    """Return the annotator's own judgements, newest first."""
    return Judgement.objects.filter(annotator=annotator).order_by("-created_at", "-id")


def triplet_export_rows(*, dataset: Dataset) -> Iterator[dict]:
    """Yield every triplet of the dataset as a dict keyed by EXPORT_COLUMNS, in id order.

    Rows are read in chunks of EXPORT_CHUNK_SIZE (a server-side cursor on PostgreSQL), so
    exports of any size run in bounded memory.
    """
    rows = (
        Triplet.objects.filter(dataset=dataset)
        .order_by("id")
        .values_list(
            "id",
            "condition__slug",
            "anchor__external_id",
            "closer__external_id",
            "farther__external_id",
            "anchor_id",
            "closer_id",
            "farther_id",
            "source",
            "annotator__pseudonym",
            "created_at",
        )
    )
    for row in rows.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        record = dict(zip(EXPORT_COLUMNS, row, strict=True))
        record["annotator"] = str(record["annotator"]) if record["annotator"] is not None else ""
        record["created_at"] = record["created_at"].isoformat()
        yield record
