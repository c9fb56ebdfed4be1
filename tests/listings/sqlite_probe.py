"""Run by test_sqlite_fallback in a subprocess with DATABASE_URL=sqlite: the embedded default's search."""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from tests import factories  # noqa: E402
from tests.listings.catalogue import build_catalogue  # noqa: E402

assert connection.vendor == "sqlite", connection.vendor
call_command("migrate", verbosity=0, interactive=False)
build_catalogue(
    seller_a=factories.make_seller(username="a"),
    seller_b=factories.make_seller(username="b"),
    moderator=factories.make_moderator(username="m"),
)
client = Client()
out = {}
for query in sys.argv[1:]:
    body = client.get("/api/v1/listings/?" + query).json()
    out[query] = {"slugs": [r["slug"] for r in body["results"]], "facets": body["facets"]}
print(json.dumps(out))
