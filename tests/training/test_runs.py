"""Requesting runs: one active run per dataset, dead workers, and late success reports."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from training.models import ModelVersion, TrainingRun
from training.services.loop import runs_fail_stale
from training.services.runs import (
    RunNotRunning,
    training_run_claim,
    training_run_request,
    training_run_succeed,
)


def test_request_creates_a_queued_run(make_dataset):
    dataset = make_dataset()

    run, created = training_run_request(dataset=dataset, reason="first", enqueue=False)

    assert created
    assert run.status == TrainingRun.Status.QUEUED
    assert run.reason == "first"


def test_second_request_joins_the_queued_run(make_dataset):
    dataset = make_dataset()
    first, _ = training_run_request(dataset=dataset, enqueue=False)

    second, created = training_run_request(dataset=dataset, variant="fixed", enqueue=False)

    assert not created
    assert second.pk == first.pk
    assert TrainingRun.objects.filter(dataset=dataset).count() == 1


def test_request_joins_a_running_run(make_dataset):
    dataset = make_dataset()
    first, _ = training_run_request(dataset=dataset, enqueue=False)
    training_run_claim(run_id=first.pk)

    second, created = training_run_request(dataset=dataset, enqueue=False)

    assert not created
    assert second.pk == first.pk


def test_request_after_a_finished_run_creates_another(make_dataset):
    dataset = make_dataset()
    TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.FAILED)

    _, created = training_run_request(dataset=dataset, enqueue=False)

    assert created


def test_requests_of_two_datasets_are_independent(make_dataset):
    first, _ = training_run_request(dataset=make_dataset(slug="one"), enqueue=False)

    second, created = training_run_request(dataset=make_dataset(slug="two"), enqueue=False)

    assert created
    assert second.pk != first.pk


def test_request_rejects_unknown_variant(make_dataset):
    with pytest.raises(ValueError, match="unknown variant 'siamese'"):
        training_run_request(dataset=make_dataset(), variant="siamese", enqueue=False)


@pytest.mark.postgres
def test_concurrent_requests_share_one_run(transactional_db, make_dataset):
    dataset = make_dataset()
    barrier = threading.Barrier(2)
    results = []
    errors = []

    def request():
        try:
            barrier.wait(timeout=10)
            results.append(training_run_request(dataset=dataset, enqueue=False))
        except Exception as error:  # noqa: BLE001 - reported by the assert below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len({run.pk for run, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, True]
    assert TrainingRun.objects.filter(dataset=dataset).count() == 1


@pytest.mark.postgres
def test_request_racing_an_uncommitted_run_joins_it(transactional_db, make_dataset):
    """The second request finds no committed run, waits on the unique index, then joins the first."""
    from django.db import transaction

    dataset = make_dataset()
    inserted = threading.Event()
    results = {}
    errors = []

    def first_request():
        try:
            with transaction.atomic():
                results["first"] = training_run_request(dataset=dataset, enqueue=False)
                inserted.set()
                time.sleep(1.0)
        except Exception as error:  # noqa: BLE001 - reported by the assert below
            errors.append(error)
        finally:
            inserted.set()
            connection.close()

    def second_request():
        try:
            inserted.wait(timeout=10)
            results["second"] = training_run_request(dataset=dataset, enqueue=False)
        except Exception as error:  # noqa: BLE001 - reported by the assert below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=first_request), threading.Thread(target=second_request)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    first_run, first_created = results["first"]
    second_run, second_created = results["second"]
    assert errors == []
    assert first_created
    assert not second_created
    assert second_run.pk == first_run.pk


def running_run(dataset, *, heartbeat_age: timedelta) -> TrainingRun:
    moment = timezone.now() - heartbeat_age
    return TrainingRun.objects.create(
        dataset=dataset, status=TrainingRun.Status.RUNNING, started_at=moment, heartbeat_at=moment
    )


def test_stale_run_is_marked_failed(make_dataset, settings):
    settings.CSN_RUN_HEARTBEAT_TIMEOUT = 60
    stale = running_run(make_dataset(slug="stale"), heartbeat_age=timedelta(minutes=5))

    failed = runs_fail_stale()

    stale.refresh_from_db()
    assert failed == [stale.pk]
    assert stale.status == TrainingRun.Status.FAILED
    assert "the worker stopped mid-run" in stale.error
    assert stale.finished_at is not None


def test_fresh_run_stays_running(make_dataset, settings):
    settings.CSN_RUN_HEARTBEAT_TIMEOUT = 60
    fresh = running_run(make_dataset(slug="fresh"), heartbeat_age=timedelta(seconds=5))

    failed = runs_fail_stale()

    fresh.refresh_from_db()
    assert failed == []
    assert fresh.status == TrainingRun.Status.RUNNING


def test_run_without_heartbeat_is_judged_by_its_start(make_dataset, settings):
    settings.CSN_RUN_HEARTBEAT_TIMEOUT = 60
    dataset = make_dataset()
    run = TrainingRun.objects.create(
        dataset=dataset, status=TrainingRun.Status.RUNNING, started_at=timezone.now() - timedelta(minutes=5)
    )

    failed = runs_fail_stale()

    run.refresh_from_db()
    assert failed == [run.pk]
    assert run.status == TrainingRun.Status.FAILED
    assert "no heartbeat since" in run.error


def test_queued_run_is_never_stale(make_dataset, settings):
    settings.CSN_RUN_HEARTBEAT_TIMEOUT = 60
    run = TrainingRun.objects.create(dataset=make_dataset())
    TrainingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=2))

    assert runs_fail_stale() == []


def test_late_success_of_failed_run_rejected(make_dataset, settings):
    settings.CSN_RUN_HEARTBEAT_TIMEOUT = 60
    dataset = make_dataset()
    run, _ = training_run_request(dataset=dataset, enqueue=False)
    run = training_run_claim(run_id=run.pk)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    runs_fail_stale()

    with pytest.raises(RunNotRunning, match=f"run {run.pk} is failed"):
        training_run_succeed(run=run, metrics={"held_out_accuracy": 0.9}, checkpoint_path="/tmp/none.pt", triplet_count=3)

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert not ModelVersion.objects.filter(dataset=dataset).exists()


def test_claim_takes_a_queued_run_once(make_dataset):
    run, _ = training_run_request(dataset=make_dataset(), enqueue=False)

    first = training_run_claim(run_id=run.pk)
    second = training_run_claim(run_id=run.pk)

    assert first.status == TrainingRun.Status.RUNNING
    assert first.heartbeat_at is not None
    assert second is None
