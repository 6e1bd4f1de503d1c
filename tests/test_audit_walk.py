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
class Step:
    """A change `prepare` readies (returning the request that makes it), and its entry."""

    endpoint: str
    action: str
    actor: str
    prepare: Callable[[World], Callable[[], object]]
    name: str = ""

    @property
    def id(self) -> str:
        return self.name or self.endpoint


def _stop_answer(w: World):
    w.admin  # noqa: B018
    stream = start_answer(w.bob, w.engine, words=300)
    stream.wait_for_tokens(1)
    live = live_answer(w.app, stream.id)
    return lambda: (w.admin.post(f"/admin/answers/{live.id}/stop"), stream.join())[0]


def _unload(w: World):
    w.engine.unload = lambda model_id: True  # the scripted engine holds nothing to free
    return lambda: w.admin.post("/admin/models/unload", data={"model": "tiny"})


def _api_upload(w: World):
    with w.app.app_context():
        admin = db.session.get(User, w.id_of("admin")) if w.admin else None
        _record, key = keys.create(admin, "script")
    collection = w.collection
    return lambda: w.app.test_client().post(
        f"/api/v1/collections/{collection}/documents",
        data={"file": upload()},
        headers={"Authorization": f"Bearer {key}"},
    )


def _bob_key(w: World) -> int:
    w.bob  # noqa: B018
    with w.app.app_context():
        record, _key = keys.create(db.session.get(User, w.id_of("bob")), "script")
        return record.id


def _benchmark(w: World):
    def start():
        response = w.admin.post(
            "/admin/benchmarks",
            data={
                "models": ["tiny"],
                "suite": "essentiel",
                "repetitions": "1",
                "start": "warm",
                "thinking": "default",
                "judge": "",
            },
        )
        deadline = time.monotonic() + patience(20.0)  # its run ends before the app does
        while time.monotonic() < deadline:
            with w.app.app_context():
                states = set(db.session.scalars(sa.select(BenchmarkRun.state)))
            if states and not states & {"queued", "running"}:
                break
            time.sleep(0.05)
        return response

    w.admin  # noqa: B018
    return start


def _benchmark_import(w: World):
    w.admin  # noqa: B018
    run = w.run("done")
    raw = w.admin.get("/admin/benchmarks/export.json").get_data()
    document = json.loads(raw)
    document["runs"] = [{**r, "uid": uuid.uuid4().hex} for r in document["runs"] if r["uid"]]
    with w.app.app_context():  # as if from another server: this one's copy gone
        db.session.execute(sa.delete(BenchmarkRun).where(BenchmarkRun.id == run))
        db.session.commit()
    content = json.dumps(document).encode()
    return lambda: w.admin.post("/admin/benchmarks/import", data={"file": upload("other.json", content)})


def _share(w: World):
    w.admin  # noqa: B018
    conversation = w.conversation
    return lambda: w.bob.post(f"/conversations/{conversation}/shares", data={"usernames": "admin"})


def _withdraw(w: World):
    w.admin  # noqa: B018
    conversation = w.conversation
    share = w.made(ConversationShare(conversation_id=conversation, user_id=w.id_of("admin")))
    return lambda: w.bob.post(f"/conversations/{conversation}/shares/{share}/withdraw")


def _member(w: World):
    group = w.group
    w.bob  # noqa: B018
    with w.app.app_context():
        db.session.add(GroupMember(group_id=group, user_id=w.id_of("bob")))
        db.session.commit()
    return lambda: w.admin.post(f"/admin/groups/{group}/members/{w.id_of('bob')}/remove")


def _user_action(action: str, username: str, **state):
    def prepare(w: World):
        w.admin  # noqa: B018
        user_id = w.account(username, **state)
        return lambda: w.admin.post(f"/admin/users/{user_id}/{action}")

    return prepare


def _registration(w: World):
    w.admin  # noqa: B018
    with w.app.app_context():
        from app.admin.users import registration_mode

        other = "closed" if registration_mode() != "closed" else "open"
    return lambda: w.admin.post("/admin/users/registration", data={"mode": other})


QUOTAS = {"answers_per_day": "20", "tokens_per_day": "50000", "answers_at_once": "1"}

WALK = [
    # Account events.
    Step(
        "auth.login",
        "signin.ok",
        "bob",
        lambda w: (w.bob, lambda: w.client().post("/login", data={"username": "bob", "password": PASSWORD}))[
            1
        ],
    ),
    Step("auth.logout", "signout", "bob", lambda w: lambda: w.bob.post("/logout")),
    Step(
        "auth.register",
        "account.register",
        "carol",
        lambda w: (w.admin, lambda: AuthActions(w.client()).register("carol"))[1],
    ),
    Step(
        "auth.change_password",
        "account.password_change",
        "bob",
        lambda w: (
            lambda: w.bob.post(
                "/account/password",
                data={"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            )
        ),
    ),
    Step(
        "api_keys.create",
        "apikey.create",
        "bob",
        lambda w: lambda: w.bob.post("/settings/api-keys", data={"name": "script"}),
    ),
    Step(
        "api_keys.revoke",
        "apikey.revoke",
        "bob",
        lambda w: (lambda key: lambda: w.bob.post(f"/settings/api-keys/{key}/revoke"))(_bob_key(w)),
    ),
    # The Users page.
    Step(
        "admin.user_action",
        "account.approve",
        "admin",
        _user_action("approve", "dave", pending=True),
        "admin.user_action[approve]",
    ),
    Step(
        "admin.user_action",
        "account.disable",
        "admin",
        _user_action("disable", "dave"),
        "admin.user_action[disable]",
    ),
    Step(
        "admin.user_action",
        "account.enable",
        "admin",
        _user_action("enable", "dave", disabled=True),
        "admin.user_action[enable]",
    ),
    Step(
        "admin.user_action",
        "account.admin",
        "admin",
        _user_action("promote", "dave"),
        "admin.user_action[promote]",
    ),
    Step(
        "admin.user_action",
        "account.not_admin",
        "admin",
        _user_action("demote", "dave", is_admin=True),
        "admin.user_action[demote]",
    ),
    Step(
        "admin.user_action",
        "account.password_reset",
        "admin",
        _user_action("password", "dave"),
        "admin.user_action[password]",
    ),
    Step(
        "admin.user_knowledge",
        "account.knowledge",
        "admin",
        lambda w: (
            w.bob,
            lambda: w.admin.post(
                f"/admin/users/{w.id_of('bob')}/knowledge", data={"manages_knowledge": "on"}
            ),
        )[1],
    ),
    Step("admin.set_registration", "registration.mode", "admin", _registration),
    Step(
        "admin.create_user",
        "account.create",
        "admin",
        lambda w: lambda: w.admin.post("/admin/users/new", data={"username": "gina"}),
    ),
    Step(
        "admin.delete_user",
        "account.delete",
        "admin",
        lambda w: (w.bob, lambda: w.admin.post(f"/admin/users/{w.id_of('bob')}/delete"))[1],
    ),
    Step(
        "admin.export_user",
        "account.export",
        "admin",
        lambda w: (w.bob, lambda: w.admin.post(f"/admin/users/{w.id_of('bob')}/export"))[1],
    ),
    # Models and serving.
    Step(
        "admin.model_settings",
        "model.settings",
        "admin",
        lambda w: (
            w.admin,
            lambda: w.admin.post(
                "/admin/models/settings", data={"model": "tiny", "enabled": "y", "temperature": "0.3"}
            ),
        )[1],
    ),
    Step(
        "admin.set_enabled",
        "model.settings",
        "admin",
        lambda w: (
            w.admin,
            lambda: w.admin.post("/admin/models/enabled", data={"model": "other", "enabled": "0"}),
        )[1],
    ),
    Step(
        "admin.set_default",
        "model.default",
        "admin",
        lambda w: (w.admin, lambda: w.admin.post("/admin/models/default", data={"model": "other"}))[1],
    ),
    Step(
        "admin.set_prompt_cache",
        "serving.prompt_cache",
        "admin",
        lambda w: (w.admin, lambda: w.admin.post("/admin/models/prompt-cache", data={"on": "0"}))[1],
    ),
    Step("admin.unload", "model.unload", "admin", lambda w: (w.admin, _unload(w))[1]),
    Step("admin.stop_answer", "answer.stop", "admin", _stop_answer),
    # Benchmarks.
    Step("bench.start", "benchmark.start", "admin", _benchmark),
    Step(
        "bench.cancel",
        "benchmark.cancel",
        "admin",
        lambda w: (lambda run: lambda: w.admin.post(f"/admin/benchmarks/runs/{run}/cancel"))(
            w.run("queued", source="cli")
        ),
    ),
    Step(
        "bench.delete",
        "benchmark.delete",
        "admin",
        lambda w: (lambda run: lambda: w.admin.post(f"/admin/benchmarks/runs/{run}/delete"))(w.run("done")),
    ),
    Step("bench.import_results", "benchmark.import", "admin", _benchmark_import),
    # Groups and quotas.
    Step(
        "groups.create",
        "group.create",
        "admin",
        lambda w: (w.admin, lambda: w.admin.post("/admin/groups", data={"name": "Achats"}))[1],
    ),
    Step(
        "groups.update",
        "group.update",
        "admin",
        lambda w: (
            lambda g: (
                lambda: w.admin.post(
                    f"/admin/groups/{g}",
                    data={"name": "Ventes Sud", "description": "", "directory_group": ""},
                )
            )
        )(w.group),
    ),
    Step(
        "groups.delete",
        "group.delete",
        "admin",
        lambda w: (lambda g: lambda: w.admin.post(f"/admin/groups/{g}/delete"))(w.group),
    ),
    Step(
        "groups.add_members",
        "group.members",
        "admin",
        lambda w: (
            lambda g: (w.bob, lambda: w.admin.post(f"/admin/groups/{g}/members", data={"members": "bob"}))[1]
        )(w.group),
    ),
    Step("groups.remove_member", "group.members", "admin", _member),
    Step(
        "groups.set_models",
        "group.models",
        "admin",
        lambda w: (lambda g: lambda: w.admin.post(f"/admin/groups/{g}/models", data={"models": ["tiny"]}))(
            w.group
        ),
    ),
    Step(
        "groups.set_collections",
        "group.collections",
        "admin",
        lambda w: (
            lambda g, c: (
                lambda: w.admin.post(f"/admin/groups/{g}/collections", data={"collections": [str(c)]})
            )
        )(w.group, w.collection),
    ),
    Step(
        "quotas.group_limits",
        "group.quota",
        "admin",
        lambda w: (lambda g: lambda: w.admin.post(f"/admin/quotas/groups/{g}", data=QUOTAS))(w.group),
    ),
    Step(
        "quotas.person_limits",
        "account.quota",
        "admin",
        lambda w: (w.bob, lambda: w.admin.post(f"/admin/quotas/users/{w.id_of('bob')}", data=QUOTAS))[1],
    ),
    # Knowledge bases.
    Step(
        "knowledge.create",
        "collection.create",
        "admin",
        lambda w: (
            w.admin,
            lambda: w.admin.post(
                "/knowledge/new",
                data={"name": "Procédures", "description": "", "access": "all", "readers": ""},
            ),
        )[1],
    ),
    Step(
        "knowledge.edit",
        "collection.update",
        "admin",
        lambda w: (
            lambda c: (
                lambda: w.admin.post(
                    f"/knowledge/{c}/edit",
                    data={"name": "Docs RH", "description": "", "access": "all", "readers": ""},
                )
            )
        )(w.collection),
    ),
    Step(
        "knowledge.delete",
        "collection.delete",
        "admin",
        lambda w: (lambda c: lambda: w.admin.post(f"/knowledge/{c}/delete"))(w.collection),
    ),
    Step(
        "knowledge.upload",
        "document.upload",
        "admin",
        lambda w: (lambda c: lambda: w.admin.post(f"/knowledge/{c}/documents", data={"files": [upload()]}))(
            w.collection
        ),
    ),
    Step(
        "knowledge.replace",
        "document.replace",
        "admin",
        lambda w: (
            lambda c, d: (
                lambda: w.admin.post(f"/knowledge/{c}/documents/{d}/replace", data={"file": upload()})
            )
        )(w.collection, w.document),
    ),
    Step(
        "knowledge.delete_document",
        "document.delete",
        "admin",
        lambda w: (lambda c, d: lambda: w.admin.post(f"/knowledge/{c}/documents/{d}/delete"))(
            w.collection, w.document
        ),
    ),
    Step("api.upload_to_collection", "document.upload", "admin", _api_upload),
    # Sharing and moving in.
    Step("sharing.share", "share.create", "bob", _share),
    Step("sharing.withdraw", "share.withdraw", "bob", _withdraw),
    Step(
        "sharing.import_conversations",
        "conversation.import",
        "bob",
        lambda w: (
            w.bob,
            lambda: w.bob.post(
                "/import",
                data={"file": upload("chats.json", (EXPORTS / "openwebui-chats.json").read_bytes())},
            ),
        )[1],
    ),
    # The audit log itself.
    Step(
        "audit.retention",
        "audit.retention",
        "admin",
        lambda w: (w.admin, lambda: w.admin.post("/admin/audit/retention", data={"days": "30"}))[1],
    ),
]


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
    world.admin, world.bob  # noqa: B018 (both accounts and their sign-ins before the count)
    send = step.prepare(world)
    before = last_id(app)
    response = send()
    assert response.status_code < 400, (
        f"{step.id}: {response.status_code} {response.get_data(as_text=True)[:300]}"
    )
    assert entries(app, before) == [(step.action, step.actor)]
    # The entry reads on the admin's page: its action by name, its details without a stored name.
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
