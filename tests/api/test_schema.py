"""HTTP tests of the OpenAPI schema and the Swagger UI."""

import requests


def test_schema_lists_operations(live_server):
    response = requests.get(
        f"{live_server.url}/api/v1/schema/", headers={"Accept": "application/json"}, timeout=30
    )
    schema = response.json()

    assert response.status_code == 200
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/tasks/next/" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/tasks/{task_id}/answer/"]
    assert "/api/v1/datasets/{slug}/triplets/export/" in schema["paths"]
    assert "LeasedTask" in schema["components"]["schemas"]


def test_schema_validates(live_server):
    from drf_spectacular.validation import validate_schema

    schema = requests.get(
        f"{live_server.url}/api/v1/schema/", headers={"Accept": "application/json"}, timeout=30
    )

    validate_schema(schema.json())


def test_swagger_ui_page(live_server):
    response = requests.get(f"{live_server.url}/api/v1/docs/", timeout=30)

    assert response.status_code == 200
    assert "swagger-ui" in response.text
