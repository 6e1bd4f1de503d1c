"""Numbers as the reader's language writes them, with one vocabulary: "3,3 jetons/s · premier
jeton après 0,28 s" for a French reader, "3.3 tokens/s · first token after 0.28 s" for an English
one — in the chat, on the dashboard and on the benchmarks pages (app/formatting.py). What the
scripts write (the chat's and Compare's live figures) is in tests/browser/test_numbers_in_browser.py."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.models import Generation
from tests.test_bench_pages import BenchEngine, start, wait_for_end
from tests.test_chat_web import new_conversation, send

JSON = {"Accept": "application/json"}
FRENCH_SPEED = re.compile(r"[\d\u202f\u00a0]+,\d jetons/s · premier jeton après \d+,\d\d s")
ENGLISH_SPEED = re.compile(r"[\d,]+\.\d tokens/s · first token after \d+\.\d\d s")


@pytest.fixture
def engine() -> BenchEngine:
    return BenchEngine(delay=0.01)


def speaking(client, language: str):
    response = client.post("/settings", data={"language": language, "theme": "system"})
    assert response.status_code in (200, 302), response.data
    return client


def the_speed_line(client) -> str:
    conversation_id = new_conversation(client, model="tiny")
    send(client, conversation_id, "Dis bonjour").get_data()
    page = client.get(f"/c/{conversation_id}").get_data(as_text=True)
    return page.split("data-speed>")[1].split("</span>")[0]


def test_a_french_reader_sees_the_answer_speed_in_jetons_with_decimal_commas(signed_in):
    line = the_speed_line(speaking(signed_in, "fr"))
    assert FRENCH_SPEED.fullmatch(line), line


def test_an_english_reader_sees_the_answer_speed_in_tokens_with_decimal_points(signed_in):
    line = the_speed_line(speaking(signed_in, "en"))
    assert ENGLISH_SPEED.fullmatch(line), line


@pytest.fixture
def measured(app, signed_in):
    with app.app_context():
        db.session.add(
            Generation(
                engine="llama.cpp",
                model="tiny",
                outcome="complete",
                first_token_seconds=0.28,
                total_seconds=1.98,
                tokens_per_second=3.3,
                process_cpu_percent_mean=50.5,
                process_rss_peak_bytes=1_250_000_000,
                concurrent=1,
            )
        )
        db.session.commit()
    return signed_in


@pytest.mark.parametrize(
    "language, words, numbers, not_there",
    [
        ("fr", ["Jetons/s (médiane)", "Premier jeton p50 / p95"], ["0,28 s", "1,98 s", "3,3", "1,25 Go"],
         ["Tokens/s", "Premier token", "0.28", "1.98 s"]),
        ("en", ["Tokens/s (median)", "First token p50 / p95"], ["0.28 s", "1.98 s", "3.3", "1.25 GB"],
         ["jeton", "0,28", "1,98 s"]),
    ],
)  # fmt: skip
def test_the_dashboard_speaks_the_readers_numbers_and_words(measured, language, words, numbers, not_there):
    page = speaking(measured, language).get("/admin/dashboard").get_data(as_text=True)
    table = page.split("data-figures")[1].split("</table>")[0]
    assert all(word in table for word in words), table
    assert all(number in table for number in numbers), table
    assert not any(wrong in table for wrong in not_there), table


@pytest.mark.parametrize(
    "language, words, numbers, not_there",
    [
        ("fr", ["Jetons/s", "Premier jeton", "Jetons par seconde"], ["42,0", "42,0 jetons/s"],
         ["Tokens/s", "Premier token", "42.0", "tok/s"]),
        ("en", ["Tokens/s", "First token", "Tokens per second"], ["42.0", "42.0 tokens/s"],
         ["jeton", "42,0", "tok/s"]),
    ],
)  # fmt: skip
def test_the_benchmarks_speak_the_readers_numbers_and_words(
    app, signed_in, language, words, numbers, not_there
):
    admin = speaking(signed_in, language)
    run_page = start(admin, thinking="off").headers["Location"]
    wait_for_end(app)
    run = admin.get(run_page).get_data(as_text=True)
    index = admin.get("/admin/benchmarks").get_data(as_text=True)
    both = run + index
    assert all(word in both for word in words), words
    assert all(number in both for number in numbers), numbers
    assert not any(wrong in both for wrong in not_there), [w for w in not_there if w in both]
