"""Training runs of the CSN and the model versions they publish."""

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q

from annotation.models import Dataset


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
