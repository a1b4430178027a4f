import pytest

from tests.services.factories import build_dataset


@pytest.fixture
def make_dataset(db):
    """Override of the shared fixture, which fails on Django 5.2 (see build_dataset)."""
    # TODO: drop this override once tests/conftest.py saves the images from a named ContentFile.
    return build_dataset
