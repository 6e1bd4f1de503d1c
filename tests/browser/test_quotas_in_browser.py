"""Quotas in headless Chromium against the real server: the admin sets a group's quotas on its
page; a member sees what is left in the composer before asking and after each answer, and in
Settings; the admin reads the day's use against limits per group, then gives the member a
quota of their own, and the member's next message is refused saying when it comes back. Each
page is kept as screenshots at 1280x800 and 390x844, light and dark."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.conftest import log_in_through_form
from tests.browser.pages import DESKTOP, new_chat, screenshots

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
from playwright.sync_api import expect  # noqa: E402

SCRIPTED_MODEL = "deepseek-r1:1.5b"  # the Ollama stand-in's scripted model
ANSWER = ["Les ", "quotas ", "se ", "voient."]


@pytest.fixture
def member(live_server, admin) -> tuple[str, str]:
    from benchmarks.client import ChatClient

    account = (f"stagiaire-{uuid.uuid4().hex[:6]}", "le mot de passe du stagiaire")
    assert ChatClient(live_server.base_url).register(*account).ok
    return account


def as_member(browser, live_server, account):
    context = browser.new_context(locale="fr-FR", base_url=live_server.base_url, viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in_through_form(page, live_server.base_url, *account)
    return context, page


def ask(page, text: str) -> None:
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")


def test_a_member_sees_what_is_left_and_is_refused_beyond_it_with_the_time_it_comes_back(
    open_page, browser, live_server, member, scripted_model, artifacts_dir
):
    scripted_model.script = ANSWER
    admin_page = open_page()
    admin_page.goto("/admin/groups")
    name = f"Stagiaires {uuid.uuid4().hex[:4]}"
    admin_page.locator("#name").fill(name)
    admin_page.get_by_role("button", name="Créer le groupe").click()
    admin_page.locator("#members-input").fill(member[0])
    admin_page.locator("[data-add-members] button").click()
    expect(admin_page.locator(f"[data-member='{member[0]}']")).to_be_visible()
    # A mistake is said beside its field; then the group's quotas are saved.
    form = admin_page.locator("[data-group-quotas]")
    form.get_by_label("Réponses par jour").fill("-3")
    form.get_by_role("button", name="Enregistrer les quotas").click()
    expect(admin_page.locator("[data-error=answers_per_day]")).to_have_text(
        "Réponses par jour : un nombre entier de 0 à 1\u202f000\u202f000, ou vide pour aucune limite."
    )
    form.get_by_label("Réponses par jour").fill("3")
    form.get_by_label("Jetons par jour").fill("2 000")
    form.get_by_role("button", name="Enregistrer les quotas").click()
    expect(admin_page.locator("[data-flash]")).to_contain_text("sont enregistrés")
    expect(form.get_by_label("Jetons par jour")).to_have_value("2000")
    screenshots(admin_page, artifacts_dir, "quotas-group")

    context, page = as_member(browser, live_server, member)
    try:
        new_chat(page)
        page.locator("#model").select_option(SCRIPTED_MODEL)
        line = page.locator("[data-quota-left]")
        expect(line).to_have_text("3 réponses et 2\u202f000 jetons restants aujourd'hui")
        ask(page, "Comment voit-on ce qui reste ?")
        expect(line).to_have_text("2 réponses et 1\u202f996 jetons restants aujourd'hui", timeout=30_000)
        screenshots(page, artifacts_dir, "quotas-composer")
        page.goto("/compare")
        expect(line).to_have_text("2 réponses et 1\u202f996 jetons restants aujourd'hui")
        screenshots(page, artifacts_dir, "quotas-compare")

        page.goto("/settings")
        section = page.locator("[data-my-quotas]")
        expect(section.locator("[data-answers-left]")).to_have_text("il en reste 2 sur 3")
        section.scroll_into_view_if_needed()
        screenshots(page, artifacts_dir, "quotas-settings")

        admin_page.goto("/admin/quotas")
        row = admin_page.locator(f"[data-group-use='{name}'] [data-person-use='{member[0]}']")
        expect(row.locator("[data-answers]")).to_have_text("1 / 3")
        expect(row.locator("[data-tokens]")).to_have_text("4 / 2\u202f000")
        screenshots(admin_page, artifacts_dir, "quotas-usage")

        # Their own quota comes before the group's: one answer a day, already used.
        row.get_by_role("link", name=member[0]).click()
        admin_page.locator("[data-person-quotas]").get_by_label("Réponses par jour").fill("1")
        admin_page.get_by_role("button", name="Enregistrer les quotas").click()
        expect(admin_page.locator("[data-person-today] [data-answers]")).to_have_text("1 / 1")
        screenshots(admin_page, artifacts_dir, "quotas-person")

        new_chat(page)
        page.locator("#model").select_option(SCRIPTED_MODEL)
        expect(line).to_have_text("0 réponse et 1\u202f996 jetons restants aujourd'hui")
        ask(page, "Et une de plus ?")
        error = page.locator("#composer-error")
        expect(error).to_contain_text("Vous avez utilisé le quota du jour : 1 réponse. Il revient le ")
        screenshots(page, artifacts_dir, "quotas-refused")

        # Two tokens left of their own: the next answer stops at them, kept, saying why.
        admin_page.locator("[data-person-quotas]").get_by_label("Réponses par jour").fill("")
        admin_page.locator("[data-person-quotas]").get_by_label("Jetons par jour").fill("6")
        admin_page.get_by_role("button", name="Enregistrer les quotas").click()
        expect(admin_page.locator("[data-person-today] [data-tokens]")).to_have_text("4 / 6")
        new_chat(page)
        page.locator("#model").select_option(SCRIPTED_MODEL)
        ask(page, "Et maintenant ?")
        answer = page.locator("#messages article[data-role=assistant]").last
        expect(answer).to_have_attribute("data-state", "stopped", timeout=30_000)
        expect(answer.locator("[data-markdown]")).to_have_text("Les quotas")
        notice = answer.locator("[data-error]")
        expect(notice).to_contain_text("Quota atteint : les 6 jetons du jour sont utilisés")
        expect(line).to_have_text("1 réponse et 0 jeton restants aujourd'hui")
        screenshots(page, artifacts_dir, "quotas-cut")
    finally:
        context.close()
        admin_page.goto("/admin/groups")
        admin_page.locator(f"[data-group='{name}'] [data-group-name]").click()
        admin_page.once("dialog", lambda dialog: dialog.accept())
        admin_page.locator("[data-delete-group] button").click()
