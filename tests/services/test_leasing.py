"""Service tests of task_lease_next: order, exclusions, capacity and concurrency."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation.models import Lease, TripletTask
from annotation.services.answers import judgement_record
from annotation.services.leasing import (
    AnnotatorBlocked,
    ConditionInactive,
    _lease_locked_task,
    task_lease_next,
)
from tests.services.factories import make_annotator, make_tasks


@pytest.fixture
def dataset(make_dataset):
    return make_dataset(n_items=6, conditions=("colour", "shape"))


def answer(annotator, lease, choice=None, now=None):
    choice = choice if choice is not None else lease.left_item_id
    return judgement_record(
        annotator=annotator,
        task=lease.task,
        choice=choice,
        client_token=uuid.uuid4(),
        response_ms=800,
        now=now,
    )


def test_lease_highest_priority_first(dataset, annotator):
    low, high, middle = make_tasks(dataset, 3)
    TripletTask.objects.filter(pk=low.pk).update(priority=1.0)
    TripletTask.objects.filter(pk=high.pk).update(priority=5.0)
    TripletTask.objects.filter(pk=middle.pk).update(priority=3.0)

    served = []
    for _ in range(3):
        lease = task_lease_next(annotator=annotator, dataset=dataset)
        served.append(lease.task_id)
        answer(annotator, lease)

    assert served == [high.pk, middle.pk, low.pk]


def test_lease_equal_priority_oldest_first(dataset, annotator):
    first, _second = make_tasks(dataset, 2)

    lease = task_lease_next(annotator=annotator, dataset=dataset)

    assert lease.task_id == first.pk


def test_lease_none_when_queue_empty(dataset, annotator):
    assert task_lease_next(annotator=annotator, dataset=dataset) is None


def test_lease_records_candidates_and_expiry(dataset, annotator, settings):
    settings.CSN_LEASE_SECONDS = 120
    (task,) = make_tasks(dataset, 1)
    now = timezone.now()

    lease = task_lease_next(annotator=annotator, dataset=dataset, now=now)

    assert {lease.left_item_id, lease.right_item_id} == {task.candidate_a_id, task.candidate_b_id}
    assert lease.expires_at == now + timedelta(seconds=120)
    assert lease.answered_at is None


def test_lease_reload_returns_same_lease(dataset, annotator):
    make_tasks(dataset, 5)
    first = task_lease_next(annotator=annotator, dataset=dataset)

    again = task_lease_next(annotator=annotator, dataset=dataset)

    assert again.pk == first.pk
    assert (again.left_item_id, again.right_item_id) == (first.left_item_id, first.right_item_id)
    assert again.expires_at == first.expires_at
    assert Lease.objects.filter(annotator=annotator).count() == 1


def test_lease_never_serves_answered_task(dataset, annotator):
    make_tasks(dataset, 2)
    first = task_lease_next(annotator=annotator, dataset=dataset)
    answer(annotator, first)
    TripletTask.objects.filter(pk=first.task_id).update(
        status=TripletTask.Status.OPEN, answers_wanted=5
    )

    second = task_lease_next(annotator=annotator, dataset=dataset)
    answer(annotator, second)
    third = task_lease_next(annotator=annotator, dataset=dataset)

    assert second.task_id != first.task_id
    assert third is None


def test_lease_skip_excludes_task_for_annotator(dataset, annotator, django_user_model):
    (task,) = make_tasks(dataset, 1)
    lease = task_lease_next(annotator=annotator, dataset=dataset)
    answer(annotator, lease, choice="skip")

    again = task_lease_next(annotator=annotator, dataset=dataset)
    other = task_lease_next(annotator=make_annotator(django_user_model, "other"), dataset=dataset)

    assert again is None
    assert other.task_id == task.pk


def test_lease_two_wanted_served_to_two_only(dataset, annotator, django_user_model):
    (task,) = make_tasks(dataset, 1, answers_wanted=2)
    second_annotator = make_annotator(django_user_model, "second")
    third_annotator = make_annotator(django_user_model, "third")
    now = timezone.now()

    first = task_lease_next(annotator=annotator, dataset=dataset, now=now)
    second = task_lease_next(annotator=second_annotator, dataset=dataset, now=now)
    third = task_lease_next(annotator=third_annotator, dataset=dataset, now=now)

    assert first.task_id == task.pk
    assert second.task_id == task.pk
    assert third is None


def test_lease_freed_when_lease_expires(dataset, annotator, django_user_model, settings):
    (task,) = make_tasks(dataset, 1, answers_wanted=2)
    second_annotator = make_annotator(django_user_model, "second")
    third_annotator = make_annotator(django_user_model, "third")
    now = timezone.now()
    task_lease_next(annotator=annotator, dataset=dataset, now=now)
    task_lease_next(annotator=second_annotator, dataset=dataset, now=now + timedelta(seconds=60))

    later = now + timedelta(seconds=settings.CSN_LEASE_SECONDS + 1)
    third = task_lease_next(annotator=third_annotator, dataset=dataset, now=later)

    assert third.task_id == task.pk


def test_lease_answer_frees_no_slot(dataset, annotator, django_user_model):
    (task,) = make_tasks(dataset, 1, answers_wanted=2)
    second_annotator = make_annotator(django_user_model, "second")
    third_annotator = make_annotator(django_user_model, "third")
    answer(annotator, task_lease_next(annotator=annotator, dataset=dataset))
    task_lease_next(annotator=second_annotator, dataset=dataset)

    third = task_lease_next(annotator=third_annotator, dataset=dataset)

    assert third is None


def test_lease_expired_own_lease_renewed(dataset, annotator, settings):
    (task,) = make_tasks(dataset, 1)
    now = timezone.now()
    first = task_lease_next(annotator=annotator, dataset=dataset, now=now)

    later = now + timedelta(seconds=settings.CSN_LEASE_SECONDS + 5)
    renewed = task_lease_next(annotator=annotator, dataset=dataset, now=later)

    assert renewed.pk == first.pk
    assert renewed.task_id == task.pk
    assert renewed.expires_at == later + timedelta(seconds=settings.CSN_LEASE_SECONDS)


def test_lease_candidate_order_seeded_and_random(dataset, django_user_model, settings):
    settings.CSN_TASK_ORDER_SEED = 1234
    tasks = make_tasks(dataset, 1, answers_wanted=40)
    annotators = [make_annotator(django_user_model, f"a{number}") for number in range(40)]

    def draw_orders():
        Lease.objects.all().delete()
        return [
            task_lease_next(annotator=someone, dataset=dataset).left_item_id
            == tasks[0].candidate_a_id
            for someone in annotators
        ]

    first_run = draw_orders()
    settings.CSN_TASK_ORDER_SEED = 1234  # setting the seed again restarts the sequence
    second_run = draw_orders()

    assert True in first_run
    assert False in first_run
    assert first_run == second_run


def test_lease_order_stored_on_lease(dataset, annotator, settings):
    settings.CSN_TASK_ORDER_SEED = 7
    make_tasks(dataset, 1)

    lease = task_lease_next(annotator=annotator, dataset=dataset)
    stored = Lease.objects.get(pk=lease.pk)

    assert (stored.left_item_id, stored.right_item_id) == (lease.left_item_id, lease.right_item_id)


def test_lease_condition_filter(dataset, annotator):
    colour, shape = dataset.conditions.order_by("index")
    make_tasks(dataset, 1, condition=colour, priority=10)
    (shape_task,) = make_tasks(dataset, 1, condition=shape)

    lease = task_lease_next(annotator=annotator, dataset=dataset, condition=shape)

    assert lease.task_id == shape_task.pk


def test_lease_skips_retired_condition_tasks(dataset, annotator):
    colour, shape = dataset.conditions.order_by("index")
    make_tasks(dataset, 1, condition=colour, priority=10)
    (shape_task,) = make_tasks(dataset, 1, condition=shape)
    colour.is_active = False
    colour.save()

    lease = task_lease_next(annotator=annotator, dataset=dataset)

    assert lease.task_id == shape_task.pk


def test_lease_rejects_retired_condition(dataset, annotator):
    colour = dataset.conditions.get(slug="colour")
    colour.is_active = False
    colour.save()

    with pytest.raises(ConditionInactive) as raised:
        task_lease_next(annotator=annotator, dataset=dataset, condition=colour)

    assert raised.value.field == "condition"


def test_lease_serves_only_open_tasks(dataset, annotator):
    done, retired, open_task = make_tasks(dataset, 3)
    TripletTask.objects.filter(pk=done.pk).update(status=TripletTask.Status.DONE)
    TripletTask.objects.filter(pk=retired.pk).update(status=TripletTask.Status.RETIRED)

    lease = task_lease_next(annotator=annotator, dataset=dataset)

    assert lease.task_id == open_task.pk


def test_lease_rejects_blocked_annotator(dataset, annotator):
    make_tasks(dataset, 1)
    annotator.is_blocked = True
    annotator.save()

    with pytest.raises(AnnotatorBlocked):
        task_lease_next(annotator=annotator, dataset=dataset)


def _run_at_once(workers):
    """Run the callables in threads released together; return their results in order."""
    barrier = threading.Barrier(len(workers))
    results = [None] * len(workers)
    errors = []

    def run(index, work):
        try:
            barrier.wait(timeout=30)
            results[index] = work()
        except Exception as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(index, work)) for index, work in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_lease_concurrent_distinct_tasks(make_dataset, django_user_model):
    dataset = make_dataset(n_items=8)
    make_tasks(dataset, 40)
    annotators = [make_annotator(django_user_model, f"worker{number}") for number in range(24)]

    leases = _run_at_once(
        [lambda a=a: task_lease_next(annotator=a, dataset=dataset) for a in annotators]
    )

    task_ids = [lease.task_id for lease in leases if lease is not None]
    assert len(task_ids) == 24
    assert len(set(task_ids)) == 24
    assert Lease.objects.count() == 24


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_lease_concurrent_never_over_serves(make_dataset, django_user_model):
    dataset = make_dataset(n_items=6)
    tasks = make_tasks(dataset, 5, answers_wanted=2)
    annotators = [make_annotator(django_user_model, f"worker{number}") for number in range(24)]

    leases = _run_at_once(
        [lambda a=a: task_lease_next(annotator=a, dataset=dataset) for a in annotators]
    )
    per_task = {task.pk: Lease.objects.filter(task=task).count() for task in tasks}
    # Rows locked by other requests were skipped, so some requests may have come back empty.
    for someone, lease in zip(annotators, leases, strict=True):
        if lease is None:
            task_lease_next(annotator=someone, dataset=dataset)
    topped_up = {task.pk: Lease.objects.filter(task=task).count() for task in tasks}

    assert max(per_task.values()) <= 2
    assert sum(lease is not None for lease in leases) == sum(per_task.values())
    assert topped_up == {task.pk: 2 for task in tasks}


def test_locked_recount_skips_full_task(dataset, annotator, django_user_model):
    (task,) = make_tasks(dataset, 1)
    now = timezone.now()
    task_lease_next(annotator=annotator, dataset=dataset, now=now)

    lease = _lease_locked_task(
        annotator=make_annotator(django_user_model, "late"), task=task, now=now
    )

    assert lease is None
    assert Lease.objects.count() == 1


def test_locked_recount_returns_own_lease(dataset, annotator):
    (task,) = make_tasks(dataset, 1)
    now = timezone.now()
    first = task_lease_next(annotator=annotator, dataset=dataset, now=now)

    lease = _lease_locked_task(annotator=annotator, task=task, now=now)

    assert lease.pk == first.pk
