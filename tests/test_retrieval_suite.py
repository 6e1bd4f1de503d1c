"""The shipped retrieval suite (benchmarks/suites/documents.toml) is what its figures claim to
measure: enough questions, in French and English, each with a passage found word for word in its
document, and a third at least that a keyword search cannot match word for word, decided from the
texts by benchmarks/paraphrase.py, not by a flag set by hand."""

from __future__ import annotations

from collections import Counter

import pytest

from app.bench.suites import SHIPPED_SUITES, SuiteError, load_suite
from benchmarks.paraphrase import content_words, language, shared_words

SUITE = SHIPPED_SUITES / "documents.toml"


@pytest.fixture(scope="module")
def suite():
    return load_suite(SUITE)


@pytest.fixture(scope="module")
def documents(suite):
    folder = SHIPPED_SUITES / suite.documents
    return {path.name: path.read_text(encoding="utf-8") for path in folder.iterdir()}


def test_the_suite_asks_at_least_sixty_questions_about_its_documents(suite, documents):
    assert len(suite.prompts) >= 60
    assert all(prompt.source in documents for prompt in suite.prompts)
    assert {prompt.source for prompt in suite.prompts} == set(documents), "a document no question asks about"


def test_questions_are_asked_in_french_and_in_english_about_documents_in_their_language(suite, documents):
    languages = Counter(language(prompt.text) for prompt in suite.prompts)
    assert languages["fr"] >= 20 and languages["en"] >= 20, languages
    for prompt in suite.prompts:
        assert language(prompt.text) == language(documents[prompt.source]), prompt.id


def test_every_passage_is_found_word_for_word_in_its_document(suite, documents):
    for prompt in suite.prompts:
        assert prompt.passage and prompt.passage in documents[prompt.source], prompt.id


def test_every_passage_is_found_in_one_document_only(suite, documents):
    for prompt in suite.prompts:
        holding = [name for name, text in documents.items() if prompt.passage in text]
        assert holding == [prompt.source], prompt.id


def test_at_least_a_third_of_the_questions_share_no_content_word_with_their_passage(suite):
    paraphrases = [prompt for prompt in suite.prompts if not shared_words(prompt.text, prompt.passage)]
    assert len(paraphrases) * 3 >= len(suite.prompts), len(paraphrases)
    # In each language too: the figures are given per language.
    for lang in ("fr", "en"):
        asked = [prompt for prompt in suite.prompts if language(prompt.text) == lang]
        assert sum(prompt in paraphrases for prompt in asked) * 3 >= len(asked), lang


def test_a_question_sharing_a_word_or_a_stem_with_its_passage_is_not_a_paraphrase():
    passage = "Tout accident, même sans arrêt de travail, est déclaré au service RH sous 48 heures."
    assert shared_words("Combien de jours pour déclarer un accident ?", passage) == {"declarer", "accident"}
    assert shared_words("Que faire si un bidon fuit ?", "En cas de fuite, on utilise le kit.") == {"fuit"}
    assert shared_words("Quel délai pour signaler une blessure ?", passage) == set()


def test_stopwords_and_accents_do_not_count_as_shared_content():
    assert content_words("Où est l'Élément qu'il faut ?") == {"element"}
    assert language("Where is the passage that answers?") == "en"
    assert language("Où se trouve la clé du magasin ?") == "fr"


def test_a_passage_missing_its_source_is_refused(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("Le délai est de 48 heures.", encoding="utf-8")
    base = 'name = "D"\ndocuments = "docs"\n[[prompts]]\nid = "q"\nname = "Q"\nprompt = "Quel délai ?"\n'
    (tmp_path / "ok.toml").write_text(
        base + 'source = "a.md"\npassage = "48 heures"\ncheck = { kind = "cites_source" }\n', encoding="utf-8"
    )
    assert load_suite(tmp_path / "ok.toml").prompts[0].source == "a.md"
    (tmp_path / "missing.toml").write_text(
        base + 'source = "b.md"\npassage = "48 heures"\ncheck = { kind = "cites_source" }\n', encoding="utf-8"
    )
    with pytest.raises(SuiteError, match="b.md"):
        load_suite(tmp_path / "missing.toml")
    (tmp_path / "alone.toml").write_text(
        base + 'source = "a.md"\ncheck = { kind = "cites_source" }\n', encoding="utf-8"
    )
    with pytest.raises(SuiteError, match="source and passage go together"):
        load_suite(tmp_path / "alone.toml")


def test_a_documents_folder_outside_the_suites_folder_is_refused(tmp_path):
    (tmp_path / "up.toml").write_text(
        'name = "D"\ndocuments = "../etc"\n[[prompts]]\nid = "q"\nname = "Q"\nprompt = "?"\n'
        'source = "passwd"\npassage = "root"\ncheck = { kind = "cites_source" }\n',
        encoding="utf-8",
    )
    with pytest.raises(SuiteError, match="folder beside the suite"):
        load_suite(tmp_path / "up.toml")
