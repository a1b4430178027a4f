"""Annotator records for local accounts and crowd workers."""

import logging
import re

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Annotator

logger = logging.getLogger(__name__)

CROWD_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


class InvalidCrowdId(ValueError):
    pass


def annotator_for_user(*, user: AbstractBaseUser) -> Annotator:
    """Return the user's annotator record, creating a local one on first use."""
    annotator, created = Annotator.objects.get_or_create(user=user)
    if created:
        logger.info("created local annotator %s for user %s", annotator.pk, user.pk)
    return annotator


def crowd_annotator_get_or_create(*, source: str, external_id: str) -> Annotator:
    """Return the annotator of a crowd worker, creating it and its Django user on first visit."""
    if source not in Annotator.Source.values or source == Annotator.Source.LOCAL:
        raise InvalidCrowdId(f"unknown crowd source {source!r}; expected one of prolific, mturk, other")
    if not CROWD_ID_PATTERN.match(external_id or ""):
        raise InvalidCrowdId(
            f"invalid crowd worker id {external_id!r}: use 1 to 128 letters, digits or _.:@-"
        )

    existing = Annotator.objects.filter(source=source, external_id=external_id).select_related("user").first()
    if existing:
        return existing

    user_model = get_user_model()
    try:
        with transaction.atomic():
            user = user_model.objects.create_user(username=f"{source}:{external_id}"[:150])
            user.set_unusable_password()
            user.save(update_fields=["password"])
            annotator = Annotator.objects.create(user=user, source=source, external_id=external_id)
    except IntegrityError:
        # Two first requests of the same worker raced; the other one created the record.
        return Annotator.objects.select_related("user").get(source=source, external_id=external_id)

    logger.info("created %s annotator %s for worker %s", source, annotator.pk, external_id)
    return annotator


def annotator_touch(*, annotator: Annotator) -> None:
    """Record that the annotator was active now."""
    Annotator.objects.filter(pk=annotator.pk).update(last_seen_at=timezone.now())
