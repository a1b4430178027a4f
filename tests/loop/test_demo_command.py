"""The one-command demo, as README's quick start runs it: SQLite, no broker server."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_demo_runs_a_round_and_exits(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "CELERY_"))}
    environment.update({"CSN_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    command = [
        sys.executable, "manage.py", "demo", "--exit", "--rounds", "1", "--max-fonts", "12",
        "--answers-per-round", "200", "--seed-tasks", "80", "--port", str(free_port()),
    ]

    finished = subprocess.run(
        command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=600
    )

    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-4000:]
    assert "round 1: " in finished.stdout, output[-4000:]
    assert "model v1" in finished.stdout, output[-4000:]
    assert "annotate at http://127.0.0.1:" in finished.stdout
    assert (tmp_path / "var" / "db.sqlite3").exists()


def test_demo_rejects_a_port_in_use(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "CELERY_"))}
    environment["CSN_VAR_DIR"] = str(tmp_path / "var")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        finished = subprocess.run(
            [sys.executable, "manage.py", "demo", "--exit", "--port", str(port)],
            cwd=REPO, env=environment, capture_output=True, text=True, timeout=120,
        )

    assert finished.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in finished.stderr
