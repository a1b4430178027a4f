"""HTTP tests of the staff endpoints: dataset list and detail, triplet export."""

import csv
import io
import json

import pytest
import requests

from annotation.models import Annotator, Triplet
from tests.api.helpers import answer, get, next_task
from tests.services.factories import make_tasks

STAFF_PATHS = [
    "/api/v1/datasets/",
    "/api/v1/datasets/shoes/",
    "/api/v1/datasets/shoes/triplets/export/?format=csv",
]


@pytest.fixture
def staff(client_for):
    return client_for("staffer", staff=True)


@pytest.fixture
def answered(dataset, client_for):
    """Two tasks answered by alice with the first candidate; returns alice's session."""
    make_tasks(dataset, 3)
    alice = client_for("alice")
    for _ in range(2):
        task = next_task(alice).json()
        answer(alice, task["id"], task["candidates"][0]["id"])
    return alice


@pytest.mark.parametrize("path", STAFF_PATHS)
def test_staff_paths_reject_annotator(dataset, client_for, path):
    response = get(client_for("alice"), path)

    assert response.status_code == 403


@pytest.mark.parametrize("path", STAFF_PATHS)
def test_staff_paths_reject_anonymous(dataset, live_server, path):
    response = requests.get(live_server.url + path, timeout=30)

    assert response.status_code in (401, 403)


def test_dataset_list_counts(answered, staff, make_dataset):
    make_dataset(slug="boots", n_items=2)

    response = get(staff, "/api/v1/datasets/")
    by_slug = {row["slug"]: row for row in response.json()}

    assert response.status_code == 200
    assert sorted(by_slug) == ["boots", "shoes"]
    assert by_slug["shoes"]["item_count"] == 6
    assert by_slug["shoes"]["condition_count"] == 2
    assert by_slug["shoes"]["task_count"] == 3
    assert by_slug["shoes"]["open_task_count"] == 1
    assert by_slug["shoes"]["judgement_count"] == 2
    assert by_slug["shoes"]["triplet_count"] == 2
    assert by_slug["boots"]["item_count"] == 2
    assert by_slug["boots"]["triplet_count"] == 0


def test_dataset_detail(answered, staff):
    response = get(staff, "/api/v1/datasets/shoes/")
    body = response.json()

    assert response.status_code == 200
    assert body["triplet_count"] == 2
    assert [condition["slug"] for condition in body["conditions"]] == ["colour", "shape"]


def test_dataset_detail_unknown_404(dataset, staff):
    response = get(staff, "/api/v1/datasets/boots/")

    assert response.status_code == 404
    assert "dataset" in response.json()


def test_export_csv_rows(answered, staff):
    response = get(staff, "/api/v1/datasets/shoes/triplets/export/", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    pseudonym = str(Annotator.objects.get(user__username="alice").pseudonym)
    triplets = list(Triplet.objects.order_by("id").select_related("anchor", "closer", "farther"))

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="shoes-triplets.csv"'
    assert len(rows) == 2
    assert [int(row["id"]) for row in rows] == [triplet.pk for triplet in triplets]
    assert [row["condition"] for row in rows] == ["colour", "colour"]
    assert [row["anchor_external_id"] for row in rows] == [t.anchor.external_id for t in triplets]
    assert [row["closer_external_id"] for row in rows] == [t.closer.external_id for t in triplets]
    assert [row["farther_external_id"] for row in rows] == [t.farther.external_id for t in triplets]
    assert [int(row["closer_id"]) for row in rows] == [t.closer_id for t in triplets]
    assert [row["source"] for row in rows] == ["judgement", "judgement"]
    assert [row["annotator"] for row in rows] == [pseudonym, pseudonym]
    assert "alice" not in response.text


def test_export_jsonl_rows(answered, staff):
    response = get(staff, "/api/v1/datasets/shoes/triplets/export/", params={"format": "jsonl"})
    rows = [json.loads(line) for line in response.text.splitlines()]
    triplet = Triplet.objects.order_by("id").first()

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-ndjson"
    assert response.headers["Content-Disposition"] == 'attachment; filename="shoes-triplets.jsonl"'
    assert len(rows) == 2
    assert rows[0]["anchor_id"] == triplet.anchor_id
    assert rows[0]["closer_id"] == triplet.closer_id
    assert rows[0]["farther_id"] == triplet.farther_id
    assert rows[0]["annotator"] == str(triplet.annotator.pseudonym)
    assert rows[0]["created_at"].startswith(str(triplet.created_at.year))
    assert "alice" not in response.text


def test_export_unknown_format_400(dataset, staff):
    response = get(staff, "/api/v1/datasets/shoes/triplets/export/", params={"format": "xml"})

    assert response.status_code == 400
    assert "format" in response.json()
    assert "csv" in response.json()["detail"]
    assert "jsonl" in response.json()["detail"]


def test_export_unknown_dataset_404(dataset, staff):
    response = get(staff, "/api/v1/datasets/boots/triplets/export/", params={"format": "csv"})

    assert response.status_code == 404
