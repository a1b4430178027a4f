"""Request helpers for the API tests, which talk HTTP to pytest-django's live server."""

import uuid

import requests

TIMEOUT = 30


def get(session: requests.Session, path: str, **kwargs) -> requests.Response:
    return session.get(session.base_url + path, timeout=TIMEOUT, **kwargs)


def post(session: requests.Session, path: str, **kwargs) -> requests.Response:
    return session.post(session.base_url + path, timeout=TIMEOUT, **kwargs)


def next_task(session: requests.Session, dataset: str = "shoes", **params) -> requests.Response:
    return get(session, "/api/v1/tasks/next/", params={"dataset": dataset, **params})


def answer(
    session: requests.Session, task_id: int, choice, *, token=None, response_ms=750, **extra
) -> requests.Response:
    body = {
        "choice": choice,
        "client_token": str(token or uuid.uuid4()),
        "response_ms": response_ms,
        **extra,
    }
    return post(session, f"/api/v1/tasks/{task_id}/answer/", json=body)
