"""Render glyphs of installed fonts into a fonts dataset with character, weight, slant and category."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug

from annotation.importers.cli import limited_lines, progress_bar
from annotation.importers.fonts import (
    CATEGORIES,
    DEFAULT_CHARACTERS,
    DEFAULT_SIZE,
    build_fonts_dataset,
)
from annotation.models import Dataset


class Command(BaseCommand):
    help = (
        "Build a fonts dataset: one greyscale image (black glyph on white) per font face and "
        "character, with attributes read from the font file, and the conditions character, "
        "weight, italic and category. The dataset is created if missing; re-runs skip glyphs "
        "already imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="Slug of the dataset; created if missing.")
        parser.add_argument(
            "--fonts",
            type=Path,
            nargs="+",
            help="Folders to scan for .ttf, .otf, .ttc and .otc files (default: fonts listed by fc-list).",
        )
        parser.add_argument(
            "--chars", default=DEFAULT_CHARACTERS, help=f"Characters to render (default: {DEFAULT_CHARACTERS})."
        )
        parser.add_argument(
            "--size", type=int, default=DEFAULT_SIZE, help=f"Image width and height in pixels (default {DEFAULT_SIZE})."
        )
        parser.add_argument("--max-fonts", type=int, help="Use at most this many font faces, sampled at random.")
        parser.add_argument("--seed", type=int, help="Seed of the face sample taken with --max-fonts.")

    def handle(self, *args, **options):
        if options["max_fonts"] is not None and options["max_fonts"] < 1:
            raise CommandError(f"--max-fonts must be 1 or more, got {options['max_fonts']}")
        dataset = self.dataset(options["dataset"])

        bar = progress_bar(description="font faces", unit="face")
        try:
            report = build_fonts_dataset(
                dataset=dataset,
                font_folders=[Path(folder) for folder in options["fonts"]] if options["fonts"] else None,
                characters=options["chars"],
                size=options["size"],
                max_fonts=options["max_fonts"],
                seed=options["seed"],
                on_start=lambda total: bar.reset(total=total),
                on_progress=bar.update,
            )
        except (FileNotFoundError, ValueError) as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()

        write = self.stdout.write
        write(
            f"Fonts found: {report.font_files} files, {report.faces_read} faces "
            f"({report.duplicate_faces} duplicate faces, {len(report.non_text_faces)} symbol or placeholder faces, "
            f"{len(report.unreadable)} unreadable)"
        )
        write(f"Faces used: {report.faces_used} of {report.faces_selected} selected")
        categories = ", ".join(f"{category} {report.category_counts.get(category, 0)}" for category in CATEGORIES)
        write(f"Faces per category: {categories}")
        weights = ", ".join(f"{name} {count}" for name, count in sorted(report.weight_class_counts.items()))
        write(f"Faces per weight class: {weights}")
        write(
            f"Dataset {dataset.slug}: imported {report.imported} glyphs, duplicates {report.duplicates}, "
            f"rejected {len(report.rejected)}, characters missing from a face {len(report.missing_characters)}"
        )
        for condition in report.conditions_created:
            write(f"Created condition {condition.slug} at index {condition.index} (attribute {condition.attribute})")
        for title, lines in (
            ("Unreadable fonts:", [str(rejection) for rejection in report.unreadable]),
            ("Skipped faces:", [str(rejection) for rejection in report.non_text_faces]),
            ("Rejected glyphs:", [str(rejection) for rejection in report.rejected]),
            ("Missing characters:", report.missing_characters),
        ):
            if lines:
                write(title)
                for line in limited_lines(lines):
                    write(line)

    def dataset(self, slug: str) -> Dataset:
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(f"invalid dataset slug {slug!r}: use letters, digits, '-' and '_'") from None
        dataset, created = Dataset.objects.get_or_create(
            slug=slug, defaults={"name": slug.replace("-", " ").title(), "description": "Glyphs rendered from font files."}
        )
        if created:
            self.stdout.write(f"Created dataset {slug}")
        return dataset
