"""No request a client can send makes the server fail (500): every malformed body, number, id
or text gets a 4xx with a clear message, JSON where JSON was asked (issue 16, item 19).

Malformed bodies go to every JSON route of the chat (the OpenAPI description does not cover
them); `test_the_api_survives_schemathesis` fuzzes the described API.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from app.extensions import db
from app.models import Collection
from tests.conftest import PASSWORD
from tests.url_map import url_of

JSON = {"Accept": "application/json"}
DEEP = "[" * 100_000 + "]" * 100_000  # past Python's recursion limit, under the 1 MB bound
LONG_NUMBER = "9" * 400
# Bodies as sent on the wire: each was once answered 500 somewhere.
MALFORMED_BODIES = {
    "deeply nested": DEEP,
    "deeply nested object": '{"content": ' + DEEP + "}",
    "lone surrogate": '{"content": "\\ud800", "title": "\\udfff", "prompt": "\\ud800", "model": "\\ud800"}',
    "NUL character": '{"content": "a\\u0000b", "title": "a\\u0000b", "name": "\\u0000", "model": "\\u0000"}',
    "400-digit numbers": "{"
    + ", ".join(
        f'"{name}": {LONG_NUMBER}'
        for name in ("temperature", "top_p", "top_k", "max_tokens", "seed", "parent_id", "message_id")
    )
    + "}",
    "huge floats": '{"temperature": 1e400, "top_p": -1e400, "max_tokens": 1e400}',
    "ids past 2^64": '{"parent_id": 18446744073709551616, "message_id": 18446744073709551616}',
    "array": "[]",
    "string": '"hello"',
    "number": "42",
    "null": "null",
    "wrong types": '{"content": ["a"], "title": {"a": 1}, "model": 5, "think": "maybe", "messages": "x"}',
    "not JSON": "{not json",
}
HUGE_IDS = (2**63, 2**64, 10**30)


def chat_rules(app):
    """Every route that is not the API's (which takes a key: swept by schemathesis) nor static,
    signing out left out, the ones that delete last."""
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        and not rule.endpoint.startswith(("api.", "openai."))
        and "logout" not in rule.endpoint
    ]
    return sorted(rules, key=lambda rule: any(word in rule.rule for word in ("delete", "revoke")))


def server_failures(client, method: str, url: str, **kwargs) -> str | None:
    """What went wrong, if the server failed: a 5xx, or an exception the test client raised."""
    try:
        response = client.open(url, method=method, **kwargs)
    except Exception as exc:  # TESTING propagates the error a user would get as a 500
        return f"{method} {url}: {type(exc).__name__}: {exc}"[:300]
    if response.status_code >= 500:
        return f"{method} {url}: {response.status_code}"
    if kwargs.get("headers", {}).get("Accept") == "application/json" and response.status_code >= 400:
        if not response.is_json or not response.json.get("error"):
            return f"{method} {url}: {response.status_code} without a JSON error"
    return None


@pytest.fixture
def conversation(signed_in) -> int:
    response = signed_in.post("/conversations", json={}, headers=JSON)
    conversation_id = response.json["id"]
    signed_in.post(f"/conversations/{conversation_id}/messages", json={"content": "Bonjour"}).get_data()
    return conversation_id


def test_malformed_bodies_to_every_chat_route_get_4xx_never_500(app, signed_in, conversation):
    failures = []
    for rule in chat_rules(app):
        url = url_of(rule, default_id=conversation)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS", "GET"}):
            for what, body in MALFORMED_BODIES.items():
                headers = {**JSON, "Content-Type": "application/json"}
                failure = server_failures(signed_in, method, url, data=body, headers=headers)
                if failure:
                    failures.append(f"{what}: {failure}")
    assert not failures, "\n".join(failures)


def test_huge_numbers_in_forms_and_query_strings_get_4xx_never_500(app, signed_in, conversation):
    fields = (
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "seed",
        "context",
        "threads",
        "repetitions",
        "days",
    )
    huge = dict.fromkeys(fields, LONG_NUMBER) | {"model": "tiny", "name": "x", "title": "x"}
    failures = []
    for rule in chat_rules(app):
        url = url_of(rule, default_id=conversation)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method == "GET":
                failure = server_failures(signed_in, method, url, query_string=huge)
            else:
                failure = server_failures(signed_in, method, url, data=huge, query_string=huge)
            if failure:
                failures.append(failure)
    assert not failures, "\n".join(failures)


def test_a_nul_character_in_forms_and_query_strings_gets_400_never_500(app, signed_in, conversation):
    # PostgreSQL stores no NUL in a text column nor takes one in a query; SQLite did.
    fields = ("name", "title", "description", "username", "usernames", "directory_group", "q", "content")
    nul = dict.fromkeys(fields, "a\x00b") | {"action": "\x00", "days": "1"}
    failures = []
    for rule in chat_rules(app):
        url = url_of(rule, default_id=conversation)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method == "GET":
                failure = server_failures(signed_in, method, url, query_string=nul)
            else:
                failure = server_failures(signed_in, method, url, data=nul)
            if failure:
                failures.append(failure)
    assert not failures, "\n".join(failures)


def test_a_nul_character_in_a_form_is_refused_with_a_message_and_stores_nothing(app, signed_in, conversation):
    response = signed_in.post(f"/conversations/{conversation}/rename", data={"title": "Plan\x00B"})
    assert response.status_code == 400
    assert "cannot be stored" in response.get_data(as_text=True)
    with app.app_context():
        from app.models import Conversation

        assert "\x00" not in db.session.get(Conversation, conversation).title


def test_a_nul_character_in_a_repeated_field_is_refused_too(app, signed_in, conversation):
    response = signed_in.get("/search", query_string=[("q", "plan"), ("q", "B\x00")])
    assert response.status_code == 400


def test_ids_past_the_databases_integers_get_404_never_500(app, signed_in):
    failures = []
    for rule in app.url_map.iter_rules():
        if not any(":" not in part and "<" in part or "int:" in part for part in [rule.rule]):
            continue
        for huge in HUGE_IDS:
            url = url_of(rule, default_id=huge)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                for headers in (JSON, {}):
                    failure = server_failures(signed_in, method, url, headers=headers, json={})
                    if failure:
                        failures.append(failure)
    assert not failures, "\n".join(failures)


def test_malformed_bodies_to_every_api_route_get_a_json_400(app, signed_in):
    key = api_key(signed_in)
    with app.app_context():  # what an id in an API route names (a collection to upload into)
        collection = Collection(name="Procédures")
        db.session.add(collection)
        db.session.commit()
        existing = collection.id
    failures = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(("api.", "openai.")) or "POST" not in rule.methods:
            continue
        for what, body in MALFORMED_BODIES.items():
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            response = signed_in.post(url_of(rule, default_id=existing), data=body, headers=headers)
            if response.status_code != 400 or not response.is_json or not response.json.get("error"):
                failures.append(f"{what}: {rule.rule}: {response.status_code} {response.data[:100]!r}")
    assert not failures, "\n".join(failures)


def test_content_parts_other_than_text_are_refused_with_a_clear_message(signed_in):
    key = api_key(signed_in)
    for parts in (
        [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
        [{"type": "text", "text": {"not": "text"}}],
        [{"type": "text", "text": 5}],
        ["just a string"],
    ):
        body = {"model": "tiny", "messages": [{"role": "user", "content": parts}]}
        response = signed_in.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 400, (parts, response.data[:200])
        assert "Only text parts are read" in response.json["error"]["message"]


def test_a_line_break_in_next_after_a_good_sign_in_goes_home(client, auth):
    auth.register()
    auth.logout()
    for target in ("/settings\r\nSet-Cookie: x=1", "/settings\nX: y", "/\\\\evil.example"):
        response = client.post(
            "/login", query_string={"next": target}, data={"username": "alice", "password": PASSWORD}
        )
        assert response.status_code == 302 and response.headers["Location"] == "/", target
        client.post("/logout")


def api_key(client) -> str:
    page = client.post("/settings/api-keys", data={"name": "fuzz"}).get_data(as_text=True)
    return re.search(r"data-key>(cau_[A-Za-z0-9_-]+)<", page).group(1)


# -- the described API, fuzzed -------------------------------------------------------------------
# Cases in all, over the nine operations, values the description allows and values it refuses
# alike (schemathesis's positive and negative modes): about a minute on a busy 2-core machine,
# fixed by a seed so that a failure replays.
FUZZ_CASES = 400


def test_the_api_survives_schemathesis(app, signed_in):
    """Whatever the described API is sent, it answers without failing, and in JSON."""
    key = api_key(signed_in)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    cases = st.one_of(schema.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))
    sent = Counter()

    @given(case=cases)
    @settings(
        max_examples=FUZZ_CASES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def answers_without_failing(case):
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        sent[case.operation.label] += 1
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400:
            content_type = response.headers.get("content-type", [""])[0]  # schemathesis's own Response
            assert content_type.startswith("application/json"), (response.status_code, case.path)
            assert response.json().get("error"), response.text[:200]

    started = time.monotonic()
    answers_without_failing()
    print(f"schemathesis: {sum(sent.values())} cases in {time.monotonic() - started:.0f} s: {dict(sent)}")
    assert len(sent) >= 8, "every operation with something to vary was tried"


# Values that pass a quick check and fail the conversion after it: a digit to str.isdigit that
# int() refuses, the first and last days a date can have (a day after the last overflows), NUL.
ODD_VALUES = ("²", "9999-12-31", "0001-01-01", "a\x00b", "١٢")
ODD_FIELDS = (
    "page",
    "days",
    "since",
    "until",
    "person",
    "action",
    "address",
    "period",
    "show",
    "q",
    "answers_per_day",
    "tokens_per_day",
    "answers_at_once",
    "name",
    "description",
    "directory_group",
    "members",
    "username",
    "usernames",
    "group",
    "models",
    "collections",
    "collection_ids",
    "document_ids",
    "mode",
    "model",
    "value",
    "next",
    "title",
    "content",
    "enabled",
)


def test_digits_int_refuses_and_the_calendars_ends_in_forms_and_queries_get_4xx_never_500(
    app, signed_in, conversation
):
    failures = []
    for rule in chat_rules(app):
        url = url_of(rule, default_id=conversation)
        for value in ODD_VALUES:
            fields = dict.fromkeys(ODD_FIELDS, value)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                kwargs = (
                    {"query_string": fields} if method == "GET" else {"data": fields, "query_string": fields}
                )
                failure = server_failures(signed_in, method, url, **kwargs)
                if failure:
                    failures.append(f"{value!r}: {failure}")
    assert not failures, "\n".join(failures)


def test_knowledge_bases_chosen_in_a_form_by_ids_past_the_databases_integers_are_none_never_500(
    app, signed_in, conversation
):
    huge = {"collection_ids": [str(2**63), str(10**30)]}
    response = signed_in.post(f"/conversations/{conversation}/settings", headers=JSON, data=huge)
    assert response.status_code == 200, response.data
    assert response.json["collection_ids"] == []


@pytest.mark.parametrize("route", ["/conversations/{conversation}/messages", "/messages/{message}/edit"])
def test_files_named_by_ids_past_the_databases_integers_are_not_available_never_500(
    app, signed_in, conversation, route
):
    message = signed_in.get(f"/conversations/{conversation}/messages", headers=JSON).json["messages"][0]["id"]
    url = route.format(conversation=conversation, message=message)
    response = signed_in.post(url, headers=JSON, data={"content": "Bonjour", "document_ids": str(10**30)})
    assert response.status_code == 400
    assert response.json["error"] == "A file sent with this message is no longer available: attach it again."
