"""Error bodies of the API.

Every error response has a `detail` sentence for the page to show. An error caused by one input
also carries that input's name as a key with a list of messages, the shape DRF uses for
validation errors, so scripts can read which field failed: `{"choice": ["..."], "detail": "..."}`.
"""

import logging

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotation.services.answers import AnswerConflict, AnswerInvalid, TaskNotLeased
from annotation.services.leasing import AnnotatorBlocked, ConditionInactive, TaskQueueError

logger = logging.getLogger(__name__)

SERVICE_ERROR_STATUS = {
    AnswerInvalid: status.HTTP_400_BAD_REQUEST,
    ConditionInactive: status.HTTP_400_BAD_REQUEST,
    AnswerConflict: status.HTTP_409_CONFLICT,
    TaskNotLeased: status.HTTP_403_FORBIDDEN,
    AnnotatorBlocked: status.HTTP_403_FORBIDDEN,
}


def error_response(
    status_code: int, message: str, *, field: str | None = None, code: str = "invalid"
) -> Response:
    """Build an error response in the API's shape."""
    body: dict = {"detail": message, "code": code}
    if field:
        body[field] = [message]
    return Response(body, status=status_code)


def service_error_response(error: TaskQueueError) -> Response:
    """Map a rejected task-queue request to its HTTP status and error body."""
    status_code = SERVICE_ERROR_STATUS.get(type(error), status.HTTP_400_BAD_REQUEST)
    return error_response(status_code, error.message, field=error.field, code=error.code)


def _flatten(value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_flatten(inner)}" for key, inner in value.items())
    if isinstance(value, list):
        return " ".join(_flatten(inner) for inner in value)
    return str(value)


def exception_handler(exc, context):
    """Run DRF's handler, then add a `detail` sentence to field-keyed validation errors."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, dict) and "detail" not in response.data:
        response.data["detail"] = _flatten(response.data)
    elif isinstance(response.data, list):
        response.data = {"detail": _flatten(response.data), "non_field_errors": response.data}
    request = context.get("request")
    logger.info(
        "rejected %s %s of user %s with %s: %s",
        getattr(request, "method", "?"),
        getattr(request, "path", "?"),
        getattr(getattr(request, "user", None), "pk", None),
        response.status_code,
        response.data.get("detail") if isinstance(response.data, dict) else response.data,
    )
    return response
