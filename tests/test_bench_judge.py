"""The judge's prompt, and its reply read as a 1–10 score or as no score at all, never a guess."""

from __future__ import annotations

import json

import pytest

from app.bench.judge import VERDICT_SCHEMA, Verdict, judge_messages, parse_verdict


def test_a_json_reply_gives_its_score_and_reason():
    reply = '{"score": 8, "reason": "Réponse exacte et concise."}'
    assert parse_verdict(reply) == Verdict(8, "Réponse exacte et concise.", reply)


def test_a_fenced_json_reply_is_read():
    assert parse_verdict('```json\n{"score": 3, "reason": "Le fleuve manque."}\n```').score == 3


def test_text_around_the_json_is_ignored():
    verdict = parse_verdict('Voici mon évaluation : {"reason": "Bien.", "score": 9} J\'espère que cela aide.')
    assert (verdict.score, verdict.reason) == (9, "Bien.")


def test_an_object_without_a_score_before_the_verdict_is_skipped():
    assert parse_verdict('Format {"a": 1}, verdict {"score": 6, "reason": "Moyen."}').score == 6


@pytest.mark.parametrize(("written", "score"), [("7.0", 7), ('"7"', 7), ("1", 1), ("10", 10)])
def test_integral_floats_and_digit_strings_are_scores(written, score):
    assert parse_verdict(f'{{"score": {written}, "reason": "r"}}').score == score


@pytest.mark.parametrize(
    "reply",
    [
        "Je donnerais 8 sur 10.",
        "",
        '{"score": 0, "reason": "r"}',
        '{"score": 11, "reason": "r"}',
        '{"score": 7.5, "reason": "r"}',
        '{"score": true, "reason": "r"}',
        '{"score": null, "reason": "r"}',
        '{"score": "7/10", "reason": "r"}',
        '{"score": [7], "reason": "r"}',
        '{"score": NaN, "reason": "r"}',
        '{"reason": "r"}',
        '[{"score": 7}]'[1:-2],  # cut off mid-object by the token limit
        "[7, 8]",
    ],
)
def test_an_unreadable_reply_gives_no_score(reply):
    verdict = parse_verdict(reply)
    assert verdict.score is None
    assert verdict.raw == reply


def test_the_reason_is_kept_when_the_score_is_unreadable():
    assert parse_verdict('{"score": 12, "reason": "Excellent."}').reason == "Excellent."


def test_a_long_reason_is_cut_to_500_characters():
    reason = parse_verdict(json.dumps({"score": 5, "reason": "x" * 2000})).reason
    assert len(reason) == 500


def test_the_judge_is_given_the_question_the_reference_and_the_answer():
    messages = judge_messages("Quelle est la capitale ?", "Paris.", "C'est Lyon.")
    assert [message.role for message in messages] == ["system", "user"]
    text = "\n".join(message.content for message in messages)
    for part in ("Quelle est la capitale ?", "Paris.", "C'est Lyon.", "JSON", "one short sentence"):
        assert part in text


def test_the_schema_asks_for_an_integer_score_and_a_reason():
    assert VERDICT_SCHEMA["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 10}
    assert VERDICT_SCHEMA["required"] == ["score", "reason"]
