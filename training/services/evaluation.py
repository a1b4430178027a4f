"""Scoring a model version on triplets sampled from item attributes, which no annotator answered."""

import logging

import numpy as np

from annotation.models import Condition, Dataset, Item
from training import csn
from training.models import ModelVersion
from training.sampling import is_numeric, sample_categorical, sample_numeric

logger = logging.getLogger(__name__)


def attribute_test_triplets(*, dataset: Dataset, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Sample `count` triplets per active condition that names an attribute, as (anchor, closer, farther, index)."""
    items = list(Item.objects.filter(dataset=dataset).order_by("id").values_list("id", "attributes"))
    item_ids = np.array([item_id for item_id, _ in items])
    rng = np.random.default_rng(seed)

    parts, slugs = [], []
    for condition in Condition.objects.filter(dataset=dataset, is_active=True).exclude(attribute=""):
        values = [attributes.get(condition.attribute) for _, attributes in items]
        try:
            positions = sample_numeric(values, count, rng) if is_numeric(values) else sample_categorical(values, count, rng)
        except ValueError as error:
            logger.info("no attribute test triplets for %s: %s", condition, error)
            continue
        parts.append(np.column_stack([item_ids[positions], np.full(len(positions), condition.index)]))
        slugs.append(condition.slug)
    return (np.concatenate(parts) if parts else np.zeros((0, 4), dtype=np.int64)), slugs


def attribute_test_accuracy(*, version: ModelVersion, count: int = 300, seed: int = 0) -> dict[str, float]:
    """Return the version's triplet accuracy per condition on attribute-sampled triplets."""
    checkpoint = csn.load_checkpoint(version.checkpoint_path)
    triplets, slugs = attribute_test_triplets(dataset=version.dataset, count=count, seed=seed)
    known = [slug in checkpoint.condition_rows for slug in slugs]
    rows = {Condition.objects.get(dataset=version.dataset, slug=slug).index: checkpoint.condition_rows[slug]
            for slug, present in zip(slugs, known) if present}
    triplets = triplets[np.isin(triplets[:, 3], list(rows))]
    if len(triplets) == 0:
        return {}
    triplets[:, 3] = [rows[index] for index in triplets[:, 3]]

    paths = {item.pk: item.image.path for item in Item.objects.filter(dataset=version.dataset)}
    model = checkpoint.build_model("cpu")
    report = csn.triplet_accuracy(model, csn.PathImageSource(paths), triplets, conditions=checkpoint.conditions)
    return {str(slug): accuracy for slug, accuracy in report.per_condition.items()}
