"""Answers are jobs of the server's, not of the request that asked: they outlive the page, any
page of their author can follow them from any event, and only Stop, the account's end, the
admin or shutdown end them. The web layer, with a scripted engine."""

import threading
import time

import sqlalchemy as sa

from app.answers import saving
from app.extensions import db
from app.models import Message
from tests import streams
from tests.conftest import AuthActions, sse_events
from tests.test_chat_web import JSON, STREAM, new_conversation, send, slow_answer, stored_answer

WORDS = 40


def start_answer(client, engine, words: int = WORDS) -> streams.StreamInThread:
    slow_answer(engine, words)
    conversation_id = new_conversation(client)
    stream = streams.StreamInThread(lambda: send(client, conversation_id, "raconte"), "X-Message-Id")
    stream.conversation_id = conversation_id
    return stream


def live_answer(app, message_id):
    return app.extensions["answers"].get(stored_answer(app, int(message_id)).job)


def follow(client, message_id, after=None, last_event_id=None):
    headers = dict(STREAM)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    query = f"?after={after}" if after is not None else ""
    return client.get(f"/messages/{message_id}/events{query}", headers=headers)


def numbered(body: str) -> list[tuple[int, str, str]]:
    """(id, event, text of a token) of each numbered frame."""
    frames = []
    for block in body.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.split("\n") if ": " in line and not line.startswith(":")
        )
        if "id" in lines:
            event = sse_events(block)[0]
            frames.append((int(lines["id"]), event[0], event[1].get("text", "")))
    return frames


def test_a_page_that_comes_back_receives_what_was_written_then_the_rest(app, signed_in, engine):
    first = start_answer(signed_in, engine)
    first.wait_for_tokens(5)
    again = follow(signed_in, first.id, after=0).get_data(as_text=True)
    frames = numbered(again)
    assert [seq for seq, _, _ in frames] == list(range(1, len(frames) + 1)), "nothing lost or doubled"
    tokens = "".join(text for _, name, text in frames if name == "token")
    assert tokens == "".join(f" mot{i}" for i in range(WORDS))
    assert frames[-1][1] == "done"


def test_resuming_from_an_event_sends_only_what_follows_it(app, signed_in, engine):
    stream = start_answer(signed_in, engine)
    events = stream.join()
    total = len(events)
    for resume in ({"last_event_id": 10}, {"after": 10}):
        frames = numbered(follow(signed_in, stream.id, **resume).get_data(as_text=True))
        assert [seq for seq, _, _ in frames] == list(range(11, total + 1))


def test_closing_every_page_leaves_the_answer_to_finish_and_be_stored(app, signed_in, engine):
    slow_answer(engine, WORDS)
    conversation_id = new_conversation(signed_in)
    response = send(signed_in, conversation_id, "raconte")
    message_id = int(response.headers["X-Message-Id"])
    next(iter(response.response))
    response.close()
    live = live_answer(app, message_id)
    assert live.ended.wait(streams.WAIT_SECONDS)
    assert stored_answer(app, message_id).state == "complete"


def test_the_sidebar_learns_which_conversations_have_an_answer_being_written(signed_in, engine):
    stream = start_answer(signed_in, engine, words=100)
    stream.wait_for_tokens(1)
    quiet = new_conversation(signed_in)
    listed = {c["id"]: c["answering"] for c in signed_in.get("/conversations").json["conversations"]}
    assert listed == {stream.conversation_id: True, quiet: False}
    signed_in.post(f"/messages/{stream.id}/stop", headers=JSON)
    stream.join()
    listed = {c["id"]: c["answering"] for c in signed_in.get("/conversations").json["conversations"]}
    assert listed == {stream.conversation_id: False, quiet: False}


def test_stop_reaches_an_answer_that_no_page_follows(app, signed_in, engine):
    slow_answer(engine, 300)
    conversation_id = new_conversation(signed_in)
    response = send(signed_in, conversation_id, "raconte")
    message_id = int(response.headers["X-Message-Id"])
    next(iter(response.response))
    response.close()
    assert signed_in.post(f"/messages/{message_id}/stop", headers=JSON).json == {"stopped": True}
    assert live_answer(app, message_id).ended.wait(streams.WAIT_SECONDS)
    assert stored_answer(app, message_id).state == "stopped"


def test_following_another_users_answer_answers_404(app, signed_in, engine):
    stream = start_answer(signed_in, engine, words=100)
    bob = app.test_client()
    AuthActions(bob).register("bob")
    assert follow(bob, stream.id).status_code == 404
    signed_in.post(f"/messages/{stream.id}/stop", headers=JSON)
    stream.join()


def test_an_answer_no_longer_in_memory_answers_410_and_the_stored_message_is_it(app, signed_in, engine):
    stream = start_answer(signed_in, engine, words=3)
    stream.join()
    with app.app_context():  # as the keeper does once FINISHED_ANSWER_SECONDS have passed
        app.extensions["answers"]._answers.clear()
    response = follow(signed_in, stream.id)
    assert response.status_code == 410
    assert "no longer being written" in response.json["error"]


def test_a_persons_answers_beyond_their_share_are_refused_with_a_message(app, signed_in, engine):
    app.extensions["llm"].scheduler.max_per_user = 1  # MAX_ANSWERS_PER_USER
    stream = start_answer(signed_in, engine, words=200)
    stream.wait_for_tokens(1)
    response = send(signed_in, new_conversation(signed_in), "et encore")
    assert response.status_code == 429
    assert response.json["error"].startswith("You already have 1 answers being written")
    assert response.headers["Retry-After"]
    bob = app.test_client()
    AuthActions(bob).register("bob")
    colleague = send(bob, new_conversation(bob), "à moi")  # a colleague still gets a place
    assert colleague.status_code == 200
    colleague.close()
    signed_in.post(f"/messages/{stream.id}/stop", headers=JSON)
    stream.join()


def test_a_persons_fourth_page_closes_their_oldest_which_can_follow_again(app, signed_in, engine):
    app.extensions["answers"].max_streams_per_user = 3
    stream = start_answer(signed_in, engine, words=300)
    stream.wait_for_tokens(1)
    pages = [
        streams.StreamInThread(lambda: follow(signed_in, stream.id), "X-Message-Id") for _ in range(3)
    ]  # with the asking page: four
    deadline = time.monotonic() + streams.WAIT_SECONDS
    while "event: closed" not in stream.body and time.monotonic() < deadline:
        time.sleep(0.02)
    name, data = stream.join()[-1]
    assert name == "closed" and "another of your pages" in data["message"]
    assert live_answer(app, stream.id).ended.is_set() is False, "the answer goes on"
    signed_in.post(f"/messages/{stream.id}/stop", headers=JSON)
    assert all(page.join()[-1][1]["state"] == "stopped" for page in pages)


def test_pages_beyond_the_servers_share_of_streams_are_refused(app, signed_in, engine):
    app.extensions["answers"].max_streams = 1  # MAX_STREAMS
    stream = start_answer(signed_in, engine, words=200)
    stream.wait_for_tokens(1)
    bob = app.test_client()
    AuthActions(bob).register("bob")
    response = send(bob, new_conversation(bob), "à moi")
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert "Too many pages" in response.json["error"]
    with app.app_context():  # refused before anything was stored
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 2
    signed_in.post(f"/messages/{stream.id}/stop", headers=JSON)
    stream.join()


def test_signing_out_ends_the_answers_being_written(app, signed_in, engine, auth):
    stream = start_answer(signed_in, engine, words=300)
    stream.wait_for_tokens(1)
    message_id = stream.id
    auth.logout()
    assert live_answer(app, message_id).ended.wait(streams.WAIT_SECONDS)
    answer = stored_answer(app, int(message_id))
    assert answer.state == "stopped" and "session has ended" in answer.error


def test_disabling_an_account_ends_its_answers(app, client, auth, engine):
    auth.register("admin")
    bob = app.test_client()
    AuthActions(bob).register("bob")
    stream = start_answer(bob, engine, words=300)
    stream.wait_for_tokens(1)
    with app.app_context():
        from app.models import User

        bob_id = db.session.scalar(sa.select(User.id).where(User.username == "bob"))
    client.post(f"/admin/users/{bob_id}/disable")
    assert live_answer(app, stream.id).ended.wait(streams.WAIT_SECONDS)
    assert stored_answer(app, int(stream.id)).state == "stopped"


def test_an_answer_the_admin_stops_tells_its_author_why_in_the_authors_language(app, client, auth, engine):
    auth.register("admin")  # reads English (the tests' default)
    bob = app.test_client()
    AuthActions(bob).register("bob")
    bob.post("/language", data={"lang": "fr"})
    stream = start_answer(bob, engine, words=300)
    stream.wait_for_tokens(1)
    live = live_answer(app, stream.id)
    assert client.post(f"/admin/answers/{live.id}/stop").status_code == 302
    assert live.ended.wait(streams.WAIT_SECONDS)
    answer = stored_answer(app, int(stream.id))
    assert answer.state == "stopped" and answer.error == "Arrêtée par l’administrateur."
    stream.join()


def test_deleting_a_conversation_ends_its_answer_before_its_messages_go(app, signed_in, engine):
    stream = start_answer(signed_in, engine, words=300)
    stream.wait_for_tokens(2)
    live = live_answer(app, stream.id)
    signed_in.post(f"/conversations/{stream.conversation_id}/delete", headers=JSON)
    assert live.ended.is_set()
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
    stream.join()


def test_a_deleted_answers_job_never_writes_into_a_message_that_took_its_id(app, signed_in, engine):
    stream = start_answer(signed_in, engine, words=3)
    stream.join()
    live = live_answer(app, stream.id)
    message_id = live.message_id
    with app.app_context():
        question = db.session.get(Message, message_id - 1)
        db.session.execute(sa.delete(Message).where(Message.id == message_id))
        db.session.add(
            Message(
                id=message_id,
                conversation_id=question.conversation_id,
                role="assistant",
                content="someone else's",
                state="complete",
                job="another job",
            )
        )
        db.session.commit()
        assert saving.save_answer(message_id, live.id, "old text", live.outcome) is False
    assert stored_answer(app, message_id).content == "someone else's"


def test_a_save_the_storage_refuses_is_told_and_the_answer_is_stored_once_it_can_be(
    app, signed_in, engine, monkeypatch
):
    real_save = saving.save_answer
    full = threading.Event()
    full.set()

    def disk_full(*args, **kwargs):
        if full.is_set():
            raise sa.exc.OperationalError("UPDATE message", {}, Exception("database or disk is full"))
        return real_save(*args, **kwargs)

    monkeypatch.setattr(saving, "save_answer", disk_full)
    monkeypatch.setattr(saving, "FINAL_SAVE_PAUSES", (0.01, 0.01))
    stream = start_answer(signed_in, engine, words=10)
    name, data = stream.join()[-1]
    assert name == "error"
    assert "could not be saved" in data["message"] and "0 characters of it are stored" in data["message"]
    assert stored_answer(app, int(stream.id)).state == "generating"  # the storage still refuses
    full.clear()  # space again: the keeper stores the ending at its next try
    deadline = time.monotonic() + streams.WAIT_SECONDS
    while stored_answer(app, int(stream.id)).state == "generating" and time.monotonic() < deadline:
        time.sleep(0.1)
    answer = stored_answer(app, int(stream.id))
    assert answer.state == "complete" and answer.content == "".join(f" mot{i}" for i in range(10))


def test_a_partial_save_that_fails_is_tried_again_and_the_answer_goes_on(app, signed_in, engine, monkeypatch):
    real_save = saving.save_answer
    failures = []

    def locked_once(message_id, job, content, state, *args, **kwargs):
        if state == "generating" and not failures:
            failures.append(content)
            raise sa.exc.OperationalError("UPDATE message", {}, Exception("database is locked"))
        return real_save(message_id, job, content, state, *args, **kwargs)

    monkeypatch.setattr(saving, "save_answer", locked_once)
    stream = start_answer(signed_in, engine, words=WORDS)
    name, data = stream.join()[-1]
    assert failures and name == "done" and data["state"] == "complete"
    assert stored_answer(app, int(stream.id)).content == "".join(f" mot{i}" for i in range(WORDS))


def test_the_admin_may_have_answers_nobody_follows_cancelled_after_a_while(app, signed_in, engine):
    app.extensions["answers"].unwatched_minutes = 0.01  # UNWATCHED_CANCEL_MINUTES: 0.6 s here
    slow_answer(engine, 1000)
    conversation_id = new_conversation(signed_in)
    response = send(signed_in, conversation_id, "raconte")
    message_id = int(response.headers["X-Message-Id"])
    next(iter(response.response))
    response.close()  # nobody follows it any more
    assert live_answer(app, message_id).ended.wait(streams.WAIT_SECONDS)
    answer = stored_answer(app, message_id)
    assert answer.state == "disconnected" and "Nobody followed this answer" in answer.error


def test_an_answer_someone_follows_is_never_cancelled_as_unwatched(app, signed_in, engine):
    app.extensions["answers"].unwatched_minutes = 0.01
    stream = start_answer(signed_in, engine, words=150)  # 3 s, followed all along
    name, data = stream.join()[-1]
    assert name == "done" and data["state"] == "complete"
