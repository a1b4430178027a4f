"""HTTP tests of session authentication, as the annotator page uses it: CSRF on unsafe methods."""

import secrets
import string
import uuid

import pytest
import requests
from django.conf import settings
from django.test import Client

from annotation.models import Judgement
from tests.services.factories import make_tasks


@pytest.fixture
def browser(live_server, django_user_model):
    """A requests session holding the session cookie of a logged-in annotator."""
    django_user_model.objects.create_user(username="pat", password="pw-pat-123")
    client = Client()
    assert client.login(username="pat", password="pw-pat-123")
    session = requests.Session()
    session.cookies.set(
        settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
    )
    session.base_url = live_server.url
    return session


def leased_task(browser, dataset) -> dict:
    make_tasks(dataset, 1)
    response = browser.get(f"{browser.base_url}/api/v1/tasks/next/?dataset=shoes", timeout=30)
    assert response.status_code == 200
    return response.json()


def answer_body() -> dict:
    return {"choice": "tie", "client_token": str(uuid.uuid4()), "response_ms": 640}


def test_session_answer_without_csrf_403(browser, dataset):
    task = leased_task(browser, dataset)

    response = browser.post(
        f"{browser.base_url}/api/v1/tasks/{task['id']}/answer/", json=answer_body(), timeout=30
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert Judgement.objects.count() == 0


def test_session_answer_with_csrf_201(browser, dataset):
    task = leased_task(browser, dataset)
    csrf_token = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    browser.cookies.set(settings.CSRF_COOKIE_NAME, csrf_token)

    response = browser.post(
        f"{browser.base_url}/api/v1/tasks/{task['id']}/answer/",
        json=answer_body(),
        headers={"X-CSRFToken": csrf_token},
        timeout=30,
    )

    assert response.status_code == 201
    assert Judgement.objects.get().annotator.user.username == "pat"
