"""Child processes of the one-command demo: web server, Celery worker and beat."""

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass
class ServiceGroup:
    """Starts the platform's processes with a shared environment and stops them together."""

    environment: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, arguments: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *arguments], cwd=settings.BASE_DIR, env=self.environment,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes[name] = process
        logger.info("started %s (pid %s), log in %s", name, process.pid, self.log_dir / f"{name}.log")

    def check_alive(self) -> None:
        """Raise RuntimeError naming the first process that exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"the {name} process exited with status {process.returncode}; see {self.log_dir / (name + '.log')}"
                )

    def stop(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop within 15 s; killing it", name)
                process.kill()


def demo_environment(*, port: int, check_seconds: float) -> dict[str, str]:
    """Environment for the children: this database, a broker without a server unless one is set."""
    environment = dict(os.environ)
    environment.setdefault("CSN_VAR_DIR", str(settings.VAR_DIR))
    if not settings.CELERY_BROKER_URL:
        environment["CELERY_BROKER_URL"] = "filesystem://"
    environment["CELERY_TASK_ALWAYS_EAGER"] = "false"
    environment["CSN_RETRAIN_CHECK_SECONDS"] = str(check_seconds)
    environment.setdefault("PYTHONUNBUFFERED", "1")
    return environment


def start_platform(*, port: int, check_seconds: float) -> ServiceGroup:
    """Start the web server, one worker for both queues and beat."""
    services = ServiceGroup(demo_environment(port=port, check_seconds=check_seconds), Path(settings.VAR_DIR) / "logs")
    services.start("web", ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"])
    services.start("worker", ["-m", "celery", "-A", "config", "worker", "-Q", "default,gpu", "--pool", "solo", "-l", "INFO"])
    schedule = Path(settings.VAR_DIR) / "celerybeat-schedule"
    services.start("beat", ["-m", "celery", "-A", "config", "beat", "-l", "INFO", "-s", str(schedule)])
    return services


def wait_for_http(url: str, services: ServiceGroup, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        services.check_alive()
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.3)
    raise RuntimeError(f"the web server did not answer at {url} within {timeout_s:.0f} s")
