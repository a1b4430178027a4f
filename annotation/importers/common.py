"""Helpers shared by the importers: dataset look-up and condition creation."""

import logging
import re

from django.db.models import Max

from annotation.models import Condition, Dataset

logger = logging.getLogger(__name__)


class DatasetNotFound(LookupError):
    def __init__(self, slug: str):
        super().__init__(f"dataset {slug!r} not found")
        self.slug = slug


def dataset_by_slug(*, slug: str) -> Dataset:
    """Return the dataset with this slug, or raise DatasetNotFound."""
    try:
        return Dataset.objects.get(slug=slug)
    except Dataset.DoesNotExist:
        raise DatasetNotFound(slug) from None


def condition_prompt(label: str) -> str:
    """Build a question for a condition known only by name; staff can reword it in the admin."""
    return f"Which is more similar to the reference ({label})?"


def condition_get_or_create(
    *, dataset: Dataset, slug: str, name: str = "", prompt: str = "", attribute: str = ""
) -> tuple[Condition, bool]:
    """Return the dataset's condition with this slug, creating it at the next free index if missing.

    An existing condition is returned unchanged, so re-runs keep its index, prompt and attribute.
    """
    existing = Condition.objects.filter(dataset=dataset, slug=slug).first()
    if existing is not None:
        return existing, False

    label = name or re.sub(r"[-_]+", " ", slug)
    highest = Condition.objects.filter(dataset=dataset).aggregate(highest=Max("index"))["highest"]
    condition = Condition.objects.create(
        dataset=dataset,
        slug=slug,
        name=label,
        prompt=prompt or condition_prompt(label),
        index=0 if highest is None else highest + 1,
        attribute=attribute,
    )
    logger.info("created condition %s at index %d", condition, condition.index)
    return condition, True
