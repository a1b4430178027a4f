"""Fixtures for admin tests."""

import pytest


@pytest.fixture(autouse=True)
def named_content_files(monkeypatch):
    # TODO: remove once tests/conftest.py names its ContentFile. Django 5.2 reads an ImageField's
    # width and height through the saved content's name, so an unnamed ContentFile leaves them NULL.
    import tests.conftest
    from django.core.files.base import ContentFile

    def named(content, name=None):
        return ContentFile(content, name=name or "item.png")

    monkeypatch.setattr(tests.conftest, "ContentFile", named)
