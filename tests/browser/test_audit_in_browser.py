"""The audit log in headless Chromium against the real server: a refused sign-in and an admin's
change are on the log, found through the admin's navigation and its filter; a filter not
understood says why; the filtered entries download as CSV; the retention is saved. Screenshots
of the filtered log at 1280x800 and 390x844, light and dark."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from tests.browser.pages import screenshots

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
from playwright.sync_api import expect  # noqa: E402

WRONG = "Nom d'utilisateur ou mot de passe incorrect."


@pytest.fixture
def registration_opened_after(open_page):
    """The server is shared by every browser test, and the later ones register accounts: the
    registration mode this test changes is put back to open, whatever the test's outcome."""
    yield
    page = open_page()
    page.goto("/admin/users")
    page.locator("input[name=mode][value=open]").check()
    page.locator("form[action$='/registration'] button").click()
    expect(page.locator("[data-flash]").first).to_be_visible()


def test_the_admin_finds_a_refused_sign_in_and_their_own_change_in_the_audit_log(
    open_page, context, live_server, artifacts_dir, registration_opened_after
):
    tried = f"inconnu-{uuid.uuid4().hex[:6]}"
    visitor = context.new_page()
    visitor.goto("/login")
    visitor.fill("input[name=username]", tried)
    visitor.fill("input[name=password]", "pas le bon mot de passe")
    visitor.click("form button[type=submit]")
    expect(visitor.locator("body")).to_contain_text(WRONG)

    page = open_page()
    page.goto("/admin/users")
    page.locator("input[name=mode][value=approval]").check()
    page.locator("form[action$='/registration'] button").click()
    expect(page.locator("[data-flash]").first).to_be_visible()

    # A model's description changed, then put back: each save is one entry, before -> after.
    page.goto("/admin/models")
    page.goto(page.locator("a[href*='/admin/models/settings?model=']").first.get_attribute("href"))
    description = page.locator("input[name=description]")
    kept = description.input_value()
    description.fill("Rapide <b>et</b> sobre")
    page.locator("form button").last.click()
    expect(page.locator("[data-flash]").first).to_be_visible()
    page.go_back()
    page.reload()
    page.locator("input[name=description]").fill(kept)
    page.locator("form button").last.click()

    page.goto("/admin/users")
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Journal d'audit").click()
    expect(page.locator("h1")).to_have_text("Journal d'audit")
    mode = page.locator("[data-entry='registration.mode']").first
    expect(mode).to_contain_text("Mode d'inscription")
    expect(mode.locator("[data-actor]")).to_contain_text("admin")
    expect(mode.locator("[data-details]")).to_contain_text("approval")
    settings = page.locator("[data-entry='model.settings']")
    expect(settings.nth(1).locator("[data-details] ins")).to_have_text("Rapide <b>et</b> sobre")
    expect(settings.nth(0).locator("[data-details] del")).to_have_text("Rapide <b>et</b> sobre")
    if not kept:  # an empty description reads as nothing, not as a blank
        expect(settings.nth(1).locator("[data-details] del")).to_have_text("—")

    # The refused sign-in, by the name tried: the kind "signin" and the person.
    page.locator("select[name=action]").select_option("signin")
    page.locator("input[name=person]").fill(tried)
    page.get_by_role("button", name="Filtrer").click()
    rows = page.locator("[data-entry]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Connexion refusée")
    expect(rows.first.locator("[data-target]")).to_contain_text(tried)
    expect(rows.first.locator("[data-address]")).to_contain_text("127.0.0.1")
    screenshots(page, artifacts_dir, "audit-filtered")

    with page.expect_download() as download:
        page.locator("[data-audit-csv]").click()
    lines = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert [(line["action"], line["target"]) for line in lines] == [("signin.fail", tried)]

    page.goto("/admin/audit?since=2026-02-31")
    expect(page.locator("[data-filter-errors]")).to_contain_text("« 2026-02-31 » n'est pas une date")
    screenshots(page, artifacts_dir, "audit-refused-filter")

    page.goto("/admin/audit")
    page.locator("#retention-days").fill("365")
    page.locator("[data-retention] button").click()
    expect(page.locator("[data-flash]")).to_contain_text("gardées 365 jours")
    expect(page.locator("[data-entry='audit.retention']").first).to_contain_text("365")
    screenshots(page, artifacts_dir, "audit-log")
