"""Fixtures of the API tests: token-authenticated sessions against the live server."""

import pytest
import requests


@pytest.fixture
def client_for(live_server, django_user_model):
    """Return a function that creates a user and a requests session authenticated by its token."""
    from rest_framework.authtoken.models import Token

    from annotation.models import Annotator

    def build(username: str, *, staff: bool = False, blocked: bool = False) -> requests.Session:
        user = django_user_model.objects.create_user(
            username=username, password=f"pw-{username}-123", is_staff=staff
        )
        Annotator.objects.create(user=user, is_blocked=blocked)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {Token.objects.create(user=user).key}"
        session.base_url = live_server.url
        session.user = user
        return session

    return build


@pytest.fixture
def dataset(transactional_db, make_dataset):
    return make_dataset(n_items=6, conditions=("colour", "shape"))
