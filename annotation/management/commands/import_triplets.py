"""Import triplets from a file into a condition of a dataset."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.importers.cli import limited_lines, optional_path, progress_bar
from annotation.importers.common import DatasetNotFound, dataset_by_slug
from annotation.importers.triplets import (
    ANCHOR_FAR_CLOSE_INDICES,
    FORMATS,
    HEAD_CLOSE_FAR_CSV,
    TripletFileInvalid,
    import_triplets,
)


class Command(BaseCommand):
    help = (
        f"Import ordered triplets into a condition. Formats: {HEAD_CLOSE_FAR_CSV} (CSV with the "
        f"header head,close,far; close is more similar to head than far) and "
        f"{ANCHOR_FAR_CLOSE_INDICES} (lines 'anchor far close' of indices into --images-list; the "
        "last index is the more similar item). A condition the dataset lacks is created."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="Triplet file to import.")
        parser.add_argument("--dataset", required=True, help="Slug of the dataset whose items the file names.")
        parser.add_argument("--condition", required=True, help="Slug of the condition; created if missing.")
        parser.add_argument("--format", required=True, choices=FORMATS, help="Column order and syntax of the file.")
        parser.add_argument(
            "--images-list",
            type=Path,
            help=f"For {ANCHOR_FAR_CLOSE_INDICES}: file of image paths, one a line; index 0 is the first line.",
        )
        parser.add_argument(
            "--allow-duplicate",
            action="store_true",
            help="Import the file even if it was already imported into this condition.",
        )

    def handle(self, *args, **options):
        try:
            dataset = dataset_by_slug(slug=options["dataset"])
        except DatasetNotFound as error:
            raise CommandError(f"{error}; import its images first with import_images --create") from None

        bar = progress_bar(description="triplets", unit="row")
        try:
            report = import_triplets(
                dataset=dataset,
                condition_slug=options["condition"],
                path=Path(options["file"]),
                file_format=options["format"],
                images_list_path=optional_path(options["images_list"]),
                allow_duplicate=options["allow_duplicate"],
                on_start=lambda total: bar.reset(total=total),
                on_progress=bar.update,
            )
        except TripletFileInvalid as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()

        if report.previous_batch is not None:
            batch = report.previous_batch
            self.stdout.write(
                f"{options['file']} was already imported into {dataset.slug}:{options['condition']} as batch "
                f"{batch.pk} on {batch.created_at:%Y-%m-%d %H:%M}; nothing imported. "
                "Pass --allow-duplicate to import it again."
            )
            return

        condition = report.condition
        if report.condition_created:
            self.stdout.write(
                f"Created condition {condition.slug} at index {condition.index} with prompt {condition.prompt!r}"
            )
        self.stdout.write(
            f"Imported {report.imported} triplets into {condition} as batch {report.batch.pk} "
            f"({report.rows} rows, rejected {len(report.rejected)})"
        )
        if report.rejected:
            counts = ", ".join(f"{kind}: {count}" for kind, count in sorted(report.rejected_by_kind.items()))
            self.stdout.write(f"Rejected rows ({counts}):")
            for line in limited_lines(str(rejection) for rejection in report.rejected):
                self.stdout.write(line)
