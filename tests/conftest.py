"""Shared fixtures: the database under test, and small datasets made of generated images."""

import hashlib
import io
import os

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def database_is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_collection_modifyitems(config, items):
    """Skip PostgreSQL-only tests on SQLite, except in CI, where they must run."""
    if database_is_postgres():
        return
    if IN_CI:
        raise pytest.UsageError(
            f"CI must test on PostgreSQL, but DATABASE_URL selects {settings.DATABASES['default']['ENGINE']}; "
            "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/csn"
        )
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    """Give every test its own media folder, so stored images never leak between tests."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CSN_MODEL_DIR = tmp_path / "models"
    return settings.MEDIA_ROOT


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (16, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def make_dataset(db):
    """Build a dataset of `n_items` one-colour PNG items and the named conditions."""
    from annotation.models import Condition, Dataset, Item

    def build(slug="shoes", n_items=6, conditions=("colour",), attributes=None):
        dataset = Dataset.objects.create(name=slug.title(), slug=slug)
        for index, condition_slug in enumerate(conditions):
            Condition.objects.create(
                dataset=dataset,
                slug=condition_slug,
                name=condition_slug.replace("-", " "),
                prompt=f"Which is closer to the reference in {condition_slug.replace('-', ' ')}?",
                index=index,
            )
        for number in range(n_items):
            data = png_bytes((number * 37 % 256, number * 91 % 256, (number * 13 + 7) % 256))
            item = Item(
                dataset=dataset,
                external_id=str(number),
                original_name=f"{number}.png",
                attributes=(attributes or {}).get(number, {"number": number}),
            )
            item.content_hash = hashlib.sha256(data).hexdigest()
            item.image.save(f"{number}.png", ContentFile(data, name=f"{number}.png"), save=False)
            item.save()
        return dataset

    return build


@pytest.fixture
def annotator(db, django_user_model):
    from annotation.models import Annotator

    user = django_user_model.objects.create_user(username="ann", password="pw-ann-123")
    return Annotator.objects.create(user=user)
