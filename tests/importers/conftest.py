"""Helpers for the importer tests: image bytes of every kind, and running commands."""

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image


def image_bytes(colour=(200, 30, 30), size=(20, 14), image_format="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=image_format)
    return buffer.getvalue()


def write_images(folder: Path, names_and_colours: dict[str, tuple[int, int, int]]) -> None:
    for name, colour in names_and_colours.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image_format = "JPEG" if path.suffix.lower() in {".jpg", ".jpeg"} else "PNG"
        path.write_bytes(image_bytes(colour, image_format=image_format))


@pytest.fixture
def run_command():
    """Run a management command and return what it wrote to stdout."""

    def run(command_name: str, /, *args, **options) -> str:
        stdout = io.StringIO()
        call_command(command_name, *args, stdout=stdout, stderr=io.StringIO(), **options)
        return stdout.getvalue()

    return run


def stored_files(media_root: Path) -> list[Path]:
    return sorted(path for path in media_root.rglob("*") if path.is_file()) if media_root.exists() else []


@pytest.fixture
def small_dataset(db):
    """Build a dataset of `n_items` one-colour PNG items (external ids "0", "1", ...) and conditions.

    Items go through the importer's ItemWriter, so their files and dimensions are stored as an
    import stores them.
    """
    from annotation.importers.images import ItemWriter
    from annotation.models import Condition, Dataset

    def build(slug="shoes", n_items=6, conditions=("colour",)):
        dataset = Dataset.objects.create(name=slug.title(), slug=slug)
        for index, condition_slug in enumerate(conditions):
            Condition.objects.create(
                dataset=dataset,
                slug=condition_slug,
                name=condition_slug,
                prompt=f"Which is closer to the reference in {condition_slug}?",
                index=index,
            )
        writer = ItemWriter(dataset=dataset)
        for number in range(n_items):
            colour = (number * 37 % 256, number * 91 % 256, (number * 13 + 7) % 256)
            writer.add(
                data=image_bytes(colour),
                external_id=str(number),
                original_name=f"{number}.png",
                attributes={"number": number},
            )
        return dataset

    return build
