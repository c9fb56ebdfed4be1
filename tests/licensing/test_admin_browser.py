"""A moderator works a version at the moderators' desk in a real headless Chromium: the
queue, the review page with the reports' own plots and overlays, two fields verified, one
disputed with a note, the approval. The browser makes no request outside the machine: the
system chromedriver is given explicitly (Selenium Manager, the part that downloads drivers,
must never run), Selenium's statistics are off, Chromium's background networking is off,
every host name but the test server's resolves to nothing, and every resource the pages
loaded is checked to come from the test server. Screenshots of the queue and the review
page are saved under ``var/artifacts/`` (or ``$TEST_ARTIFACTS_DIR``)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from datasets.states import VersionState
from licensing.models import ProvenanceField
from marketplace.accounts.services import organization_create
from marketplace.audit.models import AuditEvent
from tests import factories
from tests.licensing.desk import review_case

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or Path(__file__).resolve().parents[2] / "var" / "artifacts")
WIDTH = 1440
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions", "--no-first-run",
    "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication", "--metrics-recording-only",
    "--hide-scrollbars", f"--window-size={WIDTH},1000",
    # Every host name resolves to nothing except the test server's own.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
)


def settle(check, timeout: float = 20.0, what: str = "the page's answer"):
    """Wait until ``check()`` holds: a click returns before the server has answered."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - the page is reloading under us: look again
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not arrive in time")
        time.sleep(0.1)


@pytest.fixture
def browser(monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    monkeypatch.setenv("SE_AVOID_STATS", "true")

    def no_downloads(self, *args, **kwargs):
        raise AssertionError("Selenium Manager was asked for a driver: the test must use the system chromedriver")

    monkeypatch.setattr(SeleniumManager, "binary_paths", no_downloads)
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("chromium and chromium-driver (Debian packages) are required for the moderators' browser test")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def screenshot(browser, name: str) -> Path:
    """The whole page, not only the window."""
    height = browser.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    browser.set_window_size(WIDTH, min(int(height) + 20, 12000))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert browser.save_screenshot(str(path)), path
    browser.set_window_size(WIDTH, 1000)
    return path


def images_loaded(browser) -> list[tuple[str, int]]:
    """(src, natural width) of every image on the page, once each has finished loading."""
    settle(lambda: browser.execute_script("return Array.from(document.images).every(i => i.complete)"), what="the images")
    return [(src, int(w)) for src, w in browser.execute_script("return Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")]


def field_row(browser, name: str):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, f"field-{name}")


def review_field(browser, name: str, status: str, note: str = "") -> None:
    from selenium.webdriver.common.by import By

    row = field_row(browser, name)
    if note:
        row.find_element(By.NAME, "note").send_keys(note)
    row.find_element(By.CSS_SELECTOR, f"button[name=status][value={status}]").click()
    settle(lambda: status in field_row(browser, name).find_element(By.CSS_SELECTOR, ".mod-badge").text, what=f"{name} {status}")


@pytest.mark.timeout(300)
@pytest.mark.django_db(transaction=True)
def test_moderator_reviews_and_approves_in_the_browser(live_server, browser):
    from selenium.webdriver.common.by import By

    seller = factories.make_seller(username="browser-seller", org=organization_create(name="Northwind Robotics", slug="northwind-robotics"))
    other = factories.make_seller(username="other-seller", org=organization_create(name="Harbor Vision Labs", slug="harbor-vision"))
    moderator = factories.make_moderator(username="browser-moderator")
    case = review_case(seller=seller, other_seller=other, moderator=factories.make_moderator(username="senior-moderator"))
    v = case.version

    # Sign in; the admin sends the moderator on to the queue.
    browser.get(f"{live_server.url}/admin/login/?next=/admin/licensing/moderatedversion/")
    browser.find_element(By.NAME, "username").send_keys("browser-moderator")
    browser.find_element(By.NAME, "password").send_keys(factories.PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    settle(lambda: browser.find_elements(By.ID, "result_list"), what="the queue")

    # The queue opens on the versions in review, oldest first, with its columns.
    headers = [th.text.strip().lower() for th in browser.find_elements(By.CSS_SELECTOR, "#result_list thead th")]
    for column in ("version", "seller", "kind", "frames", "mask iou", "tier", "failed checks", "terms conflicts", "waiting"):
        assert any(column in h for h in headers), (column, headers)
    rows = [tr.text for tr in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")]
    assert len(rows) == 2 and "Bin picking: mugs and grippers" in rows[0] and "Kitchen clutter" in rows[1], rows
    assert "verified" in rows[0] and "fine" in rows[0] and "Northwind Robotics" in rows[0]
    assert "declared terms too permissive" in rows[1] and "2 errors" in rows[1]
    screenshot(browser, "moderation-queue.png")

    # The review page, with the reports' own plots and overlays served to the moderator's session.
    browser.find_element(By.LINK_TEXT, "Bin picking: mugs and grippers v2").click()
    settle(lambda: browser.find_elements(By.ID, "mod-review"), what="the review page")
    images = images_loaded(browser)
    overlays = [(src, w) for src, w in images if "/plots/" in src and "overlay" in src]
    assert overlays and all(w > 0 for _, w in overlays), images
    assert all(w > 0 for _, w in images), images
    figures = {tr.get_attribute("data-figure"): tr.text for tr in browser.find_elements(By.CSS_SELECTOR, "tr.mod-figure")}
    assert "verified" in figures["mask_iou"] and "[" in figures["mask_iou"], figures
    checks = [tr.get_attribute("data-check") for tr in browser.find_elements(By.CSS_SELECTOR, "tr.mod-check")]
    assert checks[0] == "foundation_model_unreviewed", checks  # the failed one first

    # Two fields verified, one disputed with its note, each with the review page's own form.
    review_field(browser, "rai:dataCollectionType", "verified")
    review_field(browser, "rai:annotationsPerItem", "verified")
    review_field(browser, "locations", "disputed", note="the recording logs show sessions in the US only")
    statuses = dict(ProvenanceField.objects.filter(record__version=v).values_list("name", "status"))
    assert statuses["rai:dataCollectionType"] == statuses["rai:annotationsPerItem"] == "verified" and statuses["locations"] == "disputed"
    assert AuditEvent.objects.filter(action="provenance.field.disputed", actor=moderator.user, reason="the recording logs show sessions in the US only").exists()
    assert AuditEvent.objects.filter(action="provenance.field.verified", actor=moderator.user).count() == 2
    assert "the recording logs show sessions in the US only" in field_row(browser, "locations").text
    images_loaded(browser)
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "moderation-review.png")

    # Approve, with a reason.
    browser.find_element(By.CSS_SELECTOR, "input[name=decision][value=approve]").click()
    browser.find_element(By.ID, "mod-reason").send_keys("figures verified; locations disputed in the record, terms clean")
    browser.find_element(By.CSS_SELECTOR, ".mod-decision-form button[type=submit]").click()
    settle(lambda: "approve recorded" in browser.page_source, what="the decision")
    v.refresh_from_db()
    assert v.state == VersionState.PUBLISHED
    assert AuditEvent.objects.filter(action="moderation.approve", actor=moderator.user, object_id=str(v.pk), reason__startswith="figures verified").exists()

    # Nothing the pages loaded came from anywhere but the test server.
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    assert resources and all(r.startswith(live_server.url) for r in resources), [r for r in resources if not r.startswith(live_server.url)]
