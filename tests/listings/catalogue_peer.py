"""A second API process for the search freshness test: reads one JSON command per line on
stdin, answers one JSON line on stdout. Its catalogue index lives as long as it does, so a
change made by the test process must reach its *next* search (and the reverse).

Commands: ``{"op": "search", "params": {...}}`` and the writes of :func:`write`.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")


def search_now(params: dict) -> dict:
    from marketplace.listings import catalogue_index, search

    filters = search.listing_filters_parse({k: v if isinstance(v, list) else [v] for k, v in params.items()})
    results, facets, _paginator = search.listing_search_results(filters=filters)
    return {
        "slugs": [listing.slug for listing in (results.listings(slice(0, 100)) if catalogue_index.index_enabled() else results[0:100])],
        "count": len(results) if catalogue_index.index_enabled() else results.count(),
        "facets": {name: {f["value"]: f["count"] for f in values} for name, values in facets.items()},
        "index": catalogue_index.index_enabled(),
    }


def write(op: str, slug: str, value: str = "") -> None:
    """A change buyers must see at once, made as the platform makes it (services, then listing_sync)."""
    from django.contrib.auth import get_user_model

    from datasets.models import Dataset
    from datasets.services import version_transition
    from datasets.states import VersionState
    from marketplace.listings.models import Listing
    from marketplace.listings.services import listing_sync

    staff = get_user_model().objects.filter(is_staff=True).first()
    if op == "publish":  # a new dataset's first version, through the moderation path
        from tests import factories

        seller = factories.make_seller(username=f"peer-{slug}")
        dataset = factories.make_dataset(seller=seller, slug=slug, price=value or "5.00")
        version = factories.make_version(seller=seller, dataset=dataset)
        for state in (VersionState.SUBMITTED, VersionState.PROCESSING, VersionState.IN_REVIEW, VersionState.PUBLISHED):
            version_transition(version=version, to_state=state, actor=staff)
        listing_sync(dataset=dataset)
        return
    if op == "alias":  # another name for the vocabulary term ``slug`` (an embodiment)
        from datasets.models import VocabularyTerm

        term = VocabularyTerm.objects.get(kind="embodiment", slug=slug)
        term.aliases = [*term.aliases, value]
        term.save(update_fields=["aliases"])
        return
    listing = Listing.objects.select_related("version", "dataset").get(slug=slug)
    if op == "suspend":
        version_transition(version=listing.version, to_state=VersionState.SUSPENDED, actor=staff)
        listing_sync(dataset=listing.dataset)
    elif op == "suspend-version-only":  # the version's state alone (listing_sync not run yet)
        version_transition(version=listing.version, to_state=VersionState.SUSPENDED, actor=staff)
    elif op == "reinstate":
        version_transition(version=listing.version, to_state=VersionState.PUBLISHED, actor=staff)
        listing_sync(dataset=listing.dataset)
    elif op == "price":
        Dataset.objects.filter(pk=listing.dataset_id).update(price=value)
        listing_sync(dataset=listing.dataset)
    elif op == "delete":
        listing.delete()
    else:
        raise ValueError(op)


def main() -> None:
    import django

    django.setup()
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "search":
            answer = search_now(command["params"])
        else:
            write(command["op"], command["slug"], command.get("value", ""))
            answer = {"ok": True}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
