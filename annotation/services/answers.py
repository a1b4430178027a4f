"""Recording annotators' answers to leased tasks.

Each answer carries a client-generated `client_token`, so a retried request returns the
judgement it stored the first time instead of adding another. An answer is stored even when
it arrives after its lease expired or after the task stopped being open, flagged with
`after_lease_expired`, because the annotator did the work.
"""

import logging
import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import Annotator, Judgement, Lease, Triplet, TripletTask
from annotation.services.leasing import AnnotatorBlocked, TaskQueueError

logger = logging.getLogger(__name__)

TIE = "tie"
SKIP = "skip"


class AnswerInvalid(TaskQueueError):
    code = "invalid"


class AnswerConflict(TaskQueueError):
    code = "conflict"


class TaskNotLeased(TaskQueueError):
    code = "not_leased"


def _token_replay(
    *, annotator: Annotator, task: TripletTask, client_token: uuid.UUID
) -> Judgement | None:
    """Return the judgement stored under the token, or raise AnswerConflict if it is another's."""
    existing = Judgement.objects.filter(client_token=client_token).first()
    if existing is None:
        return None
    if existing.annotator_id != annotator.pk or existing.task_id != task.pk:
        logger.warning(
            "rejected answer of annotator %s to task %s: client_token %s belongs to judgement %s",
            annotator.pk,
            task.pk,
            client_token,
            existing.pk,
        )
        raise AnswerConflict(
            f"client_token {client_token} was already used for another answer; send a new UUID",
            field="client_token",
        )
    return existing


def _parse_token(client_token: uuid.UUID | str) -> uuid.UUID:
    if isinstance(client_token, uuid.UUID):
        return client_token
    try:
        return uuid.UUID(str(client_token))
    except ValueError:
        raise AnswerInvalid(
            f"client_token {client_token!r} is not a UUID; send a new random UUID per answer",
            field="client_token",
        ) from None


def _parse_choice(*, task: TripletTask, choice: int | str) -> tuple[str, int | None]:
    """Return the judgement's choice kind and the chosen item id."""
    if choice in (TIE, SKIP):
        return choice, None
    is_integer = isinstance(choice, int) and not isinstance(choice, bool)
    if is_integer and choice in (task.candidate_a_id, task.candidate_b_id):
        return Judgement.Choice.CANDIDATE, choice
    raise AnswerInvalid(
        f"choice {choice!r} is not valid for task {task.pk}; send {task.candidate_a_id}, "
        f'{task.candidate_b_id}, "tie" or "skip"',
        field="choice",
    )


def _check_response_ms(response_ms: int | None) -> None:
    if response_ms is None:
        return
    if (
        isinstance(response_ms, bool)
        or not isinstance(response_ms, int)
        or not 0 <= response_ms <= 2**31 - 1
    ):
        raise AnswerInvalid(
            f"response_ms {response_ms!r} is invalid: "
            "send a whole number of milliseconds from 0 to 2147483647",
            field="response_ms",
        )


def _store(
    *,
    annotator: Annotator,
    task: TripletTask,
    lease: Lease,
    kind: str,
    chosen_item_id: int | None,
    client_token: uuid.UUID,
    response_ms: int | None,
    now: datetime,
) -> tuple[Judgement, bool]:
    """Write the judgement, its triplet and the counters while holding the task's row lock."""
    locked = TripletTask.objects.select_for_update().get(pk=task.pk)

    # Checked again under the lock, because a concurrent request may have stored an answer since.
    existing = Judgement.objects.filter(task=task, annotator=annotator).first()
    if existing is not None:
        if existing.client_token == client_token:
            return existing, False
        raise AnswerConflict(
            f"task {task.pk} was already answered by this annotator (judgement {existing.pk}); "
            "request the next task",
            field="task",
        )

    after_lease_expired = lease.expires_at <= now or locked.status != TripletTask.Status.OPEN
    judgement = Judgement.objects.create(
        task=task,
        annotator=annotator,
        choice=kind,
        chosen_item_id=chosen_item_id,
        left_item_id=lease.left_item_id,
        right_item_id=lease.right_item_id,
        response_ms=response_ms,
        client_token=client_token,
        after_lease_expired=after_lease_expired,
    )

    if kind == Judgement.Choice.CANDIDATE:
        farther_id = (
            task.candidate_b_id if chosen_item_id == task.candidate_a_id else task.candidate_a_id
        )
        Triplet.objects.create(
            dataset_id=task.dataset_id,
            condition_id=task.condition_id,
            anchor_id=task.anchor_id,
            closer_id=chosen_item_id,
            farther_id=farther_id,
            source=Triplet.Source.JUDGEMENT,
            judgement=judgement,
            annotator=annotator,
        )

    if kind != Judgement.Choice.SKIP:
        # A skip leaves the wanted answer open for someone else, but a tie counts as an answer.
        TripletTask.objects.filter(pk=task.pk).update(answers_count=F("answers_count") + 1)
        locked.refresh_from_db(fields=["answers_count", "status"])
        if (
            locked.status == TripletTask.Status.OPEN
            and locked.answers_count >= locked.answers_wanted
        ):
            TripletTask.objects.filter(pk=task.pk).update(status=TripletTask.Status.DONE)
            logger.debug("task %s is done with %s answers", task.pk, locked.answers_count)

    Lease.objects.filter(pk=lease.pk).update(answered_at=now)
    Annotator.objects.filter(pk=annotator.pk).update(last_seen_at=now)
    return judgement, True


def judgement_record(
    *,
    annotator: Annotator,
    task: TripletTask,
    choice: int | str,
    client_token: uuid.UUID | str,
    response_ms: int | None,
    now: datetime | None = None,
) -> tuple[Judgement, bool]:
    """Store the annotator's answer to a task leased to them; return it and whether it is new.

    `choice` is the id of the candidate judged closer to the anchor, "tie" or "skip". A
    candidate choice also writes the ordered triplet (anchor, closer=chosen, farther=other).
    Ties count towards `answers_count` and skips do not; the task becomes done when the count
    reaches `answers_wanted`. Sending the same `client_token` again returns the stored
    judgement with created=False.

    Raises AnswerInvalid (bad choice, token or response_ms), AnswerConflict (token used
    elsewhere, or the task already answered under another token), TaskNotLeased and
    AnnotatorBlocked.
    """
    now = now or timezone.now()
    token = _parse_token(client_token)

    replayed = _token_replay(annotator=annotator, task=task, client_token=token)
    if replayed is not None:
        logger.debug(
            "answer %s to task %s replayed by annotator %s", replayed.pk, task.pk, annotator.pk
        )
        return replayed, False

    if annotator.is_blocked:
        logger.warning("rejected answer of blocked annotator %s to task %s", annotator.pk, task.pk)
        raise AnnotatorBlocked(
            "this annotator account is blocked and cannot answer tasks; contact the study staff"
        )

    lease = Lease.objects.filter(task=task, annotator=annotator).first()
    if lease is None:
        logger.warning(
            "rejected answer of annotator %s to task %s, which was never leased to them",
            annotator.pk,
            task.pk,
        )
        raise TaskNotLeased(
            f"task {task.pk} was not leased to this annotator; "
            "request a task from /api/v1/tasks/next/",
            field="task",
        )

    if lease.answered_at is not None:
        # A concurrent request with the same token may have committed since the check above.
        replayed = _token_replay(annotator=annotator, task=task, client_token=token)
        if replayed is not None:
            return replayed, False
        logger.info("rejected second answer of annotator %s to task %s", annotator.pk, task.pk)
        raise AnswerConflict(
            f"task {task.pk} was already answered by this annotator; request the next task",
            field="task",
        )

    kind, chosen_item_id = _parse_choice(task=task, choice=choice)
    _check_response_ms(response_ms)

    try:
        with transaction.atomic():
            judgement, created = _store(
                annotator=annotator,
                task=task,
                lease=lease,
                kind=kind,
                chosen_item_id=chosen_item_id,
                client_token=token,
                response_ms=response_ms,
                now=now,
            )
    except IntegrityError as error:
        # A concurrent request stored a judgement with this token or for this task first.
        logger.info(
            "answer of annotator %s to task %s raced another request: %s",
            annotator.pk,
            task.pk,
            error,
        )
        replayed = _token_replay(annotator=annotator, task=task, client_token=token)
        if replayed is not None:
            return replayed, False
        raise AnswerConflict(
            f"task {task.pk} was already answered by this annotator; request the next task",
            field="task",
        ) from error

    if created:
        logger.debug(
            "stored judgement %s of annotator %s on task %s: %s%s",
            judgement.pk,
            annotator.pk,
            task.pk,
            kind,
            " (after the lease expired)" if judgement.after_lease_expired else "",
        )
    return judgement, created
