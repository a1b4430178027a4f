"""Generated datasets and annotator tokens for benchmarks."""

import hashlib
import io

import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image
from rest_framework.authtoken.models import Token

from annotation.models import Annotator, Condition, Dataset, Item, TripletTask


def create_generated_dataset(*, slug: str, n_items: int, n_tasks: int, seed: int) -> Dataset:
    """Create a dataset of one-colour images with one condition and `n_tasks` random tasks."""
    rng = np.random.default_rng(seed)
    dataset = Dataset.objects.create(name=slug, slug=slug)
    condition = Condition.objects.create(
        dataset=dataset, slug="colour", name="colour", prompt="Which is closer in colour?", index=0
    )

    items = []
    for number in range(n_items):
        buffer = io.BytesIO()
        colour = tuple(int(value) for value in rng.integers(0, 256, 3))
        Image.new("RGB", (32, 32), colour).save(buffer, format="PNG")
        data = buffer.getvalue()
        item = Item(dataset=dataset, external_id=str(number), content_hash=hashlib.sha256(data).hexdigest())
        item.image.save(f"{number}.png", ContentFile(data, name=f"{number}.png"), save=False)
        items.append(item)
    Item.objects.bulk_create(items, ignore_conflicts=True)
    item_ids = np.array(Item.objects.filter(dataset=dataset).values_list("id", flat=True))

    seen: set[tuple[int, int, int]] = set()
    tasks = []
    while len(tasks) < n_tasks:
        anchor, first, second = (int(value) for value in rng.choice(item_ids, 3, replace=False))
        low, high = sorted((first, second))
        if (anchor, low, high) in seen:
            continue
        seen.add((anchor, low, high))
        tasks.append(
            TripletTask(dataset=dataset, condition=condition, anchor_id=anchor, candidate_a_id=low, candidate_b_id=high)
        )
    TripletTask.objects.bulk_create(tasks, batch_size=5000)
    return dataset


def create_annotator_tokens(*, prefix: str, count: int) -> list[str]:
    """Create `count` local annotators and return their API tokens."""
    tokens = []
    for number in range(count):
        user = get_user_model().objects.create_user(username=f"{prefix}-annotator-{number}")
        Annotator.objects.create(user=user)
        tokens.append(Token.objects.create(user=user).key)
    return tokens
