"""Service tests of judgement_record: triplets, counters, idempotency and rejected answers."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation.models import Judgement, Lease, Triplet, TripletTask
from annotation.services.answers import (
    AnswerConflict,
    AnswerInvalid,
    TaskNotLeased,
    judgement_record,
)
from annotation.services.leasing import AnnotatorBlocked, task_lease_next
from tests.services.factories import make_annotator, make_tasks


@pytest.fixture
def dataset(make_dataset):
    return make_dataset(n_items=6)


@pytest.fixture
def lease(dataset, annotator):
    make_tasks(dataset, 3)
    return task_lease_next(annotator=annotator, dataset=dataset)


def record(annotator, task, choice, token=None, response_ms=900, now=None):
    return judgement_record(
        annotator=annotator,
        task=task,
        choice=choice,
        client_token=token or uuid.uuid4(),
        response_ms=response_ms,
        now=now,
    )


def test_answer_candidate_writes_oriented_triplet(lease, annotator):
    task = lease.task
    chosen = lease.right_item_id

    judgement, created = record(annotator, task, chosen)
    triplet = Triplet.objects.get(judgement=judgement)

    assert created is True
    assert triplet.anchor_id == task.anchor_id
    assert triplet.closer_id == chosen
    assert triplet.farther_id == lease.left_item_id
    assert triplet.condition_id == task.condition_id
    assert triplet.dataset_id == task.dataset_id
    assert triplet.source == Triplet.Source.JUDGEMENT
    assert triplet.annotator_id == annotator.pk


def test_answer_stores_shown_order_and_choice(lease, annotator):
    judgement, _ = record(annotator, lease.task, lease.left_item_id, response_ms=1234)

    assert judgement.choice == Judgement.Choice.CANDIDATE
    assert judgement.chosen_item_id == lease.left_item_id
    assert judgement.left_item_id == lease.left_item_id
    assert judgement.right_item_id == lease.right_item_id
    assert judgement.response_ms == 1234
    assert judgement.after_lease_expired is False


def test_answer_marks_lease_and_annotator(lease, annotator):
    now = timezone.now()

    record(annotator, lease.task, "tie", now=now)
    lease.refresh_from_db()
    annotator.refresh_from_db()

    assert lease.answered_at == now
    assert annotator.last_seen_at == now


def test_answer_tie_counts_without_triplet(lease, annotator):
    judgement, _ = record(annotator, lease.task, "tie")
    task = TripletTask.objects.get(pk=lease.task_id)

    assert judgement.chosen_item_id is None
    assert Triplet.objects.count() == 0
    assert task.answers_count == 1
    assert task.status == TripletTask.Status.DONE


def test_answer_skip_does_not_count(lease, annotator):
    judgement, _ = record(annotator, lease.task, "skip")
    task = TripletTask.objects.get(pk=lease.task_id)

    assert judgement.choice == Judgement.Choice.SKIP
    assert Triplet.objects.count() == 0
    assert task.answers_count == 0
    assert task.status == TripletTask.Status.OPEN


def test_answer_done_only_at_wanted_count(dataset, annotator, django_user_model):
    (task,) = make_tasks(dataset, 1, answers_wanted=2)
    second = make_annotator(django_user_model, "second")
    first_lease = task_lease_next(annotator=annotator, dataset=dataset)
    second_lease = task_lease_next(annotator=second, dataset=dataset)

    record(annotator, task, first_lease.left_item_id)
    task.refresh_from_db()
    status_after_one = task.status
    record(second, task, second_lease.left_item_id)
    task.refresh_from_db()

    assert status_after_one == TripletTask.Status.OPEN
    assert task.answers_count == 2
    assert task.status == TripletTask.Status.DONE


def test_answer_same_token_returns_stored(lease, annotator):
    token = uuid.uuid4()

    first, first_created = record(annotator, lease.task, lease.left_item_id, token=token)
    again, again_created = record(annotator, lease.task, lease.left_item_id, token=token)

    assert first_created is True
    assert again_created is False
    assert again.pk == first.pk
    assert Judgement.objects.count() == 1
    assert Triplet.objects.count() == 1
    assert TripletTask.objects.get(pk=lease.task_id).answers_count == 1


def test_answer_token_accepted_as_string(lease, annotator):
    token = uuid.uuid4()

    judgement, _ = record(annotator, lease.task, "tie", token=str(token))

    assert judgement.client_token == token


def test_answer_rejects_malformed_token(lease, annotator):
    with pytest.raises(AnswerInvalid) as raised:
        record(annotator, lease.task, "tie", token="not-a-uuid")

    assert raised.value.field == "client_token"


def test_answer_rejects_token_of_other_task(dataset, lease, annotator):
    token = uuid.uuid4()
    record(annotator, lease.task, "tie", token=token)
    next_lease = task_lease_next(annotator=annotator, dataset=dataset)

    with pytest.raises(AnswerConflict) as raised:
        record(annotator, next_lease.task, "tie", token=token)

    assert raised.value.field == "client_token"


def test_answer_rejects_token_of_other_annotator(dataset, django_user_model):
    (task,) = make_tasks(dataset, 1, answers_wanted=2)
    first = make_annotator(django_user_model, "first")
    second = make_annotator(django_user_model, "second")
    task_lease_next(annotator=first, dataset=dataset)
    task_lease_next(annotator=second, dataset=dataset)
    token = uuid.uuid4()
    record(first, task, "tie", token=token)

    with pytest.raises(AnswerConflict) as raised:
        record(second, task, "tie", token=token)

    assert raised.value.field == "client_token"


def test_answer_rejects_second_answer(lease, annotator):
    record(annotator, lease.task, "tie")

    with pytest.raises(AnswerConflict) as raised:
        record(annotator, lease.task, "skip")

    assert raised.value.field == "task"
    assert Judgement.objects.count() == 1


def test_answer_rejects_unleased_task(dataset, annotator):
    (task,) = make_tasks(dataset, 1)

    with pytest.raises(TaskNotLeased):
        record(annotator, task, "tie")


def test_answer_rejects_blocked_annotator(lease, annotator):
    annotator.is_blocked = True
    annotator.save()

    with pytest.raises(AnnotatorBlocked):
        record(annotator, lease.task, "tie")


@pytest.mark.parametrize("kind", ["anchor", "other item", "string", "boolean", "float"])
def test_answer_rejects_invalid_choice(lease, annotator, kind):
    task = lease.task
    other_item = task.dataset.items.exclude(
        pk__in=[task.anchor_id, task.candidate_a_id, task.candidate_b_id]
    ).first()
    choice = {
        "anchor": task.anchor_id,
        "other item": other_item.pk,
        "string": "left",
        "boolean": True,
        "float": float(task.candidate_a_id),
    }[kind]

    with pytest.raises(AnswerInvalid) as raised:
        record(annotator, task, choice)

    assert raised.value.field == "choice"
    assert Judgement.objects.count() == 0


@pytest.mark.parametrize("response_ms", [-1, 1.5, "900", True, 2**31])
def test_answer_rejects_invalid_response_ms(lease, annotator, response_ms):
    with pytest.raises(AnswerInvalid) as raised:
        record(annotator, lease.task, "tie", response_ms=response_ms)

    assert raised.value.field == "response_ms"


def test_answer_after_expiry_stored_and_flagged(lease, annotator, settings):
    late = lease.expires_at + timedelta(seconds=1)

    judgement, created = record(annotator, lease.task, lease.left_item_id, now=late)

    assert created is True
    assert judgement.after_lease_expired is True
    assert Triplet.objects.filter(judgement=judgement).exists()
    assert TripletTask.objects.get(pk=lease.task_id).answers_count == 1


def test_answer_after_task_filled_stored(dataset, annotator, django_user_model, settings):
    (task,) = make_tasks(dataset, 1)
    now = timezone.now()
    late_lease = task_lease_next(annotator=annotator, dataset=dataset, now=now)
    later = now + timedelta(seconds=settings.CSN_LEASE_SECONDS + 1)
    other = make_annotator(django_user_model, "other")
    task_lease_next(annotator=other, dataset=dataset, now=later)
    record(other, task, "tie", now=later)

    judgement, created = record(annotator, task, late_lease.right_item_id, now=later)
    task.refresh_from_db()

    assert created is True
    assert judgement.after_lease_expired is True
    assert task.answers_count == 2
    assert task.status == TripletTask.Status.DONE


def test_answer_on_retired_task_stored_and_flagged(lease, annotator):
    TripletTask.objects.filter(pk=lease.task_id).update(status=TripletTask.Status.RETIRED)

    judgement, created = record(annotator, lease.task, "tie")

    assert created is True
    assert judgement.after_lease_expired is True
    assert TripletTask.objects.get(pk=lease.task_id).status == TripletTask.Status.RETIRED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_answer_concurrent_same_token_once(make_dataset, django_user_model):
    dataset = make_dataset(n_items=6)
    make_tasks(dataset, 1)
    annotator = make_annotator(django_user_model, "racer")
    lease = task_lease_next(annotator=annotator, dataset=dataset)
    token = uuid.uuid4()
    barrier = threading.Barrier(12)
    results, errors = [], []

    def send():
        try:
            barrier.wait(timeout=30)
            results.append(record(annotator, lease.task, lease.left_item_id, token=token))
        except Exception as error:  # noqa: BLE001 - reported by the asserts below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert Judgement.objects.count() == 1
    assert Triplet.objects.count() == 1
    assert {judgement.pk for judgement, _ in results} == {Judgement.objects.get().pk}
    assert sum(created for _, created in results) == 1
    assert TripletTask.objects.get(pk=lease.task_id).answers_count == 1
    assert Lease.objects.get(pk=lease.pk).answered_at is not None
