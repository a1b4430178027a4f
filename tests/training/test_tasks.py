"""The Celery tasks, called in this process: train_run, check_retraining."""

from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from config.celery_app import app as celery_app
from tests.training.conftest import TINY_SETTINGS
from training import csn
from training.models import LoopSettings, ModelVersion, SelectionRound, TrainingRun
from training.services.runs import training_run_request
from training.tasks import check_retraining, train_run


@pytest.fixture
def eager_celery():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.mark.slow
def test_train_run_publishes_and_starts_selection(sampled_dataset, eager_celery):
    LoopSettings.objects.create(dataset=sampled_dataset, tasks_per_round=4, random_share=0.0)
    run, _ = training_run_request(dataset=sampled_dataset, settings=TINY_SETTINGS, enqueue=False)

    version_id = train_run(run.pk)

    version = ModelVersion.objects.get(pk=version_id)
    assert version.run_id == run.pk
    assert version.is_published
    assert SelectionRound.objects.filter(model_version=version).count() == 2


def test_train_run_records_a_failure_and_returns_none(sampled_dataset, monkeypatch):
    def broken_train(*args, **kwargs):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(csn, "train", broken_train)
    run, _ = training_run_request(dataset=sampled_dataset, settings=TINY_SETTINGS, enqueue=False)

    assert train_run(run.pk) is None

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "disk full (simulated)" in run.error


def test_train_run_records_the_time_limit(sampled_dataset, monkeypatch, settings):
    def slow_train(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(csn, "train", slow_train)
    run, _ = training_run_request(dataset=sampled_dataset, settings=TINY_SETTINGS, enqueue=False)

    assert train_run(run.pk) is None

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert run.error == f"timed out after {settings.CSN_TRAIN_SOFT_TIME_LIMIT} s"


def test_train_run_of_a_finished_run_does_nothing(sampled_dataset):
    run = TrainingRun.objects.create(dataset=sampled_dataset, status=TrainingRun.Status.SUCCEEDED)

    assert train_run(run.pk) is None


def test_check_retraining_sweeps_every_dataset(make_dataset, sampled_dataset, sent_runs, settings):
    settings.CSN_RUN_HEARTBEAT_TIMEOUT = 60
    LoopSettings.objects.create(dataset=sampled_dataset, retrain_after_triplets=50)
    idle = make_dataset(slug="idle")
    long_ago = timezone.now() - timedelta(minutes=5)
    stale = TrainingRun.objects.create(
        dataset=idle, status=TrainingRun.Status.RUNNING, started_at=long_ago, heartbeat_at=long_ago
    )

    queued = check_retraining()

    stale.refresh_from_db()
    assert stale.status == TrainingRun.Status.FAILED
    assert queued == [TrainingRun.objects.get(dataset=sampled_dataset).pk]
    assert not TrainingRun.objects.filter(dataset=idle, status="queued").exists()
