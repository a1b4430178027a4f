"""Staff API of the training loop over real HTTP: request and list runs, list model versions."""

import pytest

from config.celery_app import app as celery_app
from tests.training.conftest import TINY_SETTINGS
from training.models import LoopSettings, ModelVersion, TrainingRun
from training.services.execute import training_run_execute
from training.services.runs import training_run_request

TIMEOUT = 60
RUN_FIELDS = {
    "id", "dataset", "variant", "status", "settings", "metrics", "error", "reason",
    "created_at", "started_at", "finished_at", "model_version",
}


def runs_url(session, slug: str = "swatches") -> str:
    return f"{session.base_url}/api/v1/datasets/{slug}/training-runs/"


def versions_url(session, slug: str = "swatches") -> str:
    return f"{session.base_url}/api/v1/datasets/{slug}/model-versions/"


@pytest.fixture
def dataset(transactional_db, sampled_dataset):
    return sampled_dataset


@pytest.fixture
def staff(client_for):
    return client_for("staff", staff=True)


@pytest.fixture
def annotator_session(client_for):
    return client_for("annotator")


def test_request_returns_202_with_the_queued_run(dataset, staff, sent_runs):
    response = staff.post(runs_url(staff), json={"reason": "new answers"}, timeout=TIMEOUT)

    body = response.json()
    assert response.status_code == 202, body
    assert set(body) == RUN_FIELDS | {"joined"}
    assert body["joined"] is False
    assert body["status"] == "queued"
    assert body["dataset"] == "swatches"
    assert body["variant"] == "learned"
    assert body["reason"] == "new answers"
    assert body["model_version"] is None
    assert sent_runs == [([body["id"]], "gpu")]
    assert TrainingRun.objects.get(pk=body["id"]).requested_by.username == "staff"


def test_second_request_joins_the_queued_run(dataset, staff, sent_runs):
    first = staff.post(runs_url(staff), json={}, timeout=TIMEOUT).json()

    response = staff.post(runs_url(staff), json={"variant": "fixed"}, timeout=TIMEOUT)

    body = response.json()
    assert response.status_code == 202, body
    assert body["joined"] is True
    assert body["id"] == first["id"]
    assert body["variant"] == "learned"
    assert TrainingRun.objects.filter(dataset=dataset).count() == 1
    assert len(sent_runs) == 1


def test_request_takes_variant_and_settings(dataset, staff, sent_runs):
    response = staff.post(
        runs_url(staff), json={"variant": "fixed", "settings": {"epochs": 2, "embedding_dim": 8}}, timeout=TIMEOUT
    )

    body = response.json()
    assert response.status_code == 202, body
    assert body["variant"] == "fixed"
    assert body["settings"] == {"epochs": 2, "embedding_dim": 8}


def test_request_defaults_to_the_loop_settings(dataset, staff, sent_runs):
    LoopSettings.objects.create(dataset=dataset, variant="standard", training_settings={"epochs": 3})

    body = staff.post(runs_url(staff), json={}, timeout=TIMEOUT).json()

    assert body["variant"] == "standard"
    assert body["settings"] == {"epochs": 3}


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"variant": "siamese"}, "variant", "not a valid choice"),
        ({"settings": {"epoch": 3}}, "settings", "unknown training settings ['epoch']"),
        ({"settings": {"epochs": 0}}, "settings", "epochs must be at least 1"),
        ({"settings": [1, 2]}, "settings", "Expected a dictionary"),
        ({"reason": "x" * 201}, "reason", "no more than 200 characters"),
    ],
)
def test_invalid_request_is_rejected_naming_the_field(dataset, staff, sent_runs, payload, field, message):
    response = staff.post(runs_url(staff), json=payload, timeout=TIMEOUT)

    body = response.json()
    assert response.status_code == 400, body
    assert field in body
    assert message in body["detail"]
    assert not TrainingRun.objects.exists()
    assert sent_runs == []


def test_request_rejects_form_encoding(dataset, staff, sent_runs):
    response = staff.post(runs_url(staff), data={"variant": "fixed"}, timeout=TIMEOUT)

    assert response.status_code == 415
    assert not TrainingRun.objects.exists()


def test_request_for_unknown_dataset_is_404(dataset, staff, sent_runs):
    response = staff.post(runs_url(staff, "nowhere"), json={}, timeout=TIMEOUT)

    assert response.status_code == 404
    assert response.json()["detail"] == "dataset 'nowhere' not found"


@pytest.mark.parametrize("method", ["get", "post"])
def test_runs_are_staff_only(dataset, annotator_session, sent_runs, method):
    response = getattr(annotator_session, method)(runs_url(annotator_session), json={}, timeout=TIMEOUT)

    assert response.status_code == 403
    assert not TrainingRun.objects.exists()


def test_versions_are_staff_only(dataset, annotator_session):
    response = annotator_session.get(versions_url(annotator_session), timeout=TIMEOUT)

    assert response.status_code == 403


def test_anonymous_request_is_rejected(dataset, live_server, sent_runs):
    import requests

    response = requests.post(f"{live_server.url}/api/v1/datasets/swatches/training-runs/", json={}, timeout=TIMEOUT)

    assert response.status_code in (401, 403)
    assert not TrainingRun.objects.exists()


def train(dataset) -> ModelVersion:
    run, _ = training_run_request(dataset=dataset, settings=TINY_SETTINGS, enqueue=False)
    return training_run_execute(run_id=run.pk)


@pytest.mark.slow
def test_run_list_is_newest_first_without_history(dataset, staff):
    train(dataset)
    second = train(dataset)

    response = staff.get(runs_url(staff), timeout=TIMEOUT)

    body = response.json()
    assert response.status_code == 200, body
    assert body["count"] == 2
    assert [run["model_version"] for run in body["results"]] == [2, 1]
    assert body["results"][0]["id"] == second.run_id
    assert body["results"][0]["status"] == "succeeded"
    assert "held_out_accuracy" in body["results"][0]["metrics"]
    assert "history" not in body["results"][0]["metrics"]


def test_run_list_is_paginated(dataset, staff):
    for _ in range(3):
        TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.FAILED)

    body = staff.get(runs_url(staff), params={"page_size": 2}, timeout=TIMEOUT).json()

    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None


def test_run_list_of_unknown_dataset_is_404(dataset, staff):
    assert staff.get(runs_url(staff, "nowhere"), timeout=TIMEOUT).status_code == 404


@pytest.mark.slow
def test_version_list_shows_publication_and_metrics(dataset, staff):
    train(dataset)
    train(dataset)

    response = staff.get(versions_url(staff), timeout=TIMEOUT)

    body = response.json()
    assert response.status_code == 200, body
    assert [(version["number"], version["is_published"]) for version in body["results"]] == [(2, True), (1, False)]
    assert "held_out_accuracy" in body["results"][0]["metrics"]
    assert "history" not in body["results"][0]["metrics"]
    assert body["results"][0]["triplet_count"] == 60


def test_version_list_of_unknown_dataset_is_404(dataset, staff):
    assert staff.get(versions_url(staff, "nowhere"), timeout=TIMEOUT).status_code == 404


@pytest.fixture
def eager_celery():
    """Run Celery tasks in the calling process, the setup without a broker."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.mark.slow
def test_request_without_a_broker_trains_before_responding(dataset, staff, eager_celery):
    LoopSettings.objects.create(dataset=dataset, training_settings=TINY_SETTINGS, tasks_per_round=4)

    response = staff.post(runs_url(staff), json={}, timeout=TIMEOUT)

    body = response.json()
    assert response.status_code == 202, body
    assert body["status"] == "succeeded", body["error"]
    assert body["model_version"] == 1
    assert len(body["metrics"]["history"]) == 1
    assert ModelVersion.objects.get(dataset=dataset).selection_rounds.count() == 2
