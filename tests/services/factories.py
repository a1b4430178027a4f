"""Builders of task-queue rows for the service and API tests."""

import hashlib
import itertools
from datetime import datetime

from django.core.files.base import ContentFile

from annotation.models import Annotator, Condition, Dataset, Item, TripletTask
from tests.conftest import png_bytes


def make_tasks(
    dataset: Dataset,
    count: int,
    *,
    condition: Condition | None = None,
    priority: float = 0.0,
    answers_wanted: int = 1,
) -> list[TripletTask]:
    """Create `count` tasks of distinct (anchor, {a, b}) triples, in id order."""
    condition = condition or dataset.conditions.order_by("index").first()
    item_ids = list(dataset.items.order_by("id").values_list("id", flat=True))
    taken = set(
        TripletTask.objects.filter(condition=condition).values_list("anchor_id", "candidate_a_id", "candidate_b_id")
    )
    tasks = []
    for anchor_id, a_id, b_id in itertools.product(item_ids, repeat=3):
        if len(tasks) == count:
            break
        if not a_id < b_id or anchor_id in (a_id, b_id) or (anchor_id, a_id, b_id) in taken:
            continue
        tasks.append(
            TripletTask.objects.create(
                dataset=dataset,
                condition=condition,
                anchor_id=anchor_id,
                candidate_a_id=a_id,
                candidate_b_id=b_id,
                priority=priority,
                answers_wanted=answers_wanted,
            )
        )
    if len(tasks) < count:
        raise ValueError(f"dataset {dataset.slug} has too few items for {count} new tasks; pass a larger n_items")
    return tasks


def make_annotator(django_user_model, username: str, **fields) -> Annotator:
    user = django_user_model.objects.create_user(username=username, password=f"pw-{username}-123")
    return Annotator.objects.create(user=user, **fields)


def expire_leases(task: TripletTask, *, at: datetime) -> None:
    """Move the expiry of every lease on the task to `at`."""
    task.leases.update(expires_at=at)


def build_dataset(slug="shoes", n_items=6, conditions=("colour",), attributes=None) -> Dataset:
    """Build a dataset of `n_items` one-colour PNG items and the named conditions.

    Same arguments and result as the shared `make_dataset` fixture, except that the image is
    saved from a named ContentFile: on Django 5.2 an unnamed one leaves width and height unset,
    and the item fails its NOT NULL constraints.
    """
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
