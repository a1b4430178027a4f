"""HTTP tests of GET /api/v1/tasks/next/."""

import pytest
import requests
from django.utils import timezone

from annotation.models import Annotator, Lease, TripletTask
from tests.api.helpers import answer, get, next_task
from tests.services.factories import make_tasks


def test_next_returns_task_shape(dataset, client_for):
    (task,) = make_tasks(dataset, 1)
    alice = client_for("alice")

    response = next_task(alice)
    body = response.json()
    lease = Lease.objects.get(task=task)

    assert response.status_code == 200
    assert set(body) == {"id", "dataset", "condition", "anchor", "candidates", "lease_expires_at"}
    assert body["id"] == task.pk
    assert body["dataset"] == "shoes"
    assert body["condition"] == {
        "slug": "colour",
        "name": "colour",
        "prompt": "Which is closer to the reference in colour?",
    }
    assert body["anchor"]["id"] == task.anchor_id
    assert [candidate["id"] for candidate in body["candidates"]] == [
        lease.left_item_id,
        lease.right_item_id,
    ]
    assert all(
        candidate["image_url"].startswith("/api/v1/items/") for candidate in body["candidates"]
    )
    assert body["lease_expires_at"] == lease.expires_at.isoformat().replace("+00:00", "Z")


def test_next_image_urls_serve_images(dataset, client_for):
    make_tasks(dataset, 1)
    alice = client_for("alice")

    body = next_task(alice).json()
    responses = [get(alice, item["image_url"]) for item in [body["anchor"], *body["candidates"]]]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert all(response.headers["Content-Type"] == "image/png" for response in responses)


def test_next_204_when_nothing_left(dataset, client_for):
    response = next_task(client_for("alice"))

    assert response.status_code == 204
    assert response.content == b""


def test_next_highest_priority_first(dataset, client_for):
    low, high = make_tasks(dataset, 2)
    TripletTask.objects.filter(pk=high.pk).update(priority=9.0)

    response = next_task(client_for("alice"))

    assert response.json()["id"] == high.pk


def test_next_reload_returns_same_task_and_order(dataset, client_for):
    make_tasks(dataset, 10)
    alice = client_for("alice")

    first = next_task(alice).json()
    second = next_task(alice).json()

    assert second == first


def test_next_never_reserves_answered_task(dataset, client_for):
    make_tasks(dataset, 2, answers_wanted=3)
    alice = client_for("alice")
    first = next_task(alice).json()
    answer(alice, first["id"], first["candidates"][0]["id"])

    second = next_task(alice).json()
    answer(alice, second["id"], "skip")
    third = next_task(alice)

    assert second["id"] != first["id"]
    assert third.status_code == 204


def test_next_two_wanted_not_third_until_expiry(dataset, client_for):
    (task,) = make_tasks(dataset, 1, answers_wanted=2)
    alice, bob, carol = client_for("alice"), client_for("bob"), client_for("carol")

    first = next_task(alice)
    second = next_task(bob)
    third = next_task(carol)
    Lease.objects.filter(annotator__user=alice.user).update(expires_at=timezone.now())
    after_expiry = next_task(carol)

    assert first.json()["id"] == task.pk
    assert second.json()["id"] == task.pk
    assert third.status_code == 204
    assert after_expiry.json()["id"] == task.pk


def test_next_condition_filter(dataset, client_for):
    colour, shape = dataset.conditions.order_by("index")
    make_tasks(dataset, 1, condition=colour, priority=5)
    (shape_task,) = make_tasks(dataset, 1, condition=shape)

    response = next_task(client_for("alice"), condition="shape")

    assert response.json()["id"] == shape_task.pk
    assert response.json()["condition"]["slug"] == "shape"


def test_next_missing_dataset_400(dataset, client_for):
    response = get(client_for("alice"), "/api/v1/tasks/next/")

    assert response.status_code == 400
    assert "dataset" in response.json()
    assert "detail" in response.json()


def test_next_unknown_dataset_404(dataset, client_for):
    response = next_task(client_for("alice"), dataset="boots")

    assert response.status_code == 404
    assert "dataset" in response.json()
    assert "boots" in response.json()["detail"]


def test_next_unknown_condition_404(dataset, client_for):
    response = next_task(client_for("alice"), condition="texture")

    assert response.status_code == 404
    assert "condition" in response.json()
    assert "texture" in response.json()["detail"]


def test_next_retired_condition_400(dataset, client_for):
    dataset.conditions.filter(slug="shape").update(is_active=False)

    response = next_task(client_for("alice"), condition="shape")

    assert response.status_code == 400
    assert "condition" in response.json()
    assert "retired" in response.json()["detail"]


def test_next_blocked_annotator_403(dataset, client_for):
    make_tasks(dataset, 1)

    response = next_task(client_for("mallory", blocked=True))

    assert response.status_code == 403
    assert "blocked" in response.json()["detail"]
    assert Lease.objects.count() == 0


def test_next_anonymous_rejected(dataset, live_server):
    response = requests.get(f"{live_server.url}/api/v1/tasks/next/?dataset=shoes", timeout=30)

    assert response.status_code in (401, 403)


def test_next_bad_token_rejected(dataset, live_server):
    response = requests.get(
        f"{live_server.url}/api/v1/tasks/next/?dataset=shoes",
        headers={"Authorization": "Token 0000000000000000000000000000000000000000"},
        timeout=30,
    )

    # DRF returns 403, not 401, because SessionAuthentication (listed first) sends no challenge.
    assert response.status_code in (401, 403)
    assert response.json()["detail"] == "Invalid token."


def test_next_creates_annotator_and_touches(dataset, client_for):
    alice = client_for("alice")
    Annotator.objects.filter(user=alice.user).update(last_seen_at=None)

    next_task(alice)

    assert Annotator.objects.get(user=alice.user).last_seen_at is not None


@pytest.mark.parametrize("seed", [3, 4])
def test_next_candidate_order_matches_lease(dataset, client_for, settings, seed):
    settings.CSN_TASK_ORDER_SEED = seed
    make_tasks(dataset, 8)
    alice = client_for("alice")
    order_matches = []
    for _ in range(8):
        body = next_task(alice).json()
        lease = Lease.objects.get(task_id=body["id"])
        shown = [candidate["id"] for candidate in body["candidates"]]
        order_matches.append(shown == [lease.left_item_id, lease.right_item_id])
        answer(alice, body["id"], "tie")

    assert all(order_matches)
