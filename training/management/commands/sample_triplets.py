"""Sample training and held-out triplets from item attributes, one set per condition."""

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.models import Condition, Dataset, ImportBatch, Item, Triplet
from training.sampling import is_numeric, sample_categorical, sample_numeric


class Command(BaseCommand):
    help = (
        "Store triplets sampled from item attributes for each condition that names an attribute: "
        "categorical attributes pair two items sharing a value against one that differs, numeric "
        "ones pair two close values against a far one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="dataset slug")
        parser.add_argument("--condition", action="append", default=[], help="condition slug (repeatable); all by default")
        parser.add_argument("--count", type=int, required=True, help="triplets per condition")
        parser.add_argument("--seed", type=int, default=0, help="seed of the sampling generator")
        parser.add_argument("--min-gap", type=float, default=None, help="numeric attributes: least gap in distance")

    def handle(self, *args, **options):
        dataset = Dataset.objects.filter(slug=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"dataset {options['dataset']!r} not found; list datasets in the admin")
        if options["count"] < 1:
            raise CommandError(f"--count must be at least 1, got {options['count']}")
        conditions = self._conditions(dataset, options["condition"])

        items = list(Item.objects.filter(dataset=dataset).order_by("id").values_list("id", "attributes"))
        item_ids = np.array([item_id for item_id, _ in items])
        rng = np.random.default_rng(options["seed"])

        with transaction.atomic():
            batch = ImportBatch.objects.create(
                dataset=dataset, kind="attributes", source_name="item attributes",
                details={"count": options["count"], "seed": options["seed"]},
            )
            for condition in conditions:
                values = [attributes.get(condition.attribute) for _, attributes in items]
                rows = self._sample(condition, values, options, rng)
                self._store(batch, condition, item_ids[rows])
                self.stdout.write(f"{condition.slug}: {len(rows)} triplets from attribute {condition.attribute!r}")

    def _conditions(self, dataset: Dataset, slugs: list[str]) -> list[Condition]:
        conditions = Condition.objects.filter(dataset=dataset, is_active=True).exclude(attribute="")
        if slugs:
            conditions = conditions.filter(slug__in=slugs)
            missing = set(slugs) - set(conditions.values_list("slug", flat=True))
            if missing:
                raise CommandError(
                    f"condition(s) {sorted(missing)} not found in {dataset.slug!r} or without an attribute; "
                    "set the condition's attribute in the admin"
                )
        if not conditions.exists():
            raise CommandError(f"dataset {dataset.slug!r} has no active condition with an attribute to sample from")
        return list(conditions)

    def _sample(self, condition: Condition, values: list, options: dict, rng: np.random.Generator) -> np.ndarray:
        try:
            if is_numeric(values):
                return sample_numeric(values, options["count"], rng, options["min_gap"])
            return sample_categorical(values, options["count"], rng)
        except ValueError as error:
            raise CommandError(f"condition {condition.slug!r}, attribute {condition.attribute!r}: {error}") from error

    def _store(self, batch: ImportBatch, condition: Condition, rows: np.ndarray) -> None:
        triplets = [
            Triplet(
                dataset=batch.dataset, condition=condition, anchor_id=int(anchor), closer_id=int(closer),
                farther_id=int(farther), source=Triplet.Source.ATTRIBUTES, import_batch=batch,
            )
            for anchor, closer, farther in rows
        ]
        Triplet.objects.bulk_create(triplets, batch_size=5000)
