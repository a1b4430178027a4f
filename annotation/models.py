"""Datasets of images, conditions, annotators, the triplet task queue and its answers.

An ordered triplet {anchor, closer, farther | condition} says that under the condition the
annotator (or an imported record) judged `closer` more similar to `anchor` than `farther`.
Triplets are what training reads; tasks, leases and judgements are how they are collected.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Dataset(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


def item_upload_path(item: "Item", filename: str) -> str:
    """Store images by content hash, so a URL never changes meaning and caches can keep it."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"items/{item.dataset.slug}/{item.content_hash[:2]}/{item.content_hash}.{suffix}"


class Item(models.Model):
    """One image of a dataset."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    image = models.ImageField(upload_to=item_upload_path, width_field="width", height_field="height")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the image file's bytes.")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    external_id = models.CharField(
        max_length=255, help_text="Identifier in the source collection; the file stem by default."
    )
    original_name = models.CharField(max_length=500, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "content_hash"], name="item_unique_content"),
            models.UniqueConstraint(fields=["dataset", "external_id"], name="item_unique_external_id"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.slug}/{self.external_id}"


class Condition(models.Model):
    """A notion of similarity within a dataset; `index` is the model's mask row for it."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="conditions")
    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    prompt = models.CharField(max_length=500)
    index = models.PositiveSmallIntegerField()
    is_active = models.BooleanField(default=True)
    attribute = models.CharField(
        max_length=100,
        blank=True,
        help_text="Item attribute that decides this condition, where one does (simulations, sampling).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "slug"], name="condition_unique_slug"),
            models.UniqueConstraint(fields=["dataset", "index"], name="condition_unique_index"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.slug}:{self.slug}"


class Annotator(models.Model):
    """Who answers tasks: a local account or a crowd worker, both backed by a Django user."""

    class Source(models.TextChoices):
        LOCAL = "local"
        PROLIFIC = "prolific"
        MTURK = "mturk"
        OTHER = "other"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.LOCAL)
    external_id = models.CharField(max_length=255, blank=True)
    pseudonym = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    is_blocked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~Q(external_id=""),
                name="annotator_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        if self.external_id:
            return f"{self.source}:{self.external_id}"
        return self.user.get_username()


class ImportBatch(models.Model):
    """One run of an importer, so imported triplets can be traced back and removed together."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="import_batches")
    kind = models.CharField(max_length=20)
    source_name = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"{self.kind} {self.source_name} ({self.created_at:%Y-%m-%d %H:%M})"


class TripletTask(models.Model):
    """A question for annotators: which candidate is closer to the anchor under the condition.

    Candidates are stored in canonical order (candidate_a_id < candidate_b_id) so that one
    (condition, anchor, {a, b}) triple is one task; the order on screen is drawn per lease.
    """

    class Origin(models.TextChoices):
        RANDOM = "random"
        IMPORT = "import"
        STRATEGY = "strategy"

    class Status(models.TextChoices):
        OPEN = "open"
        DONE = "done"
        RETIRED = "retired"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="tasks")
    condition = models.ForeignKey(Condition, on_delete=models.CASCADE, related_name="tasks")
    anchor = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    candidate_a = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    candidate_b = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.RANDOM)
    strategy = models.CharField(max_length=50, blank=True, help_text="Selection strategy that proposed it.")
    model_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    priority = models.FloatField(default=0.0, help_text="Higher is served first.")
    answers_wanted = models.PositiveSmallIntegerField(default=1)
    answers_count = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-priority", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(anchor=F("candidate_a")), name="task_anchor_not_a"),
            models.CheckConstraint(condition=~Q(anchor=F("candidate_b")), name="task_anchor_not_b"),
            models.CheckConstraint(condition=Q(candidate_a__lt=F("candidate_b")), name="task_candidates_ordered"),
            models.CheckConstraint(condition=Q(answers_wanted__gte=1), name="task_wants_answers"),
            models.UniqueConstraint(
                fields=["condition", "anchor", "candidate_a", "candidate_b"], name="task_unique_triple"
            ),
        ]
        indexes = [
            models.Index(fields=["dataset", "status", "-priority", "id"], name="task_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"task {self.pk}: {self.anchor_id} | {self.candidate_a_id}, {self.candidate_b_id} ({self.condition})"


class Lease(models.Model):
    """An annotator's claim on a task until `expires_at`, with the candidate order shown."""

    task = models.ForeignKey(TripletTask, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="leases")
    left_item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    right_item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="lease_unique_task_annotator"),
        ]
        indexes = [models.Index(fields=["task", "expires_at"], name="lease_task_expiry_idx")]

    def __str__(self) -> str:
        return f"lease of task {self.task_id} to {self.annotator_id} until {self.expires_at:%H:%M:%S}"


class Judgement(models.Model):
    """One annotator's answer to one task."""

    class Choice(models.TextChoices):
        CANDIDATE = "candidate"
        TIE = "tie"
        SKIP = "skip"

    task = models.ForeignKey(TripletTask, on_delete=models.PROTECT, related_name="judgements")
    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="judgements")
    choice = models.CharField(max_length=10, choices=Choice.choices)
    chosen_item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    left_item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    right_item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    client_token = models.UUIDField(unique=True)
    after_lease_expired = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="judgement_unique_task_annotator"),
            models.CheckConstraint(
                condition=(Q(choice="candidate") & Q(chosen_item__isnull=False))
                | (~Q(choice="candidate") & Q(chosen_item__isnull=True)),
                name="judgement_chosen_item_matches_choice",
            ),
        ]

    def __str__(self) -> str:
        return f"judgement {self.pk} on task {self.task_id}: {self.choice}"


class Triplet(models.Model):
    """Ordered {anchor, closer, farther | condition}: what training reads."""

    class Source(models.TextChoices):
        JUDGEMENT = "judgement"
        IMPORT = "import"
        ATTRIBUTES = "attributes"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="triplets")
    condition = models.ForeignKey(Condition, on_delete=models.CASCADE, related_name="triplets")
    anchor = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    closer = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    farther = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=20, choices=Source.choices)
    judgement = models.OneToOneField(
        Judgement, null=True, blank=True, on_delete=models.CASCADE, related_name="triplet"
    )
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="triplets"
    )
    annotator = models.ForeignKey(Annotator, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(anchor=F("closer")), name="triplet_anchor_not_closer"),
            models.CheckConstraint(condition=~Q(anchor=F("farther")), name="triplet_anchor_not_farther"),
            models.CheckConstraint(condition=~Q(closer=F("farther")), name="triplet_closer_not_farther"),
        ]
        indexes = [models.Index(fields=["dataset", "condition", "id"], name="triplet_dataset_condition_idx")]

    def __str__(self) -> str:
        return f"{self.anchor_id}: {self.closer_id} < {self.farther_id} | {self.condition}"
