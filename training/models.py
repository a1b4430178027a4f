"""Training runs of the CSN and the model versions they publish."""

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from annotation.models import Dataset
from training.active import STRATEGIES


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Variant(models.TextChoices):
        LEARNED = "learned", "CSN, learned masks"
        FIXED = "fixed", "CSN, fixed disjoint masks"
        STANDARD = "standard", "standard triplet network"
        TASK_SPECIFIC = "task-specific", "one network per condition"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="training_runs")
    variant = models.CharField(max_length=20, choices=Variant.choices, default=Variant.LEARNED)
    settings = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    checkpoint_path = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True, help_text="Why the run was started.")
    celery_task_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset"],
                condition=Q(status__in=["queued", "running"]),
                name="training_one_active_run_per_dataset",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.dataset} ({self.variant}, {self.status})"


class ModelVersion(models.Model):
    """A trained model of a dataset; the published one is what serving and selection use."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    checkpoint_path = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict, blank=True)
    triplet_count = models.PositiveIntegerField(default=0, help_text="Stored triplets when training began.")
    is_published = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="model_version_unique_number"),
            models.UniqueConstraint(
                fields=["dataset"], condition=Q(is_published=True), name="model_version_one_published"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset} v{self.number}"


class LoopSettings(models.Model):
    """How the active-learning loop treats one dataset: when to retrain and how to select."""

    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="loop_settings")
    enabled = models.BooleanField(default=True, help_text="Retrain and reselect automatically.")
    retrain_after_triplets = models.PositiveIntegerField(
        default=200, help_text="Retrain once this many triplets arrived since the published model."
    )
    variant = models.CharField(max_length=20, choices=TrainingRun.Variant.choices, default=TrainingRun.Variant.LEARNED)
    training_settings = models.JSONField(default=dict, blank=True, help_text="Overrides of the training defaults.")
    strategy = models.CharField(max_length=50, default="uncertainty", help_text="Selection strategy name.")
    tasks_per_round = models.PositiveIntegerField(default=200, help_text="Tasks queued per condition and round.")
    random_share = models.FloatField(default=0.1, help_text="Share of each round drawn at random, for evaluation.")
    max_item_appearances = models.PositiveIntegerField(default=20, help_text="Per item and round.")
    selection_power = models.FloatField(
        null=True, blank=True, default=None,
        help_text="Empty: queue the top-scoring triples. A positive number p: draw triples with "
        "probability proportional to score ** p, which spreads a round over more items.",
    )
    candidates_per_anchor = models.PositiveIntegerField(
        default=8, help_text="Candidates drawn around each anchor; the pool holds every pair of them."
    )
    weigh_answerability = models.BooleanField(
        default=False,
        help_text="Multiply each question's score by the chance that it gets an answer rather than "
        "\"can't tell\", fitted on earlier judgements. It applies once a condition has both kinds.",
    )
    answers_wanted = models.PositiveSmallIntegerField(default=1)

    class Meta:
        verbose_name_plural = "loop settings"

    def clean(self) -> None:
        errors = {}
        if self.strategy not in STRATEGIES:
            errors["strategy"] = f"Unknown strategy {self.strategy!r}; choose one of {', '.join(sorted(STRATEGIES))}."
        if not 0 <= self.random_share <= 1:
            errors["random_share"] = f"Random share {self.random_share} lies outside 0 to 1; use e.g. 0.1."
        if self.selection_power is not None and not self.selection_power > 0:
            errors["selection_power"] = f"Selection power {self.selection_power:g} must be positive, or empty for the top scores."
        if self.candidates_per_anchor < 2:
            errors["candidates_per_anchor"] = f"Candidates per anchor {self.candidates_per_anchor} make no pair; use at least 2."
        if errors:
            raise ValidationError(errors)

    def __str__(self) -> str:
        return f"loop settings of {self.dataset}"


class SelectionRound(models.Model):
    """One round of choosing tasks for a condition with a model version."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="selection_rounds")
    condition = models.ForeignKey("annotation.Condition", on_delete=models.CASCADE, related_name="selection_rounds")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="selection_rounds"
    )
    strategy = models.CharField(max_length=50)
    pool_size = models.PositiveIntegerField(default=0)
    excluded_asked = models.PositiveIntegerField(default=0)
    tasks_created = models.PositiveIntegerField(default=0)
    random_tasks = models.PositiveIntegerField(default=0)
    tasks_retired = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"round {self.pk} of {self.condition} ({self.strategy})"
