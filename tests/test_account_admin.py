"""Accounts in the admin's hands: made with a one-time password (shown once, changed at the first
sign-in before anything else), deleted with the person's data (the audit entry stays), exported
for a data request; the badge of accounts waiting for approval; directory sign-ins refused for a
name, and directory accounts, on the Users page."""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import audit
from app.extensions import db
from app.models import (
    ApiKey,
    AuditEntry,
    Collection,
    Conversation,
    Document,
    Generation,
    Group,
    GroupMember,
    Message,
    Preset,
    User,
)
from tests.conftest import PASSWORD, AuthActions
from tests.queries import statements_of

JSON = {"Accept": "application/json"}
STREAM = {"Accept": "text/event-stream"}
NEW_PASSWORD = "une phrase de passe bien à moi"


def client_of(app, username=None, register=False):
    client = app.test_client()
    if register:
        AuthActions(client).register(username)
    elif username:
        client.post("/login", data={"username": username, "password": PASSWORD})
    return client


def account(app, username) -> User | None:
    with app.app_context():
        return db.session.scalar(sa.select(User).where(User.username == username))


def can_chat(client) -> bool:
    return client.get("/conversations", headers=JSON).status_code == 200


def create(admin, username, **roles):
    return admin.post(
        "/admin/users/new", data={"username": username} | {k: "y" for k, v in roles.items() if v}
    )


def password_in(page) -> str:
    return re.search(r"data-password>([^<]+)<", page.get_data(as_text=True))[1]


def audit_actions(app, action) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


def change_password(client, current, new=NEW_PASSWORD):
    return client.post("/account/password", data={"current": current, "password": new, "confirm": new})


@pytest.fixture
def admin(app):
    return client_of(app, "admin", register=True)


# -- a local account made by the admin ---------------------------------------------------------
def test_an_account_made_while_registration_is_closed_signs_in_with_its_one_time_password(app, admin):
    admin.post("/admin/users/registration", data={"mode": "closed"})
    made = create(admin, "carole", manages_knowledge=True)
    assert made.status_code == 201
    carole = app.test_client()
    signed_in = carole.post("/login", data={"username": "carole", "password": password_in(made)})
    assert signed_in.status_code == 302
    created = account(app, "carole")
    assert created.must_change_password and created.manages_knowledge and not created.is_admin


def test_until_the_one_time_password_is_changed_every_page_leads_to_the_password_page(app, admin):
    one_time = password_in(create(admin, "carole"))
    carole = app.test_client()
    carole.post("/login", data={"username": "carole", "password": one_time})
    for path in ("/", "/settings", "/compare"):
        page = carole.get(path)
        assert page.status_code == 302 and page.headers["Location"] == "/account/password", path
    refused = carole.get("/conversations", headers=JSON)
    assert refused.status_code == 403
    assert "Choose your own password first" in refused.json["error"]
    assert carole.post("/conversations", json={}, headers=JSON).status_code == 403
    explained = carole.get("/account/password").get_data(as_text=True)
    assert "The administrator gave you this password and has seen it" in explained


def test_once_changed_the_account_works_and_the_one_time_password_no_longer_does(app, admin):
    one_time = password_in(create(admin, "carole"))
    carole = app.test_client()
    carole.post("/login", data={"username": "carole", "password": one_time})
    same = change_password(carole, one_time, new=one_time)
    assert same.status_code == 400 and "not the one you have now" in same.get_data(as_text=True)
    assert change_password(carole, one_time).status_code == 302
    assert can_chat(carole) and not account(app, "carole").must_change_password
    again = app.test_client()
    assert again.post("/login", data={"username": "carole", "password": one_time}).status_code == 401
    assert again.post("/login", data={"username": "carole", "password": NEW_PASSWORD}).status_code == 302


def test_an_api_key_is_refused_while_its_owner_must_choose_a_password(app, admin):
    bob = client_of(app, "bob", register=True)
    key = re.search(r"data-key>(cau_[\w-]+)<", bob.post("/settings/api-keys", data={"name": "k"}).text)[1]
    bearer = {"Authorization": f"Bearer {key}"}
    assert bob.get("/v1/models", headers=bearer).status_code == 200
    page = admin.post(f"/admin/users/{account(app, 'bob').id}/password")
    temporary = re.search(
        r"<code[^>]*>([^<]+)</code>", page.get_data(as_text=True).split("data-temporary-password")[1]
    )[1]
    refused = bob.get("/v1/models", headers=bearer)
    assert refused.status_code == 403 and "Choose your own password first" in refused.json["error"]["message"]
    assert app.test_client().get("/api/v1/documents", headers=bearer).status_code == 403
    bob.post("/login", data={"username": "bob", "password": temporary})
    assert change_password(bob, temporary).status_code == 302
    assert bob.get("/v1/models", headers=bearer).status_code == 200


def test_the_one_time_password_is_shown_once_and_never_stored_in_clear(app, admin):
    made = create(admin, "carole")
    one_time = password_in(made)
    assert len(one_time) >= 16
    assert made.headers["Cache-Control"] == "no-store" and "Location" not in made.headers
    assert one_time not in admin.get("/admin/users").get_data(as_text=True)
    with app.app_context():
        stored = db.session.scalar(sa.select(User.password_hash).where(User.username == "carole"))
        entries = db.session.scalars(sa.select(AuditEntry)).all()
    assert stored.startswith("$argon2id$") and one_time not in stored
    assert all(one_time not in json.dumps(e.details) + e.target for e in entries)
    assert [e.target for e in audit_actions(app, "account.create")] == ["carole"]


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("ADMIN", "This username, or one that looks the same, is taken."),
        ("ab", "A username has 3 to 64 characters."),
        ("carole dupont", "Use letters, digits, dots, dashes and underscores only."),
        ("аlice", "This username mixes alphabets"),  # a Cyrillic а
        ("", "Choose a username."),
    ],
)
def test_a_new_account_with_a_refused_name_is_not_made_and_the_form_says_why(app, admin, username, message):
    page = create(admin, username)
    assert page.status_code == 400 and message in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
    assert audit_actions(app, "account.create") == []


def test_the_new_account_form_speaks_french_to_a_french_admin(app, admin):
    admin.post("/language", data={"lang": "fr"})
    page = html.unescape(create(admin, "ADMIN").get_data(as_text=True))
    assert "Ce nom d'utilisateur, ou un nom qui lui ressemble à s'y méprendre, est déjà pris." in page


def test_only_an_admin_makes_accounts(app, admin):
    bob = client_of(app, "bob", register=True)
    assert create(bob, "mallory", is_admin=True).status_code == 403
    assert account(app, "mallory") is None


# -- deleting an account -----------------------------------------------------------------------
def _bobs_things(app, bob, engine) -> dict:
    """Bob's conversation (a question with a document attached, its answer), a document
    uploaded but never sent, a preset, an API key, a group, an entry of his in the audit log."""
    attached = bob.post(
        "/documents", data={"file": (io.BytesIO(b"Le code est 4242."), "coffre.txt")}, headers=JSON
    )
    unsent = bob.post("/documents", data={"file": (io.BytesIO(b"Brouillon."), "brouillon.txt")}, headers=JSON)
    conversation = bob.post("/conversations", json={}, headers=JSON).json["id"]
    bob.post(
        f"/conversations/{conversation}/messages",
        json={"content": "Quel code ?", "document_ids": [attached.json["document"]["id"]]},
        headers=STREAM,
    ).get_data()
    bob.post("/settings/presets", data={"name": "Le preset de Bob", "system_prompt": "secret"})
    bob.post("/settings/api-keys", data={"name": "La clé de Bob"})
    with app.app_context():
        bob_account = db.session.scalar(sa.select(User).where(User.username == "bob"))
        group = Group(name="Atelier")
        db.session.add(group)
        db.session.flush()
        db.session.add(GroupMember(group_id=group.id, user_id=bob_account.id))
        audit.record("apikey.create", "La clé de Bob", actor=bob_account)
        db.session.commit()
        files = list(
            db.session.scalars(sa.select(Document.stored_as).where(Document.owner_id == bob_account.id))
        )
    assert attached.status_code == unsent.status_code == 201 and len(files) == 2
    return {"id": bob_account.id, "conversation": conversation, "files": files}


def _rows_of(app, user_id: int, conversation_id: int) -> dict:
    with app.app_context():

        def count(model, *where):
            return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

        return {
            "conversations": count(Conversation, Conversation.user_id == user_id),
            "messages": count(Message, Message.conversation_id == conversation_id),
            "documents": count(Document, Document.owner_id == user_id),
            "keys": count(ApiKey, ApiKey.user_id == user_id),
            "presets": count(Preset, Preset.user_id == user_id),
            "groups": count(GroupMember, GroupMember.user_id == user_id),
        }


def test_the_delete_confirmation_names_what_will_be_erased_and_erases_nothing(app, admin, engine):
    bob = client_of(app, "bob", register=True)
    things = _bobs_things(app, bob, engine)
    page = admin.get(f"/admin/users/{things['id']}/delete")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Delete the account of bob?" in text
    for said in ("1 conversation,", "2 messages", "2 documents attached", "1 API key", "1 preset", "1 group"):
        assert said in text, said
    assert _rows_of(app, things["id"], things["conversation"]) == {
        "conversations": 1,
        "messages": 2,
        "documents": 2,
        "keys": 1,
        "presets": 1,
        "groups": 1,
    }


def test_deleting_an_account_erases_its_data_and_files_and_keeps_the_audit_log(app, admin, engine):
    bob = client_of(app, "bob", register=True)
    things = _bobs_things(app, bob, engine)
    folder = Path(app.config["DOCUMENTS_DIR"])
    assert all((folder / name).exists() for name in things["files"])
    done = admin.post(f"/admin/users/{things['id']}/delete", follow_redirects=True)
    assert "The account of bob and their data are deleted." in done.get_data(as_text=True)
    assert account(app, "bob") is None
    assert set(_rows_of(app, things["id"], things["conversation"]).values()) == {0}
    assert not any((folder / name).exists() for name in things["files"])
    assert not can_chat(bob)
    with app.app_context():
        kept = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "apikey.create"))
        assert (kept.actor_id, kept.actor_name) == (None, "bob")
        measured = db.session.scalars(sa.select(Generation.user_id)).all()
        assert measured and set(measured) == {None}  # the answer's measurements stay, nameless
    [entry] = audit_actions(app, "account.delete")
    assert entry.target == "bob" and entry.actor_name == "admin"
    assert entry.details["erased"]["conversations"] == 1


def test_a_deleted_accounts_knowledge_base_and_its_documents_stay(app, admin):
    bob = client_of(app, "bob", register=True)
    with app.app_context():
        bob_id = db.session.scalar(sa.select(User.id).where(User.username == "bob"))
        db.session.get(User, bob_id).manages_knowledge = True
        db.session.commit()
    bob.post("/knowledge/new", data={"name": "Base de Bob", "access": "all"})
    with app.app_context():
        collection_id = db.session.scalar(sa.select(Collection.id))
    bob.post(
        f"/knowledge/{collection_id}/documents",
        data={"files": [(io.BytesIO(b"Le manuel de la presse."), "manuel.txt")]},
        content_type="multipart/form-data",
    )
    admin.post(f"/admin/users/{bob_id}/delete")
    with app.app_context():
        collection = db.session.get(Collection, collection_id)
        document = db.session.scalar(sa.select(Document).where(Document.collection_id == collection_id))
        admin_id = db.session.scalar(sa.select(User.id).where(User.username == "admin"))
        assert collection.owner_id is None and document.owner_id == admin_id
        assert (Path(app.config["DOCUMENTS_DIR"]) / document.stored_as).exists()


def test_an_admin_cannot_delete_their_own_account(app, admin):
    me = account(app, "admin")
    page = admin.post(f"/admin/users/{me.id}/delete", follow_redirects=True)
    assert "You cannot delete your own account" in page.get_data(as_text=True)
    assert account(app, "admin") is not None and audit_actions(app, "account.delete") == []


def test_the_last_active_admin_is_never_deleted(app, admin):
    """The other admin's request went through a moment ago (this admin is disabled): its stale
    request cannot take the only active admin left."""
    from app.admin import erasure, users

    client_of(app, "bob", register=True)
    admin.post(f"/admin/users/{account(app, 'bob').id}/promote")
    with app.app_context():
        me = db.session.scalar(sa.select(User).where(User.username == "admin"))
        bob = db.session.scalar(sa.select(User).where(User.username == "bob"))
        me.disabled = True
        db.session.commit()
        with pytest.raises(users.LastAdmin):
            erasure.delete_account(bob, me)
    assert account(app, "bob").is_admin and audit_actions(app, "account.delete") == []


# -- a person's data, for a data request -------------------------------------------------------
def test_the_export_holds_the_persons_conversations_and_nothing_of_anothers_nor_any_secret(
    app, admin, engine
):
    bob = client_of(app, "bob", register=True)
    things = _bobs_things(app, bob, engine)
    alice = client_of(app, "alice", register=True)
    theirs = alice.post("/conversations", json={}, headers=JSON).json["id"]
    alice.post(
        f"/conversations/{theirs}/messages", json={"content": "Le secret d'Alice"}, headers=STREAM
    ).get_data()
    response = admin.post(f"/admin/users/{things['id']}/export")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="causerie-')
    data = response.json
    text = response.get_data(as_text=True)
    assert data["account"]["username"] == "bob"
    [conversation] = data["conversations"]
    assert conversation["id"] == things["conversation"]
    assert [m["content"] for m in conversation["messages"]][0] == "Quel code ?"
    assert sorted(d["filename"] for d in data["documents"]) == ["brouillon.txt", "coffre.txt"]
    assert data["presets"][0]["name"] == "Le preset de Bob" and data["groups"] == [
        {"name": "Atelier", "from_directory": False}
    ]
    assert data["api_keys"][0]["name"] == "La clé de Bob" and data["api_keys"][0]["prefix"]
    assert "apikey.create" in [e["action"] for e in data["audit"]]
    assert "Alice" not in text and "alice" not in text
    with app.app_context():
        bob_account = db.session.get(User, things["id"])
        digest = db.session.scalar(sa.select(ApiKey.digest).where(ApiKey.user_id == things["id"]))
        secrets = [bob_account.password_hash, bob_account.session_token, digest]
    assert not any(secret in text for secret in secrets)
    assert [e.target for e in audit_actions(app, "account.export")] == ["bob"]


def test_the_export_says_to_whom_each_conversation_is_shown(app, admin, engine):
    """GDPR art. 15 asks for the recipients: the colleagues a conversation is shared with."""
    bob = client_of(app, "bob", register=True)
    client_of(app, "carole", register=True)
    conversation = bob.post("/conversations", json={}, headers=JSON).json["id"]
    question = {"content": "Bonjour"}
    bob.post(f"/conversations/{conversation}/messages", json=question, headers=STREAM).get_data()
    shared = bob.post(f"/conversations/{conversation}/shares", json={"usernames": "carole"}, headers=JSON)
    assert shared.status_code in (200, 201), shared.data
    data = admin.post(f"/admin/users/{account(app, 'bob').id}/export").json
    assert [c["shared_with"] for c in data["conversations"]] == [["carole"]]


# -- accounts waiting for approval -------------------------------------------------------------
def test_the_admins_navigation_counts_accounts_waiting_for_approval_and_links_to_them(app, admin):
    admin.post("/admin/users/registration", data={"mode": "approval"})
    for name in ("bob", "carole"):
        AuthActions(app.test_client()).register(name)
    for path in ("/", "/admin/models", "/admin/dashboard", "/knowledge"):
        badge = re.search(
            r'<a [^>]*href="([^"]+)"[^>]*data-pending-badge[^>]*><span aria-hidden="true">(\d+)<',
            admin.get(path).text,
        )
        assert badge and badge[1] == "/admin/users?show=pending" and badge[2] == "2", path
    said = re.search(r'href="([^"]+)" data-pending-link>([^<]+)<', admin.get("/admin/users").text)
    assert said[1] == "/admin/users?show=pending" and said[2] == "2 accounts waiting for approval"
    waiting = admin.get("/admin/users?show=pending").text
    assert sorted(re.findall(r'data-user="(\w+)"', waiting)) == ["bob", "carole"]
    admin.post(f"/admin/users/{account(app, 'bob').id}/approve")
    assert re.search(r'data-pending-badge[^>]*><span aria-hidden="true">1<', admin.get("/").text)
    bob = client_of(app, "bob")
    assert "data-pending-badge" not in bob.get("/").text


def test_no_badge_when_no_account_waits(app, admin):
    assert "data-pending-badge" not in admin.get("/").text


def test_the_chat_sidebar_leads_the_admin_to_every_admin_page_as_their_navigation_does(app, admin):
    def links(page: str, nav_start: str) -> list[str]:
        nav = page[page.index(nav_start) :]
        return re.findall(r'<a [^>]*href="(/[^"?]*)"', nav[: nav.index("</nav>")])

    sidebar = links(admin.get("/").text, '<nav class="flex flex-wrap gap-x-3" aria-label="Administration"')
    for page in ("/admin/groups", "/admin/quotas", "/admin/audit"):
        assert page in sidebar
    admin_nav = links(admin.get("/admin/models").text, 'aria-label="Administration"')
    assert set(sidebar) == set(admin_nav) - {"/"} | {"/admin/models"}


# -- the directory on the Users page -----------------------------------------------------------
def test_a_directory_sign_in_refused_for_a_local_accounts_name_is_shown_on_the_users_page(app, admin):
    client_of(app, "jdupont", register=True)
    with app.app_context():
        holder = db.session.scalar(sa.select(User.id).where(User.username == "jdupont"))
        details = {"source": "ldap", "directory_id": "ldap:1234", "account_id": holder}
        audit.record("directory.name_clash", "JDupont", details=details)
        db.session.commit()
    page = admin.get("/admin/users").text
    [clash] = re.findall(r"data-name-clash>(.*?)</li>", page, re.S)
    assert "JDupont" in clash and "LDAP" in clash and "the local account jdupont" in clash


def test_a_name_clash_leaves_the_users_page_once_settled_and_shows_once_per_name(app, admin):
    client_of(app, "jdupont", register=True)
    client_of(app, "pmartin", register=True)
    with app.app_context():
        for tried, holder in (("jdupont", "jdupont"), ("JDupont", "jdupont"), ("pmartin", "pmartin")):
            holder_id = db.session.scalar(sa.select(User.id).where(User.username == holder))
            audit.record("directory.name_clash", tried, details={"source": "oidc", "account_id": holder_id})
        db.session.commit()
    admin.post(f"/admin/users/{account(app, 'pmartin').id}/delete")  # settled: the name is free
    listed = re.findall(r"data-name-clash>.*?<strong>(.*?)</strong>", admin.get("/admin/users").text, re.S)
    assert listed == ["JDupont"]


def test_a_directory_account_is_marked_and_gets_no_new_password_here(app, admin):
    with app.app_context():
        db.session.add(
            User(
                username="mmartin",
                password_hash="!directory",
                directory_id="oidc:https://idp 42",
                display_name="Marie Martin",
                email="marie.martin@example.com",
            )
        )
        db.session.commit()
    page = admin.get("/admin/users").text
    row = re.search(r'data-user="mmartin".*?</tr>', page, re.S)[0]
    assert "data-directory" in row and "OIDC" in row and 'data-action="password"' not in row
    assert "Marie Martin · marie.martin@example.com" in row
    refused = admin.post(f"/admin/users/{account(app, 'mmartin').id}/password", follow_redirects=True)
    assert "it changes in the directory, not here" in refused.text
    assert account(app, "mmartin").password_hash == "!directory"


def test_every_table_naming_an_account_erases_or_forgets_it_when_the_account_is_deleted():
    """A table added later with a plain foreign key to the account would make deleting an account
    fail (or keep the person's rows): each one says what happens, and only these keep their rows."""
    from app.extensions import db as database

    kept, erased, undecided = set(), set(), []
    for table in database.metadata.sorted_tables:
        for key in table.foreign_keys:
            if key.column.table.name != "user":
                continue
            if key.ondelete == "SET NULL":
                kept.add(table.name)
            elif key.ondelete == "CASCADE":
                erased.add(table.name)
            else:
                undecided.append(f"{table.name}.{key.parent.name}")
    assert undecided == []
    # measurements, benchmark runs, knowledge bases and the audit log stay, without the person
    assert kept == {"generation", "benchmark_run", "collection", "audit_entry"}
    assert {"conversation", "document", "preset", "api_key", "group_member", "conversation_share"} <= erased


def test_the_refusals_of_the_admins_account_actions_speak_french(app, admin):
    admin.post("/language", data={"lang": "fr"})
    me = account(app, "admin")
    own = html.unescape(admin.post(f"/admin/users/{me.id}/delete", follow_redirects=True).text)
    assert "Vous ne pouvez pas supprimer votre propre compte : un autre administrateur le peut." in own
    carole = app.test_client()
    carole.post("/language", data={"lang": "fr"})
    carole.post("/login", data={"username": "carole", "password": password_in(create(admin, "carole"))})
    refused = carole.get("/conversations", headers=JSON).json["error"]
    assert refused.startswith("Choisissez d'abord votre propre mot de passe")


def _conversations_of(app, username: str, count: int) -> None:
    """`count` conversations of two messages each, made straight in the database."""
    with app.app_context():
        owner = db.session.scalar(sa.select(User).where(User.username == username))
        for n in range(count):
            conversation = Conversation(user_id=owner.id, title=f"Note {n}", model="tiny")
            db.session.add(conversation)
            db.session.flush()
            question = Message(conversation_id=conversation.id, role="user", content=f"Question {n}")
            db.session.add(question)
            db.session.flush()
            answer = {"parent_id": question.id, "role": "assistant", "content": "Oui"}
            db.session.add(Message(conversation_id=conversation.id, **answer))
        db.session.commit()


def test_the_export_reads_the_messages_with_the_conversations_not_one_conversation_at_a_time(app, admin):
    client_of(app, "bob", register=True)
    url = f"/admin/users/{account(app, 'bob').id}/export"
    _conversations_of(app, "bob", 2)
    few, export = statements_of(app, admin, url, method="post")
    assert "Question 1" in export
    _conversations_of(app, "bob", 10)
    many, export = statements_of(app, admin, url, method="post")
    assert json.loads(export)["conversations"][11]["messages"][1]["content"] == "Oui"
    assert many == few
