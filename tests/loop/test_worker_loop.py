"""The active-learning loop end to end: HTTP answers, a real Celery worker, a new selection round.

The test talks to a live server over HTTP, sends Celery messages through a real Redis and lets
a separate `celery worker` process (both queues, solo pool) retrain the model and queue the
next round. It needs PostgreSQL (the worker shares the test database) and Redis at
CSN_TEST_BROKER_URL.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import kombu.pools
import pytest
import redis
import requests
from django.conf import settings
from django.db import connection

from annotation.importers.seeding import seed_random_tasks
from annotation.models import Item, Triplet, TripletTask
from config.celery_app import app as celery_app
from tests.conftest import IN_CI
from tests.training.conftest import TINY_SETTINGS
from training.models import LoopSettings, ModelVersion, SelectionRound, TrainingRun

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BROKER_URL = os.environ.get("CSN_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
REPO_ROOT = Path(__file__).resolve().parents[2]
HTTP_TIMEOUT = 30
LOOP_TIMEOUT_S = 180
RETRAIN_AFTER = 24
ANSWERS = 30
TASKS_PER_ROUND = 6


def redis_problem() -> str | None:
    """Return why the broker cannot be used, or None when it responds to a ping."""
    try:
        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as error:
        return f"Redis at {BROKER_URL} is unreachable ({error}); start it or set CSN_TEST_BROKER_URL"
    return None


@pytest.fixture
def broker():
    """Point this process's Celery app at the test Redis, send for real, and empty the queues."""
    problem = redis_problem()
    if problem and IN_CI:
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)

    previous = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url=BROKER_URL, task_always_eager=False)
    drop_producer_pools()
    celery_app.control.purge()
    yield BROKER_URL
    celery_app.control.purge()
    celery_app.conf.update(**previous)
    drop_producer_pools()


def drop_producer_pools() -> None:
    """Make the next message open a connection to the current broker_url.

    An eager task call creates the app's connection and producer pools for the broker URL of
    that moment (none, so the AMQP default), and later sends reuse them. kombu also keeps the
    producer pools in a global registry keyed by connection. That registry is reset too,
    because a later send would otherwise find a closed pool there. NOTE: `_pool` and `_producer_pool` are
    Celery internals (checked on Celery 5.7); its fork handler clears them the same way.
    """
    kombu.pools.reset()
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def database_url() -> str:
    """Build the URL of pytest-django's test database, for the worker process."""
    values = connection.settings_dict
    user = values["USER"] or "postgres"
    password = f":{values['PASSWORD']}" if values["PASSWORD"] else ""
    return f"postgres://{user}{password}@{values['HOST'] or '127.0.0.1'}:{values['PORT'] or 5432}/{values['NAME']}"


@pytest.fixture
def worker(transactional_db, broker, tmp_path):
    """Start `celery worker` on both queues; stop it afterwards and print its log if the test failed."""
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CSN_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CSN_MODEL_DIR": str(settings.CSN_MODEL_DIR),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,gpu",
        "--pool", "solo", "--concurrency", "1", "--loglevel", "INFO",
        "--hostname", f"loop-test-{uuid.uuid4().hex[:8]}@%h",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    handle = WorkerHandle(process, log_path)
    try:
        yield handle
    finally:
        handle.stop()


class WorkerHandle:
    def __init__(self, process: subprocess.Popen, log_path: Path):
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"celery worker exited with status {self.process.returncode}; its log:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def print_worker_log_on_failure(request, worker):
    yield
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        print(f"--- celery worker log ({worker.log_path}) ---\n{worker.log()}")


def session_for(live_server, django_user_model, username: str, *, staff: bool = False) -> requests.Session:
    from rest_framework.authtoken.models import Token

    from annotation.models import Annotator

    user = django_user_model.objects.create_user(username=username, password=f"pw-{username}-123", is_staff=staff)
    Annotator.objects.create(user=user)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {Token.objects.create(user=user).key}"
    session.base_url = live_server.url
    return session


def attribute_choice(task: dict, attributes: dict[int, dict]) -> int:
    """Pick the candidate closer to the anchor by the task's condition attribute, then by the other one."""
    anchor = attributes[task["anchor"]["id"]]

    def distance(candidate_id: int) -> tuple[float, float]:
        candidate = attributes[candidate_id]
        family_gap = float(candidate["family"] != anchor["family"])
        brightness_gap = abs(candidate["brightness"] - anchor["brightness"])
        if task["condition"]["slug"] == "colour":
            return (family_gap, brightness_gap)
        return (brightness_gap, family_gap)

    left, right = (candidate["id"] for candidate in task["candidates"])
    return left if distance(left) <= distance(right) else right


def answer_tasks(session: requests.Session, dataset_slug: str, count: int) -> int:
    attributes = dict(Item.objects.filter(dataset__slug=dataset_slug).values_list("id", "attributes"))
    answered = 0
    while answered < count:
        response = session.get(f"{session.base_url}/api/v1/tasks/next/", params={"dataset": dataset_slug}, timeout=HTTP_TIMEOUT)
        if response.status_code == 204:
            break
        assert response.status_code == 200, response.text
        task = response.json()
        body = {"choice": attribute_choice(task, attributes), "client_token": str(uuid.uuid4()), "response_ms": 900}
        answer = session.post(f"{session.base_url}/api/v1/tasks/{task['id']}/answer/", json=body, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 201, answer.text
        answered += 1
    return answered


def wait_for(condition, worker: WorkerHandle, *, what: str, timeout_s: float = LOOP_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        worker.check_alive()
        time.sleep(1)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def test_answers_retrain_and_queue_a_strategy_round(
    worker, print_worker_log_on_failure, live_server, colour_dataset, django_user_model
):
    from training.tasks import check_retraining

    dataset = colour_dataset()
    LoopSettings.objects.create(
        dataset=dataset, retrain_after_triplets=RETRAIN_AFTER, training_settings=TINY_SETTINGS,
        strategy="uncertainty", tasks_per_round=TASKS_PER_ROUND, random_share=0.0,
    )
    seed_random_tasks(dataset=dataset, count=20, seed=0)
    annotator = session_for(live_server, django_user_model, "annotator")

    answered = answer_tasks(annotator, dataset.slug, ANSWERS)

    assert answered == ANSWERS
    assert Triplet.objects.filter(dataset=dataset, source=Triplet.Source.JUDGEMENT).count() == ANSWERS

    check_retraining.delay()

    run = wait_for(
        lambda: TrainingRun.objects.filter(dataset=dataset, status__in=["succeeded", "failed"]).first(),
        worker, what="the worker to finish a training run",
    )
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.reason == f"{ANSWERS} new triplets (threshold {RETRAIN_AFTER})"
    version = ModelVersion.objects.get(run=run)
    assert version.is_published
    assert version.triplet_count == ANSWERS

    rounds = wait_for(
        lambda: list(SelectionRound.objects.filter(model_version=version)) if SelectionRound.objects.filter(model_version=version).count() == 2 else None,
        worker, what="selection rounds of both conditions",
    )
    assert sorted(selection_round.condition.slug for selection_round in rounds) == ["brightness", "colour"]
    assert TripletTask.objects.filter(model_version=version, origin=TripletTask.Origin.STRATEGY).count() == 2 * TASKS_PER_ROUND

    log = worker.log()
    assert f"worker starts run {run.pk}" in log
    assert "Task training.tasks.selection_after_publish[" in log

    newcomer = session_for(live_server, django_user_model, "newcomer")
    response = newcomer.get(f"{live_server.url}/api/v1/tasks/next/", params={"dataset": dataset.slug}, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    served = TripletTask.objects.get(pk=response.json()["id"])
    assert served.origin == TripletTask.Origin.STRATEGY
    assert served.strategy == "uncertainty"
    assert served.model_version_id == version.pk
