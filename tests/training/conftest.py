"""Fixtures of the training tests: a small dataset whose items carry two attributes."""

import hashlib
import io
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile

from tests.conftest import png_bytes

FAMILIES = {"red": (1.0, 0.1, 0.1), "green": (0.1, 1.0, 0.1), "blue": (0.1, 0.1, 1.0)}
BRIGHTNESS = (0.3, 0.5, 0.7, 0.9)

# Settings that keep a training run to about a second on one CPU thread.
TINY_SETTINGS = {
    "backbone": "small-cnn",
    "in_channels": 3,
    "image_size": 16,
    "resize_size": 16,
    "embedding_dim": 8,
    "epochs": 1,
    "batch_size": 32,
    "device": "cpu",
    "num_threads": 1,
}


def add_item(dataset, number: int, family: str, brightness: float):
    """Store one 16x16 item coloured by its family, scaled by its brightness."""
    from annotation.models import Item

    colour = tuple(int(255 * channel * brightness) for channel in FAMILIES[family])
    data = png_bytes(colour, size=(16, 16))
    item = Item(
        dataset=dataset,
        external_id=f"item-{number}",
        original_name=f"item-{number}.png",
        attributes={"family": family, "brightness": brightness},
        content_hash=hashlib.sha256(data).hexdigest(),
    )
    item.image.save(f"item-{number}.png", ContentFile(data, name=f"item-{number}.png"), save=False)
    item.save()
    return item


@pytest.fixture
def colour_dataset(db):
    """Build a dataset of 12 items (3 colour families x 4 brightness levels) and two conditions."""
    from annotation.models import Condition, Dataset

    def build(slug: str = "swatches"):
        dataset = Dataset.objects.create(name=slug.title(), slug=slug)
        Condition.objects.create(
            dataset=dataset, slug="colour", name="colour", prompt="Which is closer in colour?",
            index=0, attribute="family",
        )
        Condition.objects.create(
            dataset=dataset, slug="brightness", name="brightness", prompt="Which is closer in brightness?",
            index=1, attribute="brightness",
        )
        number = 0
        for family in FAMILIES:
            for brightness in BRIGHTNESS:
                add_item(dataset, number, family, brightness)
                number += 1
        return dataset

    return build


@pytest.fixture
def sampled_dataset(colour_dataset):
    """The colour dataset with 30 attribute triplets per condition."""
    from django.core.management import call_command

    dataset = colour_dataset()
    call_command("sample_triplets", dataset=dataset.slug, count=30, seed=1, stdout=io.StringIO())
    return dataset


@pytest.fixture
def sent_runs(monkeypatch) -> list[tuple[list, str]]:
    """Record train_run messages instead of sending (or, in eager mode, running) them."""
    from training import tasks

    sent = []

    def apply_async(args, queue):
        sent.append((args, queue))
        return SimpleNamespace(id="celery-task-1")

    monkeypatch.setattr(tasks.train_run, "apply_async", apply_async)
    return sent


@pytest.fixture
def client_for(live_server, django_user_model):
    """Return a function that creates a user and a requests session authenticated by its token."""
    import requests
    from rest_framework.authtoken.models import Token

    def build(username: str, *, staff: bool = False) -> requests.Session:
        user = django_user_model.objects.create_user(username=username, password=f"pw-{username}-123", is_staff=staff)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {Token.objects.create(user=user).key}"
        session.base_url = live_server.url
        return session

    return build
