"""The compare page's HTTP interface, with a scripted engine: one prompt, two models, side by side."""

from __future__ import annotations

import time
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa

from app import create_app
from app.admin.services import load_preferences
from app.extensions import db
from app.llm import LLMServices
from app.llm.catalogue import Catalogue
from app.llm.scheduler import Scheduler
from app.models import Conversation, Generation, Message
from config import TestConfig
from tests import streams
from tests.conftest import AuthActions, sse_events

JSON = {"Accept": "application/json"}
STREAM = {"Accept": "text/event-stream"}
ONE_AFTER_THE_OTHER = "the second answer starts when the first ends"
TOGETHER = "Both answers are written at the same time."


def ask(client, model: str, prompt: str = "Dis bonjour"):
    return client.post("/compare/answers", json={"model": model, "prompt": prompt}, headers=STREAM)


def slow_answer(engine, words: int) -> None:
    """Script an answer of `words` words, 20 ms apart: long enough to act on while it streams."""
    engine.words = [f" mot{i}" for i in range(words)]
    engine.delay = 0.02


def StreamInThread(client, model: str, prompt: str = "raconte") -> streams.StreamInThread:  # noqa: N802
    return streams.StreamInThread(lambda: ask(client, model, prompt), "X-Compare-Id")


@pytest.fixture
def roomy_app(tmp_path: Path, engine):
    """The app on a server whose engine writes several answers at once."""
    engine.seats = 4

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'roomy.sqlite3'}"
        MODELS_DIR = tmp_path / "models"

    catalogue = Catalogue([engine], default_model="tiny", preferences=load_preferences)
    app = create_app(Config, llm_services=LLMServices(catalogue, Scheduler(catalogue)))
    with app.app_context():
        flask_migrate.upgrade()
    return app


def test_the_compare_page_asks_a_visitor_to_sign_in(client):
    response = client.get("/compare")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_every_user_finds_the_compare_page_from_the_chat(client, auth):
    auth.register()  # the admin
    auth.logout()
    auth.register("bob")
    auth.login("bob")
    assert 'href="/compare"' in client.get("/").get_data(as_text=True)


def test_the_page_offers_every_model_and_starts_with_two_different_ones(signed_in):
    page = signed_in.get("/compare").get_data(as_text=True)
    # Four pickers, the third and fourth shown on demand: every model in each.
    assert page.count('<option value="tiny"') == 4 and page.count('<option value="other"') == 4
    first, second = page.split('id="model-b"')[0], page.split('id="model-b"')[1].split('id="model-c"')[0]
    assert '<option value="tiny" selected' in first
    assert '<option value="other" selected' in second
    assert ONE_AFTER_THE_OTHER in page


def test_both_answers_stream_their_tokens_and_end_with_their_timings(signed_in):
    for model in ("tiny", "other"):
        response = ask(signed_in, model)
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        body = response.get_data(as_text=True)
        assert body.startswith(": ping\n\n"), "a comment goes first so the headers leave at once"
        events = sse_events(body)
        assert [data["text"] for name, data in events if name == "token"] == ["Bonjour", " le", " monde", "."]
        name, done = events[-1]
        assert name == "done" and done["state"] == "complete"
        assert done["stats"]["completion_tokens"] == 4
        timings = ("first_token_seconds", "tokens_per_second", "total_seconds", "queue_seconds")
        assert all(key in done["stats"] for key in timings), done["stats"]


def test_on_one_core_the_second_answer_waits_for_the_first(signed_in, engine):
    # The first answer is held writing until the second is seen waiting, however slow the
    # machine: a short first answer could end before a loaded machine took the second request.
    slow_answer(engine, 1000)
    first = StreamInThread(signed_in, "tiny")
    first.wait_for_tokens(1)
    second = StreamInThread(signed_in, "other")
    deadline = time.monotonic() + 10
    while "queued" not in second.body:
        assert time.monotonic() < deadline, second.body
        time.sleep(0.01)
    engine.words = [" fin"]  # what the second one writes, once its turn comes
    signed_in.post(f"/compare/answers/{first.id}/stop", headers=JSON)
    first_events, second_events = first.join(10), second.join(10)
    assert ("status", {"phase": "queued", "position": 1}) in second_events
    assert second_events[-1][1]["stats"]["queue_seconds"] > 0
    assert first_events[-1][1]["state"] == "stopped"
    assert second_events[-1][1]["state"] == "complete"


def test_the_plan_says_one_after_the_other_when_the_cores_allow_one_answer(signed_in):
    response = signed_in.get("/compare/plan?a=tiny&b=other")
    assert response.json["together"] is False
    assert ONE_AFTER_THE_OTHER in response.json["message"]


def test_the_plan_says_together_when_the_cores_allow_both(roomy_app):
    client = roomy_app.test_client()
    AuthActions(client).register()
    response = client.get("/compare/plan?a=tiny&b=other")
    assert response.json == {"together": True, "message": TOGETHER}
    assert TOGETHER in client.get("/compare").get_data(as_text=True)


def test_the_plan_for_an_unknown_model_says_it_is_not_available(signed_in):
    response = signed_in.get("/compare/plan?a=tiny&b=nope", headers=JSON)
    assert response.status_code == 400
    assert "“nope” is not available" in response.json["error"]


def test_an_empty_prompt_is_refused_with_a_message(signed_in):
    response = signed_in.post("/compare/answers", json={"model": "tiny", "prompt": "  "}, headers=STREAM)
    assert response.status_code == 400
    assert response.json["error"] == "Write a message first."


def test_a_too_long_prompt_is_refused_with_the_limit(app, signed_in):
    limit = app.config["MAX_MESSAGE_CHARS"]
    response = ask(signed_in, "tiny", "x" * (limit + 1))
    assert response.status_code == 400
    assert f"has {limit + 1:,} characters, {limit:,} at most" in response.json["error"]


def test_an_unknown_model_is_refused_with_a_message(signed_in):
    response = ask(signed_in, "nope")
    assert response.status_code == 400
    assert "“nope” is not available" in response.json["error"]


def test_a_full_server_refuses_with_retry_after(app, signed_in):
    app.extensions["llm"].scheduler.max_answers = 1  # MAX_ANSWERS
    assert app.extensions["llm"].scheduler.reserve(99) is None  # another answer holds the only place
    response = ask(signed_in, "tiny")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "Too many answers" in response.json["error"]


def test_stop_ends_the_owners_answer_marked_stopped(signed_in, engine):
    slow_answer(engine, 200)
    stream = StreamInThread(signed_in, "tiny")
    stream.wait_for_tokens(3)
    response = signed_in.post(f"/compare/answers/{stream.id}/stop", headers=JSON)
    assert response.json == {"stopped": True}
    name, done = stream.join()[-1]
    assert name == "done" and done["state"] == "stopped"
    assert done["stats"]["completion_tokens"] < 200


def test_another_user_cannot_stop_my_answer(app, signed_in, engine):
    slow_answer(engine, 100)
    stream = StreamInThread(signed_in, "tiny")
    stream.wait_for_tokens(1)
    bob = app.test_client()
    AuthActions(bob).register("bob")
    assert bob.post(f"/compare/answers/{stream.id}/stop", headers=JSON).status_code == 404
    stream.wait_for_tokens(10)  # the answer goes on
    signed_in.post(f"/compare/answers/{stream.id}/stop", headers=JSON)
    stream.join()


def test_an_answer_that_has_ended_can_no_longer_be_stopped(signed_in):
    response = ask(signed_in, "tiny")
    response.get_data()
    key = response.headers["X-Compare-Id"]
    assert signed_in.post(f"/compare/answers/{key}/stop", headers=JSON).status_code == 404
    assert signed_in.post("/compare/answers/-999/stop", headers=JSON).status_code == 404


def test_a_comparison_leaves_nothing_in_the_database(app, signed_in):
    for model in ("tiny", "other"):
        ask(signed_in, model).get_data()
    with app.app_context():
        for table in (Conversation, Message, Generation):
            assert db.session.scalar(sa.select(sa.func.count()).select_from(table)) == 0, table


# -- up to four models on the page (issue 16, item 13) -------------------------------------------
def test_the_page_offers_a_third_and_a_fourth_model_on_demand(signed_in):
    page = signed_in.get("/compare").get_data(as_text=True)
    assert 'id="add-model"' in page and "Up to 4 models." in page
    for name in ("c", "d"):
        assert f'id="model-{name}"' in page
        picker = page.split(f'data-picker="{name}"')[0].rsplit("<div", 1)[1]
        assert "hidden" in picker  # shown once the user adds it
        assert f'data-column="{name}"' in page


def test_four_answers_of_one_comparison_are_not_refused_by_the_bound_of_three_at_once(app, signed_in, engine):
    app.extensions["llm"].scheduler.max_per_user = 3  # MAX_ANSWERS_PER_USER, as shipped
    slow_answer(engine, 10)
    asked = [StreamInThread(signed_in, model) for model in ("tiny", "other", "tiny")]
    fourth = ask(signed_in, "other")
    assert fourth.status_code == 200, fourth.get_data(as_text=True)
    assert sse_events(fourth.get_data(as_text=True))[-1][1]["state"] == "complete"
    assert all(stream.join()[-1][1]["state"] == "complete" for stream in asked)


def test_a_fifth_answer_while_four_are_compared_is_refused_with_a_message(app, signed_in, engine):
    app.extensions["llm"].scheduler.max_per_user = 3
    slow_answer(engine, 50)
    asked = [StreamInThread(signed_in, model) for model in ("tiny", "other", "tiny", "other")]
    fifth = ask(signed_in, "tiny")
    assert fifth.status_code == 429
    assert fifth.json["error"] == "A comparison has 4 models at most: wait for its answers to end."
    for stream in asked:
        signed_in.post(f"/compare/answers/{stream.id}/stop", headers=JSON)
        stream.join()


def test_the_plan_for_three_models_says_each_answer_waits_for_the_one_before(signed_in):
    response = signed_in.get("/compare/plan?a=tiny&b=other&c=tiny")
    assert response.json["together"] is False
    assert "each answer starts when the one before it ends" in response.json["message"]


def test_comparison_answers_asked_at_the_same_instant_get_four_places_at_most(
    app, signed_in, engine, monkeypatch
):
    """The bound of four is decided with the place taken: answers asked together while one runs
    cannot all pass the count before any is started (each would then escape the person's bound)."""
    import threading

    from app import answers as pipeline
    from tests.patience import patience

    slow_answer(engine, 5000)  # writing until stopped, however slow the machine
    running = StreamInThread(signed_in, "tiny")
    gate, arrived, statuses, opened = threading.Event(), [], [], []
    real_place = pipeline.place

    def place_after_the_others(*args, **kwargs):  # every request past its count before any starts
        arrived.append(1)
        gate.wait(patience(15.0))
        return real_place(*args, **kwargs)

    monkeypatch.setattr(pipeline, "place", place_after_the_others)

    def ask_and_keep():
        response = ask(signed_in, "other")
        statuses.append(response.status_code)
        if response.status_code == 200:
            opened.append(response.headers["X-Compare-Id"])
            b"".join(response.response)

    threads = [threading.Thread(target=ask_and_keep) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + patience(15.0)
    while len(arrived) + statuses.count(429) < 4:
        assert time.monotonic() < deadline, (arrived, statuses)
        time.sleep(0.01)
    gate.set()
    try:
        deadline = time.monotonic() + patience(15.0)
        while len(statuses) < 4:
            assert time.monotonic() < deadline, statuses
            time.sleep(0.01)
        assert sorted(statuses) == [200, 200, 200, 429]
    finally:
        for answer_id in [running.id, *opened]:
            signed_in.post(f"/compare/answers/{answer_id}/stop", headers=JSON)
        running.join()
        for thread in threads:
            thread.join(patience(15.0))
