"""The OpenAPI schema is generated without a warning and validates as OpenAPI 3."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_schema_generates_cleanly_and_validates(tmp_path):
    out = tmp_path / "schema.yaml"
    # --fail-on-warn: an APIView whose body drf-spectacular cannot see, or two operations
    # with one operationId, fails here rather than silently leaving the schema wrong.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/datasets/{slug}/versions/" in text and "operationId: listings_search" in text
