"""Compare the four CSN variants on the fonts dataset at two training-set sizes.

Triplets are sampled from glyph attributes for each condition (two glyphs share the value,
one differs), split into training and test sets by question, and every variant trains with
the same budget. It prints test error per condition, mask sparsity and overlap, linear-probe
accuracy of the unmasked embedding on an attribute that no condition trained on, and
training throughput, and writes them to benchmarks/results/fonts_variants.json.

    .venv/bin/python manage.py build_fonts_dataset --dataset fonts
    .venv/bin/python benchmarks/reproduce_fonts.py --dataset fonts --sizes 2000 8000 --epochs 4
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import markdown_table, setup_django, write_results  # noqa: E402

VARIANTS = ("learned", "fixed", "standard", "task-specific")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fonts", help="slug of a dataset made by build_fonts_dataset")
    parser.add_argument("--conditions", nargs="+", default=["character", "weight", "italic"], help="condition slugs")
    parser.add_argument("--probe-attribute", default="category", help="attribute for the linear probe")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000], help="training triplets per condition")
    parser.add_argument("--test-size", type=int, default=1000, help="test triplets per condition")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=64, help="glyph side in pixels fed to the network")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def load_glyphs(slug: str, condition_slugs: list[str]):
    from annotation.models import Condition, Dataset, Item

    dataset = Dataset.objects.get(slug=slug)
    conditions = [Condition.objects.get(dataset=dataset, slug=condition) for condition in condition_slugs]
    items = list(Item.objects.filter(dataset=dataset).order_by("id"))
    return conditions, items


def sample_split(conditions, items, sizes: list[int], test_size: int, seed: int):
    """Sample triplets per condition and split by question: training rows never ask a test question."""
    import numpy as np

    from training.sampling import is_numeric, sample_categorical, sample_numeric
    from training.splits import held_out_mask

    rng = np.random.default_rng(seed)
    item_ids = np.array([item.pk for item in items])
    train_parts, test_parts = [], []
    for row, condition in enumerate(conditions):
        values = [item.attributes.get(condition.attribute) for item in items]
        count = (max(sizes) + test_size) * 2
        positions = sample_numeric(values, count, rng) if is_numeric(values) else sample_categorical(values, count, rng)
        triplets = np.column_stack([item_ids[positions], np.full(len(positions), row)])
        held_out = held_out_mask(triplets, share=0.5)
        train_parts.append(triplets[~held_out][: max(sizes)])
        test_parts.append(triplets[held_out][:test_size])
    return train_parts, np.concatenate(test_parts)


def train_variant(variant, train_triplets, test_triplets, items, args, condition_slugs):
    import torch

    from training import csn

    paths = {item.pk: item.image.path for item in items}
    model_config = csn.CSNConfig(
        n_conditions=len(condition_slugs), backbone="small-cnn", variant=variant, in_channels=1,
        image_size=args.image_size, embedding_dim=args.embedding_dim,
    )
    train_config = csn.TrainConfig(epochs=args.epochs, seed=args.seed, num_threads=args.threads, device="auto")
    result = csn.train(
        model_config, train_config, train_triplets=train_triplets, val_triplets=test_triplets,
        image_source=csn.PathImageSource(paths), conditions=condition_slugs, item_ids=sorted(paths),
    )
    masks = csn.mask_statistics(result.model)
    probe = probe_unmasked(result.model, items, paths, args)
    best = result.history[result.best_epoch - 1]
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return {
        "test_error": 1 - result.best_val_accuracy,
        "test_error_per_condition": {slug: 1 - accuracy for slug, accuracy in best.val_per_condition.items()},
        "best_epoch": result.best_epoch,
        "mask_sparsity": dict(zip(condition_slugs, masks.sparsity)),
        "mask_cosine": masks.cosine,
        "mask_shared_active": masks.shared_active,
        "probe_accuracy": probe.accuracy,
        "probe_chance": probe.chance_rate,
        "images_per_second": result.images_per_second,
        "wall_time_s": result.wall_time_s,
        "device": result.device,
    }


def probe_unmasked(model, items, paths, args):
    """Linear-probe accuracy of the unmasked embedding (first network for task-specific)."""
    from training import csn

    labels = [str(item.attributes.get(args.probe_attribute)) for item in items]
    condition_row = None if model.shares_embedding else 0
    embeddings = csn.embed_items(model, csn.PathImageSource(paths), sorted(paths), condition_row=condition_row)
    return csn.linear_probe(embeddings, labels, seed=args.seed)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    setup_django()
    import numpy as np

    conditions, items = load_glyphs(args.dataset, args.conditions)
    train_parts, test_triplets = sample_split(conditions, items, args.sizes, args.test_size, args.seed)
    print(f"{len(items)} glyphs, conditions {args.conditions}, {len(test_triplets)} test triplets")

    runs = []
    for size in args.sizes:
        train_triplets = np.concatenate([part[:size] for part in train_parts])
        for variant in args.variants:
            print(f"training {variant} on {len(train_triplets)} triplets ({size} per condition)", flush=True)
            figures = train_variant(variant, train_triplets, test_triplets, items, args, args.conditions)
            runs.append({"variant": variant, "per_condition_size": size, "train_triplets": len(train_triplets), **figures})
            print(f"  test error {figures['test_error']:.4f}, {figures['images_per_second']:.0f} images/s", flush=True)

    settings = {key: value for key, value in vars(args).items()}
    path = write_results("fonts_variants", {"settings": settings, "glyphs": len(items), "runs": runs})
    print(report(runs, args.conditions))
    print(f"results written to {path}")


def report(runs: list[dict], conditions: list[str]) -> str:
    headers = ["variant", "train triplets"] + [f"error {slug}" for slug in conditions] + [
        "error overall", "probe acc.", "images/s", "wall s"]
    rows = [
        [run["variant"], run["train_triplets"]]
        + [f"{100 * run['test_error_per_condition'].get(slug, float('nan')):.2f}%" for slug in conditions]
        + [f"{100 * run['test_error']:.2f}%", f"{run['probe_accuracy']:.3f}", f"{run['images_per_second']:.0f}",
           f"{run['wall_time_s']:.0f}"]
        for run in runs
    ]
    return markdown_table(headers, rows)


if __name__ == "__main__":
    main()
