"""Sharing a conversation and moving in, in headless Chromium against the real server: the
owner shares from the conversation's menu, a colleague finds it under "Partagées avec moi",
reads it (answers rendered as the chat renders them), copies it, and imports an export.
Each page is kept as screenshots at 1280x800 and 390x844, light and dark."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import log_in_through_form
from tests.browser.pages import DESKTOP, new_chat, screenshots
from tests.browser.test_xss_in_browser import NONE, WATCH_CSP, OutsideOrigin, Traces, check_answer
from tests.xss_corpus import CORPUS

pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
from playwright.sync_api import expect  # noqa: E402

SCRIPTED_MODEL = "deepseek-r1:1.5b"  # the Ollama stand-in's scripted model
COLLEAGUE = ("camille", "un mot de passe de camille")
ANSWER = [
    "## Trois étapes\n\n",
    "1. Mélanger la **farine** et le beurre.\n",
    "2. Ajouter l'eau.\n3. Reposer 30 min.\n\n",
    "| Ingrédient | Quantité |\n|---|---|\n| Farine | 250 g |\n| Beurre | 125 g |\n\n",
    "```python\nprint('pâte')\n```\n",
]
EXPORTS = Path(__file__).parents[1] / "exports"


@pytest.fixture(scope="module")
def colleague(live_server, admin):
    from benchmarks.client import ChatClient

    client = ChatClient(live_server.base_url)
    assert client.register(*COLLEAGUE).ok
    return COLLEAGUE


@pytest.fixture
def colleague_page(browser, live_server, colleague):
    context = browser.new_context(locale="fr-FR", base_url=live_server.base_url, viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in_through_form(page, live_server.base_url, *colleague)
    yield page
    context.close()


def test_a_conversation_shared_from_its_menu_is_read_and_copied_by_the_colleague(
    open_page, colleague_page, scripted_model, artifacts_dir
):
    owner = open_page()
    new_chat(owner)
    owner.locator("#model").select_option(SCRIPTED_MODEL)
    scripted_model.script = ANSWER
    owner.locator("#prompt").fill("Comment faire une pâte brisée ?")
    owner.locator("#prompt").press("Enter")
    owner.wait_for_selector("#messages article[data-role=assistant][data-state=complete]")
    owner.wait_for_url(re.compile(r"/c/\d+$"))
    conversation_id = owner.url.split("/")[-1]
    # Its entry in the list, made by the page, has the way to share it in its ⋯ menu too.
    shares = f"/conversations/{conversation_id}/shares"
    expect(
        owner.locator(f"#conversation-list [data-conversation-id='{conversation_id}'] [data-share]")
    ).to_have_attribute("href", shares)
    item = owner.locator(f"#conversation-list [data-conversation-id='{conversation_id}']")
    item.hover()
    item.locator("summary").click()
    owner.screenshot(path=str(artifacts_dir / "sharing-list-menu-1280-light.png"))
    item.locator("summary").click()
    # From the conversation's menu (⤓), to its sharing page.
    owner.locator("[data-export-menu] summary").click()
    owner.locator("[data-share-link]").click()
    owner.wait_for_url(f"**{shares}")
    owner.locator("#usernames").fill("personne")
    owner.locator("[data-share-form] button").click()
    expect(owner.locator("[data-share-error]")).to_have_text("Personne ici ne s'appelle « personne ».")
    owner.locator("#usernames").fill(COLLEAGUE[0])
    owner.locator("[data-share-form] button").click()
    expect(owner.locator("[data-shares]")).to_contain_text(COLLEAGUE[0])
    expect(owner.locator("[data-flash]")).to_contain_text("en lecture seule")
    screenshots(owner, artifacts_dir, "sharing-dialog")

    reader = colleague_page
    reader.locator("[data-shared-link]").click()
    expect(reader.locator(f"[data-shared-conversation='{conversation_id}']")).to_contain_text("De admin")
    screenshots(reader, artifacts_dir, "sharing-shared-with-me")
    reader.locator(f"[data-shared-conversation='{conversation_id}'] a").click()
    reader.wait_for_selector("#messages [data-markdown][data-rendered]")
    answer = reader.locator("#messages article[data-role=assistant]")
    expect(answer.locator("[data-markdown] h2")).to_have_text("Trois étapes")
    expect(answer.locator("[data-markdown] table")).to_be_visible()
    expect(reader.locator("#prompt")).to_have_count(0)
    expect(reader.locator("[data-action]")).to_have_count(0)
    screenshots(reader, artifacts_dir, "sharing-read-only")

    reader.locator("[data-copy-form] button").click()
    reader.wait_for_url(re.compile(r"/c/\d+$"))
    assert reader.url.split("/")[-1] != conversation_id
    expect(reader.locator("#messages article[data-role=user]")).to_have_text(
        re.compile("Comment faire une pâte brisée")
    )
    expect(reader.locator("#prompt")).to_be_enabled()
    screenshots(reader, artifacts_dir, "sharing-copied")

    # Withdrawn: the reader's next visit is a 404.
    owner.locator("[data-share] button").click()
    expect(owner.locator("[data-no-share]")).to_be_visible()
    assert reader.goto(f"/shared/{conversation_id}").status == 404


def test_an_export_is_imported_from_the_form_and_its_conversations_are_listed(colleague_page, artifacts_dir):
    page = colleague_page
    page.goto("/settings")
    page.locator("[data-import-link]").click()
    page.wait_for_url(re.compile(r"/import$"))
    screenshots(page, artifacts_dir, "sharing-import")
    page.locator("#import-file").set_input_files(
        {"name": "notes.json", "mimeType": "application/json", "buffer": b"pas du json"}
    )
    page.locator("[data-import-form] button").click()
    expect(page.locator("[data-import-error]")).to_contain_text("Ce fichier n'est pas du JSON")
    screenshots(page, artifacts_dir, "sharing-import-refused")
    page.locator("#import-file").set_input_files(str(EXPORTS / "chatgpt-conversations.json"))
    page.locator("[data-import-form] button").click()
    page.wait_for_url(re.compile(r"/c/\d+$"))
    expect(page.locator("[data-flash]")).to_contain_text(
        "1 conversation importée. 1 conversation sans message"
    )
    expect(page.locator("#sidebar")).to_contain_text("Plan de formation")
    expect(page.locator("#messages article[data-role=assistant] [data-markdown] strong").last).to_have_text(
        "4 h 30"
    )


@pytest.fixture
def outside():
    with OutsideOrigin() as origin:
        yield origin


def test_no_payload_of_the_xss_corpus_runs_in_a_shared_conversations_read_only_view(
    live_server, admin, colleague, colleague_page, scripted_model, outside
):
    """The read-only view renders the stored answers with the chat's own code: each payload of
    the corpus, said by the model in the owner's conversation, stays inert for the reader."""
    from benchmarks.client import ChatClient

    owner = ChatClient(live_server.base_url)
    assert owner.login(*admin).ok
    conversation_id = owner.create_conversation(SCRIPTED_MODEL)
    for payload in CORPUS:
        scripted_model.script = payload.script(outside.url)
        owner.ask(conversation_id, f"Dis {payload.name}")
    answers = [m["id"] for m in owner.messages(conversation_id) if m["role"] == "assistant"]
    assert len(answers) == len(CORPUS)
    assert owner.post_json(f"/conversations/{conversation_id}/shares", {"usernames": colleague[0]}).ok

    page = colleague_page
    page.context.add_init_script(WATCH_CSP)
    traces = Traces(page, live_server.base_url, outside)
    page.goto(f"/shared/{conversation_id}")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#messages [data-markdown][data-rendered]').length >= n",
        arg=len(CORPUS),
    )
    page.wait_for_timeout(500)  # anything asynchronous (a load, an error event) has happened by now
    problems = {}
    for payload, message_id in zip(CORPUS, answers, strict=True):
        found = check_answer(page.locator(f'#messages article[data-message-id="{message_id}"]'), payload)
        if found:
            problems[payload.name] = found
    assert not problems, problems
    assert traces.now() == NONE
