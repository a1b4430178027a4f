"""Create random triplet tasks for the conditions of a dataset."""

from django.core.management.base import BaseCommand, CommandError

from annotation.importers.common import DatasetNotFound, dataset_by_slug
from annotation.importers.seeding import seed_random_tasks
from annotation.models import Condition


class Command(BaseCommand):
    help = (
        "Create N random triplet tasks per active condition of a dataset (or for one condition): "
        "uniform anchors, two distinct other items as candidates, no (anchor, {a, b}) triple twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="Slug of the dataset.")
        parser.add_argument("--condition", help="Slug of one condition to seed (default: every active condition).")
        parser.add_argument("--count", type=int, required=True, help="Number of tasks to create per condition.")
        parser.add_argument("--seed", type=int, help="Seed of the random generator, for reproducible tasks.")
        parser.add_argument(
            "--answers-wanted", type=int, default=1, help="Judgements each task collects before it is done (default 1)."
        )
        parser.add_argument(
            "--priority", type=float, default=0.0, help="Queue priority of the tasks; higher is served first (default 0)."
        )

    def handle(self, *args, **options):
        if options["count"] < 0:
            raise CommandError(f"--count must be 0 or more, got {options['count']}")
        if options["answers_wanted"] < 1:
            raise CommandError(f"--answers-wanted must be 1 or more, got {options['answers_wanted']}")
        try:
            dataset = dataset_by_slug(slug=options["dataset"])
        except DatasetNotFound as error:
            raise CommandError(f"{error}; create it with import_images --create") from None

        conditions = None
        if options["condition"]:
            condition = Condition.objects.filter(dataset=dataset, slug=options["condition"]).first()
            if condition is None:
                known = ", ".join(dataset.conditions.values_list("slug", flat=True)) or "none"
                raise CommandError(
                    f"condition {options['condition']!r} not found in dataset {dataset.slug!r} (conditions: {known})"
                )
            if not condition.is_active:
                raise CommandError(f"condition {condition} is inactive; activate it in the admin before seeding it")
            conditions = [condition]

        results = seed_random_tasks(
            dataset=dataset,
            conditions=conditions,
            count=options["count"],
            seed=options["seed"],
            answers_wanted=options["answers_wanted"],
            priority=options["priority"],
        )
        if not results:
            self.stdout.write(f"Dataset {dataset.slug} has no active conditions; no tasks created.")
            return
        for result in results:
            line = f"{result.condition}: created {result.created} random tasks"
            if result.created < result.requested:
                line += (
                    f", fewer than the {result.requested} requested: only {result.available} new "
                    f"(anchor, pair) triples are possible with {dataset.items.count()} items"
                )
            self.stdout.write(line)
