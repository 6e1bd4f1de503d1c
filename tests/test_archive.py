"""Finding conversations again, and taking them away: search, Markdown and JSON exports."""

import io
import json
import re
from datetime import datetime
from urllib.parse import unquote

from markdown_it import MarkdownIt

from app.extensions import db
from app.models import Conversation, Message
from tests.conftest import AuthActions
from tests.xss_corpus import CORPUS

JSON = {"Accept": "application/json"}
STREAM = {"Accept": "text/event-stream"}


def new_conversation(client, title: str = "") -> int:
    response = client.post("/conversations", json={}, headers=JSON)
    assert response.status_code == 201, response.data
    conversation_id = response.json["id"]
    if title:
        client.post(f"/conversations/{conversation_id}/rename", json={"title": title}, headers=JSON)
    return conversation_id


def send(client, conversation_id: int, content: str) -> None:
    """Ask, and read the whole answer (the scripted engine says "Bonjour le monde.")."""
    client.post(
        f"/conversations/{conversation_id}/messages", json={"content": content}, headers=STREAM
    ).get_data()


def add_messages(app, conversation_id: int, *messages: dict) -> list[int]:
    """Store messages as they are, e.g. several versions of a turn (linked by parent_id)."""
    with app.app_context():
        rows = [Message(conversation_id=conversation_id, **fields) for fields in messages]
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]


def add_thread(app, conversation_id: int, *messages: dict) -> list[int]:
    """Store turns one after the other, each following the previous, the last one shown."""
    ids: list[int] = []
    for fields in messages:
        ids += add_messages(app, conversation_id, fields | {"parent_id": ids[-1] if ids else None})
    with app.app_context():
        db.session.get(Conversation, conversation_id).leaf_id = ids[-1]
        db.session.commit()
    return ids


def search(client, query: str, headers=JSON):
    return client.get("/search", query_string={"q": query}, headers=headers)


def found(client, query: str) -> list[int]:
    response = search(client, query)
    assert response.status_code == 200, response.data
    return [hit["id"] for hit in response.json["results"]]


def signed_in_as(app, username: str):
    client = app.test_client()
    assert AuthActions(client).register(username).status_code == 302
    return client


# -- search ----------------------------------------------------------------------------------------
def test_search_finds_a_conversation_by_its_title(signed_in):
    wanted = new_conversation(signed_in, "Recette des crêpes")
    new_conversation(signed_in, "Presse hydraulique")
    response = search(signed_in, "  recette ")
    assert [hit["id"] for hit in response.json["results"]] == [wanted]
    hit = response.json["results"][0]
    assert hit["title"] == "Recette des crêpes" and hit["snippet"] is None
    assert hit["url"] == f"/c/{wanted}" and hit["updated_at"].endswith("Z")


def test_search_finds_a_word_of_an_answer_and_shows_it_in_context(signed_in):
    conversation_id = new_conversation(signed_in)
    send(signed_in, conversation_id, "Dis bonjour")
    hits = search(signed_in, "MONDE").json["results"]
    assert [hit["id"] for hit in hits] == [conversation_id]
    assert hits[0]["snippet"] == {"before": "Bonjour le ", "match": "monde", "after": "."}


def test_search_ignores_case_of_accented_letters_too(app, signed_in):
    summer = new_conversation(signed_in)
    add_messages(app, summer, {"role": "user", "content": "Les congés d'été à la mer"})
    capital = new_conversation(signed_in, "À propos de l'Écluse")
    assert found(signed_in, "ÉTÉ") == [summer]
    assert found(signed_in, "été À LA") == [summer]
    assert found(signed_in, "à propos de l'écluse") == [capital]
    assert found(signed_in, "ete") == [], "accents are letters: only their case is ignored"


def test_search_never_shows_another_users_conversations(app, signed_in):
    secret = new_conversation(signed_in, "Projet Zéphyrin")
    add_messages(app, secret, {"role": "user", "content": "le code est xylophage"})
    assert found(signed_in, "xylophage") == [secret]
    bob = signed_in_as(app, "bob")
    assert found(bob, "xylophage") == []
    assert found(bob, "zéphyrin") == []
    page = search(bob, "xylophage", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Zéphyrin" not in page and f"/c/{secret}" not in page


def test_percent_and_underscore_are_searched_as_they_are(app, signed_in):
    discount = new_conversation(signed_in)
    add_messages(app, discount, {"role": "user", "content": "remise de 50% sur le lot_A"})
    lookalike = new_conversation(signed_in)
    add_messages(app, lookalike, {"role": "user", "content": "500 pièces du lotXA"})
    assert found(signed_in, "50%") == [discount]
    assert found(signed_in, "lot_a") == [discount]
    assert found(signed_in, "0%") == [discount]
    assert found(signed_in, "%") == [discount]
    assert found(signed_in, "_") == [discount]
    assert found(signed_in, "5%0") == []
    assert found(signed_in, "\\") == []


def test_search_page_marks_the_match_and_shows_html_in_a_message_as_text(app, signed_in):
    conversation_id = new_conversation(signed_in, "Sécurité")
    add_messages(
        app, conversation_id, {"role": "user", "content": "<script>alert(1)</script> puis <b>clé</b>"}
    )
    page = search(signed_in, "CLÉ", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; puis &lt;b&gt;<mark>clé</mark>&lt;/b&gt;" in page
    assert "<script>alert" not in page and "<b>clé" not in page
    assert f'href="/c/{conversation_id}"' in page and "Sécurité" in page


def test_a_search_that_finds_nothing_says_so_and_shows_the_query_as_text(signed_in):
    page = search(signed_in, "<i>introuvable", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "No conversation matches “&lt;i&gt;introuvable”." in page
    assert "<i>introuvable" not in page
    assert 'href="/"' in page, "a way back to the conversations"


def test_the_snippet_is_a_few_words_around_the_match_in_a_long_message(app, signed_in):
    conversation_id = new_conversation(signed_in)
    text = " ".join(f"mot{i}" for i in range(300)) + " aiguille " + " ".join(f"fin{i}" for i in range(300))
    add_messages(app, conversation_id, {"role": "assistant", "content": text, "model": "tiny"})
    snippet = search(signed_in, "aiguille").json["results"][0]["snippet"]
    assert snippet["match"] == "aiguille"
    assert snippet["before"].startswith("…mot") and snippet["after"].endswith("…")
    whole = snippet["before"] + snippet["match"] + snippet["after"]
    assert 80 <= len(whole) <= 130
    assert all(word.startswith(("…mot", "mot", "aiguille", "fin")) for word in whole.split())


def test_search_lists_the_newest_conversations_first(signed_in):
    older = new_conversation(signed_in, "Tarte aux pommes")
    newer = new_conversation(signed_in, "Tarte aux poires")
    assert found(signed_in, "tarte") == [newer, older]
    send(signed_in, older, "encore une question")
    assert found(signed_in, "tarte") == [older, newer]


def test_an_empty_search_finds_nothing(signed_in):
    new_conversation(signed_in, "Quelque chose")
    assert found(signed_in, "   ") == []
    page = search(signed_in, "", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "No conversation matches" not in page and 'name="q"' in page


def test_a_search_over_200_characters_is_refused_with_a_message(signed_in):
    assert search(signed_in, "a" * 200).status_code == 200
    response = search(signed_in, "a" * 201)
    assert response.status_code == 400
    assert response.json["error"] == "A search has at most 200 characters."
    page = search(signed_in, "a" * 201, headers={"Accept": "text/html"})
    assert page.status_code == 400 and "at most 200 characters" in page.get_data(as_text=True)


def test_search_page_speaks_french(signed_in):
    signed_in.post("/language", data={"lang": "fr"})
    page = search(signed_in, "rien", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert '<html lang="fr"' in page
    assert "Retour aux conversations" in page


def test_search_box_is_a_labelled_get_form_to_the_search_page(app):
    with app.test_request_context():
        from flask import render_template_string

        html = render_template_string(
            '{% from "chat/_search.html" import search_box %}{{ search_box("été") }}'
        )
    assert 'method="get" action="/search"' in html
    assert 'type="search"' in html and 'name="q"' in html and 'value="été"' in html
    assert '<label for="conversation-search"' in html


# -- export ----------------------------------------------------------------------------------------
def test_markdown_export_is_a_download_named_after_the_title(signed_in):
    conversation_id = new_conversation(signed_in, "Recette des crêpes")
    response = signed_in.get(f"/conversations/{conversation_id}/export.md")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/markdown; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="Recette des crepes.md"' in disposition
    assert "filename*=UTF-8''Recette%20des%20cr%C3%AApes.md" in disposition
    assert response.headers["Cache-Control"] == "no-store"


def test_a_title_with_slashes_and_quotes_still_gives_a_safe_file_name(signed_in):
    conversation_id = new_conversation(signed_in, 'a/b\\c "d" ../e')
    disposition = signed_in.get(f"/conversations/{conversation_id}/export.json").headers[
        "Content-Disposition"
    ]
    plain = disposition.split('filename="')[1].split('"')[0]
    assert plain == "a b c d .. e.json"
    untitled = new_conversation(signed_in)
    disposition = signed_in.get(f"/conversations/{untitled}/export.md").headers["Content-Disposition"]
    assert f'filename="conversation-{untitled}.md"' in disposition


def stored_title(app, conversation_id: int, title: str) -> None:
    """A title as it may be stored: made from a first message, renamed, or from before."""
    with app.app_context():
        db.session.get(Conversation, conversation_id).title = title
        db.session.commit()


def file_names(client, conversation_id: int, extension: str = "md") -> tuple[str, str]:
    """The export's file name as old clients read it (`filename`) and as others do (`filename*`)."""
    disposition = client.get(f"/conversations/{conversation_id}/export.{extension}").headers[
        "Content-Disposition"
    ]
    plain = re.search(r'filename="([^"]*)"', disposition)[1]
    exact = unquote(re.search(r"filename\*=UTF-8''(\S+)", disposition)[1])
    return plain, exact


def test_an_export_of_a_title_with_a_path_quotes_line_breaks_and_markdown_is_named_by_its_words(
    app, signed_in
):
    conversation_id = new_conversation(signed_in)
    stored_title(app, conversation_id, '## ../../etc/passwd "l\'été"\r\n**les points clés**')
    assert file_names(signed_in, conversation_id) == (
        "etc passwd l'ete les points cles.md",
        "etc passwd l'été les points clés.md",
    )


def test_an_export_named_after_a_reserved_device_or_only_markup_gets_the_fallback_name(app, signed_in):
    conversation_id = new_conversation(signed_in)
    for title in ("CON", "nul.txt", "Com1", "***", "## ..", "\u202e"):
        stored_title(app, conversation_id, title)
        fallback = f"conversation-{conversation_id}.json"
        assert file_names(signed_in, conversation_id, "json") == (fallback, fallback), title


def test_an_export_file_name_is_bounded_and_keeps_no_hidden_character(app, signed_in):
    conversation_id = new_conversation(signed_in)
    stored_title(app, conversation_id, "facture\u202etxt.exe " + "é" * 150)
    plain, exact = file_names(signed_in, conversation_id)
    assert exact.startswith("facture txt.exe éé") and "\u202e" not in exact
    assert len(exact) <= 100 + len(".md") and len(exact.encode()) <= 200 + len(".md")
    assert plain.startswith("facture txt.exe ee") and len(plain) <= 100 + len(".md")


def test_markdown_export_holds_the_exchange_in_order_under_headings(signed_in):
    conversation_id = new_conversation(signed_in)
    send(signed_in, conversation_id, "Première question")
    send(signed_in, conversation_id, "Seconde question")
    text = signed_in.get(f"/conversations/{conversation_id}/export.md").get_data(as_text=True)
    assert text.startswith("# Première question\n")
    # The model as users know it (its display name), not its id.
    parts = ["## You", "Première question", "## Tiny", "Bonjour le monde.", "## You", "Seconde question"]
    positions = []
    start = 0
    for part in parts:
        start = text.index(part, start)
        positions.append(start)
    assert positions == sorted(positions)
    assert text.count("## Tiny") == 2
    assert "with Tiny" in text


def test_markdown_export_quotes_the_thinking_and_marks_unfinished_answers(app, signed_in):
    conversation_id = new_conversation(signed_in, "Calcul")
    add_thread(
        app,
        conversation_id,
        {"role": "user", "content": "Combien font 6 × 7 ?"},
        {
            "role": "assistant",
            "model": "tiny",
            "thinking": "6 × 7…\ndonc 42",
            "content": "42",
            "state": "stopped",
        },
        {"role": "user", "content": "Et 7 × 8 ?"},
        {"role": "assistant", "model": "tiny", "state": "error", "error": "The model stopped responding."},
    )
    text = signed_in.get(f"/conversations/{conversation_id}/export.md").get_data(as_text=True)
    assert "> **Thinking**\n>\n> 6 × 7…\n> donc 42\n" in text
    assert "42\n\n*Stopped*" in text
    assert "*Failed: The model stopped responding.*" in text


def test_json_export_round_trips_with_the_branch_shown_and_every_version(app, signed_in):
    conversation_id = new_conversation(signed_in, "Deux versions")
    [question] = add_messages(app, conversation_id, {"role": "user", "content": "Q"})
    [first] = add_messages(
        app, conversation_id, {"role": "assistant", "content": "A1", "parent_id": question, "model": "tiny"}
    )
    [regenerated] = add_messages(
        app,
        conversation_id,
        {"role": "assistant", "content": "A2", "parent_id": question, "model": "other", "feedback": 1},
    )
    with app.app_context():
        db.session.get(Conversation, conversation_id).leaf_id = first  # the user went back to the first
        db.session.commit()
    response = signed_in.get(f"/conversations/{conversation_id}/export.json")
    assert response.mimetype == "application/json"
    assert 'filename="Deux versions.json"' in response.headers["Content-Disposition"]
    document = json.loads(response.get_data(as_text=True))
    assert (document["format"], document["version"]) == ("causerie-conversation", 1)
    assert document["conversation"]["id"] == conversation_id
    assert document["conversation"]["title"] == "Deux versions"
    assert set(document["conversation"]) >= {"model", "system_prompt", "options", "created_at", "updated_at"}
    assert [m["id"] for m in document["messages"]] == [question, first]
    assert [m["id"] for m in document["versions"]] == [question, first, regenerated]
    fields = {
        "id",
        "parent_id",
        "role",
        "content",
        "thinking",
        "state",
        "model",
        "error",
        "stats",
        "feedback",
        "created_at",
    }
    assert all(set(m) >= fields for m in document["versions"])
    assert document["versions"][2]["parent_id"] == question and document["versions"][2]["feedback"] == "up"
    for moment in [
        document["exported_at"],
        document["conversation"]["created_at"],
        document["messages"][0]["created_at"],
    ]:
        assert moment.endswith("Z") and datetime.fromisoformat(moment)
    markdown = signed_in.get(f"/conversations/{conversation_id}/export.md").get_data(as_text=True)
    assert "A1" in markdown and "A2" not in markdown, "Markdown follows the branch shown"


def test_another_users_conversation_cannot_be_exported(app, signed_in):
    conversation_id = new_conversation(signed_in, "Le secret d'Alice")
    bob = signed_in_as(app, "bob")
    for kind in ("md", "json"):
        response = bob.get(f"/conversations/{conversation_id}/export.{kind}")
        assert response.status_code == 404
        assert "Le secret" not in response.get_data(as_text=True)


# -- documents in exports --------------------------------------------------------------------------
PROCEDURE = (
    "# Sécurité de la presse 4\n\n"
    "Avant toute intervention, le technicien consigne la presse au cadenas jaune. "
    "Tout accident doit être déclaré au service sécurité sous 48 heures.\n"
)


def ask_with_a_document(client, name: str, text: str, question: str = "Quel cadenas ?") -> int:
    """A conversation whose question carries an attached file, answered (by the scripted engine)."""
    uploaded = client.post("/documents", data={"file": (io.BytesIO(text.encode()), name)}, headers=JSON)
    assert uploaded.status_code == 201, uploaded.data
    conversation_id = new_conversation(client, "Presse 4")
    client.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": question, "document_ids": [uploaded.json["document"]["id"]]},
        headers=STREAM,
    ).get_data()
    return conversation_id


def test_markdown_export_keeps_each_answers_sources_and_names_the_questions_files(signed_in):
    conversation_id = ask_with_a_document(signed_in, "procédure presse.md", PROCEDURE)
    text = signed_in.get(f"/conversations/{conversation_id}/export.md").get_data(as_text=True)
    question, answer = text.split("## Tiny")
    assert "Quel cadenas ?\n\n*Attached files:* `procédure presse.md`" in question
    sources = answer.split("### Sources", 1)[1]
    assert "[1] `procédure presse.md` · `Sécurité de la presse 4`" in sources
    assert "~~~text\n" in sources and "sous 48 heures." in sources
    assert answer.index("Bonjour le monde.") < answer.index("### Sources")


def test_json_export_keeps_each_answers_passages_and_the_questions_files(signed_in):
    conversation_id = ask_with_a_document(signed_in, "procédure.md", PROCEDURE)
    document = json.loads(
        signed_in.get(f"/conversations/{conversation_id}/export.json").get_data(as_text=True)
    )
    question, answer = document["messages"]
    assert question["attachments"] == [{"name": "procédure.md", "kind": "md"}]
    [passage] = answer["sources"]["passages"]
    assert (passage["n"], passage["name"], passage["heading"]) == (
        1,
        "procédure.md",
        "Sécurité de la presse 4",
    )
    assert "48 heures" in passage["text"]
    assert answer["attachments"] == [] and question["sources"] == {}


def test_a_documents_markup_in_its_name_and_text_stays_inert_in_the_markdown_export(signed_in):
    """Rendered by a CommonMark viewer with HTML on (as editors and forges do), the export shows
    a document's name and passages as text: no tag, link or image of theirs comes to life."""
    payloads = [p.script("https://evil.example") for p in CORPUS]
    text = "# Titre <img src=x onerror=alert(1)>\n\n" + "\n\n".join(
        "".join(piece if isinstance(piece, str) else piece[1] for piece in pieces) for pieces in payloads
    )
    name = "<img src=x onerror=alert(1)>`~~~<svg onload=alert(1)>.md"
    conversation_id = ask_with_a_document(signed_in, name, text, "Résume ce document")
    exported = signed_in.get(f"/conversations/{conversation_id}/export.md").get_data(as_text=True)
    assert "onerror=alert(1)" in exported and "evil.example" in exported, "the document is in the export"
    html = MarkdownIt("commonmark", {"html": True}).render(exported)
    tags = {tag.lower() for tag in re.findall(r"<([a-zA-Z][\w-]*)", html)}
    assert tags <= {"h1", "h2", "h3", "p", "em", "code", "pre", "strong", "blockquote"}, tags
    assert "evil.example" not in "".join(re.findall(r'(?:src|href)="[^"]*"', html))
