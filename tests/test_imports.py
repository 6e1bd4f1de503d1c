"""Moving in (issue 18, item 5): conversations imported from an Open WebUI or ChatGPT export,
or from Causerie's own JSON export; bad files refused with a message. The fixtures in
tests/exports/ have the structure those tools write (a chat tree with versions, a ChatGPT
mapping with a hidden system message, a tool call and a regenerated answer)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.llm.catalogue import readable_name
from app.models import AuditEntry, Conversation, Message, User
from tests.conftest import sse_events
from tests.test_model_access import make_group, signed_in_as

EXPORTS = Path(__file__).parent / "exports"
JSON = {"Accept": "application/json"}
FR = {"Accept-Language": "fr"}


def send(client, content: bytes, name: str = "export.json", headers=JSON):
    return client.post(
        "/import",
        data={"file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
        headers=headers,
    )


def imported(app) -> list[tuple]:
    """Each conversation: its title, model, and messages (role, content, model), oldest first."""
    with app.app_context():
        found = []
        for c in db.session.scalars(sa.select(Conversation).order_by(Conversation.id)):
            thread = [(m.role, m.content, m.model) for m in c.messages]
            found.append((c.title, c.model, thread))
        return found


def test_an_open_webui_export_becomes_the_persons_conversations_with_the_branch_shown(app, signed_in):
    response = send(signed_in, (EXPORTS / "openwebui-chats.json").read_bytes())
    assert response.status_code == 201, response.data
    assert response.json["source"] == "openwebui" and response.json["skipped"] == 1
    assert response.json["message"] == "1 conversation imported. 1 conversation without messages was skipped."
    [(title, model, thread)] = imported(app)
    assert title == "Recette de la pâte brisée"
    assert model == "tiny", "it goes on with a model of this server"
    assert thread == [
        ("user", "Comment faire une pâte brisée ?", ""),
        (
            "assistant",
            "Mélangez **250 g de farine** et 125 g de beurre froid, du bout des doigts.",
            "llama3.1:8b",
        ),
        ("user", "Et sans beurre ?", ""),
        ("assistant", "Remplacez le beurre par 80 ml d'huile d'olive.", "mistral:7b"),
    ]
    with app.app_context():
        conversation = db.session.scalar(sa.select(Conversation))
        assert conversation.created_at.year == 2024, "the conversation keeps its date"


def test_a_chatgpt_export_keeps_the_current_branch_without_system_or_tool_messages(app, signed_in):
    response = send(signed_in, (EXPORTS / "chatgpt-conversations.json").read_bytes(), "conversations.json")
    assert response.status_code == 201, response.data
    assert response.json["source"] == "chatgpt" and response.json["skipped"] == 1
    [(title, _model, thread)] = imported(app)
    assert title == "Plan de formation"
    assert thread == [
        ("user", "Propose un plan de formation Excel en trois séances.", ""),
        ("assistant", "1. Les bases\n2. Les formules\n3. Les tableaux croisés", "gpt-4o"),
        ("user", "Calcule la durée totale si chaque séance dure 1 h 30.", ""),
        ("assistant", "La formation dure **4 h 30** au total.", "gpt-4o"),
    ]


def test_an_imported_conversation_goes_on_like_any_other(app, signed_in, engine):
    send(signed_in, (EXPORTS / "chatgpt-conversations.json").read_bytes())
    conversation_id = signed_in.get("/conversations").json["conversations"][0]["id"]
    page = signed_in.get(f"/c/{conversation_id}").get_data(as_text=True)
    assert "Plan de formation" in page
    assert readable_name("gpt-4o") in page, "the model that wrote it, named under its answers"
    asked = signed_in.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": "Et une quatrième ?"},
        headers={"Accept": "text/event-stream"},
    )
    assert sse_events(asked.get_data(as_text=True))[-1][0] == "done"
    assert "La formation dure **4 h 30** au total." in str(engine.requests[-1])


def test_causeries_own_json_export_comes_back_in(app, signed_in, engine):
    conversation_id = signed_in.post("/conversations", json={}, headers=JSON).json["id"]
    signed_in.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": "Bonjour ?"},
        headers={"Accept": "text/event-stream"},
    ).get_data()
    exported = signed_in.get(f"/conversations/{conversation_id}/export.json").data
    assert send(signed_in, exported).status_code == 201
    first, second = imported(app)
    assert second[2] == first[2] and second[0] == first[0]


def test_an_import_is_audited_once(app, signed_in):
    send(signed_in, (EXPORTS / "openwebui-chats.json").read_bytes(), "chats.json")
    with app.app_context():
        entries = db.session.execute(
            sa.select(AuditEntry.action, AuditEntry.target, AuditEntry.details).where(
                AuditEntry.action == "conversation.import"
            )
        ).all()
    assert [tuple(e) for e in entries] == [
        ("conversation.import", "chats.json", {"source": "openwebui", "imported": 1, "skipped": 1})
    ]


BAD_FILES = {  # the file, what it must say in English and in French
    "not JSON": (b"\x89PNG\r\n\x1a\n not json", "This file is not JSON", "Ce fichier n'est pas du JSON"),
    "empty": (b"  \n", "The file is empty.", "Le fichier est vide."),
    "another shape": (
        json.dumps({"users": [{"name": "x"}]}).encode(),
        "This JSON is not an export Causerie knows",
        "Ce JSON n'est pas un export que Causerie connaît",
    ),
    "an empty list": (
        b"[]",
        "The file holds no conversation.",
        "Le fichier ne contient aucune conversation.",
    ),
    "too large": (None, "The file is larger than 1 MB, the limit.", "Le fichier dépasse 1 Mo, la limite."),
    # Past the request's own limit: refused before the view reads it, with the same words.
    "far too large": (
        b"[" + b" " * (3 * 1024 * 1024) + b"]",
        "The file is larger than 1 MB",
        "Le fichier dépasse 1 Mo",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_a_bad_file_is_refused_with_a_message_in_both_languages_and_imports_nothing(app, signed_in, case):
    app.config["MAX_UPLOAD_MB"] = 1
    content, english, french = BAD_FILES[case]
    content = content if content is not None else b"[" + b" " * (1024 * 1024) + b"]"
    status = 413 if case.endswith("too large") else 400  # a file too large is the request's fault
    page = send(signed_in, content, headers={"Accept": "text/html"})
    assert page.status_code == status and english in page.get_data(as_text=True)
    script = send(signed_in, content, headers=JSON | FR)
    assert script.status_code == status and french in script.json["error"]
    assert imported(app) == []
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.action == "conversation.import")
            )
            == 0
        )


def test_an_export_with_no_message_at_all_imports_nothing_and_says_so(app, signed_in):
    chats = [{"title": "Vide", "chat": {"history": {"messages": {}, "currentId": None}, "messages": []}}]
    response = send(signed_in, json.dumps(chats).encode())
    assert response.status_code == 201
    assert response.json["imported"] == [] and response.json["skipped"] == 1
    assert (
        "0 conversations imported. 1 conversation without messages was skipped." == response.json["message"]
    )


def test_the_import_form_says_its_limit_and_reports_what_came_in(app, signed_in):
    form = signed_in.get("/import").get_data(as_text=True)
    assert f"{app.config['MAX_UPLOAD_MB']} MB at most" in form
    done = send(signed_in, (EXPORTS / "openwebui-chats.json").read_bytes(), headers={"Accept": "text/html"})
    assert done.status_code == 302
    page = signed_in.get(done.headers["Location"]).get_data(as_text=True)
    assert "1 conversation imported. 1 conversation without messages was skipped." in page


def test_imported_conversations_are_their_importers_alone(app, signed_in):
    send(signed_in, (EXPORTS / "openwebui-chats.json").read_bytes())
    other = app.test_client()
    other.post(
        "/register",
        data={"username": "bob", "password": "a long enough password", "confirm": "a long enough password"},
    )
    with app.app_context():
        alice = db.session.scalar(sa.select(User.id).where(User.username == "alice"))
        assert {c.user_id for c in db.session.scalars(sa.select(Conversation))} == {alice}
        assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 4
    assert other.get("/conversations", headers=JSON).json["conversations"] == []


def test_an_open_webui_chat_with_a_plain_message_list_and_no_record_around_it_comes_in(app, signed_in):
    """Older Open WebUI exports, and a chat saved alone: the bare `chat` object, its messages a
    list, a message's content a list of parts."""
    chat = {
        "title": "Liste simple",
        "models": ["qwen2.5:3b"],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Bonjour"}, {"type": "image_url", "image_url": {}}],
            },
            {"role": "assistant", "content": "Salut !", "model": "qwen2.5:3b"},
            {"role": "system", "content": "caché"},
        ],
    }
    response = send(signed_in, json.dumps([chat]).encode())
    assert response.status_code == 201 and response.json["source"] == "openwebui"
    assert imported(app) == [
        ("Liste simple", "tiny", [("user", "Bonjour", ""), ("assistant", "Salut !", "qwen2.5:3b")])
    ]


MALFORMED_BUT_JSON = {  # forged or broken exports: each refused or skipped, never a server error
    "messages not a list": b'{"title": "x", "history": {}, "messages": 5}',
    "history and messages both numbers": b'{"chat": {"history": {"messages": 5}, "messages": 7}}',
    "a timestamp too large for a float": (
        b'{"history": {"messages": {"a": {"role": "user", "content": "Bonjour", "timestamp": 1'
        + b"0" * 400
        + b"}}}}"
    ),
}


@pytest.mark.parametrize("case", MALFORMED_BUT_JSON, ids=list(MALFORMED_BUT_JSON))
def test_a_forged_export_of_the_right_shape_is_imported_or_skipped_never_a_server_error(app, signed_in, case):
    response = send(signed_in, MALFORMED_BUT_JSON[case])
    assert response.status_code == 201, response.data
    assert len(response.json["imported"]) + response.json["skipped"] == 1


def test_a_lone_surrogate_or_a_nul_in_an_export_comes_in_as_a_replacement_character(app, signed_in):
    """JSON may write half of a UTF-16 pair alone, or NUL: no database stores the first,
    PostgreSQL refuses the second, and no page encodes either."""
    raw = b'[{"title": "Moiti\\ud800e", "mapping": {"q": {"message": {"author": {"role": "user"}, '
    raw += b'"content": {"content_type": "text", "parts": ["Bonjour \\udfff \\u0000!"]}}}}, '
    raw += b'"current_node": "q"}]'
    response = send(signed_in, raw)
    assert response.status_code == 201, response.data
    assert imported(app) == [("Moiti\ufffde", "tiny", [("user", "Bonjour \ufffd \ufffd!", "")])]
    assert signed_in.get("/").status_code == 200


QUESTION_AND_ANSWER = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
TOO_MUCH_AT_ONCE = {  # each under the file's size limit; written in one go, it would hold the
    # database's write lock for seconds, and a colleague's writes fail meanwhile on SQLite
    "1,001 conversations": [{"title": "t", "chat": {"messages": QUESTION_AND_ANSWER}}] * 1001,
    "20,002 messages": [{"title": "t", "chat": {"messages": QUESTION_AND_ANSWER * 10_001}}],
}


@pytest.mark.parametrize("case", TOO_MUCH_AT_ONCE, ids=list(TOO_MUCH_AT_ONCE))
def test_an_export_too_large_to_write_at_once_is_refused_with_its_counts_and_imports_nothing(
    app, signed_in, case
):
    content = json.dumps(TOO_MUCH_AT_ONCE[case]).encode()
    page = send(signed_in, content, headers={"Accept": "text/html"})
    assert page.status_code == 400
    assert "at most 1,000 conversations and 20,000 messages come in at once" in page.get_data(as_text=True)
    script = send(signed_in, content, headers=JSON | FR)
    assert script.status_code == 400
    assert (
        "au plus 1\u202f000 conversations et 20\u202f000 messages sont importés à la fois"
        in script.json["error"]
    )
    assert imported(app) == []


def test_a_conversation_naming_a_model_kept_for_other_groups_goes_on_with_the_default(app, signed_in):
    conversation_id = signed_in.post("/conversations", json={"model": "other"}, headers=JSON).json["id"]
    signed_in.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": "Bonjour ?"},
        headers={"Accept": "text/event-stream"},
    ).get_data()
    exported = signed_in.get(f"/conversations/{conversation_id}/export.json").data
    bob = signed_in_as(app, "bob")
    make_group(app, "Juristes", models=["other"], members=[])
    assert send(bob, exported).status_code == 201
    with app.app_context():
        bobs = db.session.scalar(sa.select(Conversation).join(User).where(User.username == "bob"))
        assert bobs.model == "tiny"
