"""A moderator works a version through the Django admin in a real headless Chromium."""

import shutil

import pytest

from datasets.states import VersionState
from licensing.models import ProvenanceField
from licensing.services import provenance_update
from marketplace.audit.models import AuditEvent
from tests import factories
from tests.licensing.conftest import make_version, move, stats
from tests.licensing.test_provenance import GOOD

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
)


def settle(check, timeout: float = 15.0):
    """Wait until ``check()`` holds: a click returns before the server has answered."""
    import time

    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the admin's answer did not arrive in time")
        time.sleep(0.1)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("chromium and chromium-driver (Debian packages) are required for the admin browser test")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver), options=options)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


@pytest.mark.django_db(transaction=True)
def test_moderator_verifies_and_approves_in_the_admin(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    seller = factories.make_seller(username="browser-seller")
    moderator = factories.make_moderator(username="browser-moderator")
    v = make_version(seller, license="CC-BY-4.0", statistics=stats(("by-2", 2)))
    provenance_update(version=v, actor=seller.user, fields=GOOD)
    move(v, VersionState.IN_REVIEW, seller.user)

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("browser-moderator")
    browser.find_element(By.NAME, "password").send_keys(factories.PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert "Site administration" in browser.title or "Django" in browser.title

    # Step 1: dispute one provenance field on its change page, with a note.
    field = ProvenanceField.objects.get(record__version=v, name="locations")
    browser.get(f"{live_server.url}/admin/licensing/provenancefield/{field.pk}/change/")
    Select(browser.find_element(By.NAME, "status")).select_by_value("disputed")
    browser.find_element(By.NAME, "note").send_keys("logs show only US")
    browser.find_element(By.NAME, "_save").click()
    settle(lambda: (field.refresh_from_db(), field.status)[1] == "disputed")
    assert field.status == "disputed" and field.note == "logs show only US"
    assert AuditEvent.objects.filter(action="provenance.field.disputed", actor=moderator.user, reason="logs show only US").exists()

    # Step 2: verify another field with the list action.
    other = ProvenanceField.objects.get(record__version=v, name="rai:dataCollection")
    browser.get(f"{live_server.url}/admin/licensing/provenancefield/")
    browser.find_element(By.CSS_SELECTOR, f"input[name=_selected_action][value='{other.pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("mark_verified")
    browser.find_element(By.NAME, "index").click()
    settle(lambda: (other.refresh_from_db(), other.status)[1] == "verified")
    assert other.status == "verified"
    assert AuditEvent.objects.filter(action="provenance.field.verified", actor=moderator.user).exists()

    # Step 3: the version's page shows the review material; approve with a reason.
    browser.get(f"{live_server.url}/admin/licensing/moderatedversion/{v.pk}/change/")
    page = browser.page_source
    assert "commercial_use=True" in page and "locations" in page
    Select(browser.find_element(By.NAME, "decision")).select_by_value("approve")
    browser.find_element(By.NAME, "reason").send_keys("provenance consistent")
    browser.find_element(By.NAME, "_save").click()
    settle(lambda: "approve recorded" in browser.page_source)
    v.refresh_from_db()
    assert v.state == VersionState.PUBLISHED
    assert AuditEvent.objects.filter(action="moderation.approve", actor=moderator.user, reason="provenance consistent").exists()

    # The audit log is read-only in the admin: no add, no change form, no delete.
    event = AuditEvent.objects.filter(action="moderation.approve").first()
    browser.get(f"{live_server.url}/admin/licensing/auditevent/")
    assert "Add audit event" not in browser.page_source
    browser.get(f"{live_server.url}/admin/licensing/auditevent/{event.pk}/delete/")
    assert "Are you sure" not in browser.page_source
