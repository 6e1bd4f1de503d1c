"""Nobody gets in where they do not belong (OWASP ASVS 5.0, issue 7), with a scripted engine:
a sign-in everywhere but a short allowlist, another user's ids answered like missing ones,
admin pages for admins only, bounded input, generic errors, engines asked only about models
of the catalogue.

The sweeps are built from `app.url_map`, not from a list written by hand: a route added later
is swept too, and one whose variable parts the sweep cannot classify makes it fail until
someone decides whose thing that part names.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import uuid
from html.parser import HTMLParser
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa

from app import create_app
from app.admin.services import load_preferences
from app.chat import services as chat_services
from app.extensions import db
from app.llm import LLMServices
from app.llm.catalogue import Catalogue
from app.llm.engines.ollama import OllamaEngine
from app.llm.scheduler import Scheduler
from app.models import (
    ApiKey,
    BenchmarkRun,
    Collection,
    Conversation,
    ConversationShare,
    Document,
    Group,
    GroupMember,
    Message,
    Preset,
    User,
)
from config import TestConfig
from tests.conftest import PASSWORD, AuthActions, sse_events
from tests.url_map import sweep, url_of
from tests.xss_corpus import CORPUS

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
OUTSIDE = "https://evil.example"  # another origin, in a payload
STREAM = {"Accept": "text/event-stream"}

# What a visitor reaches without signing in, and why. Every other endpoint sends them to sign in.
PUBLIC = {
    "static": "the CSS and scripts of the sign-in page itself",
    "auth.login": "signing in",
    "auth.register": "creating an account (the admin decides whether anyone may)",
    "auth.set_language": "reading the sign-in page in one's language",
    "brand.stylesheet": "the company's colour, on the sign-in page too",
    "brand.logo": "the company's logo, on the sign-in page too",
    "api.openapi": "the API's description (no data in it)",
    "health.liveness": "monitors: only ok or unavailable, no detail (tests/test_health.py)",
    "oidc.login": "off to the company's identity provider (404 when none is set)",
    "oidc.callback": "back from it: only this browser's login under way is finished (test_oidc_signin.py)",
}
# The API's blueprints: an API key or nothing, whatever cookie comes along (tests/test_api.py).
KEY_ONLY = ("api.", "openai.")
# Variable parts of URLs that name no one's thing; any other one must be given an owned value
# in the ownership sweep, or the sweep fails.
NOT_IDS = {"kind": "a file format", "action": "a verb of the admin's user page"}
# Every field a state-changing route might read, set to what an intruder would want.
INTRUSION = {
    "title": "pris par bob",
    "model": "other",
    "think": "on",
    "pinned": "1",
    "content": "laisse-moi entrer",
    "prompt": "laisse-moi entrer",
    "enabled": "0",
    "mode": "open",
    "name": "pris par bob",
    "access": "all",
    "manages_knowledge": "on",
}


def _answer_of(response) -> tuple:
    """What a request answers, apart from the page's CSRF token: Flask-WTF signs it with the
    second it was made, so two identical pages a second boundary apart differ there (on a busy
    machine the sweep's OPTIONS pairs straddled one, and the test failed on nothing)."""
    body = CSRF_TOKEN.sub(b'name="csrf-token" content=""', response.data)
    return response.status_code, response.headers.get("Allow"), body


CSRF_TOKEN = re.compile(rb'name="csrf-token" content="[^"]*"')


def call(client, method: str, url: str, headers: dict, body: dict | None = None):
    """One request; a body as JSON to scripts, as a form to pages, and only with a POST."""
    if method != "POST" or body is None:
        return client.open(url, method=method, headers=headers)
    as_form = headers is HTML
    return client.open(url, method=method, headers=headers, **({"data": body} if as_form else {"json": body}))


class Stream:
    """An answer stream read in a thread of its own, as the real server would serve it."""

    def __init__(self, client, url: str, body: dict, id_header: str) -> None:
        self.body = ""
        self.id: str | None = None
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(client, url, body, id_header), daemon=True)
        self.thread.start()
        assert self.opened.wait(5) and self.id is not None, f"{url} did not open a stream"

    def _read(self, client, url: str, body: dict, id_header: str) -> None:
        try:
            response = client.post(url, json=body, headers=STREAM)
            self.id = response.headers[id_header]
        finally:
            self.opened.set()
        for chunk in response.response:
            self.body += chunk.decode() if isinstance(chunk, bytes) else chunk

    @property
    def ended(self) -> bool:
        return "event: done" in self.body or "event: error" in self.body

    def join(self) -> list[tuple[str, dict]]:
        self.thread.join(10)
        assert not self.thread.is_alive(), "the stream did not end"
        return sse_events(self.body)


def new_conversation(client) -> int:
    response = client.post("/conversations", json={}, headers=JSON)  # with the default model
    assert response.status_code == 201, response.data
    return response.json["id"]


def signed_in_as(app, username: str):
    client = app.test_client()
    assert AuthActions(client).register(username).status_code == 302
    return client


# -- sign-in everywhere -----------------------------------------------------------------------
def test_every_route_outside_the_allowlist_sends_a_visitor_to_sign_in(app, client):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(PUBLIC) <= endpoints, f"the allowlist names endpoints that are gone: {set(PUBLIC) - endpoints}"
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint not in PUBLIC]
    let_in, swept = [], 0
    for rule, method, url in sweep(app, rules):
        swept += 1
        if rule.endpoint.startswith(KEY_ONLY):  # scripts get no sign-in page: a 401 saying how
            answer = client.open(url, method=method, headers=HTML)
            challenge = answer.headers.get("WWW-Authenticate", "")
            if answer.status_code != 401 or not challenge.startswith("Bearer"):
                let_in.append(f"{method} {url} (API): {answer.status_code}")
            continue
        page = client.open(url, method=method, headers=HTML)
        if page.status_code != 302 or not page.headers["Location"].startswith("/login?"):
            let_in.append(f"{method} {url} (page): {page.status_code} {page.headers.get('Location')}")
        script = client.open(url, method=method, headers=JSON)
        if script.status_code != 401 or (method != "HEAD" and script.json["status"] != 401):
            let_in.append(f"{method} {url} (script): {script.status_code}")
    assert not let_in, "\n".join(let_in)
    assert swept >= 90, f"only {swept} requests: is the URL map all there?"


# -- owners only ------------------------------------------------------------------------------
def _benchmark_run(app, user_id: int) -> int:
    with app.app_context():
        run = BenchmarkRun(
            uid=uuid.uuid4().hex,
            source="page",
            user_id=user_id,
            state="done",
            suite_id="rapide",
            suite_name="Rapide",
            suite={},
            models=["tiny"],
            start="warm",
            thinking="default",
        )
        db.session.add(run)
        db.session.commit()
        return run.id


def _alices_things(app, conversation_id: int, run_id: int) -> dict:
    """What Bob must not change: her conversation, its messages, her benchmark run, her account."""
    with app.app_context():
        conversation = db.session.get(Conversation, conversation_id)
        run = db.session.get(BenchmarkRun, run_id)
        alice = db.session.scalar(db.select(User).where(User.username == "alice"))
        messages = conversation.messages if conversation else []
        return {
            "account": (alice.is_admin, alice.disabled, alice.session_token, alice.password_hash),
            "conversation": conversation
            and (conversation.title, conversation.model, conversation.think, conversation.pinned),
            # the answer being written grows meanwhile: its state is compared, not its text
            "messages": [(m.id, m.role, m.state) for m in messages],
            "texts": [m.content for m in messages if m.role == "user" or m.state == "complete"],
            "run": run and (run.state, run.models),
            "presets": [(p.name, p.system_prompt, p.model) for p in alice.presets],
            # in a stated order: PostgreSQL returns rows as stored, and indexing rewrites them
            "collections": db.session.execute(
                db.select(Collection.name, Collection.open_to_all, Collection.description).order_by(
                    Collection.id
                )
            ).all(),
            "documents": db.session.execute(
                db.select(Document.id, Document.filename).order_by(Document.id)
            ).all(),
            "api keys": db.session.execute(
                db.select(ApiKey.name, ApiKey.revoked_at).where(ApiKey.user_id == alice.id)
            ).all(),
            "shares": db.session.execute(
                db.select(ConversationShare.user_id, ConversationShare.group_id).order_by(
                    ConversationShare.id
                )
            ).all(),
            "groups": db.session.execute(
                db.select(Group.name, Group.description, Group.directory_group).order_by(Group.id)
            ).all(),
            "group members": db.session.execute(
                db.select(GroupMember.group_id, GroupMember.user_id).order_by(GroupMember.user_id)
            ).all(),
        }


def test_another_users_ids_get_404_on_every_route_and_change_nothing(app, client, auth, engine):
    auth.register("alice")  # the first account: the admin
    conversation_id = new_conversation(client)
    client.post(f"/conversations/{conversation_id}/rename", json={"title": "Le secret d'Alice"}, headers=JSON)
    client.post(
        f"/conversations/{conversation_id}/messages", json={"content": "mon secret"}, headers=STREAM
    ).get_data()
    engine.words, engine.delay = [f" mot{i}" for i in range(500)], 0.02  # 10 s: outlasts the sweep
    writing = Stream(
        client, f"/conversations/{conversation_id}/messages", {"content": "raconte"}, "X-Message-Id"
    )
    comparing = Stream(client, "/compare/answers", {"model": "other", "prompt": "compare"}, "X-Compare-Id")
    with app.app_context():
        alice_id = db.session.scalar(db.select(User.id).where(User.username == "alice"))
        message_ids = db.session.scalars(
            db.select(Message.id).where(Message.conversation_id == conversation_id)
        )
        message_ids = list(message_ids)  # both questions, both answers (one still being written)
    assert len(message_ids) == 4
    run_id = _benchmark_run(app, alice_id)
    client.post("/settings/presets", data={"name": "Le preset d'Alice", "system_prompt": "secret"})
    client.post("/settings/api-keys", data={"name": "La clé d'Alice"})
    # Her knowledge base, for her alone, and a document in it.
    client.post("/knowledge/new", data={"name": "Base d'Alice", "access": "listed", "readers": "alice"})
    with app.app_context():
        preset_id = db.session.scalar(db.select(Preset.id).where(Preset.user_id == alice_id))
        key_id = db.session.scalar(db.select(ApiKey.id).where(ApiKey.user_id == alice_id))
        collection_id = db.session.scalar(db.select(Collection.id))
    client.post(
        f"/knowledge/{collection_id}/documents",
        data={"files": [(io.BytesIO(b"Le secret d'Alice, dans sa base."), "secret.txt")]},
        content_type="multipart/form-data",
    )
    with app.app_context():
        document_id = db.session.scalar(db.select(Document.id).where(Document.collection_id == collection_id))
    # And a file she attached to her next question (hers alone, whatever collection Bob reads).
    attached = client.post(
        "/documents", data={"file": (io.BytesIO(b"Le code du coffre est 4242."), "coffre.txt")}, headers=JSON
    )
    assert attached.status_code == 201, attached.data
    # Her conversation shared with Carol: Bob, a colleague it is not shared with, gets nothing
    # more for it; Carol gets nothing once it is withdrawn (swept as her at the end).
    carol = signed_in_as(app, "carol")
    shared = client.post(
        f"/conversations/{conversation_id}/shares", json={"usernames": "carol"}, headers=JSON
    )
    assert shared.status_code == 201, shared.data
    share_id = shared.json["shares"][0]["id"]
    # A group of the admin's, with Alice in it (admins only).
    client.post("/admin/groups", data={"name": "Groupe d'Alice"})
    with app.app_context():
        group_id = db.session.scalar(db.select(Group.id))
    client.post(f"/admin/groups/{group_id}/members", data={"members": "alice"})
    owned = {  # each variable part of a URL, and Alice's things it can name
        "conversation_id": [conversation_id],
        "message_id": message_ids,
        "answer_id": [comparing.id],  # her comparison answer, still running
        "run_id": [run_id],  # admins only; another admin sees it too, by design: runs are the server's
        "user_id": [alice_id],  # admins only
        "preset_id": [preset_id],
        "key_id": [key_id],
        "collection_id": [collection_id],
        "document_id": [document_id, attached.json["document"]["id"]],
        "share_id": [share_id],
        "group_id": [group_id],  # admins only
    }
    rules = [rule for rule in app.url_map.iter_rules() if rule.arguments and rule.endpoint != "static"]
    unclassified = sorted(
        f"{rule.rule}: {name}" for rule in rules for name in rule.arguments if name not in owned | NOT_IDS
    )
    assert not unclassified, f"whose thing does each of these name? {unclassified}"
    before = _alices_things(app, conversation_id, run_id)

    bob = signed_in_as(app, "bob")
    bobs_key = _api_key_of(bob)
    got_in, swept = _intrusions(app, bob, bobs_key, rules, owned)
    assert not got_in, "\n".join(got_in)
    assert swept >= 60, swept

    assert _alices_things(app, conversation_id, run_id) == before
    assert not writing.ended and not comparing.ended, "Bob stopped Alice's answers"
    assert all("laisse-moi" not in str(messages) for messages in engine.requests), "Bob reached the model"
    assert bob.get("/conversations", headers=JSON).json["conversations"] == []
    bobs_api = {"Authorization": f"Bearer {bobs_key}"}
    assert bob.get("/api/v1/documents", headers=bobs_api).json["documents"] == []
    assert bob.get("/api/v1/collections", headers=bobs_api).json["collections"] == []
    assert "Le secret d" not in bob.get("/").get_data(as_text=True)
    # Her own stop still works: those ids were live all along.
    assert client.post(f"/compare/answers/{comparing.id}/stop", headers=JSON).json == {"stopped": True}
    assert client.post(f"/messages/{writing.id}/stop", headers=JSON).json == {"stopped": True}
    assert writing.join()[-1][1]["state"] == comparing.join()[-1][1]["state"] == "stopped"

    # Carol read it while it was shared; withdrawn, she is one more colleague it is not shared with.
    assert carol.get(f"/shared/{conversation_id}").status_code == 200
    client.post(f"/conversations/{conversation_id}/shares/{share_id}/withdraw", headers=JSON)
    before = _alices_things(app, conversation_id, run_id)
    got_in, swept = _intrusions(app, carol, _api_key_of(carol), rules, owned)
    assert not got_in, "\n".join(got_in)
    assert _alices_things(app, conversation_id, run_id) == before
    assert carol.get("/shared", headers=JSON).json["conversations"] == []


def _api_key_of(client) -> str:
    made = client.post("/settings/api-keys", data={"name": "b"}).text
    return re.search(r"data-key>(cau_[\w-]+)<", made)[1]


def _intrusions(app, intruder, key: str, rules, owned) -> tuple[list[str], int]:
    """Every method of every rule with each of Alice's ids, as `intruder` (by page, by script,
    and with their own API key on the API): the answers unlike a missing id's, and how many."""
    got_in, swept = [], 0
    for rule, method, url in sweep(app, rules, owned):
        expected = 403 if rule.rule.startswith("/admin/") else 404
        for headers in (JSON, HTML):
            swept += 1
            if rule.endpoint.startswith(KEY_ONLY):  # the API: the intruder with their own key
                headers = {**headers, "Authorization": f"Bearer {key}"}
            response = call(intruder, method, url, headers, INTRUSION)
            response.close()  # a stream opened by mistake would end here
            if method == "OPTIONS":
                # Flask's automatic answer: the methods, the same for a missing id, no view run
                missing = call(intruder, method, url_of(rule, default_id=999999), headers)
                if _answer_of(response) != _answer_of(missing):
                    got_in.append(f"{method} {url}: answers unlike a missing id")
            elif response.status_code != expected:
                got_in.append(f"{method} {url} {headers['Accept']}: {response.status_code}, not {expected}")
    return got_in, swept


# -- documents: their readers only, in retrieval itself ----------------------------------------
def _indexed_collection(app, name: str, text: str, open_to_all: bool) -> int:
    """A collection and one document of Alice's in it, indexed."""
    from app.documents import store
    from app.documents.indexing import index_document

    with app.app_context():
        collection = Collection(name=name, open_to_all=open_to_all)
        db.session.add(collection)
        db.session.commit()
        owner_id = db.session.scalar(db.select(User.id).where(User.username == "alice"))
        document = store.save(owner_id, f"{name}.md", io.BytesIO(text.encode()), collection_id=collection.id)
        index_document(document.id)
        assert db.session.get(Document, document.id).state == "ready"
        return collection.id


def test_a_conversation_naming_a_collection_its_asker_may_not_read_gets_no_passage_of_it(
    app, client, auth, engine
):
    """Whatever a conversation's list says (forged, or a reader since taken off), a question
    draws only on the collections its asker may read now: the check is in retrieval itself."""
    auth.register("alice")  # the admin
    workshop = _indexed_collection(
        app, "Atelier", "# Presse\n\nLe coffre de l'atelier ferme au cadenas jaune.\n", open_to_all=True
    )
    board = _indexed_collection(
        app, "Direction", "# Coffre\n\nLe code du coffre de la direction est 4242.\n", open_to_all=False
    )
    bob = signed_in_as(app, "bob")
    conversation_id = new_conversation(bob)
    with app.app_context():  # as if the settings route had let it through
        db.session.get(Conversation, conversation_id).collection_ids = [workshop, board]
        db.session.commit()
    answer = bob.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": "Quel est le code du coffre ?"},
        headers=STREAM,
    )
    events = sse_events(answer.get_data(as_text=True))
    sent = str(engine.requests[-1])
    assert "cadenas jaune" in sent, "the collection Bob may read is searched"
    assert "4242" not in sent and "Direction" not in sent
    [sources] = [data for name, data in events if name == "sources"]
    assert {p["name"] for p in sources["passages"]} == {"Atelier.md"}
    assert sources["read"]["documents"] == 1
    with app.app_context():
        stored = db.session.scalars(sa.select(Message.sources).where(Message.role == "user")).all()
    assert "4242" not in str(stored)


def test_another_users_attachment_named_with_a_question_is_refused_and_never_read(app, client, auth, engine):
    auth.register("alice")
    uploaded = client.post(
        "/documents", data={"file": (io.BytesIO(b"Le code du coffre est 4242."), "coffre.txt")}, headers=JSON
    )
    assert uploaded.status_code == 201, uploaded.data
    bob = signed_in_as(app, "bob")
    conversation_id = new_conversation(bob)
    asked = bob.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": "Quel est le code ?", "document_ids": [uploaded.json["document"]["id"]]},
        headers=STREAM,
    )
    assert asked.status_code == 400
    assert asked.json["error"] == "A file sent with this message is no longer available: attach it again."
    assert engine.requests == []
    with app.app_context():
        assert db.session.get(Document, uploaded.json["document"]["id"]).message_id is None


class _Markup(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def live_markup(page: str) -> list[str]:
    """What in a page could run script, load from elsewhere or restyle it: a handler, an inline
    style, a frame, another origin's or a javascript: URL, a script not of the site's files."""
    parser = _Markup()
    parser.feed(page)
    found = []
    for tag, attrs in parser.tags:
        for name, value in attrs.items():
            lowered = "".join(value.split()).lower()
            if name.startswith("on") or name in ("style", "srcdoc", "formaction", "ping", "background"):
                found.append(f"<{tag} {name}>")
            if "evil.example" in lowered or lowered.startswith(("javascript:", "data:text")):
                found.append(f"<{tag} {name}={value[:60]}>")
        if tag in ("iframe", "frame", "object", "embed", "base", "style"):
            found.append(f"<{tag}>")
        if tag == "link" and not attrs.get("href", "").startswith("/"):
            found.append(f"<link href={attrs.get('href')}>")
        if (
            tag == "script"
            and not attrs.get("src", "").startswith("/")
            and attrs.get("type") != "application/json"
        ):
            found.append("<script> inline")
    return found


def test_a_documents_markup_in_its_name_and_passages_is_text_in_the_chat_page(app, signed_in, engine):
    """A document's words are untrusted like a model's: its name and passages, carrying every
    payload of the XSS corpus, are shown as text by the page the server renders."""
    app.config["DOCUMENT_TOKENS"] = 20_000  # the whole document goes with the question
    payloads = ["".join(p if isinstance(p, str) else p[1] for p in c.script(OUTSIDE)) for c in CORPUS]
    text = "# Titre <img src=x onerror=top.__xss=1>\n\n" + "\n\n".join(payloads)
    name = '<img src=x onerror=top.__xss=1><svg onload=top.__xss=1>".md'
    uploaded = signed_in.post("/documents", data={"file": (io.BytesIO(text.encode()), name)}, headers=JSON)
    assert uploaded.status_code == 201, uploaded.data
    conversation_id = new_conversation(signed_in)
    signed_in.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": "Résume ce document", "document_ids": [uploaded.json["document"]["id"]]},
        headers=STREAM,
    ).get_data()
    page = signed_in.get(f"/c/{conversation_id}", headers=HTML).get_data(as_text=True)
    assert page.count("&lt;img src=x onerror=top.__xss=1&gt;&lt;svg") >= 2, (
        "the name, on the question and a passage"
    )
    assert "evil.example" in page and "&lt;iframe src=" in page, "the passages are on the page"
    assert live_markup(page) == []
    assert live_markup(page.replace("&lt;", "<")) != [], "the check sees markup when there is some"


# -- admins only ------------------------------------------------------------------------------
# -- admins only ------------------------------------------------------------------------------
def test_every_admin_route_answers_403_to_a_signed_in_user_who_is_not_admin(app, client, auth):
    auth.register("admin")
    auth.logout()
    auth.register("bob")
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin")]
    let_in, swept = [], 0
    for _rule, method, url in sweep(app, rules):
        for headers in (JSON, HTML):
            swept += 1
            response = call(client, method, url, headers, INTRUSION | {"model": "tiny", "repetitions": "1"})
            if response.status_code != 403:
                let_in.append(f"{method} {url} {headers['Accept']}: {response.status_code}")
    assert not let_in, "\n".join(let_in)
    assert swept >= 60, swept


# -- bounded input, generic errors ------------------------------------------------------------
def test_a_prompt_over_a_megabyte_gets_413_as_json_and_the_app_goes_on(app, signed_in, engine):
    conversation_id = new_conversation(signed_in)
    huge = "a" * (1024 * 1024 + 1)
    attempts = [
        (f"/conversations/{conversation_id}/messages", {"content": huge}),
        ("/compare/answers", {"model": "tiny", "prompt": huge}),
    ]
    for url, body in attempts:
        response = signed_in.post(url, json=body, headers=STREAM)
        assert response.status_code == 413, url
        assert response.json == {"error": "The request is too large.", "status": 413}
    assert engine.requests == []
    assert signed_in.get(f"/conversations/{conversation_id}/messages").json["messages"] == []
    answer = signed_in.post(
        f"/conversations/{conversation_id}/messages", json={"content": "ok"}, headers=STREAM
    )
    assert sse_events(answer.get_data(as_text=True))[-1][0] == "done"


def _register(client, **fields):
    form = {"username": "bob", "password": PASSWORD, "confirm": PASSWORD} | fields
    return client.application.test_client().post("/register", data=form)  # as a visitor


def _admin_settings(admin, **fields):
    return admin.post("/admin/models/settings?model=tiny", data={"model": "tiny", "enabled": "y"} | fields)


def _benchmark(admin, **fields):
    form = {"models": ["tiny"], "suite": "rapide", "repetitions": "1", "start": "warm", "thinking": "off"}
    return admin.post("/admin/benchmarks", data=form | fields)


def _over_message_limit(client) -> str:
    return "m" * (client.application.config["MAX_MESSAGE_CHARS"] + 1)


TOO_LONG = {  # each field over its limit: the request (by the admin, in a conversation), what it must say
    "username over 64": (lambda c, cid: _register(c, username="u" * 65), "3 to 64 characters"),
    "password over the maximum": (
        lambda c, cid: _register(c, password="p" * 1000, confirm="p" * 1000),
        "to 128 characters",
    ),
    "title over 200": (
        lambda c, cid: c.post(f"/conversations/{cid}/rename", json={"title": "t" * 201}, headers=JSON),
        "1 to 200 characters",
    ),
    "message over MAX_MESSAGE_CHARS": (
        lambda c, cid: c.post(
            f"/conversations/{cid}/messages", json={"content": _over_message_limit(c)}, headers=STREAM
        ),
        "at most: shorten it",
    ),
    "comparison prompt over MAX_MESSAGE_CHARS": (
        lambda c, cid: c.post(
            "/compare/answers", json={"model": "tiny", "prompt": _over_message_limit(c)}, headers=JSON
        ),
        "at most: shorten it",
    ),
    "model name of 10,000 characters": (
        lambda c, cid: c.post(f"/conversations/{cid}/model", json={"model": "x" * 10_000}, headers=JSON),
        "is not available",
    ),
    "thinking neither on nor off": (
        lambda c, cid: c.post(f"/conversations/{cid}/thinking", json={"think": "x" * 1000}, headers=JSON),
        "either on or off",
    ),
    "system prompt over 4000": (
        lambda c, cid: _admin_settings(c, system_prompt="s" * 4001),
        "at most 4000 characters",
    ),
    "temperature over 2": (lambda c, cid: _admin_settings(c, temperature="3"), "from 0 to 2"),
    "benchmark repetitions over 10": (lambda c, cid: _benchmark(c, repetitions="11"), "from 1 to 10"),
    "dashboard period unknown": (
        lambda c, cid: c.get("/admin/dashboard", query_string={"period": "x" * 1000}),
        "Pick a period",
    ),
}


@pytest.mark.parametrize("case", TOO_LONG, ids=list(TOO_LONG))
def test_a_field_over_its_limit_is_refused_400_with_a_message(signed_in, case):
    send, message = TOO_LONG[case]
    response = send(signed_in, new_conversation(signed_in))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert message in response.get_data(as_text=True)


@pytest.fixture
def app_logs(app, caplog, monkeypatch):
    """Everything logged, at every level. The app fixture runs the migrations in this process, and
    their logging.config disables every logger that existed before: turned back on here."""
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.disabled:
            monkeypatch.setattr(logger, "disabled", False)
    caplog.set_level(logging.DEBUG)
    return caplog


def test_an_unexpected_error_shows_the_generic_500_page_without_a_trace(signed_in, monkeypatch, app_logs):
    def broken(user):
        raise RuntimeError("secret detail at /work/main/app/chat/services.py line 42")

    monkeypatch.setattr(chat_services, "conversations_of", broken)
    page = signed_in.get("/")
    script = signed_in.get("/conversations", headers=JSON)
    assert page.status_code == script.status_code == 500
    assert script.json == {"error": "Something went wrong on the server. Please try again.", "status": 500}
    body = page.get_data(as_text=True)
    assert "Something went wrong on the server" in body
    for leak in ("Traceback", "RuntimeError", "secret detail", ".py", "/work/"):
        assert leak not in body and leak not in script.get_data(as_text=True), leak
    assert "secret detail" in app_logs.text, "the admin finds the cause in the server's log"


def test_signing_up_and_in_never_logs_a_password(client, auth, app_logs):
    logging.getLogger("app.auth").debug("the capture hears the app's loggers")
    wrong = "a wrong but long password"
    auth.register("alice")
    auth.logout()
    auth.login("alice", wrong)
    auth.login("nobody", wrong)
    auth.login("alice")
    assert "the capture hears the app's loggers" in app_logs.text
    for secret in (PASSWORD, wrong):
        assert secret not in app_logs.text


# -- engines: only catalogue models -----------------------------------------------------------
NOT_IN_THE_CATALOGUE = [
    "../../etc/passwd",
    "http://evil.example/api/pull",
    "tiny/../other",
    "tiny\n",
    " tiny",
    "TINY",
    "tiny:latest",
    "x" * 10_000,
]


def _ask_for_models(client, names: list[str]) -> list[tuple[str, int]]:
    """Every way a user or the admin can name a model; (what, name) of the attempts not refused."""
    conversation_id = new_conversation(client)
    accepted = []
    for name in names:
        attempts = {
            "new conversation": (client.post("/conversations", json={"model": name}, headers=JSON), 409),
            "change model": (
                client.post(f"/conversations/{conversation_id}/model", json={"model": name}, headers=JSON),
                400,
            ),
            "compare": (
                client.post("/compare/answers", json={"model": name, "prompt": "hi"}, headers=STREAM),
                400,
            ),
            "compare plan": (client.get("/compare/plan", query_string={"a": name, "b": name}), 400),
            "model settings": (client.get("/admin/models/settings", query_string={"model": name}), 404),
            "offer": (client.post("/admin/models/enabled", data={"model": name, "enabled": "1"}), 404),
            "benchmark": (_benchmark(client, models=[name]), 400),
        }
        accepted += [(what, name[:40]) for what, (r, status) in attempts.items() if r.status_code != status]
        client.post("/admin/models/unload", data={"model": name})
        client.post("/admin/models/default", data={"model": name})
    return accepted


def test_a_model_name_outside_the_catalogue_never_reaches_an_engine(app, signed_in, engine, monkeypatch):
    asked = []
    for method in ("claim", "unload", "is_loaded"):
        real = getattr(engine, method)

        def spy(model_id, *args, _real=real, **kwargs):
            asked.append(model_id)
            return _real(model_id, *args, **kwargs)

        monkeypatch.setattr(engine, method, spy)
    assert _ask_for_models(signed_in, NOT_IN_THE_CATALOGUE) == []
    assert engine.requests == []
    assert set(asked) <= {"tiny", "other"}, set(asked)
    with app.app_context():
        assert {c.model for c in db.session.scalars(db.select(Conversation))} == {"tiny"}
    assert signed_in.get("/models").json["default"] == "tiny"


@pytest.fixture
def ollama_app(tmp_path: Path, standin):
    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'ollama.sqlite3'}"
        MODELS_DIR = tmp_path / "models"

    engine = OllamaEngine(standin.url, list_ttl=60)  # one listing: its requests name listed models only
    catalogue = Catalogue([engine], default_model="smollm2:135m", preferences=load_preferences)
    app = create_app(Config, llm_services=LLMServices(catalogue, Scheduler(catalogue)))
    with app.app_context():
        flask_migrate.upgrade()
    return app


def test_the_ollama_host_is_only_ever_asked_about_models_it_listed(ollama_app, standin):
    client = signed_in_as(ollama_app, "admin")
    listed = set(standin.models)
    names = [*NOT_IN_THE_CATALOGUE, "smollm2:135m/../deepseek-r1:1.5b", "deepseek-r1:1.5b\u200b"]
    assert _ask_for_models(client, names) == []
    sent = [
        body.get("model") or body.get("name") for _path, body in standin.requests if isinstance(body, dict)
    ]
    assert set(sent) - {None} <= listed, set(sent) - listed
    assert standin.bodies("/api/show"), "the host was asked nothing: this would prove nothing"
    assert standin.bodies("/api/chat") == [] and standin.bodies("/api/generate") == []


# -- text people write is inert ---------------------------------------------------------------
XSS = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def test_a_collection_name_and_description_with_markup_render_as_text_everywhere(app, signed_in):
    signed_in.post("/knowledge/new", data={"name": XSS[:100], "description": XSS, "access": "all"})
    with app.app_context():
        collection_id = db.session.scalar(db.select(Collection.id))
    bob = signed_in_as(app, "bob")
    pages = {
        "list": signed_in.get("/knowledge"),
        "collection": signed_in.get(f"/knowledge/{collection_id}"),
        "edit": signed_in.get(f"/knowledge/{collection_id}/edit"),
        "chat (admin)": signed_in.get("/"),
        "chat (reader)": bob.get("/"),
    }
    for where, page in pages.items():
        text = page.get_data(as_text=True)
        assert page.status_code == 200, where
        assert "&lt;img src=x onerror=alert(1)&gt;" in text, f"{where}: the name is not shown"
        assert "<img src=x" not in text and "<script>alert" not in text, f"{where}: markup went through"


def test_usernames_with_markup_render_as_text_on_the_admins_account_pages(app, signed_in):
    """Names from a directory are not held to the registration form's letters: a name, and a
    refused directory sign-in's, are text on the Users page and the delete confirmation."""
    from app import audit

    with app.app_context():
        marked = User(username=XSS[:64], password_hash="!", pending=True, display_name=XSS, email=XSS)
        db.session.add(marked)
        db.session.flush()
        audit.record("directory.name_clash", XSS[:64], details={"source": XSS, "account_id": marked.id})
        db.session.commit()
        marked_id = marked.id
    pages = {
        "users": signed_in.get("/admin/users"),
        "pending": signed_in.get("/admin/users?show=pending"),
        "delete": signed_in.get(f"/admin/users/{marked_id}/delete"),
    }
    assert "data-name-clash" in pages["users"].get_data(as_text=True)
    for where, page in pages.items():
        text = page.get_data(as_text=True)
        assert page.status_code == 200, where
        assert "&lt;img src=x onerror=alert(1)&gt;" in text, f"{where}: the name is not shown"
        assert "<img src=x" not in text and "<script>alert" not in text, f"{where}: markup went through"
    exported = signed_in.post(f"/admin/users/{marked_id}/export")
    assert exported.json["account"]["username"] == XSS[:64]
    assert "<" not in exported.headers["Content-Disposition"] and '"' not in exported.headers[
        "Content-Disposition"
    ].split('filename="')[1].rstrip('"')


def test_markup_in_a_shared_or_imported_conversation_is_text_on_every_page(app, signed_in, engine):
    """A shared conversation's words (its title, the questions, the model's answers) and an
    imported one's are untrusted: every payload of the XSS corpus is text on the reader's pages."""
    import json

    payloads = ["".join(p if isinstance(p, str) else p[1] for p in c.script(OUTSIDE)) for c in CORPUS]
    engine.words = ["\n\n".join(payloads)]
    conversation_id = new_conversation(signed_in)
    signed_in.post(
        f"/conversations/{conversation_id}/messages", json={"content": XSS}, headers=STREAM
    ).get_data()
    signed_in.post(f"/conversations/{conversation_id}/rename", json={"title": XSS}, headers=JSON)
    bob = signed_in_as(app, "bob")
    signed_in.post(f"/conversations/{conversation_id}/shares", json={"usernames": "bob"}, headers=JSON)
    export = [
        {
            "title": XSS,
            "mapping": {
                "q": {
                    "message": {
                        "author": {"role": "user"},
                        "content": {"content_type": "text", "parts": [XSS]},
                    }
                },
                "a": {
                    "parent": "q",
                    "message": {
                        "author": {"role": "assistant"},
                        "content": {"content_type": "text", "parts": payloads},
                        "metadata": {"model_slug": XSS},
                    },
                },
            },
            "current_node": "a",
        }
    ]
    bob.post(
        "/import",
        data={"file": (io.BytesIO(json.dumps(export).encode()), "conversations.json")},
        content_type="multipart/form-data",
    )
    imported = bob.get("/conversations", headers=JSON).json["conversations"][0]["id"]
    pages = {
        "shared with me": bob.get("/shared"),
        "read-only view": bob.get(f"/shared/{conversation_id}"),
        "the owner's shares": signed_in.get(f"/conversations/{conversation_id}/shares"),
        "imported": bob.get(f"/c/{imported}"),
    }
    for where, page in pages.items():
        text = page.get_data(as_text=True)
        assert page.status_code == 200, where
        assert "&lt;img src=x onerror=alert(1)&gt;" in text, f"{where}: the title is not shown"
        assert live_markup(text) == [], where
    assert "evil.example" in pages["read-only view"].get_data(as_text=True), "the answer is on the page"
    assert "evil.example" in pages["imported"].get_data(as_text=True), "the answer is on the page"


def test_names_with_markup_render_as_text_on_the_quotas_pages(app, signed_in, engine):
    """A group's name and a username are the admin's or the directory's words: text on the usage
    page, a person's quotas page and the group's quotas form."""
    with app.app_context():
        marked = User(username=XSS[:64], password_hash="!")
        group = Group(name=XSS[:100], answers_per_day=5)
        db.session.add_all([marked, group])
        db.session.flush()
        db.session.add(GroupMember(group_id=group.id, user_id=marked.id))
        db.session.commit()
        marked_id, group_id = marked.id, group.id
    pages = {
        "usage": signed_in.get("/admin/quotas"),
        "person": signed_in.get(f"/admin/quotas/users/{marked_id}"),
        "group": signed_in.get(f"/admin/groups/{group_id}"),
        "refused": signed_in.post(f"/admin/quotas/users/{marked_id}", data={"answers_per_day": XSS}),
    }
    for where, page in pages.items():
        text = page.get_data(as_text=True)
        assert page.status_code in (200, 400), where
        assert "&lt;img src=x onerror=alert(1)&gt;" in text, f"{where}: the name is not shown"
        assert "<img src=x" not in text and "<script>alert" not in text, f"{where}: markup went through"


def test_markup_in_audit_entries_is_text_on_the_audit_page_and_a_quoted_cell_in_its_csv(app, signed_in):
    """An entry's target and details hold what people typed (a name tried at the sign-in, a
    collection's description, a model's system prompt): every payload of the XSS corpus is
    text on the admin's audit page, in the filter it is searched with, and in the CSV export."""
    from app import audit

    payloads = ["".join(p if isinstance(p, str) else p[1] for p in c.script(OUTSIDE)) for c in CORPUS]
    with app.app_context():
        for payload in payloads:
            entry = audit.record(
                "collection.update",
                payload[:255],
                details={"before": {"description": payload}, "after": {"description": XSS}, XSS: payload},
            )
            entry.actor_name, entry.address = XSS[:64], XSS[:64]
        db.session.commit()
    page = signed_in.get("/admin/audit", query_string={"action": "collection.update"}).get_data(as_text=True)
    assert "evil.example" in page and page.count("&lt;img src=x onerror=alert(1)&gt;") >= len(payloads)
    assert live_markup(page) == []
    assert live_markup(page.replace("&lt;", "<")) != [], "the check sees markup when there is some"
    refused = signed_in.get("/admin/audit", query_string={"person": XSS, "address": XSS, "since": XSS})
    assert refused.status_code == 400 and live_markup(refused.get_data(as_text=True)) == []
    exported = signed_in.get("/admin/audit/export.csv", query_string={"action": "collection.update"})
    assert exported.mimetype == "text/csv"
    assert exported.headers["Content-Disposition"].startswith("attachment"), "downloaded, never rendered"


def test_a_group_name_description_and_directory_group_with_markup_render_as_text_everywhere(app, signed_in):
    signed_in.post("/admin/groups", data={"name": XSS[:100], "description": XSS, "directory_group": XSS})
    signed_in.post("/knowledge/new", data={"name": "RH", "access": "listed", "readers": "alice"})
    with app.app_context():
        group_id = db.session.scalar(db.select(Group.id))
        collection_id = db.session.scalar(db.select(Collection.id))
    signed_in.post(f"/admin/groups/{group_id}/models", data={"models": ["other"]})
    signed_in.post(f"/admin/groups/{group_id}/collections", data={"collections": [str(collection_id)]})
    refused = signed_in.post(f"/admin/groups/{group_id}/members", data={"members": XSS})
    pages = {
        "groups": signed_in.get("/admin/groups"),
        "group": signed_in.get(f"/admin/groups/{group_id}"),
        "member refused": refused,
        "models": signed_in.get("/admin/models"),
        "model settings": signed_in.get("/admin/models/settings?model=other"),
        "knowledge": signed_in.get("/knowledge"),
        "collection": signed_in.get(f"/knowledge/{collection_id}"),
    }
    for where, page in pages.items():
        text = page.get_data(as_text=True)
        assert page.status_code == (400 if where == "member refused" else 200), where
        assert "&lt;img src=x onerror=alert(1)&gt;" in text, f"{where}: the name is not shown"
        assert "<img src=x" not in text and "<script>alert" not in text, f"{where}: markup went through"
        assert live_markup(text) == [], where


def test_an_account_made_by_the_admin_never_logs_its_one_time_password_nor_the_one_chosen(
    app, signed_in, app_logs
):
    made = signed_in.post("/admin/users/new", data={"username": "lucie"})
    one_time = re.search(r"data-password>([^<]+)<", made.get_data(as_text=True))[1]
    lucie = app.test_client()
    lucie.post("/login", data={"username": "lucie", "password": one_time})
    chosen = "la phrase que lucie a choisie"
    form = {"current": one_time, "password": chosen, "confirm": chosen}
    changed = lucie.post("/account/password", data=form)
    assert changed.status_code == 302
    logged = "\n".join(record.getMessage() for record in app_logs.records)
    assert "lucie" in logged, "nothing was logged: this would prove nothing"
    assert one_time not in logged and chosen not in logged
