"""HTTP tests of the item image endpoint."""

import requests

from tests.api.helpers import get
from tests.conftest import png_bytes


def image_path(item) -> str:
    return f"/api/v1/items/{item.pk}/image/{item.content_hash}/"


def test_image_bytes_and_headers(dataset, client_for):
    item = dataset.items.order_by("id").first()

    response = get(client_for("alice"), image_path(item))

    assert response.status_code == 200
    assert response.content == png_bytes((0, 0, 7))
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert response.headers["ETag"] == f'"{item.content_hash}"'


def test_image_304_on_matching_etag(dataset, client_for):
    item = dataset.items.order_by("id").first()

    response = get(
        client_for("alice"), image_path(item), headers={"If-None-Match": f'"{item.content_hash}"'}
    )

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == f'"{item.content_hash}"'


def test_image_200_on_other_etag(dataset, client_for):
    item = dataset.items.order_by("id").first()

    response = get(client_for("alice"), image_path(item), headers={"If-None-Match": '"other"'})

    assert response.status_code == 200


def test_image_wrong_hash_404(dataset, client_for):
    item = dataset.items.order_by("id").first()

    response = get(client_for("alice"), f"/api/v1/items/{item.pk}/image/{'0' * 64}/")

    assert response.status_code == 404


def test_image_jpeg_content_type(dataset, client_for):
    item = dataset.items.order_by("id").first()
    jpeg_name = item.image.name.rsplit(".", 1)[0] + ".jpg"
    item.image.storage.save(jpeg_name, item.image.open("rb"))
    type(item).objects.filter(pk=item.pk).update(image=jpeg_name)

    response = get(client_for("alice"), image_path(item))

    assert response.headers["Content-Type"] == "image/jpeg"


def test_image_ignores_accept_header(dataset, client_for):
    item = dataset.items.order_by("id").first()

    response = get(
        client_for("alice"), image_path(item), headers={"Accept": "image/webp,image/png"}
    )

    assert response.status_code == 200


def test_image_anonymous_rejected(dataset, live_server):
    item = dataset.items.order_by("id").first()

    response = requests.get(live_server.url + image_path(item), timeout=30)

    assert response.status_code in (401, 403)
