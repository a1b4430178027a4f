"""Held-out triplet accuracy on zappos85 (real crowd triplets) against training-set size.

It trains the ResNet-18-style backbone (cut after layer3) from scratch on seeded subsets of
the dataset's training split, and with ImageNet weights too when torchvision's cache holds
them, then scores the fixed held-out split. Every size gets about the same number of
optimiser steps. Results go to benchmarks/results/zappos_sizes.json.

    .venv/bin/python manage.py import_images --dataset zappos85 --dir PATH/images --create
    .venv/bin/python manage.py import_triplets PATH/triplets.csv --dataset zappos85 \\
        --condition overall --format head-close-far-csv
    .venv/bin/python benchmarks/reproduce_zappos.py --sizes 1000 5000 20000 100000
"""

import argparse
import logging
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import markdown_table, setup_django, write_results  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="zappos85")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 100000])
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps per run (about)")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def schedule(size: int, steps: int) -> tuple[int, int]:
    """Return (batch size, epochs) giving about `steps` optimiser steps on `size` triplets."""
    batch_size = min(2048, max(128, size // 10))
    batches_per_epoch = math.ceil(size / batch_size)
    return batch_size, max(1, math.ceil(steps / batches_per_epoch))


def run_size(size, data, pretrained, args):
    from training import csn

    batch_size, epochs = schedule(size, args.steps)
    model_config = csn.CSNConfig(
        n_conditions=len(data.conditions), backbone="resnet18-layer3", variant="learned", in_channels=3,
        image_size=args.image_size, resize_size=args.image_size, pretrained=pretrained,
    )
    train_config = csn.TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=1e-3 if pretrained is None else 1e-4, max_triplets=size,
        seed=args.seed, num_threads=args.threads, horizontal_flip=True,
    )
    result = csn.train(
        model_config, train_config, train_triplets=data.train_triplets, val_triplets=data.test_triplets,
        image_source=csn.PathImageSource(data.image_paths), conditions=data.conditions,
        item_ids=sorted(data.image_paths),
    )
    return {
        "train_triplets": size, "pretrained": pretrained or "none", "batch_size": batch_size, "epochs": epochs,
        "held_out_accuracy": result.best_val_accuracy, "best_epoch": result.best_epoch,
        "images_per_second": result.images_per_second, "wall_time_s": result.wall_time_s, "device": result.device,
    }


def pretrained_options() -> tuple[list[str | None], str]:
    from training import csn

    path, url = csn.torchvision_weights_path("resnet18")
    if Path(path).exists():
        return [None, "torchvision"], f"ImageNet weights found at {path}"
    return [None], f"no ImageNet weights at {path} (they come from {url}); pretrained runs skipped"


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    setup_django()
    from annotation.models import Dataset
    from training.services.data import training_data_for

    data = training_data_for(dataset=Dataset.objects.get(slug=args.dataset))
    options, note = pretrained_options()
    print(f"{len(data.train_triplets)} training and {len(data.test_triplets)} held-out triplets; {note}")

    runs = []
    for pretrained in options:
        for size in args.sizes:
            print(f"training on {size} triplets, pretrained={pretrained or 'none'}", flush=True)
            runs.append(run_size(size, data, pretrained, args))
            print(f"  held-out accuracy {runs[-1]['held_out_accuracy']:.4f}", flush=True)

    path = write_results("zappos_sizes", {"settings": vars(args), "pretrained_note": note,
                                          "held_out_triplets": int(len(data.test_triplets)), "runs": runs})
    headers = ["train triplets", "pretrained", "batch", "epochs", "held-out accuracy", "images/s", "wall s"]
    rows = [[run["train_triplets"], run["pretrained"], run["batch_size"], run["epochs"],
             f"{run['held_out_accuracy']:.4f}", f"{run['images_per_second']:.0f}", f"{run['wall_time_s']:.0f}"]
            for run in runs]
    print(markdown_table(headers, rows))
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
