"""Tests of the annotator_token management command."""

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from annotation.models import Annotator


def run_command(*args) -> str:
    output = io.StringIO()
    call_command("annotator_token", *args, stdout=output)
    return output.getvalue().strip()


def test_token_created_for_new_user(db, django_user_model):
    key = run_command("--username", "sim-1", "--create")
    user = django_user_model.objects.get(username="sim-1")

    assert Token.objects.get(user=user).key == key
    assert Annotator.objects.filter(user=user).exists()
    assert user.has_usable_password() is False
    assert user.is_staff is False


def test_token_stable_for_existing_user(db, annotator):
    first = run_command("--username", "ann")
    second = run_command("--username", "ann")

    assert first == second


def test_token_staff_flag(db, django_user_model):
    run_command("--username", "boss", "--create", "--staff")

    assert django_user_model.objects.get(username="boss").is_staff is True


def test_token_unknown_user_without_create(db):
    with pytest.raises(CommandError, match="--create"):
        run_command("--username", "nobody")
