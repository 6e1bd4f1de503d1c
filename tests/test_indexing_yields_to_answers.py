"""Indexing makes way for the answers being written: the embedding of a document's passages
runs in the app's own process, where nice 19 does not hold it back from llama-server (the
kernel's autogroups share the cores between sessions, whatever their processes' nice)."""

import io
import threading

import sqlalchemy as sa

from app.documents import indexing
from app.extensions import db
from app.llm import services
from app.models import Chunk, Document

JSON = {"Accept": "application/json"}
NOTE = "# Note\n\nLa salle Rhin est réservée aux formations le lundi matin.\n"


def test_passages_are_embedded_only_once_the_answer_being_written_has_ended(
    app, signed_in, engine, monkeypatch
):
    uploaded = signed_in.post(
        "/documents", data={"file": (io.BytesIO(NOTE.encode()), "note.md")}, headers=JSON
    )
    document = uploaded.json["document"]["id"]
    engine.words, engine.delay = ["mot "] * 15, 0.1  # an answer written over 1.5 s
    conversation = signed_in.post("/conversations", json={}, headers=JSON).json["id"]
    with app.app_context():
        indexing.wait_until_indexed([document], lambda *_: None, lambda: False, 30)
        db.session.execute(sa.delete(Chunk).where(Chunk.document_id == document))
        db.session.execute(sa.update(Document).where(Document.id == document).values(state="waiting"))
        db.session.commit()
    ended: list[bool] = []

    def chat() -> None:
        response = signed_in.post(
            f"/conversations/{conversation}/messages",
            json={"content": "Écris une phrase."},
            headers={"Accept": "text/event-stream"},
        )
        response.get_data()
        ended.append(True)

    answering = threading.Thread(target=chat)
    extract = indexing.extract_isolated

    def extract_then_chat(*args, **kwargs):
        """The text read, then an answer begins: it is being written when the embedding could."""
        extracted = extract(*args, **kwargs)
        answering.start()
        assert engine.started.wait(10)
        return extracted

    monkeypatch.setattr(indexing, "extract_isolated", extract_then_chat)
    answers_meanwhile: list[dict] = []

    def embed(texts: list[str]) -> list[list[float]]:
        answers_meanwhile.append(services().scheduler.occupancy())  # engines writing, and how many
        return [[1.0, 0.0] for _ in texts]

    with app.app_context():
        indexing.index_document(document, embed=embed)
        state = db.session.get(Document, document).state
    answering.join(30)

    assert state == "ready" and answers_meanwhile and ended
    assert answers_meanwhile == [{}] * len(answers_meanwhile)  # no answer was being written
