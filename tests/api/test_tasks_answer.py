"""HTTP tests of POST /api/v1/tasks/{id}/answer/ and GET /api/v1/judgements/mine/."""

import uuid

import pytest
from django.utils import timezone

from annotation.models import Judgement, Lease, Triplet, TripletTask
from tests.api.helpers import answer, get, next_task, post
from tests.services.factories import make_tasks


@pytest.fixture
def alice(client_for):
    return client_for("alice")


@pytest.fixture
def leased(dataset, alice):
    """Three tasks, the first leased to alice; returns the task as the API showed it."""
    make_tasks(dataset, 3)
    return next_task(alice).json()


def test_answer_201_shape(leased, alice):
    chosen = leased["candidates"][1]["id"]
    token = uuid.uuid4()

    response = answer(alice, leased["id"], chosen, token=token, response_ms=1500)
    body = response.json()

    assert response.status_code == 201
    assert set(body) == {
        "id",
        "task",
        "choice",
        "chosen_item",
        "left_item",
        "right_item",
        "response_ms",
        "client_token",
        "after_lease_expired",
        "created_at",
    }
    assert body["task"] == leased["id"]
    assert body["choice"] == "candidate"
    assert body["chosen_item"] == chosen
    assert [body["left_item"], body["right_item"]] == [item["id"] for item in leased["candidates"]]
    assert body["response_ms"] == 1500
    assert body["client_token"] == str(token)
    assert body["after_lease_expired"] is False


def test_answer_triplet_closer_is_chosen(leased, alice):
    chosen, other = (item["id"] for item in leased["candidates"])

    answer(alice, leased["id"], chosen)
    triplet = Triplet.objects.get()

    assert triplet.anchor_id == leased["anchor"]["id"]
    assert triplet.closer_id == chosen
    assert triplet.farther_id == other


@pytest.mark.parametrize("choice", ["tie", "skip"])
def test_answer_tie_or_skip_no_triplet(leased, alice, choice):
    response = answer(alice, leased["id"], choice)

    assert response.status_code == 201
    assert response.json()["chosen_item"] is None
    assert Triplet.objects.count() == 0


def test_answer_skip_excludes_task(leased, alice, client_for):
    answer(alice, leased["id"], "skip")

    served_again = [next_task(alice).json()["id"]]
    answer(alice, served_again[0], "tie")
    served_again.append(next_task(alice).json()["id"])
    for_bob = next_task(client_for("bob")).json()["id"]

    assert leased["id"] not in served_again
    assert for_bob == leased["id"]


def test_answer_same_token_201_then_200(leased, alice):
    token = uuid.uuid4()
    chosen = leased["candidates"][0]["id"]

    first = answer(alice, leased["id"], chosen, token=token)
    second = answer(alice, leased["id"], chosen, token=token)

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == first.json()
    assert Judgement.objects.count() == 1
    assert TripletTask.objects.get(pk=leased["id"]).answers_count == 1


def test_answer_updates_task_and_lease(leased, alice):
    answer(alice, leased["id"], "tie")
    task = TripletTask.objects.get(pk=leased["id"])

    assert task.answers_count == 1
    assert task.status == TripletTask.Status.DONE
    assert Lease.objects.get(task=task).answered_at is not None


@pytest.mark.parametrize(
    "choice",
    ["left", str, True, 1.5, None, [1]],
    ids=["unknown-word", "numeric-string", "boolean", "float", "null", "list"],
)
def test_answer_invalid_choice_400(leased, alice, choice):
    if choice is str:
        choice = str(leased["candidates"][0]["id"])

    response = answer(alice, leased["id"], choice)

    assert response.status_code == 400
    assert "choice" in response.json()
    assert Judgement.objects.count() == 0


def test_answer_non_candidate_item_400(leased, alice):
    response = answer(alice, leased["id"], leased["anchor"]["id"])

    assert response.status_code == 400
    assert "choice" in response.json()
    assert str(leased["anchor"]["id"]) in response.json()["detail"]


@pytest.mark.parametrize("token", ["not-a-uuid", "", 12345])
def test_answer_malformed_token_400(leased, alice, token):
    body = {"choice": "tie", "client_token": token, "response_ms": 10}

    response = post(alice, f"/api/v1/tasks/{leased['id']}/answer/", json=body)

    assert response.status_code == 400
    assert "client_token" in response.json()


@pytest.mark.parametrize("response_ms", [-5, 2.5, "900", True, None])
def test_answer_invalid_response_ms_400(leased, alice, response_ms):
    response = answer(alice, leased["id"], "tie", response_ms=response_ms)

    assert response.status_code == 400
    assert "response_ms" in response.json()


@pytest.mark.parametrize("missing", ["choice", "client_token", "response_ms"])
def test_answer_missing_field_400(leased, alice, missing):
    body = {"choice": "tie", "client_token": str(uuid.uuid4()), "response_ms": 10}
    del body[missing]

    response = post(alice, f"/api/v1/tasks/{leased['id']}/answer/", json=body)

    assert response.status_code == 400
    assert missing in response.json()


def test_answer_other_dataset_400(leased, alice, make_dataset):
    make_dataset(slug="boots", n_items=3)

    response = answer(alice, leased["id"], "tie", dataset="boots")

    assert response.status_code == 400
    assert "dataset" in response.json()


def test_answer_matching_dataset_accepted(leased, alice):
    response = answer(alice, leased["id"], "tie", dataset="shoes")

    assert response.status_code == 201


def test_answer_unknown_task_404(leased, alice):
    response = answer(alice, 999999, "tie")

    assert response.status_code == 404
    assert "task" in response.json()


def test_answer_unleased_task_403(dataset, leased, alice):
    other = TripletTask.objects.exclude(pk=leased["id"]).first()

    response = answer(alice, other.pk, other.candidate_a_id)

    assert response.status_code == 403
    assert Judgement.objects.count() == 0


def test_answer_task_of_other_annotator_403(leased, client_for):
    response = answer(client_for("bob"), leased["id"], "tie")

    assert response.status_code == 403


def test_answer_token_reused_on_other_task_409(leased, alice):
    token = uuid.uuid4()
    answer(alice, leased["id"], "tie", token=token)
    second = next_task(alice).json()

    response = answer(alice, second["id"], "tie", token=token)

    assert response.status_code == 409
    assert "client_token" in response.json()


def test_answer_token_of_other_annotator_409(dataset, client_for):
    (task,) = make_tasks(dataset, 1, answers_wanted=2)
    alice, bob = client_for("alice"), client_for("bob")
    next_task(alice)
    next_task(bob)
    token = uuid.uuid4()
    answer(alice, task.pk, "tie", token=token)

    response = answer(bob, task.pk, "tie", token=token)

    assert response.status_code == 409
    assert "client_token" in response.json()


def test_answer_second_answer_409(leased, alice):
    answer(alice, leased["id"], "tie")

    response = answer(alice, leased["id"], "skip")

    assert response.status_code == 409
    assert Judgement.objects.count() == 1


def test_answer_after_expiry_stored(leased, alice):
    Lease.objects.filter(task_id=leased["id"]).update(expires_at=timezone.now())
    chosen = leased["candidates"][0]["id"]

    response = answer(alice, leased["id"], chosen)

    assert response.status_code == 201
    assert response.json()["after_lease_expired"] is True
    assert Triplet.objects.filter(closer_id=chosen).count() == 1


def test_answer_after_task_done_stored(dataset, client_for):
    (task,) = make_tasks(dataset, 1)
    alice, bob = client_for("alice"), client_for("bob")
    next_task(alice)
    Lease.objects.filter(task=task).update(expires_at=timezone.now())
    next_task(bob)
    answer(bob, task.pk, "tie")

    response = answer(alice, task.pk, task.candidate_a_id)

    assert response.status_code == 201
    assert response.json()["after_lease_expired"] is True
    assert Judgement.objects.filter(task=task).count() == 2


def test_answer_blocked_annotator_403(leased, alice):
    alice.user.annotator.is_blocked = True
    alice.user.annotator.save()

    response = answer(alice, leased["id"], "tie")

    assert response.status_code == 403
    assert Judgement.objects.count() == 0


def test_answer_malformed_json_400(leased, alice):
    response = post(
        alice,
        f"/api/v1/tasks/{leased['id']}/answer/",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert "detail" in response.json()


def test_judgements_mine_lists_own_only(dataset, client_for):
    make_tasks(dataset, 3, answers_wanted=2)
    alice, bob = client_for("alice"), client_for("bob")
    for session in (alice, alice, bob):
        answer(session, next_task(session).json()["id"], "tie")

    response = get(alice, "/api/v1/judgements/mine/")
    body = response.json()
    alice_ids = set(
        Judgement.objects.filter(annotator__user=alice.user).values_list("id", flat=True)
    )

    assert response.status_code == 200
    assert body["count"] == 2
    assert {judgement["id"] for judgement in body["results"]} == alice_ids


def test_judgements_mine_paginates(dataset, client_for):
    make_tasks(dataset, 3)
    alice = client_for("alice")
    for _ in range(3):
        answer(alice, next_task(alice).json()["id"], "skip")

    first_page = get(alice, "/api/v1/judgements/mine/", params={"page_size": 2}).json()
    second_page = get(alice, first_page["next"].replace(alice.base_url, "")).json()

    assert first_page["count"] == 3
    assert len(first_page["results"]) == 2
    assert len(second_page["results"]) == 1
