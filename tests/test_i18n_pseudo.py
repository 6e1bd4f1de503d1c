"""Every word a page shows goes through the catalogue.

A pseudo-locale ("eo", which Babel knows and the app does not ship) translates every msgid to
"⟦msgid⟧". The app is run in it, every page of the URL map is rendered as a user, an admin and
a visitor, and every visible text, tooltip, placeholder, label for screen readers, button value,
confirmation and word handed to the scripts (`data-i18n`, `<meta name="ui-strings">`) must be
inside the markers, or be no words at all: the data the test made (names, titles, messages,
models, the machine), numbers, units, symbols, the app's name, language codes.

The pseudo catalogue is made from the committed messages.pot and a fresh extraction of the
code, so a string wrapped today is seen as wrapped before anyone re-extracts the catalogue (its
translation is test_pages.py's business).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import uuid
from html.parser import HTMLParser
from pathlib import Path

import flask_migrate
import pytest
from argon2 import PasswordHasher
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from werkzeug.routing import AnyConverter

from app import create_app
from app.admin.services import load_preferences
from app.auth import services as auth_services
from app.bench.suites import load_suites
from app.extensions import db
from app.llm import LLMServices
from app.llm.catalogue import Catalogue
from app.llm.scheduler import Scheduler
from app.llm.types import EngineError
from app.models import (
    AuditEntry,
    BenchmarkRun,
    Collection,
    Conversation,
    Document,
    Group,
    Message,
    ModelSetting,
    Preset,
    User,
)
from config import TestConfig
from tests.conftest import PASSWORD
from tests.test_bench_pages import WAIT_SECONDS, BenchEngine
from tests.url_map import sweep

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "app" / "translations"
PSEUDO = "eo"
OPEN, CLOSE = "⟦", "⟧"
MARKED = re.compile(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")  # innermost first: arguments can be marked too
WORD = re.compile(r"[^\W\d_]+")
# Letters that are not words to translate: units, and a product's name.
NOT_WORDS = {"s", "ms", "min", "GB", "MB", "KB", "tok", "Python"}
# Attributes a person reads or hears; `value` only on buttons (below).
READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-confirm"}
BUTTON_INPUTS = {"submit", "button", "reset"}
HIDDEN_ELEMENTS = {"script", "style"}  # <template> is read: chat.js clones it into the page


# -- the pseudo catalogue ----------------------------------------------------------------------
def _fresh_template() -> Catalog:
    """messages.pot, plus whatever the code wraps now (the way babel.cfg says to extract it)."""
    with open(TRANSLATIONS / "messages.pot", "rb") as f:
        template = read_po(f)
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    for method, pattern in re.findall(r"^\[(\w+):\s*([^\]]+)\]", (ROOT / "babel.cfg").read_text(), re.M):
        top, _slash, rest = pattern.strip().partition("/")
        found = extract_from_dir(str(ROOT / top), [(rest, method)], keywords=keywords)
        for _file, _line, message, _comments, context in found:
            if message and not template.get(message, context):
                template.add(message, context=context)
    return template


def pseudo(text: str) -> str:
    """The msgid between markers, left as it is: its %(name)s and {name} placeholders are
    filled in later, by gettext and by the scripts."""
    return f"{OPEN}{text}{CLOSE}"


@pytest.fixture(scope="session")
def translations_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("translations")
    for language in ("fr", "en"):
        shutil.copytree(TRANSLATIONS / language, folder / language)
    catalog = Catalog(locale=PSEUDO)
    for message in _fresh_template():
        if not message.id:
            continue
        if message.pluralizable:
            singular, plural = message.id[0], message.id[1]
            string = (pseudo(singular), *[pseudo(plural)] * (catalog.num_plurals - 1))
        else:
            string = pseudo(message.id)
        catalog.add(message.id, string, context=message.context, flags=message.flags - {"fuzzy"})
    out = folder / PSEUDO / "LC_MESSAGES"
    out.mkdir(parents=True)
    with open(out / "messages.po", "wb") as f:
        write_po(f, catalog)
    with open(out / "messages.mo", "wb") as f:
        write_mo(f, catalog)
    return folder


# -- the app, its data and its pages -----------------------------------------------------------
class PageEngine(BenchEngine):
    """The benchmark pages' engine (suites' answers, a judge, a reasoning model) that can fail."""

    fail_with: str | None = None

    def stream_chat(self, model_id, messages, options, cancel):
        if self.fail_with:
            raise EngineError(self.fail_with, "scripted failure")
        yield from super().stream_chat(model_id, messages, options, cancel)


class Site:
    """The app in the pseudo-locale, the data made in it, and the strings that are data."""

    def __init__(self, app, engine: PageEngine) -> None:
        self.app = app
        self.engine = engine
        self.data: set[str] = set()  # what users and models wrote, and names of things
        self.ids: dict[str, list] = {}
        self.clients: dict[str, object] = {}

    def client(self, name: str, language: str = PSEUDO, register: bool = True):
        client = self.app.test_client()
        client.post("/language", data={"lang": language})
        if register:
            response = client.post(
                "/register", data={"username": name, "password": PASSWORD, "confirm": PASSWORD}
            )
            assert response.status_code in (302, 202), response.get_data(as_text=True)[:500]
            self.data.add(name)
            with self.app.app_context():  # a signed-in user's stored language, where it counts
                user = db.session.scalar(db.select(User).filter_by(username=name))
                if hasattr(user, "language"):
                    user.language = language
                    db.session.commit()
        self.clients[name] = client
        return client


def _new_conversation(client, model: str, title: str, **body) -> int:
    response = client.post(
        "/conversations", json={"model": model, **body}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 201, response.data
    conversation_id = response.json["id"]
    client.post(f"/conversations/{conversation_id}/rename", data={"title": title})
    return conversation_id


def _send(client, conversation_id: int, content: str) -> str:
    response = client.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": content},
        headers={"Accept": "text/event-stream"},
    )
    return response.get_data(as_text=True)


def _add_answers(app, conversation_id: int) -> None:
    """Answers in the states a stream leaves behind, with the figures a page shows."""
    stats = {
        "tokens_per_second": 12.5,
        "first_token_seconds": 0.4,
        "first_answer_seconds": 2.1,
        "thinking_tokens": 30,
        "dropped_messages": 2,
    }
    with app.app_context():
        conversation = db.session.get(Conversation, conversation_id)
        parent = conversation.messages[-1].id if conversation.messages else None
        for state in ("stopped", "disconnected", "interrupted", "generating"):
            question = Message(
                conversation_id=conversation_id, parent_id=parent, role="user", content=f"Question {state}"
            )
            db.session.add(question)
            db.session.flush()
            answer = Message(
                conversation_id=conversation_id,
                parent_id=question.id,
                role="assistant",
                content=f"Réponse {state}",
                thinking="Je réfléchis.",
                state=state,
                model="thinker",
                stats=stats,
            )
            db.session.add(answer)
            db.session.flush()
            parent = answer.id
        conversation.leaf_id = parent
        db.session.commit()


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.fixture(scope="module")
def site(translations_dir, tmp_path_factory):
    # Passwords hashed cheaply here: this test is about words, and argon2's real cost (about a
    # second a hash) would be most of its time. Put back afterwards.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth_services, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        yield _make_site(translations_dir, tmp_path_factory.mktemp("pseudo-site"))


def _make_site(translations_dir: Path, folder: Path) -> Site:
    class PseudoConfig(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{folder / 'pseudo.sqlite3'}"
        MODELS_DIR = folder / "models"
        DOCUMENTS_DIR = folder / "documents"
        LANGUAGES = ("fr", "en", PSEUDO)
        BABEL_TRANSLATION_DIRECTORIES = str(translations_dir)

    engine = PageEngine()
    catalogue = Catalogue([engine], default_model="tiny", preferences=load_preferences)
    app = create_app(PseudoConfig, llm_services=LLMServices(catalogue, Scheduler(catalogue)))

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    with app.app_context():
        flask_migrate.upgrade()
    s = Site(app, engine)
    s.data.update(
        {"tiny", "other", "thinker", "Tiny", "Other", "Thinker", engine.name, "Correct.", "Bonjour."}
    )

    admin = s.client("margot")
    # A conversation: an answer with thinking, a failed one, then stopped and cut-short ones.
    talk = _new_conversation(admin, "thinker", "Recette de la tarte", think="on")
    s.data.update({"Recette de la tarte", "Une recette de tarte ?", "Et la pâte ?", "Let me think."})
    _send(admin, talk, "Une recette de tarte ?")
    engine.fail_with = "generation_failed"
    _send(admin, talk, "Et la pâte ?")
    engine.fail_with = None
    _add_answers(app, talk)
    for state in ("stopped", "disconnected", "interrupted", "generating"):
        s.data.update({f"Question {state}", f"Réponse {state}"})
    s.data.add("Je réfléchis.")
    plain = _new_conversation(admin, "tiny", "Voyage à Lyon")
    s.data.add("Voyage à Lyon")
    _send(admin, plain, "Bonjour !")
    s.data.add("Bonjour !")

    # A benchmark with a judge and a reasoning model thinking on and off.
    response = admin.post(
        "/admin/benchmarks",
        data={
            "models": ["tiny", "thinker"],
            "suite": "essentiel",
            "repetitions": "1",
            "start": "warm",
            "thinking": "both",
            "judge": "other",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert app.extensions["bench"].idle.wait(WAIT_SECONDS), "the benchmark did not end"
    with app.app_context():
        runs = list(db.session.scalars(db.select(BenchmarkRun)))
        # A run that never started (no machine yet, no result) and one that failed.
        for state, error in (("queued", ""), ("failed", "scripted failure")):
            extra = BenchmarkRun(
                uid=uuid.uuid4().hex,
                source="cli",
                state=state,
                suite_id="essentiel",
                suite_name=runs[0].suite_name,
                suite={},
                models=["tiny"],
                start="cold",
                thinking="default",
                error=error,
            )
            db.session.add(extra)
            db.session.commit()
            runs.append(extra)
        for run in runs:
            s.data.update(_strings(run.machine) + _strings(run.suite) + [run.suite_name, run.machine_label])
            for r in run.results:
                s.data.update([r.prompt_name, r.answer, r.thinking_text, r.judge_reason or "", r.engine])
        s.ids["run_id"] = [run.id for run in runs]
        s.ids["conversation_id"] = [talk, plain]
        # An answer of hers: its events page, once the answer is over, says so in her language.
        s.ids["message_id"] = [
            db.session.scalar(
                db.select(Message.id).where(Message.conversation_id == talk, Message.role == "assistant")
            )
        ]
        margot = db.session.scalar(db.select(User).filter_by(username="margot"))
        preset = Preset(
            user_id=margot.id, name="Traductrice", system_prompt="Traduis en anglais.", model="tiny"
        )
        db.session.add(preset)
        db.session.commit()
        s.ids["preset_id"] = [preset.id]
        s.data.update({"Traductrice", "Traduis en anglais."})
        db.session.add(ModelSetting(model_id="gone", enabled=False))  # a model no longer found
        db.session.commit()
        s.data.add("gone")
        s.data.add("scripted failure")  # the failed run's error, as a tool wrote it

    # A knowledge base with a document in it (its page, its states, the document itself).
    admin.post("/knowledge/new", data={"name": "Procédures", "description": "Les consignes", "access": "all"})
    with app.app_context():
        collection_id = db.session.scalar(db.select(Collection.id))
    admin.post(
        f"/knowledge/{collection_id}/documents",
        data={"files": [(io.BytesIO(b"# Consignes\n\nLe badge se porte visible."), "consignes.md")]},
        content_type="multipart/form-data",
    )
    with app.app_context():
        s.ids["collection_id"] = [collection_id]
        s.ids["document_id"] = [db.session.scalar(db.select(Document.id))]
    s.data.update({"Procédures", "Les consignes", "consignes.md", "md", "margot"})

    # Another user, a pending one (approval), and a new password shown to the admin once.
    bruno = s.client("bruno")
    s.ids["bruno_conversation"] = [_new_conversation(bruno, "other", "Idées de cadeaux")]
    s.data.add("Idées de cadeaux")
    # Margot's conversation shared with him: his "Shared with me" and its read-only page.
    admin.post(f"/conversations/{s.ids['conversation_id'][0]}/shares", data={"usernames": "bruno"})
    s.data.add("bruno")
    s.client("lea", language="fr")  # for the real catalogues
    admin.post("/admin/users/registration", data={"mode": "approval"})
    s.client("chloe")
    with app.app_context():
        bruno_id = db.session.scalar(db.select(User.id).filter_by(username="bruno"))
    s.ids["bruno_id"] = [bruno_id]
    # A group mapped to a directory group, Bruno chosen by hand, a model kept for it: its page.
    directory = "cn=juristes,ou=groups,dc=example,dc=org"
    group = {"name": "Juristes", "description": "Le service juridique", "directory_group": directory}
    admin.post("/admin/groups", data=group)
    with app.app_context():
        group_id = db.session.scalar(db.select(Group.id).filter_by(name="Juristes"))
    admin.post(f"/admin/groups/{group_id}/members", data={"members": "bruno"})
    admin.post(f"/admin/groups/{group_id}/models", data={"models": ["other"]})
    s.ids["group_id"] = [group_id]
    s.data.update(group.values())
    for suite in load_suites(app.config["BENCH_SUITES_DIR"]).values():  # the admin's files
        s.data.update([suite.name, suite.description, *(p.name for p in suite.prompts)])
    s.data = {" ".join(d.split()) for d in s.data if d and d.strip()}
    return s


# -- reading a page ----------------------------------------------------------------------------
class Reader(HTMLParser):
    """The strings of a page a person reads or hears, each with where it was found."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attributes.items():
            if value is None:
                continue
            if name in READ_ATTRIBUTES:
                self.found.append((f"<{tag} {name}>", value))
            elif name == "value" and (tag == "button" or attributes.get("type") in BUTTON_INPUTS):
                self.found.append((f"<{tag} value>", value))
            elif name == "data-i18n" or (
                tag == "meta" and name == "content" and attributes.get("name") == "ui-strings"
            ):
                self.found += [(f"<{tag} {name}> JSON", s) for s in _strings(json.loads(value))]
        if tag in HIDDEN_ELEMENTS:
            self.hidden += 1

    def handle_endtag(self, tag):
        if tag in HIDDEN_ELEMENTS:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden and data.strip():
            self.found.append(("text", data))


def page_strings(html: str) -> list[tuple[str, str]]:
    reader = Reader()
    reader.feed(html)
    reader.close()
    return [(where, " ".join(text.split())) for where, text in reader.found if text.strip()]


def unmarked_words(text: str, data_pattern: re.Pattern | None, not_words: set[str]) -> list[str]:
    """The words of `text` left once the translated parts and the data are taken out."""
    while True:
        stripped = MARKED.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    if data_pattern is not None:
        text = data_pattern.sub(" ", text)
    return [w for w in WORD.findall(text) if w not in not_words]


def data_pattern(data: set[str]) -> re.Pattern:
    longest_first = sorted(data, key=len, reverse=True)
    return re.compile("|".join(rf"(?<!\w){re.escape(d)}(?!\w)" for d in longest_first))


# -- the sweep ---------------------------------------------------------------------------------
def _pages(site: Site) -> list[tuple[str, str, object]]:
    """(who, url, response) for every GET page of the URL map, and the few pages a GET alone
    does not reach (errors, forms refused, a query string)."""
    app = site.app
    admin, bruno = site.clients["margot"], site.clients["bruno"]
    pages = []
    values = {
        name: site.ids[name]
        for name in ("conversation_id", "run_id", "preset_id", "message_id", "collection_id", "document_id")
    }
    values["group_id"] = site.ids["group_id"]
    values["user_id"] = site.ids["bruno_id"]  # the confirmation before deleting him (a GET: nothing goes)
    rules = [
        r for r in app.url_map.iter_rules() if "GET" in r.methods and r.endpoint not in ("static", "boom")
    ]
    unfilled = [
        f"{r.rule}: {name}"
        for r in rules
        for name in r.arguments
        if name not in values and not isinstance(r._converters[name], AnyConverter)
    ]
    assert not unfilled, f"give the sweep ids for these parts of URLs: {unfilled}"
    for _rule, method, url in sweep(app, rules, values):
        if method == "GET":
            # Read whole and closed: a streamed page (the audit log's CSV) left open keeps its
            # request's context pushed, and the next requests of this thread ran in it, as the
            # account it had signed in (Bruno's pages came out as Margot's).
            page = admin.get(url)
            page.get_data()
            page.close()
            pages.append(("admin", url, page))
    extra_admin = [
        "/admin/models/settings?model=tiny",
        "/admin/models/settings?model=gone",
        "/admin/dashboard?period=7d&alone=1",
        "/admin/benchmarks?suite=essentiel",
        "/no/such/page",
        "/boom",
    ]
    pages += [("admin", url, admin.get(url)) for url in extra_admin]
    pages += _accounts_made_and_deleted(site, admin)
    settings = admin.post("/admin/models/settings", data={"model": "tiny", "temperature": "5"})
    bench = admin.post("/admin/benchmarks", data={"suite": "essentiel", "repetitions": "0"})
    pages += [("admin", "POST /admin/models/settings (refused)", settings)]
    pages += [("admin", "POST /admin/benchmarks (refused)", bench)]
    # A share to nobody, an import of no export: refused, saying why.
    shared_id = site.ids["conversation_id"][0]
    site.data.add("personne")
    refused_share = admin.post(f"/conversations/{shared_id}/shares", data={"usernames": "personne"})
    refused_import = admin.post(
        "/import", data={"file": (io.BytesIO(b"{}"), "x.json")}, content_type="multipart/form-data"
    )
    pages += [("admin", "POST /conversations/<id>/shares (refused)", refused_share)]
    pages += [("admin", "POST /import (refused)", refused_import)]
    for url in (
        "/",
        f"/c/{site.ids['bruno_conversation'][0]}",
        "/shared",
        f"/shared/{shared_id}",
        "/compare",
        "/account/password",
        "/admin/models",
    ):
        pages.append(("user", url, bruno.get(url)))
        assert pages[-1][2].status_code == (403 if url.startswith("/admin") else 200), f"bruno {url}"
    pages.append(
        ("user", "POST /account/password (refused)", bruno.post("/account/password", data={"current": "x"}))
    )
    # The new password, shown once on the users page (it signs Bruno out: last).
    shown = admin.post(f"/admin/users/{site.ids['bruno_id'][0]}/password", follow_redirects=True)
    site.data.update(re.findall(r"<code[^>]*>([^<]+)</code>", shown.get_data(as_text=True)))
    pages.append(("admin", "POST /admin/users/<bruno>/password", shown))
    visitor = site.client("visitor", register=False)
    for url in ("/login", "/register", "/no/such/page"):
        pages.append(("visitor", url, visitor.get(url)))
        assert pages[-1][2].status_code in (200, 404), f"visitor {url}"
    refused = [
        (
            "POST /login (wrong)",
            visitor.post("/login", data={"username": "margot", "password": "wrong password!"}),
        ),
        ("POST /login (pending)", visitor.post("/login", data={"username": "chloe", "password": PASSWORD})),
        (
            "POST /register (short)",
            visitor.post("/register", data={"username": "x", "password": "court", "confirm": "autre"}),
        ),
    ]
    pages += [("visitor", url, response) for url, response in refused]
    # What the admin's actions say on the page they lead back to (flashed messages).
    queued, _failed = site.ids["run_id"][-2:]
    bruno_id = site.ids["bruno_id"][0]
    actions = [
        ("/admin/models/enabled", {"model": "other", "enabled": "0"}),
        ("/admin/models/default", {"model": "other"}),  # refused: not offered
        ("/admin/models/enabled", {"model": "other", "enabled": "1"}),
        ("/admin/models/default", {"model": "other"}),
        ("/admin/models/default", {"model": "tiny"}),
        ("/admin/models/unload", {"model": "tiny"}),
        ("/admin/models/settings", {"model": "tiny", "temperature": "0.5"}),
        ("/admin/users/registration", {"mode": "nonsense"}),
        ("/admin/users/registration", {"mode": "open"}),
        (f"/admin/users/{bruno_id}/promote", {}),
        (f"/admin/users/{bruno_id}/demote", {}),
        (f"/admin/users/{bruno_id}/disable", {}),
        (f"/admin/users/{bruno_id}/enable", {}),
        (f"/admin/benchmarks/runs/{queued}/delete", {}),  # refused: not ended
        (f"/admin/benchmarks/runs/{queued}/cancel", {}),
        (f"/admin/benchmarks/runs/{queued}/cancel", {}),  # refused: ended
        (f"/admin/benchmarks/runs/{queued}/delete", {}),
        ("/admin/benchmarks/import", {}),  # refused: no file
    ]
    for url, data in actions:
        pages.append(("admin", f"POST {url} {data}", admin.post(url, data=data, follow_redirects=True)))
    admin.post("/admin/users/registration", data={"mode": "closed"})
    pages.append(("visitor", "/register (closed)", visitor.get("/register")))
    admin.post("/admin/users/registration", data={"mode": "approval"})
    return pages


def _accounts_made_and_deleted(site: Site, admin) -> list[tuple[str, str, object]]:
    """An account the admin makes (its one-time password's page), one refused, the pages its
    owner sees until choosing a password, the accounts waiting, and the account deleted."""
    made = admin.post("/admin/users/new", data={"username": "lucie"})
    one_time = re.search(r"data-password>([^<]+)<", made.get_data(as_text=True))[1]
    site.data.update({"lucie", one_time})
    lucie = site.client("lucie", register=False)
    lucie.post("/login", data={"username": "lucie", "password": one_time})
    pages = [
        ("admin", "POST /admin/users/new", made),
        ("admin", "POST /admin/users/new (refused)", admin.post("/admin/users/new", data={"username": "x"})),
        ("admin", "/admin/users?show=pending", admin.get("/admin/users?show=pending")),
        ("user", "/account/password (must change)", lucie.get("/account/password")),
    ]
    users_page = admin.get("/admin/users").text
    lucie_id = re.search(r'data-user="lucie".*?/admin/users/(\d+)/delete', users_page, re.S)[1]
    deleted = admin.post(f"/admin/users/{lucie_id}/delete", follow_redirects=True)
    return pages + [("admin", "POST /admin/users/<lucie>/delete", deleted)]


def _audit_data(app) -> set[str]:
    """What the audit log shows as it was stored: an action's code beside its name, targets,
    who and from where, the values in details (their fields' names are translated)."""

    def values(item):
        if isinstance(item, dict):
            for value in item.values():
                yield from values(value)
        elif isinstance(item, list):
            for value in item:
                yield from values(value)
        elif isinstance(item, str):
            yield item

    with app.app_context():
        entries = db.session.scalars(db.select(AuditEntry)).all()
        return {text for e in entries for text in (e.action, e.target, e.actor_name, *values(e.details))}


def test_every_word_of_every_page_comes_from_the_catalogue(site):
    pages = _pages(site)
    site.data |= _audit_data(site.app)
    pattern = data_pattern(site.data)
    languages = site.app.config["LANGUAGES"]
    endonyms = {Locale.parse(code).get_display_name(code) for code in languages}  # "français"
    not_words = (
        NOT_WORDS | {site.app.config["APP_NAME"], *languages} | {w for e in endonyms for w in (e, e.title())}
    )
    offenders: dict[tuple[str, str], list[str]] = {}
    broken, html_pages = [], 0
    for who, url, response in pages:
        if response.status_code >= 500 and url != "/boom":
            broken.append(f"{who} {url}: {response.status_code}")
        if response.mimetype != "text/html" or 300 <= response.status_code < 400:
            continue  # data for scripts, files, or a redirect (werkzeug's own words)
        html_pages += 1
        html = response.get_data(as_text=True)
        assert f'<html lang="{PSEUDO}"' in html, f"{who} {url} is not in the pseudo-locale"
        for where, text in page_strings(html):
            if unmarked_words(text, pattern, not_words):
                offenders.setdefault((where, text), []).append(f"{who} {url}")
    assert html_pages >= 25, f"only {html_pages} pages: is the URL map all there?"
    report = [
        f"{where} {text!r}  ({', '.join(urls[:6])}{' …' if len(urls) > 6 else ''})"
        for (where, text), urls in sorted(offenders.items())
    ]
    assert not broken and not report, "\n".join(
        [f"pages that failed: {broken}"] * bool(broken) + ["words shown without a translation:", *report]
    )


def test_the_checker_sees_an_unwrapped_word():
    pattern = data_pattern({"Voyage à Lyon", "tiny"})
    assert unmarked_words("⟦Thought for 2.1 s⟧", pattern, NOT_WORDS) == []
    assert unmarked_words("⟦judge: ⟦on⟧⟧ · Voyage à Lyon · 3.2 tok/s · 1.20 GB", pattern, NOT_WORDS) == []
    assert unmarked_words("Delete ⟦this⟧ tiny", pattern, NOT_WORDS) == ["Delete"]
    assert unmarked_words("tinyfied", pattern, NOT_WORDS) == ["tinyfied"]
    strings = page_strings(
        '<button title="Esc" value="x">⟦Stop⟧</button><template><p>Hello</p></template>'
        '<script>var a = "words";</script><meta name="ui-strings" content=\'{"a": "Copy"}\'>'
    )
    assert strings == [
        ("<button title>", "Esc"),
        ("<button value>", "x"),
        ("text", "⟦Stop⟧"),
        ("text", "Hello"),
        ("<meta content> JSON", "Copy"),
    ]


# -- the real catalogues -----------------------------------------------------------------------
def test_french_pages_show_the_french_catalogue_not_its_english_msgids(site):
    with open(TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.po", "rb") as f:
        french = {
            m.id: m.string
            for m in read_po(f)
            if isinstance(m.id, str) and m.id and m.string and m.string != m.id
        }
    reader, visitor = site.clients["lea"], site.client("visiteur", language="fr", register=False)
    pages = [reader.get(url) for url in ("/", "/compare", "/account/password", "/no/such/page")]
    pages += [visitor.get("/login"), visitor.get("/register")]
    # A string shown exactly as an English msgid that French translates: the catalogue was not applied.
    english_left = [
        (page.request.path, text)
        for page in pages
        for _where, text in page_strings(page.get_data(as_text=True))
        if text in french
    ]
    assert english_left == []
    assert french["New conversation"] in pages[0].get_data(as_text=True)
    english = site.client("visitor-en", language="en", register=False).get("/login").get_data(as_text=True)
    assert '<html lang="en"' in english and "Sign in" in english and french["Sign in"] not in english
