"""The checks run in a real worker process (queue default)."""

import pytest

from licensing.checks import CHECKS
from licensing.models import CheckResult
from licensing.tasks import checks_run_task
from tests.licensing.conftest import make_version, stats


@pytest.mark.timeout(120)
def test_checks_run_task_in_a_worker(celery_worker, seller):
    v = make_version(seller, statistics=stats(("by-2", 2), without=1))
    checks_run_task.apply_async(args=[v.pk]).get(timeout=60)
    codes = dict(CheckResult.objects.filter(version=v).values_list("code", "status"))
    assert codes["images_without_license"] == "failed" and len(codes) == len(CHECKS)
    # Delivered twice: same results, not duplicated.
    checks_run_task.delay(v.pk).get(timeout=60)
    assert CheckResult.objects.filter(version=v).count() == len(CHECKS)
