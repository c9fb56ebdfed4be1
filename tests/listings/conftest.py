import pytest
from django.db import transaction

from tests import factories
from tests.listings.catalogue import build_catalogue


@pytest.fixture(scope="module")
def catalogue(django_db_setup, django_db_blocker):
    """Built once per module inside a transaction that is rolled back at the end; each test's
    own ``db`` transaction nests inside it as a savepoint, so tests stay isolated."""
    with django_db_blocker.unblock(), transaction.atomic():
        cat = build_catalogue(
            seller_a=factories.make_seller(username="cat-seller-a"),
            seller_b=factories.make_seller(username="cat-seller-b"),
            moderator=factories.make_moderator(username="cat-moderator"),
        )
        yield cat
        transaction.set_rollback(True)
