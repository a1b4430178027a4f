"""Import a folder or zip archive of images as items of a dataset."""

import zipfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug
from django.core.exceptions import ValidationError

from annotation.importers.cli import limited_lines, optional_path, progress_bar
from annotation.importers.common import DatasetNotFound, dataset_by_slug
from annotation.importers.images import AttributesFileInvalid, import_images
from annotation.models import Dataset


class Command(BaseCommand):
    help = (
        "Import every image in a folder (recursively) or a zip archive as items of a dataset. "
        "Files already in the dataset (same SHA-256) are skipped; unusable files are rejected "
        "with a reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="Slug of the dataset to add the images to.")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--dir", type=Path, help="Folder of images, read recursively.")
        source.add_argument("--zip", type=Path, help="Zip archive of images.")
        parser.add_argument(
            "--attributes",
            type=Path,
            help="CSV of item attributes: a column file, filename, image or path names the image "
            "(by relative path, file name or stem); every other column is an attribute.",
        )
        parser.add_argument("--create", action="store_true", help="Create the dataset if it does not exist.")
        parser.add_argument("--name", help="Display name of a dataset made with --create (default: the slug).")

    def handle(self, *args, **options):
        dataset = self.dataset(options)
        bar = progress_bar(description="images", unit="file")

        def start(total: int) -> None:
            bar.reset(total=total)

        try:
            report = import_images(
                dataset=dataset,
                folder=optional_path(options["dir"]),
                zip_path=optional_path(options["zip"]),
                attributes_csv=optional_path(options["attributes"]),
                on_start=start,
                on_progress=bar.update,
            )
        except (AttributesFileInvalid, FileNotFoundError, zipfile.BadZipFile) as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(
                f"storing an image failed: {error}. Items stored before the failure are complete; "
                "fix the storage and run the command again, which skips them as duplicates."
            ) from None
        finally:
            bar.close()

        self.stdout.write(
            f"Dataset {dataset.slug}: imported {len(report.imported)}, "
            f"duplicates {len(report.duplicates)}, rejected {len(report.rejected)}"
        )
        if report.rejected:
            self.stdout.write("Rejected:")
            for line in limited_lines(str(rejection) for rejection in report.rejected):
                self.stdout.write(line)
        if report.warnings:
            self.stdout.write("Warnings:")
            for line in limited_lines(report.warnings):
                self.stdout.write(line)

    def dataset(self, options) -> Dataset:
        slug = options["dataset"]
        try:
            return dataset_by_slug(slug=slug)
        except DatasetNotFound:
            if not options["create"]:
                raise CommandError(
                    f"dataset {slug!r} not found; pass --create (and --name NAME) to create it, "
                    "or create it in the admin"
                ) from None
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(f"invalid dataset slug {slug!r}: use letters, digits, '-' and '_'") from None
        dataset = Dataset.objects.create(slug=slug, name=options["name"] or slug)
        self.stdout.write(f"Created dataset {slug} ({dataset.name})")
        return dataset
