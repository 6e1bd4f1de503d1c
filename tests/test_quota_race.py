"""The quotas' race on the real server (waitress's threads, the real model, SQLite or PostgreSQL
with TEST_DATABASE_URL): twenty requests of one person at the same instant, half from the chat's
tabs and half through an API key of theirs, at a limit of N answers a day start exactly N."""

import pytest
import requests
import sqlalchemy as sa

from benchmarks.client import CSRF_INPUT, ChatClient, RefusedError
from benchmarks.server import LiveServer
from tests.conftest import PASSWORD
from tests.test_races import at_once

LIMIT = 5


@pytest.mark.model
def test_twenty_requests_at_once_from_the_chat_and_an_api_key_at_a_limit_of_n_start_exactly_n(
    database_url, tmp_path
):
    env = {
        "DATABASE_URL": database_url,
        "GENERATION_TEMPERATURE": "0",
        "MAX_ANSWER_TOKENS": "16",  # short: what is measured is how many start
        "MAX_ANSWERS_PER_USER": "40",  # the day's quota is what stops them, not the bound at once
    }
    with LiveServer(tmp_path / "instance", env=env) as server:
        owner = ChatClient(server.base_url, timeout=300)
        assert owner.register("ines", PASSWORD).ok  # the first account: the admin
        form = owner.session.get(owner.url("/admin/quotas/users/1"), timeout=60).text
        found = CSRF_INPUT.search(form)
        token = found.group(1) or found.group(2)
        saved = owner.session.post(
            owner.url("/admin/quotas/users/1"),
            data={"csrf_token": token, "answers_per_day": str(LIMIT)},
            allow_redirects=False,
            timeout=60,
        )
        assert saved.status_code == 302, saved.text[:300]
        key = owner.create_api_key("script")
        bearer = {"Authorization": f"Bearer {key}"}
        model = requests.get(server.base_url + "/api/v1/models", headers=bearer, timeout=60).json()["default"]
        tabs = []
        for _ in range(10):
            tab = ChatClient(server.base_url, timeout=300)
            assert tab.login("ines", PASSWORD).ok
            tabs.append((tab, tab.create_conversation()))

        def from_a_tab(tab, conversation_id):
            def send():
                try:
                    tab.ask(conversation_id, "Dis bonjour.")
                    return 200
                except RefusedError as refused:
                    return refused.status

            return send

        def from_the_key():
            response = requests.post(
                server.base_url + "/api/v1/generate",
                json={"model": model, "prompt": "Dis bonjour."},
                headers=bearer,
                timeout=300,
            )
            return response.status_code

        statuses = at_once([from_a_tab(*tab) for tab in tabs] + [from_the_key] * 10)
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT count(*) FROM quota_use")).scalar()
        answers = connection.execute(
            sa.text("SELECT count(*) FROM message WHERE role = 'assistant'")
        ).scalar()
    engine.dispose()
    chat, api = statuses[:10], statuses[10:]
    print(
        f"20 requests at once (10 chat, 10 API key), limit {LIMIT}/day: {statuses.count(200)} started "
        f"(chat {chat.count(200)}, API {api.count(200)}), {statuses.count(429)} refused with 429; "
        f"{rows} counted, {answers} chat answers stored"
    )
    assert sorted(statuses) == [200] * LIMIT + [429] * (20 - LIMIT), statuses
    assert rows == LIMIT and answers == chat.count(200)
