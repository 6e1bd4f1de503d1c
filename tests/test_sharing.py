"""Sharing a conversation read-only with colleagues and groups (issue 18, item 5), with a
scripted engine: the tests are about who reaches what through the web layer."""

from __future__ import annotations

import io
import re
import threading

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEntry, Conversation, ConversationShare, Group, GroupMember, Message, User
from tests.conftest import AuthActions, sse_events
from tests.queries import statements_of
from tests.url_map import sweep

JSON = {"Accept": "application/json"}
STREAM = {"Accept": "text/event-stream"}
FR = {"Accept-Language": "fr"}
# The only routes a reader of a shared conversation reaches with its id.
READER_ROUTES = {"sharing.view", "sharing.copy"}


def signed_in_as(app, username: str):
    client = app.test_client()
    assert AuthActions(client).register(username).status_code == 302
    return client


def user_id(app, username: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(User.id).where(User.username == username))


def conversation_with_an_answer(client, question: str = "Quelle est la recette ?") -> int:
    created = client.post("/conversations", json={}, headers=JSON)
    assert created.status_code == 201, created.data
    conversation_id = created.json["id"]
    answered = client.post(
        f"/conversations/{conversation_id}/messages", json={"content": question}, headers=STREAM
    )
    assert sse_events(answered.get_data(as_text=True))[-1][0] == "done"
    client.post(
        f"/conversations/{conversation_id}/rename", json={"title": "La recette d'Alice"}, headers=JSON
    )
    return conversation_id


@pytest.fixture
def alice(client, auth):
    auth.register("alice")  # the first account: the admin
    return client


@pytest.fixture
def shared(app, alice):
    """Alice's conversation with one answer, shared with Bob; (its id, Bob's client)."""
    bob = signed_in_as(app, "bob")
    conversation_id = conversation_with_an_answer(alice)
    response = alice.post(f"/conversations/{conversation_id}/shares", data={"usernames": "bob"})
    assert response.status_code == 302, response.data
    return conversation_id, bob


def original(app, conversation_id: int) -> tuple:
    with app.app_context():
        conversation = db.session.get(Conversation, conversation_id)
        return (
            conversation.title,
            conversation.model,
            conversation.pinned,
            conversation.system_prompt,
            conversation.leaf_id,
            [(m.id, m.role, m.content, m.feedback) for m in conversation.messages],
        )


def test_a_colleague_reads_a_conversation_shared_with_them_under_shared_with_me(shared):
    conversation_id, bob = shared
    listed = bob.get("/shared").get_data(as_text=True)
    assert "La recette d&#39;Alice" in listed and "alice" in listed
    page = bob.get(f"/shared/{conversation_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Quelle est la recette ?" in text and "Bonjour le monde." in text
    assert "read-only" in text
    # Nothing on the page changes the original: its one form copies it into Bob's own (and
    # the language switch changes Bob's pages).
    actions = set(re.findall(r'<form[^>]*action="([^"]*)"', text))
    assert actions == {f"/shared/{conversation_id}/copy", f"/language?next=/shared/{conversation_id}"}
    assert 'data-action="regenerate"' not in text and 'data-action="edit"' not in text


def test_a_colleague_shared_with_gets_404_from_every_route_that_changes_or_shows_the_original(app, shared):
    conversation_id, bob = shared
    with app.app_context():
        message_ids = list(
            db.session.scalars(sa.select(Message.id).where(Message.conversation_id == conversation_id))
        )
        share_id = db.session.scalar(sa.select(ConversationShare.id))
    before = original(app, conversation_id)
    owned = {"conversation_id": [conversation_id], "message_id": message_ids, "share_id": [share_id]}
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if set(rule.arguments) & {"conversation_id", "message_id"} and rule.endpoint not in READER_ROUTES
    ]
    made = bob.post("/settings/api-keys", data={"name": "b"}).get_data(as_text=True)
    api = {"Authorization": "Bearer " + re.search(r"data-key>(cau_[\w-]+)<", made)[1]}  # the API: his own key
    body = {"title": "pris par bob", "content": "laisse-moi écrire", "pinned": "1", "model": "other"}
    let_in = []
    for rule, method, url in sweep(app, rules, owned):
        if method in ("HEAD", "OPTIONS"):
            continue
        headers = JSON | api if rule.endpoint.startswith(("api.", "openai.")) else JSON
        response = bob.open(url, method=method, json=body if method == "POST" else None, headers=headers)
        response.close()
        if response.status_code != 404:
            let_in.append(f"{method} {url}: {response.status_code}")
    assert not let_in, "\n".join(let_in)
    assert len(rules) >= 15, [r.rule for r in rules]
    assert original(app, conversation_id) == before


def test_a_withdrawn_share_is_404_for_its_reader_at_once(app, alice, shared):
    conversation_id, bob = shared
    assert bob.get(f"/shared/{conversation_id}").status_code == 200
    with app.app_context():
        share_id = db.session.scalar(sa.select(ConversationShare.id))
    withdrawn = alice.post(f"/conversations/{conversation_id}/shares/{share_id}/withdraw")
    assert withdrawn.status_code == 302
    assert bob.get(f"/shared/{conversation_id}").status_code == 404
    assert bob.post(f"/shared/{conversation_id}/copy").status_code == 404
    assert "La recette" not in bob.get("/shared").get_data(as_text=True)


def test_a_group_share_follows_the_groups_membership(app, alice):
    bob = signed_in_as(app, "bob")
    with app.app_context():
        group = Group(name="Cuisine")
        db.session.add(group)
        db.session.flush()
        db.session.add(GroupMember(group_id=group.id, user_id=user_id(app, "bob")))
        db.session.commit()
        group_id = group.id
    conversation_id = conversation_with_an_answer(alice)
    assert bob.get(f"/shared/{conversation_id}").status_code == 404
    shared = alice.post(f"/conversations/{conversation_id}/shares", json={"group": "cuisine"}, headers=JSON)
    assert shared.status_code == 201 and shared.json["added"] == ["Cuisine"]
    assert bob.get(f"/shared/{conversation_id}").status_code == 200
    with app.app_context():  # Bob leaves the group
        db.session.execute(sa.delete(GroupMember).where(GroupMember.group_id == group_id))
        db.session.commit()
    assert bob.get(f"/shared/{conversation_id}").status_code == 404
    assert bob.get("/shared", headers=JSON).json["conversations"] == []


def test_a_colleague_shares_only_with_a_group_they_belong_to(app, alice):
    bob = signed_in_as(app, "bob")
    signed_in_as(app, "carol")
    with app.app_context():
        group = Group(name="Paie")
        db.session.add(group)
        db.session.flush()
        db.session.add(GroupMember(group_id=group.id, user_id=user_id(app, "carol")))
        db.session.commit()
        group_id = group.id
    conversation_id = conversation_with_an_answer(bob)
    refused = bob.post(f"/conversations/{conversation_id}/shares", json={"group": "Paie"}, headers=JSON)
    assert refused.status_code == 400 and "no group called" in refused.json["error"]
    with app.app_context():
        db.session.add(GroupMember(group_id=group_id, user_id=user_id(app, "bob")))
        db.session.commit()
    shared = bob.post(f"/conversations/{conversation_id}/shares", json={"group": "Paie"}, headers=JSON)
    assert shared.status_code == 201 and shared.json["added"] == ["Paie"]


def test_a_copy_is_the_readers_own_conversation_and_leaves_the_original_untouched(app, alice, shared, engine):
    conversation_id, bob = shared
    before = original(app, conversation_id)
    copied = bob.post(f"/shared/{conversation_id}/copy", headers=JSON)
    assert copied.status_code == 201
    copy_id = copied.json["id"]
    history = bob.get(f"/conversations/{copy_id}/messages").json
    assert [m["content"] for m in history["messages"]] == ["Quelle est la recette ?", "Bonjour le monde."]
    assert history["conversation"]["title"] == "La recette d'Alice"
    asked = bob.post(f"/conversations/{copy_id}/messages", json={"content": "Et la suite ?"}, headers=STREAM)
    assert sse_events(asked.get_data(as_text=True))[-1][0] == "done"
    assert "Quelle est la recette ?" in str(engine.requests[-1]), "the copy goes on from the shared history"
    assert original(app, conversation_id) == before
    # Alice deleting hers leaves Bob's copy whole.
    alice.post(f"/conversations/{conversation_id}/delete", headers=JSON)
    assert len(bob.get(f"/conversations/{copy_id}/messages").json["messages"]) == 4


REFUSALS = {  # what is asked, what it must say in English and in French
    "oneself": (
        {"usernames": "alice"},
        "This conversation is already yours: share it with someone else.",
        "Cette conversation est déjà la vôtre : partagez-la avec quelqu'un d'autre.",
    ),
    "unknown colleague": (
        {"usernames": "bob, personne"},
        "Nobody here is called “personne”.",
        "Personne ici ne s'appelle « personne ».",
    ),
    "unknown group": (
        {"group": "Fantômes"},
        "There is no group called “Fantômes”.",
        "Aucun groupe ne s'appelle « Fantômes ».",
    ),
    "nobody named": (
        {"usernames": " "},
        "Name a colleague or a group to share with.",
        "Nommez un collègue ou un groupe",
    ),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_sharing_with_oneself_or_an_unknown_name_is_refused_with_a_message_in_both_languages(
    app, alice, case
):
    signed_in_as(app, "bob")
    conversation_id = conversation_with_an_answer(alice)
    form, english, french = REFUSALS[case]
    page = alice.post(f"/conversations/{conversation_id}/shares", data=form)
    assert page.status_code == 400 and english in page.get_data(as_text=True)
    script = alice.post(f"/conversations/{conversation_id}/shares", json=form, headers=JSON | FR)
    assert script.status_code == 400 and french in script.json["error"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ConversationShare.id))) == 0, "all or nothing"


def test_each_share_and_withdrawal_leaves_one_audit_entry(app, alice):
    signed_in_as(app, "bob")
    signed_in_as(app, "carol")
    conversation_id = conversation_with_an_answer(alice)
    alice.post(f"/conversations/{conversation_id}/shares", data={"usernames": "bob carol"})
    alice.post(f"/conversations/{conversation_id}/shares", data={"usernames": "bob"})  # already: nothing new
    with app.app_context():
        share_id = db.session.scalar(
            sa.select(ConversationShare.id).where(ConversationShare.user_id == user_id(app, "carol"))
        )
    alice.post(f"/conversations/{conversation_id}/shares/{share_id}/withdraw")
    with app.app_context():
        entries = db.session.execute(
            sa.select(AuditEntry.action, AuditEntry.actor_name, AuditEntry.target, AuditEntry.details)
            .where(AuditEntry.action.like("share.%"))
            .order_by(AuditEntry.id)
        ).all()
    title, shared = "La recette d'Alice", {"conversation": conversation_id}
    assert [tuple(e) for e in entries] == [
        ("share.create", "alice", title, shared | {"user": "bob"}),
        ("share.create", "alice", title, shared | {"user": "carol"}),
        ("share.withdraw", "alice", title, shared | {"user": "carol"}),
    ]


def test_the_owner_sees_whom_it_is_shared_with_and_only_the_owner(app, alice, shared):
    conversation_id, bob = shared
    page = alice.get(f"/conversations/{conversation_id}/shares").get_data(as_text=True)
    assert "bob" in page and "Withdraw" in page
    assert bob.get(f"/conversations/{conversation_id}/shares").status_code == 404


def asked_with_a_file(alice, content: bytes, filename: str) -> tuple[int, int]:
    """A conversation of Alice's whose question came with a file: (its id, the file's)."""
    uploaded = alice.post("/documents", data={"file": (io.BytesIO(content), filename)}, headers=JSON)
    document_id = uploaded.json["document"]["id"]
    conversation_id = alice.post("/conversations", json={}, headers=JSON).json["id"]
    alice.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": "Résume", "document_ids": [document_id]},
        headers=STREAM,
    ).get_data()
    return conversation_id, document_id


def test_a_file_sent_in_a_shared_conversation_downloads_for_its_reader_until_withdrawn(app, alice):
    bob = signed_in_as(app, "bob")
    carol = signed_in_as(app, "carol")
    conversation_id, document_id = asked_with_a_file(alice, b"La recette secrete.", "recette.txt")
    assert bob.get(f"/documents/{document_id}/file").status_code == 404
    shared = alice.post(f"/conversations/{conversation_id}/shares", json={"usernames": "bob"}, headers=JSON)
    page = bob.get(f"/shared/{conversation_id}").get_data(as_text=True)
    assert f"/documents/{document_id}/file" in page and "recette.txt" in page
    download = bob.get(f"/documents/{document_id}/file")
    assert download.status_code == 200 and download.data == b"La recette secrete."
    assert carol.get(f"/documents/{document_id}/file").status_code == 404, "not shared with Carol"
    assert bob.post(f"/documents/{document_id}/delete").status_code == 404, "reading is not owning"
    share_id = shared.json["shares"][0]["id"]
    alice.post(f"/conversations/{conversation_id}/shares/{share_id}/withdraw", headers=JSON)
    assert bob.get(f"/documents/{document_id}/file").status_code == 404


def test_a_conversation_its_owner_deletes_is_gone_for_its_readers(app, alice, shared):
    conversation_id, bob = shared
    alice.post(f"/conversations/{conversation_id}/delete", headers=JSON)
    assert bob.get(f"/shared/{conversation_id}").status_code == 404
    assert bob.get("/shared", headers=JSON).json["conversations"] == []
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ConversationShare.id))) == 0


def test_twenty_identical_shares_at_the_same_instant_make_one_share_and_one_audit_entry(app, alice):
    """A double click, two tabs: the database itself keeps one share per colleague (and per
    group), and the audit log one entry for it."""
    signed_in_as(app, "bob")
    conversation_id = conversation_with_an_answer(alice)
    cookie = alice.get_cookie("session").value
    tabs = []
    for _ in range(20):
        tab = app.test_client()
        tab.set_cookie("session", cookie)
        tabs.append(tab)
    start, answers = threading.Barrier(len(tabs)), []

    def share(tab) -> None:
        start.wait()
        response = tab.post(
            f"/conversations/{conversation_id}/shares", json={"usernames": "bob"}, headers=JSON
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=share, args=(tab,)) for tab in tabs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [200] * 19 + [201], answers
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ConversationShare.id))) == 1
        entries = sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.action == "share.create")
        assert db.session.scalar(entries) == 1


def test_a_file_of_a_version_the_owner_no_longer_shows_does_not_download_for_the_reader(app, alice):
    """The reader sees the branch shown; a question the owner edited away, and the file sent with
    it, stay the owner's (document ids follow each other: guessing one is easy)."""
    bob = signed_in_as(app, "bob")
    conversation_id, document_id = asked_with_a_file(alice, b"Les salaires de 2026.", "salaires.txt")
    messages = alice.get(f"/conversations/{conversation_id}/messages", headers=JSON).json["messages"]
    question_id = messages[0]["id"]
    alice.post(f"/messages/{question_id}/edit", json={"content": "Bonjour"}, headers=STREAM).get_data()
    alice.post(f"/conversations/{conversation_id}/shares", json={"usernames": "bob"}, headers=JSON)
    page = bob.get(f"/shared/{conversation_id}").get_data(as_text=True)
    assert "Bonjour" in page and "salaires.txt" not in page
    assert bob.get(f"/documents/{document_id}/file").status_code == 404
    assert alice.get(f"/documents/{document_id}/file").status_code == 200


def _colleagues_share_with(app, reader_id: int, count: int, start: int) -> None:
    """`count` colleagues, made straight in the database, each sharing a conversation."""
    with app.app_context():
        for n in range(start, start + count):
            owner = User(username=f"owner{n}", username_key=f"owner{n}", password_hash="!")
            db.session.add(owner)
            db.session.flush()
            conversation = Conversation(user_id=owner.id, title=f"Note {n}", model="test-model")
            db.session.add(conversation)
            db.session.flush()
            db.session.add(ConversationShare(conversation_id=conversation.id, user_id=reader_id))
        db.session.commit()


def test_shared_with_me_names_every_owner_without_a_query_for_each(app, alice):
    bob = signed_in_as(app, "bob")
    _colleagues_share_with(app, user_id(app, "bob"), 2, start=0)
    few, page = statements_of(app, bob, "/shared")
    assert "By owner1" in page
    _colleagues_share_with(app, user_id(app, "bob"), 10, start=2)
    many, page = statements_of(app, bob, "/shared")
    assert "By owner11" in page and "Note 11" in page
    assert many == few


def test_the_owners_list_of_shares_names_each_colleague_without_a_query_for_each(app, alice):
    conversation_id = alice.post("/conversations", json={}, headers=JSON).json["id"]
    with app.app_context():
        for n in range(12):
            colleague = User(username=f"colleague{n}", username_key=f"colleague{n}", password_hash="!")
            db.session.add(colleague)
            db.session.flush()
            if n < 2:
                db.session.add(ConversationShare(conversation_id=conversation_id, user_id=colleague.id))
        db.session.commit()
    url = f"/conversations/{conversation_id}/shares"
    few, page = statements_of(app, alice, url)
    assert "colleague1" in page
    with app.app_context():
        for n in range(2, 12):
            colleague_id = user_id(app, f"colleague{n}")
            db.session.add(ConversationShare(conversation_id=conversation_id, user_id=colleague_id))
        db.session.commit()
    many, page = statements_of(app, alice, url)
    assert "colleague11" in page
    assert many == few
