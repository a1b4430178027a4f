"""Request a training run of a dataset through the worker queue, or list the dataset's runs."""

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Dataset
from training.api import run_defaults_for
from training.models import ModelVersion, TrainingRun
from training.services.runs import training_run_request

COLUMNS = ("run", "status", "variant", "created (UTC)", "finished (UTC)", "version", "held-out acc.", "reason")


class Command(BaseCommand):
    help = (
        "Request a training run of a dataset, which a Celery worker on the gpu queue trains, or "
        "list the dataset's runs. A request joins the run already queued or running, if any. "
        "Without --request, lists the runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="dataset slug")
        parser.add_argument("--request", action="store_true", help="queue a run, or join the active one")
        parser.add_argument(
            "--variant",
            choices=TrainingRun.Variant.values,
            help="model variant of a requested run (default: the dataset's loop settings, else learned)",
        )
        parser.add_argument("--reason", default="", help="why the run is requested, stored on the run")
        parser.add_argument("--list", action="store_true", help="list the dataset's runs, newest first")
        parser.add_argument("--limit", type=int, default=20, help="runs to list (default 20)")

    def handle(self, *args, **options):
        dataset = Dataset.objects.filter(slug=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"dataset {options['dataset']!r} not found; list datasets in the admin")
        if options["limit"] < 1:
            raise CommandError(f"--limit must be at least 1, got {options['limit']}")
        if not options["request"] and (options["variant"] or options["reason"]):
            raise CommandError("--variant and --reason apply to a requested run; add --request")

        if options["request"]:
            self._request(dataset, options)
        if options["list"] or not options["request"]:
            self._list(dataset, options["limit"])

    def _request(self, dataset: Dataset, options: dict) -> None:
        variant, settings = run_defaults_for(dataset)
        run, created = training_run_request(
            dataset=dataset,
            variant=options["variant"] or variant,
            settings=settings,
            reason=options["reason"] or "training_runs command",
        )
        if created:
            self.stdout.write(self.style.SUCCESS(f"queued run {run.pk} of {dataset.slug!r} ({run.variant})"))
        else:
            self.stdout.write(
                f"run {run.pk} of {dataset.slug!r} is already {run.status}; the request joined it"
            )

    def _list(self, dataset: Dataset, limit: int) -> None:
        runs = list(
            TrainingRun.objects.filter(dataset=dataset).select_related("model_version").order_by("-created_at", "-id")[:limit]
        )
        if not runs:
            self.stdout.write(f"dataset {dataset.slug!r} has no training runs")
            return

        rows = [COLUMNS, *(self._row(run) for run in runs)]
        widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())

    @staticmethod
    def _row(run: TrainingRun) -> tuple[str, ...]:
        try:
            version = str(run.model_version.number)
        except ModelVersion.DoesNotExist:
            version = "-"
        accuracy = run.metrics.get("held_out_accuracy")
        return (
            str(run.pk),
            run.status,
            run.variant,
            f"{run.created_at:%Y-%m-%d %H:%M}",
            f"{run.finished_at:%Y-%m-%d %H:%M}" if run.finished_at else "-",
            version,
            f"{accuracy:.4f}" if isinstance(accuracy, int | float) else "-",
            run.reason or "-",
        )
