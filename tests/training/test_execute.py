"""training_run_execute: the service a worker runs, on a tiny model."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.training.conftest import TINY_SETTINGS
from training import csn
from training.models import ModelVersion, TrainingRun
from training.services.data import training_data_for
from training.services.execute import training_run_execute, validate_run_settings
from training.services.loop import runs_fail_stale
from training.services.runs import RunNotRunning, training_run_request


def held_out_condition_slugs(dataset) -> set[str]:
    """Slugs of the conditions with at least one triplet in the hash-based held-out split.

    The split hashes item ids, which differ from run to run on PostgreSQL, so with 30
    triplets per condition one condition can end up with none held out.
    """
    data = training_data_for(dataset=dataset)
    rows = set(data.test_triplets[:, 3].tolist())
    assert rows, "the held-out split is empty"
    return {data.conditions[row] for row in rows}


@pytest.mark.slow
def test_execute_publishes_and_records_metrics(sampled_dataset):
    run, _ = training_run_request(dataset=sampled_dataset, settings=TINY_SETTINGS, enqueue=False)

    version = training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert version.is_published
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert run.checkpoint_path == version.checkpoint_path
    assert len(run.metrics["history"]) == 1
    assert set(run.metrics["held_out_per_condition"]) == held_out_condition_slugs(sampled_dataset)
    assert csn.load_checkpoint(version.checkpoint_path).model_config.image_size == 16


def test_execute_of_a_run_not_queued_does_nothing(sampled_dataset):
    run = TrainingRun.objects.create(dataset=sampled_dataset, status=TrainingRun.Status.FAILED)

    assert training_run_execute(run_id=run.pk) is None


@pytest.mark.slow
def test_stale_run_success_is_not_published(sampled_dataset, settings, monkeypatch):
    """A worker that was presumed dead and reports success later must not publish its model."""
    settings.CSN_RUN_HEARTBEAT_TIMEOUT = 60
    run, _ = training_run_request(dataset=sampled_dataset, settings=TINY_SETTINGS, enqueue=False)
    real_train = csn.train

    def train_after_presumed_death(*args, **kwargs):
        TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
        assert runs_fail_stale() == [run.pk]
        return real_train(*args, **kwargs)

    monkeypatch.setattr(csn, "train", train_after_presumed_death)

    with pytest.raises(RunNotRunning, match="not running; its model is not published"):
        training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "the worker stopped mid-run" in run.error
    assert not ModelVersion.objects.filter(dataset=sampled_dataset).exists()


@pytest.mark.parametrize("run_settings", [{"epochs": 1, "warm_start": False}, {"backbone": "small-cnn", "lr": 0.01}])
def test_validate_run_settings_accepts_known_names(run_settings):
    validate_run_settings(run_settings)


def test_validate_run_settings_names_the_unknown_setting():
    with pytest.raises(ValueError, match=r"unknown training settings \['epoch'\]"):
        validate_run_settings({"epoch": 3})


@pytest.mark.parametrize(
    ("run_settings", "message"),
    [({"epochs": 0}, "epochs must be at least 1"), ({"embedding_dim": -4}, "embedding_dim must be at least 1")],
)
def test_validate_run_settings_names_the_invalid_value(run_settings, message):
    with pytest.raises(ValueError, match=message):
        validate_run_settings(run_settings)


def test_broker_failure_leaves_the_run_queued(colour_dataset, monkeypatch, django_capture_on_commit_callbacks):
    from training import tasks
    from training.services.runs import training_run_request

    def refuse(*args, **kwargs):
        raise ConnectionError("broker at redis://127.0.0.1:1/0 refused the connection")

    monkeypatch.setattr(tasks.train_run, "apply_async", refuse)
    dataset = colour_dataset()
    with django_capture_on_commit_callbacks(execute=True):
        run, created = training_run_request(dataset=dataset, reason="test")

    run.refresh_from_db()
    assert created
    assert run.status == TrainingRun.Status.QUEUED
    assert run.celery_task_id == ""
