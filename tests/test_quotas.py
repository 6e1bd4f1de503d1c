"""Quotas people can see: answers and tokens per day, per group or per person, and answers at
once; refused with the time they come back, an answer cut at the tokens limit and kept, the
API of the same person sharing them, benchmarks exempt. The web layer, with a scripted engine."""

import html
import re
import threading
from datetime import datetime

import pytest
import sqlalchemy as sa

from app.accounts import quotas
from app.extensions import db
from app.llm.types import Text, Thinking
from app.models import AuditEntry, Group, GroupMember, Message, QuotaUse, User
from tests.conftest import AuthActions, sse_events
from tests.queries import statements_of
from tests.streams import StreamInThread
from tests.test_api import bearer, make_key
from tests.test_bench_pages import latest_run, wait_for_end
from tests.test_bench_pages import start as start_benchmark
from tests.test_chat_web import JSON, new_conversation, send, slow_answer


def set_limits(app, username: str = "alice", **limits) -> None:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == username))
        for name, value in limits.items():
            setattr(user, name, value)
        db.session.commit()


def group_with(app, name: str, members: list[str], **limits) -> None:
    with app.app_context():
        group = Group(name=name, **limits)
        db.session.add(group)
        db.session.flush()
        for username in members:
            user_id = db.session.scalar(sa.select(User.id).where(User.username == username))
            db.session.add(GroupMember(group_id=group.id, user_id=user_id))
        db.session.commit()


def limits_of(app, username: str = "alice") -> quotas.Limits:
    with app.app_context():
        return quotas.limits_for(db.session.scalar(sa.select(User).where(User.username == username)))


def ask(client, conversation_id: int | None = None, content: str = "bonjour"):
    """One message, its answer read to the end: (status, events, json of a refusal)."""
    conversation_id = conversation_id or new_conversation(client)
    response = send(client, conversation_id, content)
    if response.status_code != 200:
        return response.status_code, [], response
    return 200, sse_events(response.get_data(as_text=True)), response


def reset_in_words(app, now=None) -> str:
    with app.test_request_context():
        return quotas.reset_time(quotas.today(now)[1])


def test_an_answer_beyond_the_daily_limit_is_refused_saying_when_it_comes_back(app, signed_in):
    set_limits(app, answers_per_day=2)
    assert ask(signed_in)[0] == 200 and ask(signed_in)[0] == 200
    status, _events, response = ask(signed_in)
    assert status == 429
    assert response.json["error"].startswith("You have used today's quota of 2 answers.")
    assert f"It is given back on {reset_in_words(app)}." in response.json["error"]
    seconds = int(response.headers["Retry-After"])
    assert 0 < seconds <= 24 * 3600 + 3600


def test_the_refusal_is_in_french_with_the_reset_time(app, signed_in):
    set_limits(app, answers_per_day=1)
    signed_in.post("/language", data={"lang": "fr"})
    ask(signed_in)
    status, _events, response = ask(signed_in)
    assert status == 429
    assert response.json["error"].startswith("Vous avez utilisé le quota du jour : 1 réponse.")
    assert "Il revient le " in response.json["error"]


def test_a_refused_answer_stores_nothing(app, signed_in):
    set_limits(app, answers_per_day=1)
    conversation_id = new_conversation(signed_in)
    ask(signed_in, conversation_id)
    assert ask(signed_in, conversation_id)[0] == 429
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 2  # the first question, its answer
        assert db.session.scalar(sa.select(sa.func.count(QuotaUse.id))) == 1


def test_a_message_refused_after_its_place_was_counted_is_not_counted(app, signed_in, engine):
    set_limits(app, answers_per_day=2)
    slow_answer(engine, 100)
    conversation_id = new_conversation(signed_in)
    writing = StreamInThread(lambda: send(signed_in, conversation_id, "raconte"), "X-Message-Id")
    busy = send(signed_in, conversation_id, "et encore")  # one answer at a time in a conversation
    assert busy.status_code == 409
    with app.app_context():
        assert quotas.remaining(db.session.get(User, 1)).answers == 1
    signed_in.post(f"/messages/{writing.id}/stop", headers=JSON)
    writing.join()


def test_the_tokens_limit_cuts_an_answer_which_is_kept_with_a_notice(app, signed_in, engine):
    set_limits(app, tokens_per_day=5)
    engine.words = [f" mot{i}" for i in range(12)]
    status, events, response = ask(signed_in)
    assert status == 200
    written = "".join(data["text"] for name, data in events if name == "token")
    assert written == " mot0 mot1 mot2 mot3 mot4", "exactly the tokens left, nothing past the limit"
    name, end = events[-1]
    assert name == "error" and end["state"] == "stopped"
    assert end["message"].startswith("Quota reached: today's 5 tokens are used")
    with app.app_context():
        stored = db.session.get(Message, int(response.headers["X-Message-Id"]))
        assert stored.content == written and stored.state == "stopped"
        assert stored.error.startswith("Quota reached")
    assert ask(signed_in)[0] == 429  # and the next one is refused


def test_answers_written_together_share_one_tokens_budget(app, signed_in, engine):
    set_limits(app, tokens_per_day=10, answers_at_once=2)
    slow_answer(engine, 20)
    conversations = [new_conversation(signed_in), new_conversation(signed_in)]
    readers = [
        StreamInThread(lambda c=c: send(signed_in, c, "raconte"), "X-Message-Id") for c in conversations
    ]
    written = []
    for reader in readers:
        events = reader.join()
        written.append(sum(1 for name, _data in events if name == "token"))
        assert events[-1][0] == "error" and events[-1][1]["state"] == "stopped"
    assert sum(written) == 10, written
    with app.app_context():
        assert quotas.remaining(db.session.get(User, 1)).tokens == 0


def test_thinking_tokens_count_against_the_tokens_limit(app, signed_in, engine):
    set_limits(app, tokens_per_day=6)
    engine.script = [Thinking(f" idée{i}") for i in range(4)] + [Text(f" mot{i}") for i in range(4)]
    status, events, _response = ask(signed_in)
    thought = [data["text"] for name, data in events if name == "thinking"]
    written = [data["text"] for name, data in events if name == "token"]
    assert len(thought) == 4 and written == [" mot0", " mot1"]
    assert events[-1][0] == "error"
    with app.app_context():
        assert quotas.remaining(db.session.get(User, 1)).tokens_used == 6


def test_prompt_tokens_do_not_count(app, signed_in, engine):
    set_limits(app, tokens_per_day=100)
    engine.words = [" oui"]
    ask(signed_in, content="une très longue question " * 50)
    with app.app_context():
        assert quotas.remaining(db.session.get(User, 1)).tokens_used == 1


def test_benchmarks_are_exempt(app, signed_in):
    set_limits(app, answers_per_day=0, tokens_per_day=0)  # nothing at all, for the chat
    assert start_benchmark(signed_in, repetitions="1").status_code == 302
    wait_for_end(app)
    run = latest_run(app)
    assert run.state == "done" and len(run.results) >= 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(QuotaUse.id))) == 0
    assert ask(signed_in)[0] == 429  # the chat is not exempt


def test_an_api_key_of_the_same_person_shares_the_daily_quota(app, signed_in):
    set_limits(app, answers_per_day=2)
    assert ask(signed_in)[0] == 200
    api = app.test_client(use_cookies=False)
    key = make_key(signed_in)
    body = {"model": "tiny", "prompt": "bonjour"}
    assert api.post("/api/v1/generate", json=body, headers=bearer(key)).status_code == 200
    refused = api.post("/api/v1/generate", json=body, headers=bearer(key))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.json["code"] == "quota_exceeded" and refused.json["quota"] == "answers"
    assert datetime.fromisoformat(refused.json["resets_at"]) > datetime.now().astimezone()
    openai = api.post(
        "/v1/chat/completions",
        json={"model": "tiny", "messages": [{"role": "user", "content": "bonjour"}]},
        headers=bearer(key),
    )
    assert openai.status_code == 429 and openai.headers["Retry-After"]
    assert openai.json["error"]["type"] == "insufficient_quota"
    assert openai.json["error"]["message"].startswith("You have used today's quota of 2 answers.")
    assert ask(signed_in)[0] == 429  # and the chat knows it too


def test_the_api_tells_what_is_left(app, signed_in):
    set_limits(app, answers_per_day=5, tokens_per_day=1000)
    ask(signed_in)
    key = make_key(signed_in)
    left = app.test_client(use_cookies=False).get("/api/v1/quota", headers=bearer(key)).json
    assert left["answers_left"] == 4 and left["tokens_left"] == 1000 - 4  # the scripted 4 words
    assert left["answers_per_day"] == 5 and left["answers_used"] == 1
    assert left["summary"] == "4 answers and 996 tokens left today"


def test_a_group_limit_applies_to_its_members(app, signed_in, auth):
    AuthActions(app.test_client()).register("bob")
    group_with(app, "stagiaires", ["bob"], answers_per_day=10, tokens_per_day=5000)
    assert limits_of(app, "bob").answers_per_day == 10 and limits_of(app, "bob").tokens_per_day == 5000
    assert limits_of(app, "alice").answers_per_day is None  # in no group: no daily limit


def test_a_persons_own_limit_comes_before_their_groups(app, signed_in):
    group_with(app, "stagiaires", ["alice"], answers_per_day=10)
    set_limits(app, answers_per_day=3)
    assert limits_of(app).answers_per_day == 3
    set_limits(app, answers_per_day=50)
    assert limits_of(app).answers_per_day == 50


def test_a_member_of_several_groups_gets_the_most_generous(app, signed_in):
    app.extensions["llm"].scheduler.max_per_user = 3  # MAX_ANSWERS_PER_USER, as shipped
    group_with(app, "stagiaires", ["alice"], answers_per_day=10, tokens_per_day=9000, answers_at_once=1)
    group_with(app, "chercheurs", ["alice"], answers_per_day=100, tokens_per_day=2000, answers_at_once=2)
    limits = limits_of(app)
    assert (limits.answers_per_day, limits.tokens_per_day, limits.answers_at_once) == (100, 9000, 2)
    group_with(app, "direction", ["alice"])  # sets no limit
    limits = limits_of(app)
    assert limits.answers_per_day is None and limits.tokens_per_day is None
    assert limits.answers_at_once == 3  # the server's MAX_ANSWERS_PER_USER, more generous than 2


def test_answers_at_once_is_a_group_value(app, signed_in, engine):
    group_with(app, "stagiaires", ["alice"], answers_at_once=1)
    slow_answer(engine, 200)
    first = send(signed_in, new_conversation(signed_in), "raconte")
    assert first.status_code == 200
    second = send(signed_in, new_conversation(signed_in), "et encore")
    assert second.status_code == 429
    assert second.json["error"].startswith("You already have 1 answers being written")
    signed_in.post(f"/messages/{first.headers['X-Message-Id']}/stop", headers=JSON)
    first.get_data()


def test_the_composer_shows_what_is_left_only_when_a_limit_exists(app, signed_in):
    page = signed_in.get("/").get_data(as_text=True)
    assert "data-quota-left" in page and re.search(r"data-quota-left[^>]*>\s*</p>", page)
    set_limits(app, answers_per_day=12, tokens_per_day=8400)
    page = signed_in.get("/").get_data(as_text=True)
    assert "12 answers and 8,400 tokens left today" in page
    signed_in.post("/language", data={"lang": "fr"})
    page = html.unescape(signed_in.get("/").get_data(as_text=True))
    assert "12 réponses et 8\u202f400 jetons restants aujourd'hui" in page


def test_settings_show_the_quotas_and_what_is_left(app, signed_in):
    set_limits(app, answers_per_day=12, tokens_per_day=8400)
    ask(signed_in)
    page = signed_in.get("/settings").get_data(as_text=True)
    assert "data-my-quotas" in page
    assert "11 left of 12" in page and "8,396 left of 8,400" in page


def test_twenty_answers_asked_at_the_same_instant_at_a_limit_of_n_start_exactly_n(app, signed_in, engine):
    limit = 5
    set_limits(app, answers_per_day=limit, answers_at_once=40)
    slow_answer(engine, 3)
    tabs = []
    for _ in range(20):  # twenty tabs of the same person, each in a conversation of its own
        tab = app.test_client()
        AuthActions(tab).login()
        tabs.append((tab, new_conversation(tab)))
    statuses = [0] * 20
    bodies = [""] * 20
    start = threading.Barrier(20)

    def run(index: int) -> None:
        tab, conversation_id = tabs[index]
        start.wait()
        response = send(tab, conversation_id, "bonjour")
        statuses[index] = response.status_code
        bodies[index] = response.get_data(as_text=True)  # to its end

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    answers = app.extensions["answers"]
    for _ in range(600):  # a page beyond MAX_STREAMS_PER_USER stops following; its answer goes on
        if not answers.live():
            break
        threading.Event().wait(0.05)
    with app.app_context():
        rows = db.session.scalar(sa.select(sa.func.count(QuotaUse.id)))
        stored = db.session.scalar(sa.select(sa.func.count(Message.id)).where(Message.role == "assistant"))
    started = len(engine.requests)
    started_now, refused = statuses.count(200), statuses.count(429)
    print(f"20 requests at once, limit {limit}/day: {started_now} started, {refused} refused")
    assert sorted(statuses) == [200] * limit + [429] * (20 - limit), statuses
    assert started == stored == rows == limit, [b[-300:] for b in bodies if b]


def test_twenty_charges_at_the_same_instant_are_counted_by_the_database_alone(app, signed_in, monkeypatch):
    """Without this process's lock per person (as between two processes), the database still
    counts them one after the other: the person's row locked (PostgreSQL), the write lock
    (SQLite)."""
    limit = 5
    set_limits(app, answers_per_day=limit)
    monkeypatch.setattr(quotas, "_person_lock", lambda user_id: threading.Lock())
    results = [None] * 20
    start = threading.Barrier(20)

    def run(index: int) -> None:
        with app.app_context():
            user = db.session.get(User, 1)
            start.wait()
            try:
                quotas.charge(user)
                results[index] = "started"
            except quotas.QuotaExceeded:
                results[index] = "refused"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    with app.app_context():
        rows = db.session.scalar(sa.select(sa.func.count(QuotaUse.id)))
    print(f"20 charges at once, no lock in the process, limit {limit}: {results.count('started')} started")
    assert results.count("started") == limit and results.count("refused") == 20 - limit, results
    assert rows == limit


def test_the_day_is_the_servers_calendar_day(app, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Paris")
    import time

    time.tzset()
    try:
        start, end = quotas.today(datetime(2026, 12, 7, 23, 30))  # 00:30 in Paris, the 8th
        assert (start, end) == (datetime(2026, 12, 7, 23, 0), datetime(2026, 12, 8, 23, 0))
        start, end = quotas.today(datetime(2026, 3, 29, 12, 0))  # summer time begins: a 23-hour day
        assert (start, end) == (datetime(2026, 3, 28, 23, 0), datetime(2026, 3, 29, 22, 0))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_the_admin_sets_a_groups_quotas_audited_once(app, signed_in):
    group_with(app, "stagiaires", [])
    with app.app_context():
        group_id = db.session.scalar(sa.select(Group.id))
    response = signed_in.post(
        f"/admin/quotas/groups/{group_id}",
        data={"answers_per_day": "20", "tokens_per_day": "10 000", "answers_at_once": ""},
    )
    assert response.status_code == 302
    with app.app_context():
        group = db.session.get(Group, group_id)
        assert (group.answers_per_day, group.tokens_per_day, group.answers_at_once) == (20, 10000, None)
        entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "group.quota")).all()
        assert len(entries) == 1 and entries[0].target == "stagiaires"
        assert entries[0].details["before"]["answers_per_day"] is None
        assert entries[0].details["after"]["tokens_per_day"] == 10000


@pytest.mark.parametrize("typed", ["-1", "douze", "1.5", "99999999999999"])
def test_a_wrong_quota_is_refused_with_a_message_and_nothing_changes(app, signed_in, typed):
    response = signed_in.post("/admin/quotas/users/1", data={"answers_per_day": typed})
    assert response.status_code == 400
    assert "Answers per day: a whole number from 0 to 1,000,000, or empty for no limit." in response.get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.get(User, 1).answers_per_day is None
        assert (
            db.session.scalar(
                sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.action == "account.quota")
            )
            == 0
        )


def test_the_admin_sets_a_persons_own_quotas_audited_once(app, signed_in):
    response = signed_in.post("/admin/quotas/users/1", data={"answers_per_day": "7", "answers_at_once": "2"})
    assert response.status_code == 302
    with app.app_context():
        user = db.session.get(User, 1)
        assert (user.answers_per_day, user.tokens_per_day, user.answers_at_once) == (7, None, 2)
        entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "account.quota")).all()
        assert len(entries) == 1 and entries[0].details["after"]["answers_per_day"] == 7


def test_the_usage_page_shows_each_groups_use_against_limits(app, signed_in, auth):
    bob = app.test_client()
    AuthActions(bob).register("bob")
    group_with(app, "stagiaires", ["bob"], answers_per_day=10, tokens_per_day=500)
    ask(bob)
    page = signed_in.get("/admin/quotas").get_data(as_text=True)
    group = page[page.index('data-group-use="stagiaires"') :]
    assert "1 answer today" in group and "4 tokens" in group
    row = group[group.index('data-person-use="bob"') :]
    row = row[: row.index("</tr>")]
    assert re.search(r"data-answers>.*1</span> <span[^>]*>/ 10</span>", row)
    assert re.search(r"data-tokens>.*4</span> <span[^>]*>/ 500</span>", row)


def test_quotas_pages_are_the_admins(app, signed_in):
    bob = app.test_client()
    AuthActions(bob).register("bob")
    assert bob.get("/admin/quotas").status_code == 403
    assert bob.post("/admin/quotas/users/2", data={"answers_per_day": "1000"}).status_code == 403
    assert bob.get("/quota", headers=JSON).json["answers_left"] is None


def test_the_users_page_leads_to_each_persons_quotas(app, signed_in):
    AuthActions(app.test_client()).register("bob")
    page = signed_in.get("/admin/users").get_data(as_text=True)
    assert 'href="/admin/quotas/users/2" data-action="quotas"' in page
    person = signed_in.get("/admin/quotas/users/2").get_data(as_text=True)
    assert "Quotas of bob" in person and "data-person-quotas" in person


def test_the_compare_page_shows_what_is_left_and_counts_each_models_answer(app, signed_in):
    set_limits(app, answers_per_day=3)
    page = html.unescape(signed_in.get("/compare").get_data(as_text=True))
    assert "3 answers left today" in page
    for model in ("tiny", "other"):
        response = signed_in.post(
            "/compare/answers", json={"model": model, "prompt": "bonjour"}, headers=JSON
        )
        assert response.status_code == 200
        response.get_data()
    assert "1 answer left today" in html.unescape(signed_in.get("/compare").get_data(as_text=True))


def test_an_api_comparison_beyond_the_days_answers_starts_none_of_them(app, signed_in):
    set_limits(app, answers_per_day=3)
    ask(signed_in)
    key = make_key(signed_in)
    body = {"models": ["tiny", "other", "tiny"], "prompt": "bonjour"}
    refused = app.test_client(use_cookies=False).post("/api/v1/compare", json=body, headers=bearer(key))
    assert refused.status_code == 429 and refused.json["code"] == "quota_exceeded"
    with app.app_context():
        assert quotas.remaining(db.session.get(User, 1)).answers == 2  # none of the three counted


def _people_in_group(app, group: str, count: int, start: int) -> None:
    """`count` members of `group` made straight in the database (a sign-up's hash is slow)."""
    with app.app_context():
        group_id = db.session.scalar(sa.select(Group.id).where(Group.name == group))
        for n in range(start, start + count):
            user = User(username=f"p{n}", username_key=f"p{n}", password_hash="!")
            db.session.add(user)
            db.session.flush()
            db.session.add(GroupMember(group_id=group_id, user_id=user.id))
        db.session.commit()


def test_the_usage_page_reads_everyones_groups_at_once_not_one_person_at_a_time(app, signed_in):
    group_with(app, "stagiaires", [], answers_per_day=10)
    _people_in_group(app, "stagiaires", 3, start=0)
    few, page = statements_of(app, signed_in, "/admin/quotas")
    assert 'data-person-use="p2"' in page
    _people_in_group(app, "stagiaires", 12, start=3)
    many, page = statements_of(app, signed_in, "/admin/quotas")
    assert 'data-person-use="p14"' in page and "/ 10</span>" in page
    assert many == few


@pytest.mark.sqlite_only("PostgreSQL never gives a deleted account's id again")
def test_an_account_made_after_one_deleted_does_not_inherit_its_tokens_of_the_day(app, signed_in):
    """SQLite gives the next account the id of the last one deleted: the day's tokens counted in
    this process were the deleted person's, not the newcomer's."""
    bob = app.test_client()
    AuthActions(bob).register("bob")
    ask(bob)
    with app.app_context():
        bob_id = db.session.scalar(sa.select(User.id).where(User.username == "bob"))
        assert quotas.remaining(db.session.get(User, bob_id)).tokens_used == 4
    signed_in.post(f"/admin/users/{bob_id}/delete")
    AuthActions(app.test_client()).register("carole")
    with app.app_context():
        carole = db.session.scalar(sa.select(User).where(User.username == "carole"))
        limits_and_use = quotas.remaining(carole)
        assert carole.id == bob_id, "the id given again (else this test shows nothing)"
    assert limits_and_use.tokens_used == 0 and limits_and_use.answers_used == 0


def _people_who_asked_today(app, count: int, start: int) -> None:
    """`count` people of the group "stagiaires", each with an answer of 3 tokens today, written
    straight in the database; the tokens counted in this process forgotten (a server restarted)."""
    _people_in_group(app, "stagiaires", count, start)
    with app.app_context():
        for n in range(start, start + count):
            user_id = db.session.scalar(sa.select(User.id).where(User.username == f"p{n}"))
            db.session.add(QuotaUse(user_id=user_id, tokens=3, ended=True))
        db.session.commit()
    app.extensions.pop("quota_ledger", None)


def test_the_usage_page_reads_the_days_tokens_of_everyone_at_once_after_a_restart(app, signed_in):
    group_with(app, "stagiaires", [], tokens_per_day=100)
    _people_who_asked_today(app, 2, start=0)
    few, page = statements_of(app, signed_in, "/admin/quotas")
    _people_who_asked_today(app, 10, start=2)
    many, page = statements_of(app, signed_in, "/admin/quotas")
    row = page[page.index('data-person-use="p11"') :]
    assert re.search(r"data-tokens>.*3</span> <span[^>]*>/ 100</span>", row[: row.index("</tr>")])
    assert many == few
