"""Benchmark suites as data files: the shipped ones load, a broken one is refused with its name and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.bench import checks
from app.bench.suites import SHIPPED_SUITES, Prompt, Suite, SuiteError, load_suite, load_suites

GOOD = """
name = "Essai"
description = "Un essai."

[defaults]
max_tokens = 64

[[prompts]]
id = "capitale"
name = "Capitale"
prompt = "Quelle est la capitale de la France ?"
reference = "Paris."
check = { kind = "contains", facts = ["Paris"] }

[[prompts]]
id = "calcul"
name = "Calcul"
prompt = "Combien font 7 fois 8 ?"
max_tokens = 32
temperature = 0.7
check = { kind = "final_number", expected = 56 }
"""


def write(folder: Path, text: str, name: str = "essai.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_suites_load():
    suites = load_suites()
    assert list(suites) == ["documents", "essentiel", "rapide"]
    assert suites["documents"].name == "Documents"
    assert suites["essentiel"].name == "Essentiel"
    assert suites["rapide"].name == "Rapide"


def test_essentiel_has_the_snake_a_fact_a_summary_and_a_reasoning_prompt():
    prompts = {prompt.id: prompt for prompt in load_suites()["essentiel"].prompts}
    assert prompts["snake"].text == "Tu peux me générer le jeu snake en python"
    assert prompts["snake"].check == {"kind": "python_code", "game_loop": True}
    kinds = [prompt.check["kind"] for prompt in prompts.values()]
    assert sorted(kinds) == ["contains", "final_number", "python_code", "word_count"]


@pytest.mark.parametrize("suite", ["essentiel", "rapide"])
def test_every_shipped_prompt_has_a_valid_check_a_reference_and_a_modest_budget(suite):
    for prompt in load_suites()[suite].prompts:
        checks.validate(prompt.check)
        assert prompt.reference.strip()
        assert prompt.max_tokens <= (96 if suite == "rapide" else 1024)
        assert (prompt.temperature, prompt.top_k, prompt.seed) == (0.0, 1, 42)  # repeatable runs


def test_the_summary_prompt_gives_a_text_of_150_to_200_words():
    summary = next(p for p in load_suites()["essentiel"].prompts if p.check["kind"] == "word_count")
    text = summary.text.split("\n\n", 1)[1]
    assert 150 <= checks.count_words(text) <= 200


def test_defaults_apply_and_a_prompt_overrides_them(tmp_path):
    suite = load_suite(write(tmp_path, GOOD))
    capitale, calcul = suite.prompts
    assert suite.id == "essai"
    assert (capitale.max_tokens, capitale.temperature, capitale.top_k, capitale.seed) == (64, 0.0, 1, 42)
    assert (calcul.max_tokens, calcul.temperature) == (32, 0.7)
    assert calcul.reference == ""


def test_suite_round_trips_through_its_dict():
    for suite in load_suites().values():
        assert Suite.from_dict(suite.as_dict()) == suite


def test_a_stored_suite_that_no_longer_validates_is_refused():
    data = load_suites()["rapide"].as_dict()
    data["prompts"][0]["check"] = {"kind": "gone"}
    with pytest.raises(
        SuiteError, match="suite 'rapide': prompt 'capitale-italie': unknown check kind 'gone'"
    ):
        Suite.from_dict(data)


def test_prompt_as_dict_names_every_setting():
    assert set(Prompt("a", "A", "?").as_dict()) == {
        "id", "name", "text", "system", "reference", "max_tokens", "temperature", "top_k", "top_p", "seed",
        "check", "source", "passage",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t.replace('id = "calcul"', 'id = "capitale"'), "prompt id 'capitale' is used twice"),
        (lambda t: t.replace("temperature = 0.7", "temprature = 0.7"), "unknown key temprature"),
        (lambda t: t.replace('kind = "final_number"', 'kind = "regex"'), "unknown check kind 'regex'"),
        (lambda t: t.replace("expected = 56", "expectd = 56"), "no parameter expectd"),
        (lambda t: t.replace("max_tokens = 32", "max_tokens = 0"), "max_tokens must be between 1 and 8192"),
        (lambda t: t.replace("max_tokens = 32", "max_tokens = 1.5"), "max_tokens must be a whole number"),
        (lambda t: t.replace("temperature = 0.7", "temperature = 3"), "temperature must be between 0 and 2"),
        (lambda t: t.replace('prompt = "Combien', 'prompt = "  "\n#'), "prompt must be non-empty text"),
        (lambda t: t.replace('id = "calcul"', 'id = "Calcul !"'), "id 'Calcul !' must be lowercase"),
        (lambda t: t.replace("max_tokens = 64", "max_token = 64"), r"\[defaults\]: unknown key max_token"),
        (lambda t: t.replace('name = "Essai"', 'nom = "Essai"'), "unknown key nom"),
        (lambda t: t.replace('name = "Calcul"', 'name = "Calcul'), "not valid TOML"),
        (lambda t: t.split("[[prompts]]")[0], r"no \[\[prompts\]\]"),
        (
            lambda t: t.replace('check = { kind = "final_number", expected = 56 }', ""),
            "'calcul': needs a check",
        ),
    ],
)
def test_a_broken_suite_is_refused_naming_the_file_and_the_problem(tmp_path, change, problem):
    path = write(tmp_path, change(GOOD))
    with pytest.raises(SuiteError, match=problem) as refused:
        load_suite(path)
    assert str(path) in str(refused.value)


def test_one_broken_file_in_a_folder_is_named(tmp_path):
    write(tmp_path, GOOD, "bonne.toml")
    write(tmp_path, "name = ", "cassee.toml")
    with pytest.raises(SuiteError, match="cassee.toml: not valid TOML"):
        load_suites(tmp_path)


def test_suites_load_sorted_by_id(tmp_path):
    write(tmp_path, GOOD, "zeta.toml")
    write(tmp_path, GOOD, "alpha.toml")
    write(tmp_path, "not a suite", "notes.txt")
    assert list(load_suites(tmp_path)) == ["alpha", "zeta"]


def test_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(SuiteError, match="no such folder"):
        load_suites(tmp_path / "absent")


def test_the_shipped_folder_is_in_the_repository():
    assert SHIPPED_SUITES == Path(__file__).resolve().parents[1] / "benchmarks" / "suites"
