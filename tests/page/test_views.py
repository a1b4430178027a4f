"""Server side of the pages: access rules, the crowd entry link and the page's starting state."""

import json
import uuid

import pytest
from django.urls import reverse

from annotation.models import Annotator, Judgement, TripletTask
from annotation.views import CROWD_SESSION_KEY

pytestmark = pytest.mark.django_db


def annotate_url(slug="shoes"):
    return reverse("annotation:annotate", args=[slug])


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="annotator-config" type="application/json">') + len(
        '<script id="annotator-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_annotate_requires_login(client, make_dataset):
    make_dataset()

    response = client.get(annotate_url())

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_unknown_dataset_is_404(client, annotator):
    client.force_login(annotator.user)

    response = client.get(annotate_url("no-such-dataset"))

    assert response.status_code == 404
    assert "no-such-dataset" in response.content.decode()


def test_unknown_dataset_with_crowd_id_creates_nobody(client):
    response = client.get(annotate_url("no-such-dataset"), {"PROLIFIC_PID": "abc123"})

    assert response.status_code == 404
    assert not Annotator.objects.filter(external_id="abc123").exists()


def test_unknown_condition_is_404(client, annotator, make_dataset):
    make_dataset()
    client.force_login(annotator.user)

    response = client.get(annotate_url(), {"condition": "shape"})

    assert response.status_code == 404
    assert "shape" in response.content.decode()


def test_page_starts_with_dataset_answer_count(client, annotator, make_dataset):
    dataset = make_dataset()
    other = make_dataset(slug="other")
    items = list(dataset.items.order_by("id"))
    other_items = list(other.items.order_by("id"))
    for task_dataset, (anchor, a, b) in [(dataset, items[:3]), (other, other_items[:3])]:
        task = TripletTask.objects.create(
            dataset=task_dataset, condition=task_dataset.conditions.get(), anchor=anchor, candidate_a=a, candidate_b=b
        )
        Judgement.objects.create(
            task=task, annotator=annotator, choice="skip", left_item=a, right_item=b, client_token=uuid.uuid4()
        )
    client.force_login(annotator.user)

    response = client.get(annotate_url(), {"condition": "colour"})

    assert response.status_code == 200
    config = page_config(response)
    assert config["answeredCount"] == 1
    assert config["nextUrl"] == "/api/v1/tasks/next/?dataset=shoes&condition=colour"
    assert config["answerUrlTemplate"] == "/api/v1/tasks/{id}/answer/"
    assert "Which is closer to the reference in colour?" in response.content.decode()


def test_prolific_link_logs_worker_in(client, make_dataset):
    make_dataset()

    response = client.get(
        annotate_url(), {"PROLIFIC_PID": "abc123", "STUDY_ID": "study-9", "SESSION_ID": "session-4"}
    )

    assert response.status_code == 302
    assert response["Location"] == annotate_url()
    annotator = Annotator.objects.get(source="prolific", external_id="abc123")
    assert client.session["_auth_user_id"] == str(annotator.user_id)
    assert client.session[CROWD_SESSION_KEY] == {
        "source": "prolific",
        "external_id": "abc123",
        "study_id": "study-9",
        "session_id": "session-4",
    }
    assert client.get(annotate_url()).status_code == 200


def test_crowd_link_keeps_condition(client, make_dataset):
    make_dataset(conditions=("colour", "shape"))

    response = client.get(annotate_url(), {"workerId": "A1B2C3", "condition": "shape", "hitId": "H1"})

    assert response.status_code == 302
    assert response["Location"] == annotate_url() + "?condition=shape"
    assert Annotator.objects.filter(source="mturk", external_id="A1B2C3").exists()


def test_second_visit_reuses_annotator(client, make_dataset):
    make_dataset()

    client.get(annotate_url(), {"PROLIFIC_PID": "abc123"})
    client.get(annotate_url(), {"PROLIFIC_PID": "abc123"})

    assert Annotator.objects.filter(source="prolific", external_id="abc123").count() == 1


@pytest.mark.parametrize("worker_id", ["", "{{%PROLIFIC_PID%}}", "a" * 129, "spaces are bad"])
def test_invalid_crowd_id_is_400(client, make_dataset, worker_id):
    make_dataset()

    response = client.get(annotate_url(), {"PROLIFIC_PID": worker_id})

    assert response.status_code == 400
    assert "Invalid worker id" in response.content.decode()
    assert "PROLIFIC_PID" in response.content.decode()
    assert not Annotator.objects.filter(source="prolific").exists()


def test_mturk_preview_shows_notice(client, make_dataset):
    make_dataset()

    response = client.get(
        annotate_url(), {"workerId": "A1B2C3", "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "H1"}
    )

    assert response.status_code == 200
    assert "Accept the HIT to start answering" in response.content.decode()
    assert not Annotator.objects.filter(source="mturk").exists()
    assert "_auth_user_id" not in client.session


def test_mturk_done_screen_posts_to_mturk(client, make_dataset):
    make_dataset()

    client.get(
        annotate_url(),
        {"workerId": "A1B2C3", "assignmentId": "ASG1", "hitId": "H1", "turkSubmitTo": "https://workersandbox.mturk.com"},
    )
    response = client.get(annotate_url())

    html = response.content.decode()
    assert 'action="https://workersandbox.mturk.com/mturk/externalSubmit"' in html
    assert 'name="assignmentId" value="ASG1"' in html


def test_mturk_submit_host_must_be_mturk(client, make_dataset):
    make_dataset()

    client.get(annotate_url(), {"workerId": "A1B2C3", "assignmentId": "ASG1", "turkSubmitTo": "https://example.org"})
    response = client.get(annotate_url())

    assert "externalSubmit" not in response.content.decode()


def test_prolific_completion_code(client, make_dataset, settings):
    settings.CSN_CROWD_COMPLETION_CODE = "C0DE42"
    make_dataset()

    client.get(annotate_url(), {"PROLIFIC_PID": "abc123"})
    response = client.get(annotate_url())

    html = response.content.decode()
    assert "C0DE42" in html
    assert "https://app.prolific.com/submissions/complete?cc=C0DE42" in html


def test_blocked_crowd_worker_sees_message(client, make_dataset):
    make_dataset()
    client.get(annotate_url(), {"PROLIFIC_PID": "abc123"})
    Annotator.objects.filter(external_id="abc123").update(is_blocked=True)
    client.logout()

    response = client.get(annotate_url(), {"PROLIFIC_PID": "abc123"})

    assert response.status_code == 403
    assert "blocked" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_blocked_local_annotator_sees_message(client, annotator, make_dataset):
    make_dataset()
    annotator.is_blocked = True
    annotator.save()
    client.force_login(annotator.user)

    response = client.get(annotate_url())

    assert response.status_code == 403
    assert "Access blocked" in response.content.decode()


def test_inactive_condition_is_404(client, annotator, make_dataset):
    dataset = make_dataset()
    dataset.conditions.update(is_active=False)
    client.force_login(annotator.user)

    response = client.get(annotate_url(), {"condition": "colour"})

    assert response.status_code == 404
    assert "not collecting answers" in response.content.decode()


def test_home_lists_datasets_for_users(client, annotator, make_dataset):
    make_dataset()
    client.force_login(annotator.user)

    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert annotate_url() in html
    assert "/admin/" not in html


def test_home_shows_admin_link_to_staff(client, admin_user, make_dataset):
    make_dataset()
    client.force_login(admin_user)

    response = client.get("/")

    assert "/admin/" in response.content.decode()


def test_home_asks_visitors_to_log_in(client, make_dataset):
    make_dataset()

    response = client.get("/")

    html = response.content.decode()
    assert "/accounts/login/" in html
    assert annotate_url() not in html


def test_login_page_renders(client):
    response = client.get("/accounts/login/?next=/annotate/shoes/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="username"' in html
    assert 'value="/annotate/shoes/"' in html
