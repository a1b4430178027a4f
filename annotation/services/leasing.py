"""Leasing triplet tasks to annotators.

A lease reserves one of a task's wanted answers for one annotator until `expires_at`, and
records the order in which the two candidates were shown. A task is handed out while
`answers_count + active leases < answers_wanted`, where an active lease is unanswered and
unexpired.

Concurrency: the next task is picked with `SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1` on the
task row. The candidate query may have run on a snapshot older than a lease that another
transaction committed just before the lock was taken, so the leases and answers are counted
again, in a new statement, while the row lock is held (PostgreSQL's READ COMMITTED gives each
statement a new snapshot). A candidate that turns out full is skipped and the next one tried.
On SQLite, FOR UPDATE is ignored, and the IMMEDIATE transactions set in settings serialize the
writers instead.
"""

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.dispatch import receiver
from django.utils import timezone

from annotation.models import Annotator, Condition, Dataset, Lease, TripletTask

logger = logging.getLogger(__name__)

# Candidates tried per request before giving up; each stale one was filled by a concurrent lease.
MAX_LEASE_ATTEMPTS = 50


class TaskQueueError(Exception):
    """A request to the task queue that was rejected; `field` names the input at fault, if any."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class AnnotatorBlocked(TaskQueueError):
    code = "annotator_blocked"


class ConditionInactive(TaskQueueError):
    code = "condition_inactive"


_order_rng: random.Random | None = None


def _candidate_order_rng() -> random.Random:
    """Return the generator that orders candidates, seeded from CSN_TASK_ORDER_SEED if set."""
    global _order_rng
    if _order_rng is None:
        _order_rng = random.Random(getattr(settings, "CSN_TASK_ORDER_SEED", None))
    return _order_rng


@receiver(setting_changed)
def _reset_candidate_order_rng(*, setting: str, **kwargs) -> None:
    """Reseed the candidate order when override_settings changes CSN_TASK_ORDER_SEED."""
    global _order_rng
    if setting == "CSN_TASK_ORDER_SEED":
        _order_rng = None


def _check_can_lease(
    *, annotator: Annotator, dataset: Dataset, condition: Condition | None
) -> None:
    if annotator.is_blocked:
        logger.warning("rejected lease request of blocked annotator %s", annotator.pk)
        raise AnnotatorBlocked(
            "this annotator account is blocked and cannot receive tasks; contact the study staff"
        )
    if condition is None:
        return
    if condition.dataset_id != dataset.pk:
        raise ValueError(
            f"condition {condition.pk} belongs to dataset {condition.dataset_id}, not {dataset.pk}"
        )
    if not condition.is_active:
        logger.info(
            "rejected lease request of annotator %s for retired condition %s",
            annotator.pk,
            condition.pk,
        )
        raise ConditionInactive(
            f"condition {condition.slug!r} is retired and has no tasks; choose an active condition",
            field="condition",
        )


def lease_active_get(
    *, annotator: Annotator, dataset: Dataset, condition: Condition | None = None, now: datetime
) -> Lease | None:
    """Return the annotator's unexpired, unanswered lease on an open task in the dataset, if any."""
    leases = Lease.objects.filter(
        annotator=annotator,
        answered_at__isnull=True,
        expires_at__gt=now,
        task__dataset=dataset,
        task__status=TripletTask.Status.OPEN,
        task__condition__is_active=True,
    )
    if condition is not None:
        leases = leases.filter(task__condition=condition)
    return leases.select_related("task").order_by("-expires_at", "-id").first()


def _candidate_tasks(
    *,
    annotator: Annotator,
    dataset: Dataset,
    condition: Condition | None,
    now: datetime,
    skipped: set[int],
) -> QuerySet[TripletTask]:
    active_leases = (
        Lease.objects.filter(task=OuterRef("pk"), answered_at__isnull=True, expires_at__gt=now)
        .order_by()
        .values("task")
        .annotate(n=Count("pk"))
        .values("n")
    )
    tasks = TripletTask.objects.filter(
        dataset=dataset, status=TripletTask.Status.OPEN, condition__is_active=True
    )
    if condition is not None:
        tasks = tasks.filter(condition=condition)
    return (
        tasks.exclude(judgements__annotator=annotator)
        .exclude(pk__in=skipped)
        .alias(active_leases=Coalesce(Subquery(active_leases), 0))
        .filter(answers_wanted__gt=F("answers_count") + F("active_leases"))
        .order_by("-priority", "id")
    )


def _lease_locked_task(*, annotator: Annotator, task: TripletTask, now: datetime) -> Lease | None:
    """Lease a task whose row lock the caller holds, or return None if it has no room left.

    Every count here is a new statement, so it sees leases and answers committed after the
    statement that picked the task.
    """
    fresh = (
        TripletTask.objects.filter(pk=task.pk)
        .values("status", "answers_count", "answers_wanted")
        .get()
    )
    if fresh["status"] != TripletTask.Status.OPEN:
        return None
    if task.judgements.filter(annotator=annotator).exists():
        return None

    own = Lease.objects.filter(task=task, annotator=annotator).first()
    if own is not None and own.answered_at is None and own.expires_at > now:
        # A concurrent request of the same annotator leased this task first.
        return own
    if own is not None and own.answered_at is not None:
        return None

    others = (
        Lease.objects.filter(task=task, answered_at__isnull=True, expires_at__gt=now)
        .exclude(annotator=annotator)
        .count()
    )
    if fresh["answers_count"] + others >= fresh["answers_wanted"]:
        return None

    left, right = task.candidate_a, task.candidate_b
    if _candidate_order_rng().random() < 0.5:
        left, right = right, left
    expires_at = now + timedelta(seconds=settings.CSN_LEASE_SECONDS)

    if own is None:
        return Lease.objects.create(
            task=task, annotator=annotator, left_item=left, right_item=right, expires_at=expires_at
        )
    # The annotator's earlier lease of this task expired unanswered; it becomes the new lease.
    own.left_item = left
    own.right_item = right
    own.expires_at = expires_at
    own.save(update_fields=["left_item", "right_item", "expires_at"])
    return own


def task_lease_next(
    *,
    annotator: Annotator,
    dataset: Dataset,
    condition: Condition | None = None,
    now: datetime | None = None,
) -> Lease | None:
    """Lease the next task of the dataset to the annotator, or return None when none is left.

    An annotator who already holds an active lease in the dataset (and condition, if given)
    gets that lease back unchanged, so reloading the page shows the same task in the same
    order. Otherwise the open task of an active condition with the highest priority (then the
    lowest id) that the annotator has not answered and that still has room is leased, with
    the candidates in random order. Raises AnnotatorBlocked and ConditionInactive.
    """
    now = now or timezone.now()
    _check_can_lease(annotator=annotator, dataset=dataset, condition=condition)

    active_lease = lease_active_get(
        annotator=annotator, dataset=dataset, condition=condition, now=now
    )
    if active_lease is not None:
        logger.debug(
            "annotator %s already has lease %s on task %s",
            annotator.pk,
            active_lease.pk,
            active_lease.task_id,
        )
        return active_lease

    skipped: set[int] = set()
    for _attempt in range(MAX_LEASE_ATTEMPTS):
        with transaction.atomic():
            candidates = _candidate_tasks(
                annotator=annotator, dataset=dataset, condition=condition, now=now, skipped=skipped
            )
            task = (
                candidates.select_for_update(skip_locked=True, of=("self",))
                .select_related("candidate_a", "candidate_b")
                .first()
            )
            if task is None:
                logger.debug(
                    "no task left for annotator %s in dataset %s", annotator.pk, dataset.slug
                )
                return None
            lease = _lease_locked_task(annotator=annotator, task=task, now=now)
        if lease is not None:
            logger.debug(
                "leased task %s to annotator %s until %s (left %s, right %s)",
                task.pk,
                annotator.pk,
                lease.expires_at.isoformat(),
                lease.left_item_id,
                lease.right_item_id,
            )
            return lease
        logger.debug(
            "task %s filled up before annotator %s could lease it; trying the next",
            task.pk,
            annotator.pk,
        )
        skipped.add(task.pk)

    logger.warning(
        "gave up leasing a task to annotator %s in dataset %s: "
        "%s candidates in a row filled up concurrently",
        annotator.pk,
        dataset.slug,
        MAX_LEASE_ATTEMPTS,
    )
    return None
