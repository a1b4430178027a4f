"""Benchmark the annotation cycle (next task, then answer) against gunicorn and PostgreSQL.

It creates a throwaway dataset of generated images in the database that DATABASE_URL
names, starts gunicorn on a free port of 127.0.0.1, and lets N annotator threads each
request a task and answer it, as fast as they can, for a fixed time. It prints answers
per second and p50/p99 latency of both requests and appends the figures to a JSON file.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/csn_bench \
        .venv/bin/python benchmarks/annotation_cycle.py --annotators 16 --seconds 30
"""

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=16, help="concurrent annotator threads")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the load runs, in seconds")
    parser.add_argument("--items", type=int, default=200, help="generated images in the dataset")
    parser.add_argument("--tasks", type=int, default=50_000, help="seeded tasks (enough never to run out)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "annotation_cycle.jsonl")
    return parser.parse_args()


def prepare_database(args: argparse.Namespace) -> tuple[str, list[str]]:
    """Create the dataset, its tasks and one token per annotator; return the slug and tokens."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("this benchmark measures PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)

    from benchmarks.fixtures import create_generated_dataset, create_annotator_tokens

    slug = f"bench-{uuid.uuid4().hex[:8]}"
    create_generated_dataset(slug=slug, n_items=args.items, n_tasks=args.tasks, seed=args.seed)
    tokens = create_annotator_tokens(prefix=slug, count=args.annotators)
    connection.close()
    return slug, tokens


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--access-logfile", "/dev/null",
    ]
    server = subprocess.Popen(command, cwd=REPO, env=os.environ.copy())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=5)
            return server
        except requests.RequestException:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"gunicorn did not start on 127.0.0.1:{port} within 30 s")


def annotate(base: str, slug: str, token: str, stop_at: float, latencies: dict, errors: list) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        response = session.get(f"{base}/api/v1/tasks/next/", params={"dataset": slug}, timeout=30)
        latencies["next"].append(time.perf_counter() - started)
        if response.status_code != 200:
            errors.append(f"next: {response.status_code}")
            return
        task = response.json()

        choice = task["candidates"][0]["id"]
        body = {"choice": choice, "client_token": str(uuid.uuid4()), "response_ms": 1000}
        started = time.perf_counter()
        response = session.post(f"{base}/api/v1/tasks/{task['id']}/answer/", json=body, timeout=30)
        latencies["answer"].append(time.perf_counter() - started)
        if response.status_code != 201:
            errors.append(f"answer: {response.status_code} {response.text[:200]}")


def run_load(base: str, slug: str, tokens: list[str], seconds: float) -> dict:
    latencies: dict[str, list[float]] = {"next": [], "answer": []}
    errors: list[str] = []
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=annotate, args=(base, slug, token, stop_at, latencies, errors))
        for token in tokens
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    answers = len(latencies["answer"]) - len([e for e in errors if e.startswith("answer")])
    figures = {"answers": answers, "seconds": round(elapsed, 2), "answers_per_second": round(answers / elapsed, 1)}
    for name, values in latencies.items():
        milliseconds = np.array(values) * 1000
        figures[f"{name}_p50_ms"] = round(float(np.percentile(milliseconds, 50)), 1)
        figures[f"{name}_p99_ms"] = round(float(np.percentile(milliseconds, 99)), 1)
    figures["errors"] = errors[:10]
    figures["error_count"] = len(errors)
    return figures


def main() -> None:
    args = parse_args()
    slug, tokens = prepare_database(args)
    port = free_port()
    server = start_gunicorn(port, args.workers)
    try:
        print(f"load: {args.annotators} annotators for {args.seconds:.0f} s against gunicorn ({args.workers} workers)")
        figures = run_load(f"http://127.0.0.1:{port}", slug, tokens, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)

    record = {
        "benchmark": "annotation_cycle",
        "annotators": args.annotators,
        "gunicorn_workers": args.workers,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **figures,
    }
    print(json.dumps(record, indent=2))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a") as results:
        results.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
