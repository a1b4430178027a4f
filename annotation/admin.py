"""Admin for datasets, items, conditions, annotators, the task queue and collected answers.

Item foreign keys use raw_id_fields and changelists use list_select_related, because a
dataset can hold tens of thousands of items and a select box or per-row query would make
the pages slow.
"""

from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from annotation.api.common import item_image_url
from annotation.models import (
    Annotator,
    Condition,
    Dataset,
    ImportBatch,
    Item,
    Judgement,
    Lease,
    Triplet,
    TripletTask,
)


def thumbnail(item: Item | None, size: int = 48):
    """Render an item's image through the API route that serves it to logged-in users."""
    if item is None or item.pk is None:
        return "-"
    return format_html(
        '<img src="{}" alt="item {}" loading="lazy" '
        'style="width:{}px;height:{}px;object-fit:contain;background:#fff;">',
        item_image_url(item),
        item.pk,
        size,
        size,
    )


def count_of(model, field: str, **filters) -> Coalesce:
    """Count rows of `model` whose `field` points at the outer row, as a correlated subquery.

    Several Count() annotations over different reverse relations would join them all and
    multiply the counts, so each count gets its own subquery.
    """
    rows = (
        model.objects.filter(**{field: OuterRef("pk")}, **filters)
        .order_by()
        .values(field)
        .annotate(total=Count("pk"))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "item_count",
        "condition_count",
        "open_task_count",
        "judgement_count",
        "triplet_count",
        "created_at",
    ]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_by", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                item_total=count_of(Item, "dataset"),
                condition_total=count_of(Condition, "dataset"),
                open_task_total=count_of(TripletTask, "dataset", status=TripletTask.Status.OPEN),
                judgement_total=count_of(Judgement, "task__dataset"),
                triplet_total=count_of(Triplet, "dataset"),
            )
        )

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="items", ordering="item_total")
    def item_count(self, dataset: Dataset) -> int:
        return dataset.item_total

    @admin.display(description="conditions", ordering="condition_total")
    def condition_count(self, dataset: Dataset) -> int:
        return dataset.condition_total

    @admin.display(description="open tasks", ordering="open_task_total")
    def open_task_count(self, dataset: Dataset) -> int:
        return dataset.open_task_total

    @admin.display(description="judgements", ordering="judgement_total")
    def judgement_count(self, dataset: Dataset) -> int:
        return dataset.judgement_total

    @admin.display(description="triplets", ordering="triplet_total")
    def triplet_count(self, dataset: Dataset) -> int:
        return dataset.triplet_total


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "image_thumbnail", "external_id", "dataset", "width", "height", "attributes", "created_at"]
    list_display_links = ["id", "external_id"]
    list_filter = ["dataset"]
    list_select_related = ["dataset"]
    search_fields = ["external_id", "original_name", "=content_hash"]
    readonly_fields = ["preview", "content_hash", "width", "height", "created_at"]
    list_per_page = 50

    @admin.display(description="image")
    def image_thumbnail(self, item: Item):
        return thumbnail(item)

    @admin.display(description="preview")
    def preview(self, item: Item):
        return thumbnail(item, size=192)


@admin.register(Condition)
class ConditionAdmin(admin.ModelAdmin):
    list_display = ["slug", "dataset", "index", "name", "prompt", "attribute", "is_active"]
    list_editable = ["prompt", "is_active"]
    list_filter = ["dataset", "is_active"]
    list_select_related = ["dataset"]
    search_fields = ["slug", "name", "prompt"]
    readonly_fields = ["created_at"]


@admin.register(Annotator)
class AnnotatorAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "user",
        "source",
        "external_id",
        "is_blocked",
        "judgements_link",
        "last_seen_at",
        "created_at",
    ]
    list_filter = ["source", "is_blocked"]
    list_select_related = ["user"]
    search_fields = ["external_id", "user__username", "pseudonym"]
    raw_id_fields = ["user"]
    readonly_fields = ["pseudonym", "created_at", "last_seen_at", "judgements_link"]
    actions = ["block_annotators", "unblock_annotators"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(judgement_total=count_of(Judgement, "annotator"))

    @admin.display(description="judgements", ordering="judgement_total")
    def judgements_link(self, annotator: Annotator):
        total = getattr(annotator, "judgement_total", None)
        if total is None:
            total = annotator.judgements.count()
        url = reverse("admin:annotation_judgement_changelist") + f"?annotator__id__exact={annotator.pk}"
        return format_html('<a href="{}">{}</a>', url, total)

    @admin.action(description="Block the selected annotators")
    def block_annotators(self, request: HttpRequest, queryset: QuerySet) -> None:
        updated = queryset.update(is_blocked=True)
        self.message_user(request, f"Blocked {updated} annotator(s).", messages.SUCCESS)

    @admin.action(description="Unblock the selected annotators")
    def unblock_annotators(self, request: HttpRequest, queryset: QuerySet) -> None:
        updated = queryset.update(is_blocked=False)
        self.message_user(request, f"Unblocked {updated} annotator(s).", messages.SUCCESS)


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "kind", "source_name", "triplet_count", "created_at"]
    list_filter = ["dataset", "kind"]
    list_select_related = ["dataset"]
    search_fields = ["source_name"]
    readonly_fields = ["dataset", "kind", "source_name", "details", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(triplet_total=count_of(Triplet, "import_batch"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="triplets", ordering="triplet_total")
    def triplet_count(self, batch: ImportBatch) -> int:
        return batch.triplet_total


@admin.register(TripletTask)
class TripletTaskAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "dataset",
        "condition",
        "anchor_thumbnail",
        "candidate_a_thumbnail",
        "candidate_b_thumbnail",
        "status",
        "origin",
        "strategy",
        "priority",
        "answers_count",
        "answers_wanted",
        "created_at",
    ]
    list_filter = ["dataset", "condition", "status", "origin", "strategy"]
    list_select_related = ["dataset", "condition__dataset", "anchor", "candidate_a", "candidate_b"]
    search_fields = ["=id", "strategy", "anchor__external_id", "candidate_a__external_id", "candidate_b__external_id"]
    raw_id_fields = ["anchor", "candidate_a", "candidate_b", "model_version"]
    readonly_fields = ["answers_count", "created_at"]
    list_per_page = 50

    @admin.display(description="anchor")
    def anchor_thumbnail(self, task: TripletTask):
        return thumbnail(task.anchor)

    @admin.display(description="candidate a")
    def candidate_a_thumbnail(self, task: TripletTask):
        return thumbnail(task.candidate_a)

    @admin.display(description="candidate b")
    def candidate_b_thumbnail(self, task: TripletTask):
        return thumbnail(task.candidate_b)


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "annotator", "left_item", "right_item", "created_at", "expires_at", "answered_at"]
    list_filter = ["task__dataset"]
    list_select_related = ["task__condition__dataset", "annotator__user", "left_item__dataset", "right_item__dataset"]
    search_fields = ["=task__id", "annotator__external_id", "annotator__user__username"]
    raw_id_fields = ["task", "annotator", "left_item", "right_item"]
    readonly_fields = ["created_at"]


@admin.register(Judgement)
class JudgementAdmin(admin.ModelAdmin):
    """Judgements are records of what an annotator answered, so the admin only shows them."""

    list_display = [
        "id",
        "task",
        "annotator",
        "choice",
        "chosen_item",
        "left_item",
        "right_item",
        "response_ms",
        "after_lease_expired",
        "created_at",
    ]
    list_filter = ["task__dataset", "task__condition", "choice", "after_lease_expired", "annotator__source"]
    list_select_related = [
        "task__condition__dataset",
        "annotator__user",
        "chosen_item__dataset",
        "left_item__dataset",
        "right_item__dataset",
    ]
    search_fields = ["=task__id", "annotator__external_id", "annotator__user__username", "=client_token"]
    raw_id_fields = ["task", "annotator", "chosen_item", "left_item", "right_item"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Triplet)
class TripletAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "dataset",
        "condition",
        "anchor_thumbnail",
        "closer_thumbnail",
        "farther_thumbnail",
        "source",
        "annotator",
        "created_at",
    ]
    list_filter = ["dataset", "condition", "source"]
    list_select_related = ["dataset", "condition__dataset", "annotator__user", "anchor", "closer", "farther"]
    search_fields = ["=id", "anchor__external_id", "closer__external_id", "farther__external_id"]
    raw_id_fields = ["anchor", "closer", "farther", "judgement", "import_batch", "annotator"]
    readonly_fields = ["created_at"]
    list_per_page = 50

    @admin.display(description="anchor")
    def anchor_thumbnail(self, triplet: Triplet):
        return thumbnail(triplet.anchor)

    @admin.display(description="closer")
    def closer_thumbnail(self, triplet: Triplet):
        return thumbnail(triplet.closer)

    @admin.display(description="farther")
    def farther_thumbnail(self, triplet: Triplet):
        return thumbnail(triplet.farther)
