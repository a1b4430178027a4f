"""Helpers shared by the API views."""

from django.urls import reverse
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation

from annotation.models import Item

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "detail": serializers.CharField(help_text="What failed and what to do next."),
        "code": serializers.CharField(required=False),
    },
)


def item_image_url(item: Item) -> str:
    """Return the root-relative URL of the item's image.

    The URL contains the content hash, so it never changes meaning and browsers may cache it.
    """
    return reverse("api-item-image", kwargs={"item_id": item.pk, "content_hash": item.content_hash})


class IgnoreAcceptNegotiation(BaseContentNegotiation):
    """Content negotiation that picks the first renderer regardless of the Accept header.

    Meant for views that return files (images, exports). Their file bodies bypass the
    renderers, so only error bodies are rendered, as JSON.
    """

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
