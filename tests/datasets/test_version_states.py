import pytest

from datasets.services import version_transition
from datasets.states import TRANSITIONS, VersionState
from marketplace.audit.models import AuditEvent
from marketplace.core.errors import Conflict
from tests.factories import make_version

pytestmark = pytest.mark.django_db


def test_listed_transitions_work_and_are_audited(seller):
    version = make_version(seller=seller)
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING, VersionState.IN_REVIEW, VersionState.PUBLISHED, VersionState.SUSPENDED, VersionState.PUBLISHED, VersionState.WITHDRAWN):
        version_transition(version=version, to_state=state, actor=seller.user, reason="test")
        version.refresh_from_db()
        assert version.state == state
    events = AuditEvent.objects.filter(object_type="datasets.datasetversion", object_id=str(version.pk), action__startswith="version.").exclude(action="version.create")
    assert events.count() == 7
    assert events.first().after == {"state": "withdrawn"} and events.first().reason == "test"


@pytest.mark.parametrize(("start", "target"), [(s, t) for s in VersionState.values for t in VersionState.values if s != t and t not in TRANSITIONS[s]][:40])
def test_unlisted_transitions_are_refused(seller, start, target):
    version = make_version(seller=seller)
    type(version).objects.filter(pk=version.pk).update(state=start)
    version.refresh_from_db()
    with pytest.raises(Conflict) as err:
        version_transition(version=version, to_state=target, actor=seller.user)
    assert err.value.code == "invalid_transition"
    version.refresh_from_db()
    assert version.state == start


def test_one_published_version_per_dataset(seller):
    from django.db import IntegrityError, transaction

    v1 = make_version(seller=seller)
    type(v1).objects.filter(pk=v1.pk).update(state=VersionState.PUBLISHED)
    v2 = type(v1).objects.create(dataset=v1.dataset, number=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        type(v1).objects.filter(pk=v2.pk).update(state=VersionState.PUBLISHED)


def test_audit_events_are_append_only(seller):
    from marketplace.audit.models import AppendOnlyError

    make_version(seller=seller)
    event = AuditEvent.objects.first()
    event.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().update(reason="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


def test_database_refuses_audit_rewrites_on_postgresql(seller):
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only")
    make_version(seller=seller)
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'x'")
