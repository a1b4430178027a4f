"""Item images for the annotator page."""

import logging
import mimetypes

from django.http import FileResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from PIL import Image
from rest_framework import status
from rest_framework.views import APIView

from annotation.api.common import ErrorSerializer, IgnoreAcceptNegotiation
from annotation.api.errors import error_response
from annotation.models import Item
from annotation.selectors import item_get

logger = logging.getLogger(__name__)

# The URL contains the content hash, so the bytes behind it never change.
IMAGE_CACHE_CONTROL = "private, max-age=31536000, immutable"


def image_content_type(item: Item) -> str:
    """Return the MIME type of the stored image, from its file suffix or else from its header."""
    guessed, _encoding = mimetypes.guess_type(item.image.name)
    if guessed and guessed.startswith("image/"):
        return guessed
    with item.image.open("rb") as file:
        with Image.open(file) as image:
            return Image.MIME.get(image.format or "", "application/octet-stream")


class ItemImageApi(APIView):
    content_negotiation_class = IgnoreAcceptNegotiation

    @extend_schema(
        operation_id="items_image",
        summary="Image bytes of an item",
        description=(
            "Returns the item's image with a long private cache lifetime and an ETag; answers "
            "304 to a matching If-None-Match."
        ),
        responses={
            (200, "image/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The image file."),
            304: OpenApiResponse(description="The cached copy is current."),
            404: ErrorSerializer,
        },
    )
    def get(self, request, item_id: int, content_hash: str):
        item = item_get(item_id=item_id)
        if item is None or item.content_hash != content_hash:
            return error_response(
                status.HTTP_404_NOT_FOUND,
                f"image of item {item_id} with hash {content_hash} not found; "
                "request the task again for current URLs",
                field="item",
                code="not_found",
            )

        etag = f'"{item.content_hash}"'
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match:
            etags = parse_etags(if_none_match)
            if "*" in etags or etag in etags or f"W/{etag}" in etags:
                not_modified = HttpResponseNotModified()
                not_modified["ETag"] = etag
                not_modified["Cache-Control"] = IMAGE_CACHE_CONTROL
                return not_modified

        try:
            file = item.image.open("rb")
        except FileNotFoundError:
            logger.warning(
                "image file %s of item %s is missing from storage", item.image.name, item.pk
            )
            return error_response(
                status.HTTP_404_NOT_FOUND,
                f"the image file of item {item.pk} is missing from storage; "
                "ask the staff to import it again",
                field="item",
                code="not_found",
            )
        response = FileResponse(file, content_type=image_content_type(item))
        response["ETag"] = etag
        response["Cache-Control"] = IMAGE_CACHE_CONTROL
        return response
