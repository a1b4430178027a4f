"""Users, annotators and API tokens for simulated annotators."""

import logging
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from annotation.services.annotators import annotator_for_user

logger = logging.getLogger(__name__)


def simulated_username(seed: int, number: int) -> str:
    return f"sim-{seed}-{number}"


def simulated_annotator_tokens(*, seed: int, count: int) -> list[str]:
    """Return API tokens of local annotators sim-<seed>-0 .. sim-<seed>-<count-1>, creating them as needed.

    The accounts are reused on later runs with the same seed, so those annotators are not
    served the tasks they answered before. Their passwords are unusable, so nobody can
    sign in as them on the web pages.
    """
    user_model = get_user_model()
    tokens = []
    for number in range(count):
        username = simulated_username(seed, number)
        with transaction.atomic():
            user, created = user_model.objects.get_or_create(username=username)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
                logger.info("created simulated annotator user %s", username)
            annotator_for_user(user=user)
            token, _ = Token.objects.get_or_create(user=user)
        tokens.append(token.key)
    return tokens


def read_tokens_file(path: Path) -> list[str]:
    """Return the API tokens in the file, one per line. Blank lines and lines starting with # are ignored."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ValueError(f"cannot read the tokens file {path}: {error.strerror}") from error
    tokens = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            tokens.append(line)
    if not tokens:
        raise ValueError(f"the tokens file {path} contains no tokens; write one API token per line")
    return tokens
