"""Regenerate, edit and resend, versions, ratings, and a conversation's own settings, through
the chat's HTTP interface with a scripted engine."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Conversation, Message
from tests import streams
from tests.conftest import sse_events
from tests.test_chat_web import JSON, STREAM, new_conversation, send, slow_answer


def answered(response) -> dict:
    """The stream's last event, after reading it all."""
    events = sse_events(response.get_data(as_text=True))
    assert events[-1][0] == "done", events[-1]
    return events[-1][1]


def thread(client, conversation_id: int) -> list[tuple[str, str]]:
    """What the conversation page shows, as (role, content) pairs; the interface's `thread`
    names the same messages."""
    page = client.get(f"/c/{conversation_id}").get_data(as_text=True)
    listed = client.get(f"/conversations/{conversation_id}/messages").json
    shown = [m for m in listed["messages"] if f'id="m-{m["id"]}"' in page]
    assert [m["id"] for m in shown] == listed["thread"]
    return [(m["role"], m["content"]) for m in shown]


def ask_twice(client) -> tuple[int, int, int]:
    """A conversation of two exchanges: (conversation id, first answer id, second answer id)."""
    conversation_id = new_conversation(client)
    first_response = send(client, conversation_id, "Premier")
    first_response.get_data()
    first = int(first_response.headers["X-Message-Id"])
    second_response = send(client, conversation_id, "Second")
    second_response.get_data()
    return conversation_id, first, int(second_response.headers["X-Message-Id"])


def test_regenerate_writes_a_new_answer_to_the_same_question_and_keeps_the_first(signed_in, engine):
    conversation_id, _, answer_id = ask_twice(signed_in)
    engine.words = ["Autre", " réponse."]
    response = signed_in.post(f"/messages/{answer_id}/regenerate", headers=STREAM)
    assert response.status_code == 200
    assert answered(response)["state"] == "complete"
    new_id = int(response.headers["X-Message-Id"])
    assert new_id != answer_id
    # The model was shown the same question again, without the answer it replaces.
    assert [(m.role, m.content) for m in engine.requests[-1]] == [
        ("user", "Premier"),
        ("assistant", "Bonjour le monde."),
        ("user", "Second"),
    ]
    assert thread(signed_in, conversation_id)[-1] == ("assistant", "Autre réponse.")
    # The earlier answer is one click away: the version arrows lead back to it.
    page = signed_in.get(f"/c/{conversation_id}").get_data(as_text=True)
    assert f"/messages/{answer_id}/select" in page and "2 / 2" in page
    assert signed_in.post(f"/messages/{answer_id}/select").status_code == 302
    assert thread(signed_in, conversation_id)[-1] == ("assistant", "Bonjour le monde.")


def test_edit_and_resend_starts_a_new_branch_from_that_question(signed_in, engine):
    conversation_id, first_answer, _ = ask_twice(signed_in)
    messages = signed_in.get(f"/conversations/{conversation_id}/messages").json["messages"]
    first_question = messages[0]["id"]
    response = signed_in.post(
        f"/messages/{first_question}/edit", json={"content": "Premier, autrement"}, headers=STREAM
    )
    assert response.status_code == 200
    answered(response)
    assert int(response.headers["X-Question-Id"]) != first_question
    # The model sees the edited question alone: what followed the old one is another branch.
    assert [(m.role, m.content) for m in engine.requests[-1]] == [("user", "Premier, autrement")]
    assert thread(signed_in, conversation_id) == [
        ("user", "Premier, autrement"),
        ("assistant", "Bonjour le monde."),
    ]
    # Going back to the first version shows the whole earlier branch, its second exchange too.
    signed_in.post(f"/messages/{first_question}/select")
    assert [content for _, content in thread(signed_in, conversation_id)] == [
        "Premier",
        "Bonjour le monde.",
        "Second",
        "Bonjour le monde.",
    ]
    # And a new message follows the branch shown.
    send(signed_in, conversation_id, "Troisième").get_data()
    assert [m.content for m in engine.requests[-1]][-2:] == ["Bonjour le monde.", "Troisième"]


def test_edit_refuses_an_empty_message_and_answers_are_not_editable(signed_in):
    conversation_id, answer_id, _ = ask_twice(signed_in)
    question_id = signed_in.get(f"/conversations/{conversation_id}/messages").json["messages"][0]["id"]
    empty = signed_in.post(f"/messages/{question_id}/edit", json={"content": "  "}, headers=JSON)
    assert empty.status_code == 400 and empty.json["error"] == "Write a message first."
    answer = signed_in.post(f"/messages/{answer_id}/edit", json={"content": "x"}, headers=JSON)
    assert answer.status_code == 400 and answer.json["error"] == "Only your own messages can be edited."
    question = signed_in.post(f"/messages/{question_id}/regenerate", headers=JSON)
    assert question.status_code == 400 and question.json["error"] == "Only an answer can be written again."


def test_regenerating_while_an_answer_is_written_is_refused_with_a_message(app, signed_in, engine):
    conversation_id, first_answer, _ = ask_twice(signed_in)
    slow_answer(engine, 200)
    writing = streams.StreamInThread(lambda: send(signed_in, conversation_id, "Troisième"), "X-Message-Id")
    response = signed_in.post(f"/messages/{first_answer}/regenerate", headers=JSON)
    assert response.status_code == 409
    assert response.json["error"] == "An answer is still being written here. Wait for it or stop it."
    signed_in.post(f"/messages/{writing.id}/stop", headers=JSON)
    writing.join()


def test_another_users_messages_cannot_be_regenerated_edited_selected_or_rated(signed_in, auth, client):
    _, answer_id, _ = ask_twice(signed_in)
    auth.logout()
    auth.register("bob", "un autre mot de passe long")
    auth.login("bob", "un autre mot de passe long")
    for url, body in [
        (f"/messages/{answer_id}/regenerate", {}),
        (f"/messages/{answer_id - 1}/edit", {"content": "pris"}),
        (f"/messages/{answer_id}/select", {}),
        (f"/messages/{answer_id}/feedback", {"value": "down"}),
    ]:
        assert client.post(url, json=body, headers=JSON).status_code == 404, url


def test_a_rating_is_stored_changed_and_taken_back(app, signed_in):
    _, answer_id, _ = ask_twice(signed_in)
    for value, stored in [("up", 1), ("down", -1), ("", None)]:
        response = signed_in.post(f"/messages/{answer_id}/feedback", json={"value": value}, headers=JSON)
        assert response.status_code == 200 and response.json["feedback"] == value
        with app.app_context():
            assert db.session.get(Message, answer_id).feedback == stored
    bad = signed_in.post(f"/messages/{answer_id}/feedback", json={"value": "5 étoiles"}, headers=JSON)
    assert bad.status_code == 400 and bad.json["error"] == "A rating is either up or down."
    question = signed_in.post(f"/messages/{answer_id - 1}/feedback", json={"value": "up"}, headers=JSON)
    assert question.status_code == 400 and question.json["error"] == "Only answers can be rated."


def test_the_dashboard_shows_each_models_thumbs_up_and_down(app, signed_in, client):
    _, first, second = ask_twice(signed_in)
    signed_in.post(f"/messages/{first}/feedback", json={"value": "up"}, headers=JSON)
    signed_in.post(f"/messages/{second}/feedback", json={"value": "down"}, headers=JSON)
    page = client.get("/admin/dashboard").get_data(as_text=True)  # the first account is the admin
    assert "data-ratings" in page
    row = page[page.index("data-ratings") :]
    row = row[row.index('data-model-id="') :]
    assert '<td class="px-3 py-2" data-up>1</td>' in row and '<td class="px-3 py-2" data-down>1</td>' in row
    assert "50%" in row  # English, as Babel writes it


def test_a_conversations_own_settings_reach_the_model_within_the_admins_limit(app, signed_in, engine):
    app.config["MAX_ANSWER_TOKENS"] = 300
    conversation_id = new_conversation(
        signed_in, system_prompt="Réponds en alexandrins.", temperature="0,3", top_k="12", max_tokens="200"
    )
    send(signed_in, conversation_id, "Bonjour").get_data()
    assert engine.requests[-1][0].role == "system"
    assert engine.requests[-1][0].content == "Réponds en alexandrins."
    options = engine.options[-1]
    assert (options.temperature, options.top_k, options.max_tokens) == (0.3, 12, 200)
    # Cleared fields follow the admin again; the admin lowering the limit caps what was chosen.
    saved = signed_in.post(
        f"/conversations/{conversation_id}/settings",
        json={"system_prompt": "", "temperature": "", "max_tokens": "250"},
        headers=JSON,
    )
    assert saved.status_code == 200 and saved.json["options"] == {"max_tokens": 250}
    app.config["MAX_ANSWER_TOKENS"] = 100
    send(signed_in, conversation_id, "Encore").get_data()
    options = engine.options[-1]
    assert options.max_tokens == 100 and options.temperature == app.config["GENERATION_TEMPERATURE"]
    assert engine.requests[-1][0].role == "user"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("temperature", "3", "Temperature must be between 0 and 2."),
        ("top_p", "0", "Top P must be between 0.01 and 1."),
        ("top_k", "beaucoup", "Top K must be a number."),
        ("top_k", "2.5", "Top K must be a number."),
        ("top_k", 1e999, "The number given for “top_k” is out of range."),  # JSON's infinity
        ("temperature", "nan", "Temperature must be a number."),
        ("max_tokens", "100000", "Longest answer (tokens) must be between 16 and 512."),
        ("system_prompt", "x" * 8001, "The system prompt is too long (8000 characters at most)."),
    ],
)
def test_a_setting_out_of_bounds_is_refused_with_a_message_naming_it(app, signed_in, field, value, message):
    app.config["MAX_ANSWER_TOKENS"] = 512
    conversation_id = new_conversation(signed_in)
    response = signed_in.post(f"/conversations/{conversation_id}/settings", json={field: value}, headers=JSON)
    assert response.status_code == 400 and response.json["error"] == message
    created = signed_in.post("/conversations", json={field: value}, headers=JSON)
    assert created.status_code == 400 and created.json["error"] == message
    with app.app_context():  # nothing half-saved, no conversation made by the refused creation
        assert db.session.get(Conversation, conversation_id).options == {}
        assert db.session.query(Conversation).count() == 1


def test_the_settings_page_form_works_without_javascript_and_says_so(signed_in):
    conversation_id = new_conversation(signed_in)
    response = signed_in.post(
        f"/conversations/{conversation_id}/settings", data={"system_prompt": "Sois bref.", "top_p": "0.9"}
    )
    assert response.status_code == 302
    page = signed_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Settings saved." in page and "Sois bref." in page and 'value="0.9"' in page


def test_a_deleted_conversation_takes_every_version_with_it(app, signed_in):
    conversation_id, _, answer_id = ask_twice(signed_in)
    signed_in.post(f"/messages/{answer_id}/regenerate", headers=STREAM).get_data()
    assert signed_in.post(f"/conversations/{conversation_id}/delete", headers=JSON).status_code == 200
    with app.app_context():
        assert db.session.query(Message).count() == 0


def test_answering_a_conversation_deleted_in_another_tab_meanwhile_is_gone_not_busy(app, signed_in):
    """The tab asked; before its answer was stored another tab deleted the conversation: that is
    a 404 (the conversation is gone), not "an answer is still being written" nor an error."""
    from app.chat import services

    conversation_id, _, _ = ask_twice(signed_in)
    with app.app_context():
        conversation = db.session.get(Conversation, conversation_id)
        question = next(m for m in conversation.messages if m.role == "user")
        with db.engine.begin() as other_tab:  # its own connection: this session does not see it
            other_tab.execute(sa.delete(Message).where(Message.conversation_id == conversation_id))
            other_tab.execute(sa.delete(Conversation).where(Conversation.id == conversation_id))
        with pytest.raises(services.Gone):
            services.add_answer(conversation, question, "a-job", lambda job: False)
        assert db.session.query(Message).filter_by(conversation_id=conversation_id).count() == 0
