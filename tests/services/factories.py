"""Builders of task-queue rows for the service and API tests."""

import itertools

from annotation.models import Annotator, Condition, Dataset, TripletTask


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
        TripletTask.objects.filter(condition=condition).values_list(
            "anchor_id", "candidate_a_id", "candidate_b_id"
        )
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
        raise ValueError(
            f"dataset {dataset.slug} has too few items for {count} new tasks; pass a larger n_items"
        )
    return tasks


def make_annotator(django_user_model, username: str, **fields) -> Annotator:
    user = django_user_model.objects.create_user(username=username, password=f"pw-{username}-123")
    return Annotator.objects.create(user=user, **fields)
