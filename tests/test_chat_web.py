"""The chat's HTTP interface, with a scripted engine: streaming, storing, ownership, endings."""

import time

import sqlalchemy as sa

from app.database import sweep_unfinished_answers
from app.extensions import db
from app.models import Conversation, Message
from tests import streams
from tests.conftest import sse_events

JSON = {"Accept": "application/json"}
STREAM = {"Accept": "text/event-stream"}


def new_conversation(client, **body) -> int:
    response = client.post("/conversations", json=body, headers=JSON)
    assert response.status_code == 201, response.data
    return response.json["id"]


def send(client, conversation_id: int, content: str):
    return client.post(
        f"/conversations/{conversation_id}/messages", json={"content": content}, headers=STREAM
    )


def slow_answer(engine, words: int) -> None:
    """Script an answer of `words` words, 20 ms apart: long enough to act on while it streams."""
    engine.words = [f" mot{i}" for i in range(words)]
    engine.delay = 0.02


def stored_answer(app, message_id: int) -> Message:
    with app.app_context():
        return db.session.get(Message, message_id)


def test_answer_streams_as_token_events_and_ends_with_done(signed_in):
    conversation_id = new_conversation(signed_in)
    response = send(signed_in, conversation_id, "Dis bonjour")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    body = response.get_data(as_text=True)
    assert body.startswith(": ping\n\n"), "a comment goes first so the headers leave at once"
    events = sse_events(body)
    assert [data["text"] for name, data in events if name == "token"] == ["Bonjour", " le", " monde", "."]
    name, done = events[-1]
    assert name == "done" and done["state"] == "complete"
    assert done["message_id"] == int(response.headers["X-Message-Id"])


def test_what_streamed_is_what_is_stored_with_its_model(app, signed_in):
    conversation_id = new_conversation(signed_in, model="other")
    send(signed_in, conversation_id, "Dis bonjour").get_data()
    messages = signed_in.get(f"/conversations/{conversation_id}/messages").json["messages"]
    assert [(m["role"], m["content"], m["state"]) for m in messages] == [
        ("user", "Dis bonjour", "complete"),
        ("assistant", "Bonjour le monde.", "complete"),
    ]
    assert messages[1]["model"] == "other"
    assert messages[1]["stats"]["completion_tokens"] == 4


def test_reloading_the_conversation_page_shows_the_history(signed_in):
    conversation_id = new_conversation(signed_in)
    send(signed_in, conversation_id, "Dis bonjour").get_data()
    page = signed_in.get(f"/c/{conversation_id}").get_data(as_text=True)
    assert "Dis bonjour" in page and "Bonjour le monde." in page


def test_earlier_turns_are_sent_to_the_model(signed_in, engine):
    conversation_id = new_conversation(signed_in)
    send(signed_in, conversation_id, "Premier").get_data()
    send(signed_in, conversation_id, "Second").get_data()
    assert [(m.role, m.content) for m in engine.requests[-1]] == [
        ("user", "Premier"),
        ("assistant", "Bonjour le monde."),
        ("user", "Second"),
    ]


def test_title_comes_from_the_first_message(signed_in):
    conversation_id = new_conversation(signed_in)
    send(
        signed_in, conversation_id, "Comment   régler la presse hydraulique de l'atelier 3 quand elle force ?"
    ).get_data()
    conversation = signed_in.get(f"/conversations/{conversation_id}/messages").json["conversation"]
    assert conversation["title"] == "Comment régler la presse hydraulique de l'atelier 3 quand…"


def test_conversations_are_listed_newest_first(signed_in):
    first = new_conversation(signed_in)
    second = new_conversation(signed_in)
    send(signed_in, first, "remonte").get_data()
    listed = [c["id"] for c in signed_in.get("/conversations").json["conversations"]]
    assert listed == [first, second]


def test_rename_and_delete_a_conversation(app, signed_in):
    conversation_id = new_conversation(signed_in)
    send(signed_in, conversation_id, "x").get_data()
    renamed = signed_in.post(
        f"/conversations/{conversation_id}/rename", json={"title": "Maintenance"}, headers=JSON
    )
    assert renamed.json["title"] == "Maintenance"
    assert signed_in.post(f"/conversations/{conversation_id}/delete", headers=JSON).status_code == 200
    assert signed_in.get(f"/c/{conversation_id}").status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_empty_title_is_refused_with_a_message(signed_in):
    conversation_id = new_conversation(signed_in)
    response = signed_in.post(f"/conversations/{conversation_id}/rename", json={"title": "  "}, headers=JSON)
    assert response.status_code == 400
    assert response.json["error"] == "A title has 1 to 200 characters."


def test_another_users_conversation_answers_404_everywhere(client, auth):
    auth.register("owner")
    conversation_id = new_conversation(client)
    answer_id = int(send(client, conversation_id, "secret").headers["X-Message-Id"])
    auth.logout()
    auth.register("intruder")
    attempts = [
        client.get(f"/c/{conversation_id}"),
        client.get(f"/conversations/{conversation_id}/messages", headers=JSON),
        send(client, conversation_id, "let me in"),
        client.post(f"/conversations/{conversation_id}/rename", json={"title": "mine"}, headers=JSON),
        client.post(f"/conversations/{conversation_id}/model", json={"model": "tiny"}, headers=JSON),
        client.post(f"/conversations/{conversation_id}/delete", headers=JSON),
        client.post(f"/messages/{answer_id}/stop", headers=JSON),
    ]
    assert [r.status_code for r in attempts] == [404] * len(attempts)
    assert client.get("/conversations").json["conversations"] == []


def test_empty_message_is_refused_and_nothing_is_stored(app, signed_in):
    conversation_id = new_conversation(signed_in)
    response = send(signed_in, conversation_id, "   ")
    assert response.status_code == 400
    assert response.json["error"] == "Write a message first."
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_too_long_message_is_refused_whole_saying_its_length_and_the_limit(app, signed_in):
    app.config["MAX_MESSAGE_CHARS"] = 10_000
    conversation_id = new_conversation(signed_in)
    send(signed_in, conversation_id, "Premier").get_data()
    response = send(signed_in, conversation_id, "début " + "x" * 12_000 + " la vraie question ?")
    assert response.status_code == 400
    assert response.json["error"] == (
        "This message has 12,026 characters, 10,000 at most: shorten it, or send it in parts."
    )
    # Nothing of it is kept, not even a shortened copy: only the first exchange is stored.
    with app.app_context():
        questions = db.session.scalars(sa.select(Message.content).where(Message.role == "user")).all()
    assert questions == ["Premier"]


def test_a_message_of_exactly_the_limit_is_stored_whole(app, signed_in):
    app.config["MAX_MESSAGE_CHARS"] = 50
    text = "é" * 40 + "🙂" * 10  # characters, not bytes or UTF-16 units, as the page counts them
    conversation_id = new_conversation(signed_in)
    assert send(signed_in, conversation_id, text).status_code == 200
    messages = signed_in.get(f"/conversations/{conversation_id}/messages").json["messages"]
    assert messages[0]["content"] == text


def test_too_long_message_is_refused_in_french_with_french_numbers(app, signed_in):
    app.config["MAX_MESSAGE_CHARS"] = 10_000
    conversation_id = new_conversation(signed_in)
    headers = STREAM | {"Accept-Language": "fr"}
    response = signed_in.post(
        f"/conversations/{conversation_id}/messages", json={"content": "x" * 12_000}, headers=headers
    )
    assert response.status_code == 400
    error = response.json["error"].replace("\u202f", " ").replace("\xa0", " ")
    assert error == (
        "Ce message fait 12 000 caractères, 10 000 au plus : "
        "raccourcissez-le, ou envoyez-le en plusieurs fois."
    )


def listed_conversations(client) -> list[int]:
    return [c["id"] for c in client.get("/conversations", headers=JSON).json["conversations"]]


def test_a_refused_first_message_leaves_no_empty_conversation_behind(app, signed_in):
    app.config["MAX_MESSAGE_CHARS"] = 10
    conversation_id = new_conversation(signed_in)
    assert send(signed_in, conversation_id, "x" * 11).status_code == 400
    assert listed_conversations(signed_in) == []
    assert signed_in.get(f"/c/{conversation_id}").status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Conversation.id))) == 0


def test_a_first_message_refused_for_its_model_leaves_no_empty_conversation(signed_in, engine):
    conversation_id = new_conversation(signed_in, model="other")
    engine.model_ids = ("tiny",)  # "other" is gone from its engine meanwhile
    response = send(signed_in, conversation_id, "Bonjour")
    assert response.status_code == 409 and "other" in response.json["error"]
    assert listed_conversations(signed_in) == []


def test_a_first_message_refused_by_a_full_queue_leaves_no_empty_conversation(app, signed_in, engine):
    app.extensions["llm"].scheduler.max_answers = 1
    slow_answer(engine, 100)
    answered = new_conversation(signed_in)
    first = StreamInThread(signed_in, answered, "long")
    refused = new_conversation(signed_in)
    assert send(signed_in, refused, "one more").status_code == 503
    assert listed_conversations(signed_in) == [answered]
    signed_in.post(f"/messages/{first.id}/stop", headers=JSON)
    first.join()


def test_a_refused_later_message_keeps_its_conversation(app, signed_in):
    app.config["MAX_MESSAGE_CHARS"] = 10
    conversation_id = new_conversation(signed_in)
    send(signed_in, conversation_id, "Bonjour").get_data()
    assert send(signed_in, conversation_id, "x" * 11).status_code == 400
    assert listed_conversations(signed_in) == [conversation_id]


def test_unknown_model_is_refused_with_a_message(signed_in):
    response = signed_in.post("/conversations", json={"model": "gpt-5"}, headers=JSON)
    assert response.status_code == 409
    assert "gpt-5" in response.json["error"]


def test_switching_the_model_of_a_conversation(signed_in, engine):
    conversation_id = new_conversation(signed_in)
    response = signed_in.post(
        f"/conversations/{conversation_id}/model", json={"model": "other"}, headers=JSON
    )
    assert response.json["model"] == "other"
    send(signed_in, conversation_id, "x").get_data()
    messages = signed_in.get(f"/conversations/{conversation_id}/messages").json["messages"]
    assert messages[-1]["model"] == "other"


def test_engine_failure_becomes_an_error_event_and_is_kept(app, signed_in, engine):
    engine.fail_with = "model_unreadable"
    conversation_id = new_conversation(signed_in)
    response = send(signed_in, conversation_id, "x")
    name, data = sse_events(response.get_data(as_text=True))[-1]
    assert name == "error"
    assert "could not be loaded" in data["message"]
    answer = stored_answer(app, data["message_id"])
    assert answer.state == "error" and "could not be loaded" in answer.error


def StreamInThread(client, conversation_id: int, content: str) -> streams.StreamInThread:  # noqa: N802
    return streams.StreamInThread(lambda: send(client, conversation_id, content), "X-Message-Id")


def test_second_message_while_an_answer_streams_is_refused(signed_in, engine):
    slow_answer(engine, 100)
    conversation_id = new_conversation(signed_in)
    first = StreamInThread(signed_in, conversation_id, "long")
    second = send(signed_in, conversation_id, "impatient")
    assert second.status_code == 409, second.get_data(as_text=True)
    assert "still being written" in second.json["error"]
    signed_in.post(f"/messages/{first.id}/stop", headers=JSON)
    assert first.join()[-1][0] == "done"


def test_stop_keeps_the_partial_answer_marked_stopped(app, signed_in, engine):
    slow_answer(engine, 1000)  # 20 s if Stop did nothing: far from the 3 s allowed, however busy
    conversation_id = new_conversation(signed_in)
    stream = StreamInThread(signed_in, conversation_id, "raconte")
    stream.wait_for_tokens(5)
    stopped_at = time.monotonic()
    assert signed_in.post(f"/messages/{stream.id}/stop", headers=JSON).json == {"stopped": True}
    events = stream.join()
    elapsed = time.monotonic() - stopped_at
    print(f"stop ended the stream after {elapsed:.3f} s")
    assert elapsed < 3.0
    name, done = events[-1]
    assert name == "done" and done["state"] == "stopped"
    answer = stored_answer(app, stream.id)
    assert answer.state == "stopped"
    assert answer.content.startswith(" mot0 mot1 mot2 mot3 mot4")
    assert len(answer.content.split()) < 1000


def test_closing_the_page_does_not_end_the_answer(app, signed_in, engine):
    slow_answer(engine, 40)
    conversation_id = new_conversation(signed_in)
    response = send(signed_in, conversation_id, "raconte")
    answer_id = int(response.headers["X-Message-Id"])
    for count, _chunk in enumerate(response.response):
        if count > 5:
            break
    response.close()  # what the server sees when a tab is closed, reloaded or left
    app.extensions["answers"].get(stored_answer(app, answer_id).job).ended.wait(5)
    answer = stored_answer(app, answer_id)
    assert answer.state == "complete"
    assert answer.content == "".join(f" mot{i}" for i in range(40))


def test_partial_answer_is_saved_while_it_streams(app, signed_in, engine):
    slow_answer(engine, 40)
    conversation_id = new_conversation(signed_in)
    response = send(signed_in, conversation_id, "raconte")
    answer_id = int(response.headers["X-Message-Id"])
    seen = []
    for count, _chunk in enumerate(response.response):
        if count % 5 == 0:
            seen.append(stored_answer(app, answer_id))
    midway = [a for a in seen if a.state == "generating" and a.content]
    assert midway, "some partial content was in the database before the end"
    assert stored_answer(app, answer_id).state == "complete"


def test_answers_left_generating_by_a_dead_process_become_interrupted(app, signed_in):
    conversation_id = new_conversation(signed_in)
    with app.app_context():
        db.session.add(
            Message(conversation_id=conversation_id, role="assistant", content="à moi", state="generating")
        )
        db.session.commit()
        assert sweep_unfinished_answers() == 1
        message = db.session.scalar(sa.select(Message).where(Message.content == "à moi"))
        assert message.state == "interrupted"
        assert db.session.get(Conversation, conversation_id) is not None


def test_context_trimming_is_told_to_the_user(signed_in, engine):
    from app.llm.types import Trimmed

    original = engine.stream_chat

    def trimming(*args):
        yield Trimmed(2)
        yield from original(*args)

    engine.stream_chat = trimming
    conversation_id = new_conversation(signed_in)
    events = sse_events(send(signed_in, conversation_id, "x").get_data(as_text=True))
    notice = next(data for name, data in events if name == "notice")
    assert (
        notice["message"]
        == "The 2 oldest messages no longer fit in the model's context window and were left out."
    )
    page = signed_in.get(f"/c/{conversation_id}").get_data(as_text=True)
    assert "The 2 oldest messages no longer fit" in page


def test_beyond_the_answers_bound_a_message_is_refused_with_retry_after(app, signed_in, engine):
    app.extensions["llm"].scheduler.max_answers = 1  # MAX_ANSWERS
    slow_answer(engine, 100)
    first = StreamInThread(signed_in, new_conversation(signed_in), "long")
    response = send(signed_in, new_conversation(signed_in), "one more")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "Too many answers" in response.json["error"]
    signed_in.post(f"/messages/{first.id}/stop", headers=JSON)
    first.join()


def test_a_body_that_is_not_a_json_object_gets_a_clear_message(signed_in):
    for body in (["content"], "content", 3):
        conversation_id = new_conversation(signed_in)  # refused, its first message takes it away
        response = signed_in.post(f"/conversations/{conversation_id}/messages", json=body, headers=STREAM)
        assert response.status_code == 400
        assert response.json["error"] == "The body must be a JSON object."


def test_an_answer_left_generating_without_a_generation_does_not_block_its_conversation(app, signed_in):
    conversation_id = new_conversation(signed_in)
    with app.app_context():
        orphan = Message(
            conversation_id=conversation_id, role="assistant", content="moitié", state="generating"
        )
        db.session.add(orphan)
        db.session.commit()
        orphan_id = orphan.id
    response = send(signed_in, conversation_id, "encore")
    assert response.status_code == 200
    response.get_data()
    assert stored_answer(app, orphan_id).state == "interrupted"


def test_a_failed_answer_and_its_question_are_not_shown_to_the_model_again(signed_in, engine):
    conversation_id = new_conversation(signed_in)
    send(signed_in, conversation_id, "Premier").get_data()
    engine.fail_with = "generation_failed"
    send(signed_in, conversation_id, "Celle-ci échoue").get_data()
    engine.fail_with = None
    send(signed_in, conversation_id, "Troisième").get_data()
    roles = [m.role for m in engine.requests[-1]]
    assert roles == ["user", "assistant", "user"], "never two user turns in a row"
    assert engine.requests[-1][-1].content == "Troisième"


def test_plain_forms_without_javascript_create_and_rename_a_conversation(signed_in):
    created = signed_in.post("/conversations", data={"model": "other"})
    assert created.status_code == 302 and created.headers["Location"].startswith("/c/")
    conversation_id = int(created.headers["Location"].rsplit("/", 1)[1])
    renamed = signed_in.post(f"/conversations/{conversation_id}/rename", data={"title": "Par formulaire"})
    assert renamed.status_code == 302
    listed = signed_in.get("/conversations").json["conversations"][0]
    assert (listed["title"], listed["model"]) == ("Par formulaire", "other")


def test_every_event_of_an_answer_is_numbered_in_order_so_a_lost_one_shows(signed_in):
    body = send(signed_in, new_conversation(signed_in), "Dis bonjour").get_data(as_text=True)
    frames = [block for block in body.split("\n\n") if block.strip() and not block.startswith(":")]
    ids = [int(block.split("\n")[0].removeprefix("id: ")) for block in frames]
    assert ids == list(range(1, len(frames) + 1)) and len(ids) >= 6
