"""Every admin form and every account event leaves exactly one audit entry (issue 18's figure).

The walk is built from `app.url_map`: every route that changes something (POST, PUT, PATCH,
DELETE) is either a step of WALK (a valid change sent the way its page sends it, and the one
action its entry must carry) or in EXEMPT with the reason it changes nothing administrative. A
route added later and in neither makes `test_every_route_that_changes_something_is_walked_or_exempt`
fail, naming it: give it a step (and record() in it), or say why it needs none.
"""

from __future__ import annotations

import html
import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.api import keys
from app.audit.log import label
from app.auth.services import create_user
from app.bench.suites import load_suites
from app.documents import store
from app.extensions import db
from app.models import (
    AuditEntry,
    BenchmarkRun,
    Collection,
    Conversation,
    ConversationShare,
    Group,
    GroupMember,
    User,
)
from tests.conftest import PASSWORD, AuthActions
from tests.patience import patience
from tests.test_answers import live_answer, start_answer

CHANGES = {"POST", "PUT", "PATCH", "DELETE"}
NEW_PASSWORD = "another long enough password"
EXPORTS = Path(__file__).parent / "exports"

# Routes that change nothing an administrator answers for, and why. Each is a person's own
# thing, or asking a model (whose answers and measurements are their own record).
EXEMPT = {
    "auth.set_language": "the reader's own language: a preference of theirs",
    "settings.index": "the reader's own language and theme",
    "settings.create_preset": "a preset of the person's own (a system prompt they reuse)",
    "settings.edit_preset": "a preset of the person's own",
    "settings.delete_preset": "a preset of the person's own",
    "chat.create_conversation": "a conversation of the person's own",
    "chat.delete": "a conversation of the person's own",
    "chat.rename": "a conversation of the person's own",
    "chat.pin": "a conversation of the person's own",
    "chat.change_model": "a conversation of the person's own (which model it asks is checked)",
    "chat.change_settings": "a conversation of the person's own",
    "chat.change_thinking": "a conversation of the person's own",
    "chat.send_message": "asking a model: the message and its measurements are the record",
    "chat.edit": "asking a model again, in the person's own conversation",
    "chat.regenerate": "asking a model again, in the person's own conversation",
    "chat.select": "which version of an answer the person reads",
    "chat.feedback": "the person's rating of an answer (read on the dashboard)",
    "chat.stop": "the person stopping their own answer",
    "compare.answer": "asking models side by side: the answers' measurements are the record",
    "compare.stop": "the person stopping their own comparison",
    "api.generate": "asking a model by API key: the answer's measurements are the record",
    "api.compare": "asking models by API key",
    "openai.chat_completions": "asking a model by API key (OpenAI's shape)",
    "documents.upload": "an attachment to the person's own question, private to them",
    "documents.delete": "an attachment of the person's own",
    "api.upload_document": "an attachment of the person's own, by API key",
    "api.delete_document": "an attachment of the person's own, by API key (never a collection's)",
    "sharing.copy": "a copy into the reader's own conversations: the shared original is unchanged",
}


class World:
    """What a step needs, made on first use, directly in the database (no entry of its own) or
    through the pages before the count starts."""

    def __init__(self, app, engine) -> None:
        self.app = app
        self.engine = engine

    def client(self, username: str | None = None):
        client = self.app.test_client()
        if username:
            response = AuthActions(client).login(username)
            assert response.status_code == 302, f"{username} could not sign in"
        return client

    def account(self, username: str, **state) -> int:
        with self.app.app_context():
            user = create_user(username, PASSWORD)
            for name, value in state.items():
                setattr(user, name, value)
            db.session.commit()
            return user.id

    def made(self, thing) -> int:
        with self.app.app_context():
            db.session.add(thing)
            db.session.commit()
            return thing.id

    def id_of(self, username: str) -> int:
        with self.app.app_context():
            return db.session.scalar(sa.select(User.id).where(User.username == username))

    @cached_property
    def admin(self):
        client = self.app.test_client()
        AuthActions(client).register("admin")  # the first account: the administrator
        return client

    @cached_property
    def bob(self):
        self.admin  # noqa: B018 (the administrator is the first account)
        self.account("bob")
        return self.client("bob")

    @cached_property
    def collection(self) -> int:
        self.admin  # noqa: B018
        return self.made(Collection(name="Docs", owner_id=self.id_of("admin"), open_to_all=True))

    @cached_property
    def document(self) -> int:
        with self.app.app_context():
            owner = self.id_of("admin")
            return store.save(owner, "notes.txt", io.BytesIO(b"Bonjour."), collection_id=self.collection).id

    @cached_property
    def group(self) -> int:
        self.admin  # noqa: B018
        return self.made(Group(name="Ventes"))

    @cached_property
    def conversation(self) -> int:
        self.bob  # noqa: B018
        return self.made(Conversation(user_id=self.id_of("bob"), title="Plan", model="tiny"))

    def run(self, state: str, source: str = "page") -> int:
        self.admin  # noqa: B018
        return self.made(
            BenchmarkRun(
                uid=uuid.uuid4().hex,
                source=source,
                state=state,
                suite_id="essentiel",
                suite_name="Essentiel",
                suite=load_suites(self.app.config["BENCH_SUITES_DIR"])["essentiel"].as_dict(),
                models=["tiny"],
                start="warm",
                thinking="default",
            )
        )


def upload(name: str = "new.txt", content: bytes = b"Bonjour le monde.") -> tuple:
    return (io.BytesIO(content), name)


@dataclass
class Send:
    """The request that makes a change: by `who` ("admin", "bob", or None: a new visitor), and
    what to wait for after it (`then`), if anything."""

    who: str | None
    url: str
    data: dict | None = None
    headers: dict | None = None
    then: Callable[[], object] | None = None


@dataclass
class Step:
    """A change to make (`prepare` sets up what it needs and says how to send it), and the one
    entry it must leave: its action and who did it."""

    endpoint: str
    action: str
    actor: str
    prepare: Callable[[World], Send]
    variant: str = ""

    @property
    def id(self) -> str:
        return f"{self.endpoint}[{self.variant}]" if self.variant else self.endpoint


def _stop_answer(w: World) -> Send:
    stream = start_answer(w.bob, w.engine, words=300)
    stream.wait_for_tokens(1)
    return Send("admin", f"/admin/answers/{live_answer(w.app, stream.id).id}/stop", then=stream.join)


def _unload(w: World) -> Send:
    w.engine.unload = lambda model_id: True  # the scripted engine holds nothing to free
    return Send("admin", "/admin/models/unload", {"model": "tiny"})


def _key(w: World, username: str) -> tuple[int, str]:
    with w.app.app_context():
        record, key = keys.create(db.session.get(User, w.id_of(username)), "script")
        return record.id, key


def _api_upload(w: World) -> Send:
    key = _key(w, "admin")[1]
    url = f"/api/v1/collections/{w.collection}/documents"
    return Send(None, url, {"file": upload()}, headers={"Authorization": f"Bearer {key}"})


def _benchmark(w: World) -> Send:
    def run_ended() -> None:  # before the app does
        deadline = time.monotonic() + patience(20.0)
        while time.monotonic() < deadline:
            with w.app.app_context():
                states = set(db.session.scalars(sa.select(BenchmarkRun.state)))
            if states and not states & {"queued", "running"}:
                return
            time.sleep(0.05)

    form = {"models": ["tiny"], "suite": "essentiel", "repetitions": "1", "start": "warm"}
    return Send("admin", "/admin/benchmarks", form | {"thinking": "default"}, then=run_ended)


def _benchmark_import(w: World) -> Send:
    run = w.run("done")
    document = json.loads(w.admin.get("/admin/benchmarks/export.json").get_data())
    document["runs"] = [{**r, "uid": uuid.uuid4().hex} for r in document["runs"]]
    with w.app.app_context():  # as if from another server: this one's copy gone
        db.session.execute(sa.delete(BenchmarkRun).where(BenchmarkRun.id == run))
        db.session.commit()
    content = json.dumps(document).encode()
    return Send("admin", "/admin/benchmarks/import", {"file": upload("other.json", content)})


def _withdraw(w: World) -> Send:
    share = w.made(ConversationShare(conversation_id=w.conversation, user_id=w.id_of("admin")))
    return Send("bob", f"/conversations/{w.conversation}/shares/{share}/withdraw")


def _remove_member(w: World) -> Send:
    with w.app.app_context():
        db.session.add(GroupMember(group_id=w.group, user_id=w.id_of("bob")))
        db.session.commit()
    return Send("admin", f"/admin/groups/{w.group}/members/{w.id_of('bob')}/remove")


def _user_action(action: str, **state) -> Callable[[World], Send]:
    """The Users page's `action` on a new account in `state` (waiting, disabled, admin...)."""
    return lambda w: Send("admin", f"/admin/users/{w.account('dave', **state)}/{action}")


def _registration(w: World) -> Send:
    with w.app.app_context():
        from app.admin.users import registration_mode

        other = "closed" if registration_mode() != "closed" else "open"
    return Send("admin", "/admin/users/registration", {"mode": other})


def admin(url: str, data: dict | None = None) -> Send:
    return Send("admin", url, data)


def bob(url: str, data: dict | None = None) -> Send:
    return Send("bob", url, data)


def visitor(url: str, data: dict | None = None) -> Send:
    return Send(None, url, data)


QUOTAS = {"answers_per_day": "20", "tokens_per_day": "50000", "answers_at_once": "1"}
COLLECTION = {"description": "", "access": "all", "readers": ""}
GROUP = {"description": "", "directory_group": ""}
PASSWORDS = {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
OPEN_WEBUI = (EXPORTS / "openwebui-chats.json").read_bytes()

# fmt: off
WALK = [
    # Account events.
    Step("auth.login", "signin.ok", "bob",
         lambda w: visitor("/login", {"username": "bob", "password": PASSWORD})),
    Step("auth.logout", "signout", "bob", lambda w: bob("/logout")),
    Step("auth.register", "account.register", "carol",
         lambda w: visitor("/register", {"username": "carol", "password": PASSWORD, "confirm": PASSWORD})),
    Step("auth.change_password", "account.password_change", "bob",
         lambda w: bob("/account/password", PASSWORDS)),
    Step("api_keys.create", "apikey.create", "bob", lambda w: bob("/settings/api-keys", {"name": "script"})),
    Step("api_keys.revoke", "apikey.revoke", "bob",
         lambda w: bob(f"/settings/api-keys/{_key(w, 'bob')[0]}/revoke")),
    # The Users page.
    Step("admin.user_action", "account.approve", "admin", _user_action("approve", pending=True), "approve"),
    Step("admin.user_action", "account.disable", "admin", _user_action("disable"), "disable"),
    Step("admin.user_action", "account.enable", "admin", _user_action("enable", disabled=True), "enable"),
    Step("admin.user_action", "account.admin", "admin", _user_action("promote"), "promote"),
    Step("admin.user_action", "account.not_admin", "admin", _user_action("demote", is_admin=True), "demote"),
    Step("admin.user_action", "account.password_reset", "admin", _user_action("password"), "password"),
    Step("admin.user_knowledge", "account.knowledge", "admin",
         lambda w: admin(f"/admin/users/{w.id_of('bob')}/knowledge", {"manages_knowledge": "on"})),
    Step("admin.set_registration", "registration.mode", "admin", _registration),
    Step("admin.create_user", "account.create", "admin",
         lambda w: admin("/admin/users/new", {"username": "gina"})),
    Step("admin.delete_user", "account.delete", "admin",
         lambda w: admin(f"/admin/users/{w.id_of('bob')}/delete")),
    Step("admin.export_user", "account.export", "admin",
         lambda w: admin(f"/admin/users/{w.id_of('bob')}/export")),
    # Models and serving.
    Step("admin.model_settings", "model.settings", "admin",
         lambda w: admin("/admin/models/settings", {"model": "tiny", "enabled": "y", "temperature": "0.3"})),
    Step("admin.set_enabled", "model.settings", "admin",
         lambda w: admin("/admin/models/enabled", {"model": "other", "enabled": "0"})),
    Step("admin.set_default", "model.default", "admin",
         lambda w: admin("/admin/models/default", {"model": "other"})),
    Step("admin.set_prompt_cache", "serving.prompt_cache", "admin",
         lambda w: admin("/admin/models/prompt-cache", {"on": "0"})),
    Step("admin.unload", "model.unload", "admin", _unload),
    Step("admin.stop_answer", "answer.stop", "admin", _stop_answer),
    # Benchmarks.
    Step("bench.start", "benchmark.start", "admin", _benchmark),
    Step("bench.cancel", "benchmark.cancel", "admin",
         lambda w: admin(f"/admin/benchmarks/runs/{w.run('queued', source='cli')}/cancel")),
    Step("bench.delete", "benchmark.delete", "admin",
         lambda w: admin(f"/admin/benchmarks/runs/{w.run('done')}/delete")),
    Step("bench.import_results", "benchmark.import", "admin", _benchmark_import),
    # Groups and quotas.
    Step("groups.create", "group.create", "admin", lambda w: admin("/admin/groups", {"name": "Achats"})),
    Step("groups.update", "group.update", "admin",
         lambda w: admin(f"/admin/groups/{w.group}", {"name": "Ventes Sud"} | GROUP)),
    Step("groups.delete", "group.delete", "admin", lambda w: admin(f"/admin/groups/{w.group}/delete")),
    Step("groups.add_members", "group.members", "admin",
         lambda w: admin(f"/admin/groups/{w.group}/members", {"members": "bob"})),
    Step("groups.remove_member", "group.members", "admin", _remove_member),
    Step("groups.set_models", "group.models", "admin",
         lambda w: admin(f"/admin/groups/{w.group}/models", {"models": ["tiny"]})),
    Step("groups.set_collections", "group.collections", "admin",
         lambda w: admin(f"/admin/groups/{w.group}/collections", {"collections": [str(w.collection)]})),
    Step("quotas.group_limits", "group.quota", "admin",
         lambda w: admin(f"/admin/quotas/groups/{w.group}", QUOTAS)),
    Step("quotas.person_limits", "account.quota", "admin",
         lambda w: admin(f"/admin/quotas/users/{w.id_of('bob')}", QUOTAS)),
    # Knowledge bases.
    Step("knowledge.create", "collection.create", "admin",
         lambda w: admin("/knowledge/new", {"name": "Procédures"} | COLLECTION)),
    Step("knowledge.edit", "collection.update", "admin",
         lambda w: admin(f"/knowledge/{w.collection}/edit", {"name": "Docs RH"} | COLLECTION)),
    Step("knowledge.delete", "collection.delete", "admin",
         lambda w: admin(f"/knowledge/{w.collection}/delete")),
    Step("knowledge.upload", "document.upload", "admin",
         lambda w: admin(f"/knowledge/{w.collection}/documents", {"files": [upload()]})),
    Step("knowledge.replace", "document.replace", "admin",
         lambda w: admin(f"/knowledge/{w.collection}/documents/{w.document}/replace", {"file": upload()})),
    Step("knowledge.delete_document", "document.delete", "admin",
         lambda w: admin(f"/knowledge/{w.collection}/documents/{w.document}/delete")),
    Step("api.upload_to_collection", "document.upload", "admin", _api_upload),
    # Sharing and moving in.
    Step("sharing.share", "share.create", "bob",
         lambda w: bob(f"/conversations/{w.conversation}/shares", {"usernames": "admin"})),
    Step("sharing.withdraw", "share.withdraw", "bob", _withdraw),
    Step("sharing.import_conversations", "conversation.import", "bob",
         lambda w: bob("/import", {"file": upload("chats.json", OPEN_WEBUI)})),
    # The audit log itself.
    Step("audit.retention", "audit.retention", "admin",
         lambda w: admin("/admin/audit/retention", {"days": "30"})),
]
# fmt: on


def changing_endpoints(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules() if rule.methods & CHANGES}


def test_every_route_that_changes_something_is_walked_or_exempt(app):
    walked = {step.endpoint for step in WALK}
    unknown = sorted(changing_endpoints(app) - walked - set(EXEMPT))
    assert not unknown, (
        f"no audit step for {unknown}: add a Step to WALK in {__file__} (a valid change and the "
        "action its entry carries, recorded in the route's transaction), or an EXEMPT reason"
    )
    gone = sorted((walked | set(EXEMPT)) - changing_endpoints(app))
    assert not gone, f"steps for routes that no longer exist: {gone}"
    assert not walked & set(EXEMPT), "a route is both walked and exempt"


def entries(app, after: int) -> list[tuple[str, str]]:
    with app.app_context():
        return [
            (e.action, e.actor_name)
            for e in db.session.scalars(
                sa.select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id)
            )
        ]


def last_id(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.max(AuditEntry.id))) or 0


@pytest.mark.parametrize("step", WALK, ids=[step.id for step in WALK])
def test_each_change_leaves_exactly_one_audit_entry(app, engine, step):
    world = World(app, engine)
    clients = {"admin": world.admin, "bob": world.bob, None: world.client()}  # signed in before the count
    send = step.prepare(world)
    before = last_id(app)
    response = clients[send.who].post(send.url, data=send.data, headers=send.headers)
    if send.then:
        send.then()
    assert response.status_code < 400, f"{step.id}: {response.status_code} {response.get_data()[:300]}"
    assert entries(app, before) == [(step.action, step.actor)]
    # The entry reads on the admin's page: its action by name.
    page = world.client("admin").get("/admin/audit", query_string={"action": step.action})
    assert page.status_code == 200
    row = page.get_data(as_text=True).split(f'data-entry="{step.action}"')[1].split("</tr>")[0]
    with app.test_request_context():
        assert label(step.action) != step.action and label(step.action) in html.unescape(row)


def test_a_sign_in_refused_leaves_one_entry_whether_or_not_the_name_exists(app):
    World(app, None).admin  # noqa: B018
    for name in ("admin", "nobody"):
        before = last_id(app)
        response = app.test_client().post(
            "/login", data={"username": name, "password": "not the password at all"}
        )
        assert response.status_code == 401
        assert entries(app, before) == [("signin.fail", "")]
