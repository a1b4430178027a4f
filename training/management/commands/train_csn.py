"""Train a CSN on a dataset's stored triplets, record the run and publish the model."""

import json

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Dataset
from training.models import TrainingRun
from training.services.execute import training_run_execute, validate_run_settings
from training.services.runs import training_run_request


class Command(BaseCommand):
    help = (
        "Train a Conditional Similarity Network on the dataset's stored triplets. The held-out "
        "split is the same for every run of a dataset, so versions are comparable. The run is "
        "recorded, and its model is published when it succeeds."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="dataset slug")
        parser.add_argument("--variant", default="learned", choices=TrainingRun.Variant.values)
        parser.add_argument("--epochs", type=int, help="training epochs (default 10)")
        parser.add_argument("--max-triplets", type=int, help="train on a seeded random subset of this many triplets")
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default auto: CUDA when present")
        parser.add_argument("--seed", type=int, help="seed of every random choice (default 0)")
        parser.add_argument("--backbone", help="small-cnn, resnet18-layer3 or tv:<torchvision model>")
        parser.add_argument("--pretrained", help="'torchvision' (local cache) or a weights file path")
        parser.add_argument("--batch-size", type=int, help="triplets per batch (default 256)")
        parser.add_argument("--lr", type=float, help="Adam learning rate")
        parser.add_argument("--embedding-dim", type=int, help="embedding dimensions (default 64)")
        parser.add_argument("--threads", type=int, help="CPU threads for torch")
        parser.add_argument("--patience", type=int, help="stop after this many epochs without a better held-out accuracy")
        parser.add_argument("--no-warm-start", action="store_true", help="start from scratch, not from the published model")
        parser.add_argument("--no-publish", action="store_true", help="record the model version without publishing it")

    def handle(self, *args, **options):
        dataset = Dataset.objects.filter(slug=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"dataset {options['dataset']!r} not found; list datasets in the admin")
        settings = self._run_settings(options)
        try:
            validate_run_settings(settings)
        except ValueError as error:
            raise CommandError(str(error)) from error

        run, created = training_run_request(
            dataset=dataset, variant=options["variant"], settings=settings, reason="train_csn command", enqueue=False
        )
        if not created:
            raise CommandError(
                f"run {run.pk} of {dataset.slug!r} is already {run.status}; wait for it or mark it failed in the admin"
            )

        self.stdout.write(f"run {run.pk}: training {options['variant']} CSN on {dataset.slug!r}")
        try:
            version = training_run_execute(run_id=run.pk, progress=None)
        except Exception as error:
            raise CommandError(f"run {run.pk} failed: {error}") from error
        self._report(run, version)

    def _run_settings(self, options: dict) -> dict:
        names = {
            "epochs": "epochs", "max_triplets": "max_triplets", "device": "device", "seed": "seed",
            "backbone": "backbone", "pretrained": "pretrained", "batch_size": "batch_size", "lr": "lr",
            "embedding_dim": "embedding_dim", "threads": "num_threads", "patience": "early_stopping_patience",
        }
        settings = {setting: options[option] for option, setting in names.items() if options[option] is not None}
        if options["no_warm_start"]:
            settings["warm_start"] = False
        if options["no_publish"]:
            settings["publish"] = False
        return settings

    def _report(self, run: TrainingRun, version) -> None:
        metrics = version.metrics
        state = "published" if version.is_published else "not published"
        self.stdout.write(self.style.SUCCESS(f"run {run.pk} succeeded: model version {version.number} ({state})"))
        self.stdout.write(f"held-out triplet accuracy: {metrics['held_out_accuracy']:.4f} on {metrics['held_out_triplets']} triplets")
        for slug, accuracy in metrics["held_out_per_condition"].items():
            self.stdout.write(f"  {slug}: {accuracy:.4f}")
        summary = {key: metrics[key] for key in ("train_triplets", "best_epoch", "epochs_run", "images_per_second", "wall_time_s", "device")}
        self.stdout.write(json.dumps(summary))
