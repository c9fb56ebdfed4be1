"""A publish, a suspension, a price change or a deletion made by one API process is in the
very next search of another (each keeps its own in-process catalogue index), both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from marketplace.listings import catalogue_index
from tests import factories
from tests.conftest import worker_environment
from tests.listings.catalogue import VISIBLE, build_catalogue
from tests.listings.catalogue_peer import search_now, write

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the catalogue index runs on PostgreSQL")


class Peer:
    def __init__(self) -> None:
        env = worker_environment() | {"PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "tests/listings/catalogue_peer.py"], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, command: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"peer exited with {self.proc.wait(timeout=10)}"
        return json.loads(line)

    def search(self, **params) -> dict:
        return self.ask({"op": "search", "params": params})

    def write(self, op: str, slug: str, value: str = "") -> None:
        assert self.ask({"op": op, "slug": slug, "value": value}) == {"ok": True}

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture
def committed_catalogue(transactional_db):
    cat = build_catalogue(
        seller_a=factories.make_seller(username="fresh-seller-a"),
        seller_b=factories.make_seller(username="fresh-seller-b"),
        moderator=factories.make_moderator(username="fresh-moderator"),
    )
    get_user_model().objects.filter(username="fresh-moderator").update(is_staff=True)
    return cat


@pytest.fixture
def peer(committed_catalogue):
    p = Peer()
    yield p
    p.close()


def here(**params) -> dict:
    assert not connection.in_atomic_block  # the shared index, advanced by changes, not rebuilt per state
    answer = search_now(params)
    assert answer["index"]
    return answer


def card(api_client, slug: str) -> dict:
    body = api_client.get("/api/v1/listings/", {"page_size": 100}).json()
    return next(r for r in body["results"] if r["slug"] == slug)


def test_changes_reach_the_next_search_of_the_other_process(peer, api_client):
    assert sorted(here()["slugs"]) == sorted(VISIBLE) == sorted(peer.search()["slugs"])
    shared = catalogue_index._shared[catalogue_index._database_key()]
    built = shared.pk.copy()

    # A suspension in the peer: gone from this process's next search, facets and count too.
    peer.write("suspend", "lab-benchtop")
    answer = here()
    assert "lab-benchtop" not in answer["slugs"] and answer["count"] == 3 and "panoptic" not in answer["facets"]["annotation_kind"]
    # Reinstated (a version published again) here: back in the peer's next search.
    write("reinstate", "lab-benchtop")
    assert "lab-benchtop" in peer.search()["slugs"]
    assert "lab-benchtop" in here()["slugs"]

    # A suspension of the version alone (before any listing_sync) hides it too.
    peer.write("suspend-version-only", "warehouse-pick")
    assert "warehouse-pick" not in here(annotation_kind="video")["slugs"]
    write("reinstate", "warehouse-pick")
    assert peer.search(annotation_kind="video")["slugs"] == ["warehouse-pick"]

    # A price change in the peer: this process's next search filters and orders by the new price.
    assert "lab-benchtop" not in here(price_max="10")["slugs"]
    assert card(api_client, "lab-benchtop")["price"] != "3.00"  # its card is kept from here on
    peer.write("price", "lab-benchtop", "3.00")
    assert "lab-benchtop" in here(price_max="10")["slugs"]
    assert card(api_client, "lab-benchtop")["price"] == "3.00"  # the kept card is not shown again
    assert here(ordering="price")["slugs"][:2] == ["home-folding", "lab-benchtop"]
    write("price", "lab-benchtop", "20000.00")
    assert peer.search(ordering="price")["slugs"][-1] == "lab-benchtop"

    # A publish in the peer, then the listing deleted here.
    peer.write("publish", "fresh-arrival", "1.00")
    answer = here(ordering="-published_at")
    assert answer["slugs"][0] == "fresh-arrival" and answer["count"] == 5
    write("delete", "fresh-arrival")
    assert "fresh-arrival" not in peer.search()["slugs"] and here()["count"] == 4

    # This process applied the changes to the index it had built, rather than rebuilding it.
    assert catalogue_index._shared[catalogue_index._database_key()] is shared
    assert len(shared.pk) > len(built) and shared.pk[: len(built)].tolist() == built.tolist()


def test_a_vocabulary_alias_added_by_the_other_process_is_resolved_by_the_next_search(peer, api_client):
    from datasets.models import VocabularyKind

    with_ur5e = sorted(here(embodiment="ur5e")["slugs"])
    assert with_ur5e and here(embodiment="ur5e")["index"]  # the vocabulary is kept in this process now
    assert sorted(peer.search(embodiment="ur5e")["slugs"]) == with_ur5e  # and in the peer
    assert api_client.get("/api/v1/listings/", {"embodiment": "cobot-blue"}).json()["code"] == "invalid_filter"

    peer.write("alias", "ur5e", "Cobot Blue")
    assert sorted(here(embodiment="cobot-blue")["slugs"]) == with_ur5e
    body = api_client.get("/api/v1/listings/", {"embodiment": "cobot-blue", "page_size": 100}).json()
    assert sorted(r["slug"] for r in body["results"]) == with_ur5e
    # And the reverse: an alias added here reaches the peer's next search.
    from datasets.models import VocabularyTerm

    term = VocabularyTerm.objects.get(kind=VocabularyKind.EMBODIMENT, slug="ur5e")
    term.aliases = [*term.aliases, "Cobot Green"]
    term.save(update_fields=["aliases"])
    assert sorted(peer.search(embodiment="cobot-green")["slugs"]) == with_ur5e


def test_only_changes_buyers_can_see_move_the_catalogue_revision(committed_catalogue):
    from django.utils import timezone

    from marketplace.listings.models import Listing

    def revision() -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT revision FROM listings_catalogue_revision WHERE id = 1")
            return cur.fetchone()[0]

    before = revision()
    Listing.objects.filter(slug="kitchen-grasp").update(checked_at=timezone.now())  # the reconciliation's bookkeeping
    assert revision() == before
    Listing.objects.filter(slug="kitchen-grasp").update(frames=1234)
    assert revision() == before + 1
