"""Measure CSN training throughput (images per second) on a GPU, or on the CPU for comparison.

It trains on generated images, so it needs no dataset or database, and runs a fixed number
of steps after a warm-up. On CUDA it uses mixed precision and pinned memory as the trainer
does. The figures go to benchmarks/results/training_throughput_<device>.json.

    .venv/bin/python benchmarks/training_throughput.py --device cuda --backbone resnet18-layer3 --image-size 112
    .venv/bin/python benchmarks/training_throughput.py --device cpu --steps 5
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_results  # noqa: E402
from training import csn  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--backbone", default="resnet18-layer3")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch-images", type=int, default=256, help="distinct images per step")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = csn.resolve_device(args.device)
    amp = csn.resolve_amp(None, device)
    torch.manual_seed(args.seed)

    config = csn.CSNConfig(n_conditions=4, backbone=args.backbone, in_channels=args.channels, image_size=args.image_size)
    model = csn.build_model(config, seed=args.seed).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    images = torch.randn(args.batch_images, args.channels, args.image_size, args.image_size)
    images = images.pin_memory() if device.type == "cuda" else images
    triplets = torch.randint(0, args.batch_images, (args.batch_images, 3), device=device)
    rows = torch.randint(0, 4, (args.batch_images,), device=device)

    def step() -> None:
        batch = images.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp):
            embeddings = model.embed(batch)
            closer = model.masked_distance(embeddings[triplets[:, 0]], embeddings[triplets[:, 1]], rows)
            farther = model.masked_distance(embeddings[triplets[:, 0]], embeddings[triplets[:, 2]], rows)
            loss = torch.relu(closer - farther + 0.2).mean()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    figures = {"device": name, "amp": amp, "images_per_second": round(args.steps * args.batch_images / seconds, 1),
               "settings": vars(args)}
    print(f"{name}: {figures['images_per_second']} training images/s ({args.backbone}, {args.image_size}px, amp={amp})")
    path = write_results(f"training_throughput_{device.type}", figures)
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
