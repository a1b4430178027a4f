"""Pages: the landing page and the annotator page, including the crowd-worker entry link.

The annotator page is a static shell. Its script (static/annotation/annotate.js) leases
tasks from and posts answers to the REST API under /api/v1/ with the session cookie.
"""

import logging
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import get_script_prefix, reverse

from annotation.models import Annotator, Condition, Dataset, Judgement
from annotation.services.annotators import (
    InvalidCrowdId,
    annotator_for_user,
    crowd_annotator_get_or_create,
)

logger = logging.getLogger(__name__)

# Session key of the crowd platform's ids for the current visit (study, session, assignment).
CROWD_SESSION_KEY = "csn_crowd"

# Extra query parameters that each crowd platform appends to the study link.
CROWD_EXTRA_PARAMETERS = {
    Annotator.Source.PROLIFIC: {"STUDY_ID": "study_id", "SESSION_ID": "session_id"},
    Annotator.Source.MTURK: {"assignmentId": "assignment_id", "hitId": "hit_id", "turkSubmitTo": "turk_submit_to"},
}

# MTurk sends this assignmentId while a worker previews a HIT they have not accepted.
MTURK_PREVIEW_ASSIGNMENT_ID = "ASSIGNMENT_ID_NOT_AVAILABLE"

# Hosts that MTurk names in turkSubmitTo (production and sandbox).
MTURK_SUBMIT_HOSTS = ("www.mturk.com", "workersandbox.mturk.com")

# Authentication backend for crowd workers, who have no password.
CROWD_LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def crowd_id_parameters() -> list[tuple[str, str]]:
    """Parse settings.CSN_CROWD_ID_PARAMETERS ("PARAM:source" entries) into (param, source) pairs."""
    pairs = []
    for entry in settings.CSN_CROWD_ID_PARAMETERS:
        parameter, separator, source = entry.rpartition(":")
        if not separator or not parameter or source not in Annotator.Source.values:
            raise ImproperlyConfigured(
                f"invalid CSN_CROWD_ID_PARAMETERS entry {entry!r}: expected PARAM:source with source "
                f"one of {', '.join(value for value in Annotator.Source.values if value != 'local')}"
            )
        pairs.append((parameter, source))
    return pairs


def home(request: HttpRequest) -> HttpResponse:
    """List the datasets to annotate, with a link to the admin for staff."""
    datasets = []
    if request.user.is_authenticated:
        datasets = (
            Dataset.objects.annotate(
                open_task_count=Count("tasks", filter=Q(tasks__status="open"), distinct=True),
            )
            .prefetch_related("conditions")
            .order_by("name")
        )
    return render(request, "home.html", {"datasets": datasets})


def annotate(request: HttpRequest, dataset_slug: str) -> HttpResponse:
    """Show the annotator page for a dataset, optionally limited to one condition.

    A crowd-platform id in the query string (settings.CSN_CROWD_ID_PARAMETERS) logs that
    worker in and redirects to the same page without the ids. Anyone else must log in.
    """
    dataset = Dataset.objects.filter(slug=dataset_slug).first()
    if dataset is None:
        raise Http404(f"There is no dataset “{dataset_slug}”. Check the link you followed.")
    condition = None
    condition_slug = request.GET.get("condition", "")
    if condition_slug:
        condition = Condition.objects.filter(dataset=dataset, slug=condition_slug).first()
        if condition is None:
            raise Http404(f"The dataset {dataset.name} has no condition “{condition_slug}”.")
        if not condition.is_active:
            return render_message(
                request,
                status=404,
                title="Condition not active",
                message=f"The condition “{condition.name}” of {dataset.name} is not collecting answers now.",
            )

    for parameter, source in crowd_id_parameters():
        if parameter in request.GET:
            return enter_as_crowd_worker(request, dataset, condition, parameter, source)

    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())

    annotator = annotator_for_user(user=request.user)
    if annotator.is_blocked:
        return render_blocked(request)
    return render_annotator_page(request, dataset, condition, annotator)


def enter_as_crowd_worker(
    request: HttpRequest, dataset: Dataset, condition: Condition | None, parameter: str, source: str
) -> HttpResponse:
    """Log a crowd worker in from the study link, then redirect to the page without the ids."""
    if request.GET.get("assignmentId") == MTURK_PREVIEW_ASSIGNMENT_ID:
        return render(
            request,
            "annotation/preview.html",
            {"dataset": dataset, "condition": condition},
        )

    external_id = request.GET.get(parameter, "")
    try:
        annotator = crowd_annotator_get_or_create(source=source, external_id=external_id)
    except InvalidCrowdId as error:
        logger.warning("rejected crowd entry link for dataset %s: %s", dataset.slug, error)
        return render_message(
            request,
            status=400,
            title="Invalid worker id",
            message=(
                f"The link's {parameter} parameter is not a valid worker id: use 1 to 128 letters, "
                "digits or the characters _ . : @ -. Please open the study again from the crowd "
                "platform, or contact the researcher if this keeps happening."
            ),
        )
    if annotator.is_blocked:
        return render_blocked(request)

    login(request, annotator.user, backend=CROWD_LOGIN_BACKEND)
    crowd_visit = {"source": source, "external_id": external_id}
    for query_name, session_name in CROWD_EXTRA_PARAMETERS.get(source, {}).items():
        value = request.GET.get(query_name, "")
        if value:
            crowd_visit[session_name] = value[:500]
    request.session[CROWD_SESSION_KEY] = crowd_visit
    logger.info("crowd worker %s:%s entered dataset %s", source, external_id, dataset.slug)

    clean_url = reverse("annotation:annotate", args=[dataset.slug])
    if condition is not None:
        clean_url += "?" + urlencode({"condition": condition.slug})
    return redirect(clean_url)


def render_annotator_page(
    request: HttpRequest, dataset: Dataset, condition: Condition | None, annotator: Annotator
) -> HttpResponse:
    api_root = get_script_prefix() + "api/v1/"
    next_query = {"dataset": dataset.slug}
    if condition is not None:
        next_query["condition"] = condition.slug
    crowd_visit = request.session.get(CROWD_SESSION_KEY) or {}
    if crowd_visit.get("source") != annotator.source or crowd_visit.get("external_id") != annotator.external_id:
        crowd_visit = {}

    page_config = {
        "nextUrl": f"{api_root}tasks/next/?{urlencode(next_query)}",
        "answerUrlTemplate": f"{api_root}tasks/{{id}}/answer/",
        "answeredCount": Judgement.objects.filter(annotator=annotator, task__dataset=dataset).count(),
    }
    context = {
        "dataset": dataset,
        "condition": condition,
        "annotator": annotator,
        "page_config": page_config,
        "crowd_visit": crowd_visit,
        "completion": crowd_completion(annotator, crowd_visit),
    }
    return render(request, "annotation/annotate.html", context)


def crowd_completion(annotator: Annotator, crowd_visit: dict) -> dict:
    """Describe how a crowd worker reports completion on the done screen.

    The code comes from settings.CSN_CROWD_COMPLETION_CODE. Without one, the done screen only
    tells the worker to return to the platform.
    """
    if annotator.source == Annotator.Source.LOCAL:
        return {}
    code = getattr(settings, "CSN_CROWD_COMPLETION_CODE", "")
    completion = {"source": annotator.source, "code": code}
    if annotator.source == Annotator.Source.PROLIFIC and code:
        completion["return_url"] = "https://app.prolific.com/submissions/complete?" + urlencode({"cc": code})
    submit_to = crowd_visit.get("turk_submit_to", "")
    if annotator.source == Annotator.Source.MTURK and submit_to and crowd_visit.get("assignment_id"):
        parts = urlsplit(submit_to)
        if parts.scheme == "https" and parts.hostname in MTURK_SUBMIT_HOSTS:
            completion["mturk_submit_url"] = f"https://{parts.hostname}/mturk/externalSubmit"
            completion["assignment_id"] = crowd_visit["assignment_id"]
    return completion


def render_blocked(request: HttpRequest) -> HttpResponse:
    return render_message(
        request,
        status=403,
        title="Access blocked",
        message=(
            "Your account is blocked from answering tasks, so no further answers can be recorded. "
            "If you think this is a mistake, contact the researcher running this study."
        ),
    )


def render_message(request: HttpRequest, *, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "annotation/message.html", {"title": title, "message": message}, status=status)
