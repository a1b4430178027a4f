"""Many annotators calling the API at the same moment, on PostgreSQL."""

import threading
import uuid

import pytest
import requests
from django.db import connection

from annotation.models import Judgement, Lease, Triplet, TripletTask
from tests.api.helpers import answer, next_task
from tests.services.factories import make_tasks

pytestmark = pytest.mark.postgres

WORKERS = 24


def run_at_once(calls):
    """Run the callables in threads released together; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)
    errors = []

    def run(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as error:  # noqa: BLE001 - reported by the assert below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def copy_session(session: requests.Session) -> requests.Session:
    """Return a new session with the same credentials, so that each thread has its own."""
    copy = requests.Session()
    copy.headers.update(session.headers)
    copy.base_url = session.base_url
    return copy


def test_concurrent_next_distinct_tasks(make_dataset, client_for):
    dataset = make_dataset(n_items=8)
    make_tasks(dataset, 40)
    sessions = [client_for(f"worker{number}") for number in range(WORKERS)]

    responses = run_at_once([lambda s=s: next_task(s) for s in sessions])
    task_ids = [response.json()["id"] for response in responses if response.status_code == 200]

    assert [response.status_code for response in responses] == [200] * WORKERS
    assert len(set(task_ids)) == WORKERS
    assert Lease.objects.count() == WORKERS


def test_concurrent_next_never_over_serves(make_dataset, client_for):
    dataset = make_dataset(n_items=6)
    tasks = make_tasks(dataset, 5, answers_wanted=2)
    sessions = [client_for(f"worker{number}") for number in range(WORKERS)]

    responses = run_at_once([lambda s=s: next_task(s) for s in sessions])
    leases_per_task = [Lease.objects.filter(task=task).count() for task in tasks]

    assert {response.status_code for response in responses} <= {200, 204}
    assert max(leases_per_task) <= 2
    assert sum(response.status_code == 200 for response in responses) == sum(leases_per_task)


def test_concurrent_answers_fill_tasks_exactly(make_dataset, client_for):
    dataset = make_dataset(n_items=6)
    tasks = make_tasks(dataset, 4, answers_wanted=2)
    sessions = [client_for(f"worker{number}") for number in range(WORKERS)]

    def work(session):
        served = 0
        while True:
            response = next_task(session)
            if response.status_code != 200:
                return served
            task = response.json()
            answer(session, task["id"], task["candidates"][0]["id"])
            served += 1

    served = run_at_once([lambda s=s: work(s) for s in sessions])
    counts = list(
        TripletTask.objects.filter(pk__in=[t.pk for t in tasks]).values_list(
            "answers_count", flat=True
        )
    )

    assert sum(served) == 8
    assert counts == [2, 2, 2, 2]
    assert set(TripletTask.objects.values_list("status", flat=True)) == {TripletTask.Status.DONE}
    assert Triplet.objects.count() == 8


def test_concurrent_duplicate_answers_one_judgement(make_dataset, client_for):
    dataset = make_dataset(n_items=6)
    make_tasks(dataset, 1)
    session = client_for("racer")
    task = next_task(session).json()
    token = uuid.uuid4()
    chosen = task["candidates"][1]["id"]

    copies = [copy_session(session) for _ in range(16)]

    responses = run_at_once(
        [lambda c=c: answer(c, task["id"], chosen, token=token) for c in copies]
    )
    statuses = sorted(response.status_code for response in responses)

    assert statuses == [200] * 15 + [201]
    assert Judgement.objects.count() == 1
    assert Triplet.objects.count() == 1
    assert {response.json()["id"] for response in responses} == {Judgement.objects.get().pk}
    assert TripletTask.objects.get(pk=task["id"]).answers_count == 1
