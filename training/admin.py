"""Admin for the loop settings, training runs, model versions and selection rounds.

Runs, versions and rounds are written by the workers, so the admin shows them read-only
except for a run's reason. Loop settings are the admin's to edit, one row per dataset.
"""

import json

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from training.active import STRATEGIES
from training.models import LoopSettings, ModelVersion, SelectionRound, TrainingRun

# Number of metrics shown in a changelist cell; the change page shows all of them.
METRICS_SUMMARY_LENGTH = 4


def summarize_metrics(metrics: dict) -> str:
    if not metrics:
        return "-"
    parts = []
    for name, value in list(metrics.items())[:METRICS_SUMMARY_LENGTH]:
        if isinstance(value, float):
            parts.append(f"{name}={value:.4g}")
        elif isinstance(value, (int, str, bool)):
            parts.append(f"{name}={value}")
        else:
            parts.append(f"{name}=…")
    if len(metrics) > METRICS_SUMMARY_LENGTH:
        parts.append(f"(+{len(metrics) - METRICS_SUMMARY_LENGTH} more)")
    return ", ".join(parts)


def pretty_json(value) -> str:
    return format_html("<pre style='margin:0'>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "dataset",
        "variant",
        "status",
        "metrics_summary",
        "reason",
        "created_at",
        "started_at",
        "finished_at",
        "duration",
    ]
    list_filter = ["status", "variant", "dataset"]
    list_select_related = ["dataset"]
    search_fields = ["=id", "reason", "celery_task_id", "error"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "dataset",
        "variant",
        "status",
        "settings_json",
        "metrics_json",
        "error",
        "checkpoint_path",
        "requested_by",
        "celery_task_id",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "duration",
    ]
    fields = ["reason", *readonly_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Runs are started through the API or the train management command, which also queue the job.
        return False

    @admin.display(description="metrics")
    def metrics_summary(self, run: TrainingRun) -> str:
        return summarize_metrics(run.metrics)

    @admin.display(description="settings")
    def settings_json(self, run: TrainingRun):
        return pretty_json(run.settings)

    @admin.display(description="metrics")
    def metrics_json(self, run: TrainingRun):
        return pretty_json(run.metrics)

    @admin.display(description="duration")
    def duration(self, run: TrainingRun) -> str:
        if run.started_at is None or run.finished_at is None:
            return "-"
        seconds = int((run.finished_at - run.started_at).total_seconds())
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "dataset",
        "number",
        "is_published",
        "triplet_count",
        "metrics_summary",
        "run",
        "created_at",
        "published_at",
    ]
    list_filter = ["is_published", "dataset"]
    list_select_related = ["dataset", "run__dataset"]
    search_fields = ["=number", "checkpoint_path"]
    readonly_fields = [
        "dataset",
        "number",
        "run",
        "checkpoint_path",
        "metrics_json",
        "triplet_count",
        "is_published",
        "created_at",
        "published_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="metrics")
    def metrics_summary(self, version: ModelVersion) -> str:
        return summarize_metrics(version.metrics)

    @admin.display(description="metrics")
    def metrics_json(self, version: ModelVersion):
        return pretty_json(version.metrics)


class LoopSettingsForm(forms.ModelForm):
    """Loop settings with the strategy picked from the registered strategies."""

    strategy = forms.ChoiceField(choices=[(name, name) for name in sorted(STRATEGIES)])

    class Meta:
        model = LoopSettings
        fields = "__all__"


@admin.register(LoopSettings)
class LoopSettingsAdmin(admin.ModelAdmin):
    form = LoopSettingsForm
    list_display = [
        "dataset",
        "enabled",
        "retrain_after_triplets",
        "variant",
        "strategy",
        "selection_power",
        "tasks_per_round",
        "random_share",
    ]
    list_filter = ["enabled", "strategy", "variant"]
    list_select_related = ["dataset"]
    fieldsets = [
        (None, {"fields": ["dataset", "enabled"]}),
        ("Retraining", {"fields": ["retrain_after_triplets", "variant", "training_settings"]}),
        (
            "Selection",
            {
                "fields": [
                    "strategy",
                    "selection_power",
                    "candidates_per_anchor",
                    "weigh_answerability",
                    "tasks_per_round",
                    "random_share",
                    "max_item_appearances",
                    "answers_wanted",
                ]
            },
        ),
    ]


@admin.register(SelectionRound)
class SelectionRoundAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "dataset",
        "condition",
        "strategy",
        "model_version",
        "pool_size",
        "tasks_created",
        "random_tasks",
        "tasks_retired",
        "seconds",
        "created_at",
    ]
    list_filter = ["strategy", "dataset"]
    list_select_related = ["dataset", "condition", "model_version__dataset"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "dataset",
        "condition",
        "model_version",
        "strategy",
        "pool_size",
        "excluded_asked",
        "tasks_created",
        "random_tasks",
        "tasks_retired",
        "seconds",
        "created_at",
    ]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
