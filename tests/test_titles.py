"""A conversation's title reads as words wherever it is shown: the Markdown of the first message
it was made from ("## Rapport … **les points clés**") stays out of the sidebar, the page's
header and name, and the search results."""

import re
from urllib.parse import unquote

from app.chat.titles import plain_title, title_from
from app.extensions import db
from app.models import Conversation

JSON = {"Accept": "application/json"}
STREAM = {"Accept": "text/event-stream"}
FIRST_MESSAGE = "## Rapport … **les points clés**\n\nRésume le rapport de production de novembre."


def new_conversation(client) -> int:
    response = client.post("/conversations", json={}, headers=JSON)
    assert response.status_code == 201, response.data
    return response.json["id"]


def store_title(app, conversation_id: int, title: str) -> None:
    """A title as stored before titles lost their Markdown (or renamed with some)."""
    with app.app_context():
        db.session.get(Conversation, conversation_id).title = title
        db.session.commit()


def sidebar_titles(page: str) -> list[str]:
    listed = page.split('<template id="sidebar-item-template">')[0]  # not the empty copy for chat.js
    return re.findall(r"data-title>([^<]*)</span>", listed)


def test_a_title_made_from_a_first_message_in_markdown_keeps_only_its_words():
    assert title_from(FIRST_MESSAGE) == "Rapport … les points clés Résume le rapport de production…"
    assert title_from("> - 1. `print()` en *Python* : [la doc](https://docs.python.org) ~~vite~~") == (
        "print() en Python : la doc vite"
    )
    assert title_from("```python\nprint(1)\n```") == "print(1)"


def test_words_that_only_look_like_markdown_are_kept_in_a_title():
    for text in (
        "snake_case_name",
        "5 * 3 * 2",
        "C# et F#",
        "#1 des ventes",
        r"\*pas en italique\*",
        "a<b et b>c",
    ):
        assert plain_title(text) == text.replace("\\", ""), text


def test_the_sidebar_header_and_page_name_show_a_first_message_in_markdown_as_words(signed_in):
    conversation_id = new_conversation(signed_in)
    signed_in.post(
        f"/conversations/{conversation_id}/messages", json={"content": FIRST_MESSAGE}, headers=STREAM
    ).get_data()
    page = signed_in.get(f"/c/{conversation_id}").get_data(as_text=True)
    shown = "Rapport … les points clés Résume le rapport de production…"
    assert sidebar_titles(page) == [shown]
    assert re.search(r"<h1[^>]*data-conversation-title>([^<]*)</h1>", page)[1] == shown
    assert f"<title>{shown} · " in page
    assert "**" not in page.split('id="thread"')[0] and "## " not in page.split('id="thread"')[0]


def test_a_title_stored_with_markdown_is_shown_without_it_in_the_sidebar_and_the_search(app, signed_in):
    conversation_id = new_conversation(signed_in)
    store_title(app, conversation_id, "## Rapport … **les points clés**")
    page = signed_in.get("/").get_data(as_text=True)
    assert sidebar_titles(page) == ["Rapport … les points clés"]
    assert 'value="Rapport … les points clés"' in page  # the rename box starts from what is shown
    hits = signed_in.get("/search", query_string={"q": "points"}, headers=JSON).json["results"]
    assert [hit["title"] for hit in hits] == ["Rapport … les points clés"]
    results = signed_in.get("/search", query_string={"q": "points"}).get_data(as_text=True)
    assert ">Rapport … les points clés</a>" in results and "**" not in results
    listed = signed_in.get("/conversations", headers=JSON).json["conversations"]
    assert [c["title"] for c in listed] == ["Rapport … les points clés"]


def test_the_page_learns_the_new_title_with_the_first_answer(signed_in):
    conversation_id = new_conversation(signed_in)
    response = signed_in.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": "# Crêpes\n**Recette** ?"},
        headers=STREAM,
    )
    response.get_data()
    assert unquote(response.headers["X-Conversation-Title"]) == "Crêpes Recette ?"
