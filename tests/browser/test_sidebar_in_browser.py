"""The conversation list in Chromium, on a desktop and on a phone: dated groups with the pinned
conversations on top, pinning from a conversation's menu, search results under their own
heading, and on a phone the conversation's title in the header and the ☰ list laid over a
backdrop that closes it. Screenshots in test-artifacts/browser/sidebar/, light and dark.

No model is asked anything here: the conversations are made and named through the chat's
HTTP interface, and their dates set in the server's database."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.pages import VIEWPORTS, register_through_form

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
expect = sync_api.expect

SHOTS = ARTIFACTS / "sidebar"
PASSWORD = "une phrase de passe assez longue"
THEMES = ("light", "dark")
# (title, days since last written, pinned), the newest last: as they would have been made.
CONVERSATIONS = [
    ("Plan de formation 2027", 40, False),
    ("## Rapport de novembre : **les points clés**", 30, True),
    ("Traduire la notice du broyeur", 5, False),
    ("Recette des crêpes pour la fête du service", 1, False),
    ("Comparer deux offres de fournisseurs", 0, False),
    ("Résumé de la réunion d'équipe du lundi matin", 0, False),
]


@pytest.fixture
def user_page(browser, live_server, request):
    """A page signed in as a new account, on the screen and theme the test names
    (`request.param`: (viewport, theme)), its JavaScript errors failing the test."""
    viewport, theme = getattr(request, "param", ("desktop", "light"))
    context = browser.new_context(
        locale="fr-FR", base_url=live_server.base_url, color_scheme=theme, **VIEWPORTS[viewport]
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    register_through_form(page, f"side-{uuid.uuid4().hex[:8]}", PASSWORD)
    page.shots = f"{viewport}-{theme}"
    yield page
    context.close()
    assert errors == [], errors


def post(page, path: str, body: dict) -> dict:
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    response = page.request.post(
        path, data=body, headers={"X-CSRFToken": token, "Accept": "application/json"}
    )
    assert response.ok, (path, response.status, response.text())
    return response.json()


def make_conversations(page, live_server, conversations=CONVERSATIONS) -> dict[str, int]:
    """The conversations, named and dated as given; their ids by title."""
    ids = {}
    now = datetime.now(UTC).replace(tzinfo=None)
    database = sqlite3.connect(live_server.instance_dir / "causerie.sqlite3", timeout=10)
    try:
        for title, days, pinned in conversations:
            conversation_id = post(page, "/conversations", {})["id"]
            post(page, f"/conversations/{conversation_id}/rename", {"title": title})
            if pinned:
                post(page, f"/conversations/{conversation_id}/pin", {"pinned": True})
            moment = now - timedelta(days=days)
            with database:
                database.execute(
                    "UPDATE conversation SET updated_at = ? WHERE id = ?",
                    (moment.isoformat(sep=" "), conversation_id),
                )
            ids[title] = conversation_id
    finally:
        database.close()
    return ids


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{page.shots}.png"))


def headings(page) -> list[str]:
    return page.locator("#conversation-list section:not(.hidden) h2").all_inner_texts()


@pytest.mark.parametrize("user_page", [("desktop", theme) for theme in THEMES], indirect=True)
def test_the_list_shows_the_pinned_conversations_then_each_day_group_in_order(user_page, live_server):
    page = user_page
    ids = make_conversations(page, live_server)
    page.goto(f"/c/{ids['Comparer deux offres de fournisseurs']}")
    assert headings(page) == ["Épinglées", "Aujourd'hui", "Hier", "7 derniers jours", "Plus ancien"]
    pinned = page.locator('#conversation-list [data-group="pinned"] [data-title]')
    expect(pinned).to_have_text(["Rapport de novembre : les points clés"])
    today = page.locator('#conversation-list [data-group="today"] [data-title]')
    expect(today).to_have_text(
        ["Résumé de la réunion d'équipe du lundi matin", "Comparer deux offres de fournisseurs"]
    )
    shot(page, "grouped")


def test_a_conversation_pinned_from_its_menu_goes_to_the_top_and_stays_there(user_page, live_server):
    page = user_page
    ids = make_conversations(page, live_server, CONVERSATIONS[:1] + CONVERSATIONS[-1:])
    page.reload()
    item = page.locator(f'#conversation-list li[data-conversation-id="{ids["Plan de formation 2027"]}"]')
    item.locator("[data-menu] summary").click()
    with page.expect_navigation():
        item.locator("[data-pin] button", has_text="Épingler").click()
    page.reload()
    assert headings(page) == ["Épinglées", "Aujourd'hui"]
    expect(page.locator('[data-group="pinned"] [data-title]')).to_have_text(["Plan de formation 2027"])
    item.locator("[data-menu] summary").click()
    expect(item.locator("[data-pin] button")).to_have_text("Détacher")


def test_a_first_message_in_markdown_names_the_new_conversation_in_words_at_once(user_page):
    page = user_page
    page.wait_for_function("() => window.Markdown !== undefined")
    page.locator("#prompt").fill("## Rapport … **les points clés**\n\nDis bonjour.")
    page.locator("#prompt").press("Enter")
    title = "Rapport … les points clés Dis bonjour."
    expect(page.locator("[data-conversation-title]")).to_have_text(title)
    expect(page.locator('#conversation-list [data-group="today"] [data-title]')).to_have_text([title])
    assert headings(page) == ["Aujourd'hui"]
    # The answer is not what is tested here. Esc stops it if it is still being written, and does
    # nothing if it has ended (a fast machine), where a click would wait for a Stop button gone.
    page.locator("#prompt").press("Escape")
    page.wait_for_selector("#send:not(.hidden)", timeout=60_000)
    page.reload()
    expect(page.locator('#conversation-list [data-group="today"] [data-title]')).to_have_text([title])


@pytest.mark.parametrize("user_page", [("desktop", theme) for theme in THEMES], indirect=True)
def test_search_results_show_under_their_own_heading_apart_from_the_list(user_page, live_server):
    page = user_page
    make_conversations(page, live_server)
    page.reload()
    page.locator("#conversation-search").press_sequentially("crêpes")
    results = page.locator("#sidebar [data-search-results]")
    expect(results).to_be_visible()
    expect(results.locator("h2")).to_have_text("Résultats de la recherche")
    expect(results.locator("a")).to_have_count(1)
    expect(results.locator("a")).to_contain_text("Recette des crêpes")
    assert page.locator("#conversation-list [data-search-results]").count() == 0
    box, listed = results.bounding_box(), page.locator("#conversation-list").bounding_box()
    assert box["y"] + box["height"] <= listed["y"], "the results sit above the list, not among it"
    shot(page, "search")
    page.locator("#conversation-search").press("Escape")
    expect(results).to_be_hidden()


@pytest.mark.parametrize("user_page", [("phone", theme) for theme in THEMES], indirect=True)
def test_on_a_phone_the_header_shows_the_conversations_title(user_page, live_server):
    page = user_page
    ids = make_conversations(page, live_server, [("Traduire la notice du broyeur", 0, False)])
    page.goto(f"/c/{ids['Traduire la notice du broyeur']}")
    title = page.locator("[data-conversation-title]")
    expect(title).to_be_visible()
    expect(title).to_have_text("Traduire la notice du broyeur")
    box = title.bounding_box()
    assert box["width"] >= 150 and box["x"] + box["width"] <= 390, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "nothing to pan sideways to"
    expect(page.locator("#model")).to_be_visible()
    shot(page, "header")


@pytest.mark.parametrize("user_page", [("phone", theme) for theme in THEMES], indirect=True)
def test_on_a_phone_a_new_chat_shows_its_title_and_the_header_stays_put_when_the_first_answer_starts(
    user_page,
):
    page = user_page
    page.wait_for_function("() => window.Markdown !== undefined")
    title = page.locator("[data-conversation-title]")
    expect(title).to_have_text("Nouvelle conversation")
    assert title.bounding_box()["width"] >= 150, "the new chat's title is there to read, not squeezed away"
    parts = {"header": "#chat > header", "model picker": "#model", "settings": "[data-settings-toggle]"}

    def boxes() -> dict:
        placed = {name: page.locator(selector).bounding_box() for name, selector in parts.items()}
        placed["thread's top"] = page.locator("#messages").bounding_box()["y"]
        return placed

    before = boxes()
    shot(page, "header-new")
    page.locator("#prompt").fill("Comment ranger les dossiers partagés du service ?")
    page.locator("#prompt").press("Enter")
    # The conversation now exists: its title and the export button (⤓) came with the answer.
    expect(title).to_have_text("Comment ranger les dossiers partagés du service ?")
    expect(page.locator("[data-export-menu]")).to_be_visible()
    assert boxes() == before, "the header and the page under it kept their place"
    shot(page, "header-answering")
    # The answer is not what is tested here. Esc stops it if it is still being written, and does
    # nothing if it has ended (a fast machine), where a click would wait for a Stop button gone.
    page.locator("#prompt").press("Escape")
    page.wait_for_selector("#send:not(.hidden)", timeout=60_000)


@pytest.mark.parametrize("user_page", [("phone", theme) for theme in THEMES], indirect=True)
def test_on_a_phone_the_list_lies_over_a_backdrop_and_closes_by_it_by_its_button_or_escape(
    user_page, live_server
):
    page = user_page
    make_conversations(page, live_server)
    page.reload()
    toggle, sidebar, backdrop = (
        page.locator("#sidebar-toggle"),
        page.locator("#sidebar"),
        page.locator("#sidebar-backdrop"),
    )
    close = sidebar.locator("button[data-sidebar-close]")

    def open_list() -> None:
        toggle.tap()
        expect(sidebar).to_be_visible()
        expect(backdrop).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(close).to_be_focused()

    def closed() -> None:
        expect(sidebar).to_be_hidden()
        expect(backdrop).to_be_hidden()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(toggle).to_be_focused()

    open_list()
    shot(page, "overlay")
    page.keyboard.press("Tab")  # the page under the list is out of reach while it is open
    assert page.evaluate("document.getElementById('sidebar').contains(document.activeElement)")
    page.mouse.click(370, 420)  # the strip of backdrop beside the list
    closed()
    open_list()
    close.tap()
    closed()
    open_list()
    page.keyboard.press("Escape")
    closed()
