"""Documents attached to a question, with a scripted engine (the web layer): the passages the
model is sent, the citations stored and streamed, the question waiting for its documents."""

import io

import sqlalchemy as sa

from app.extensions import db
from app.models import Chunk, Document
from tests.conftest import sse_events
from tests.documents import write_pdf

JSON = {"Accept": "application/json"}
STREAM = {"Accept": "text/event-stream"}

PROCEDURE = (
    "# Procédure de sécurité de la presse 4\n\n"
    "Avant toute intervention, le technicien consigne la presse au cadenas jaune. "
    "Tout accident doit être déclaré au service sécurité sous 48 heures.\n"
)


def upload(client, name: str, data: bytes):
    return client.post("/documents", data={"file": (io.BytesIO(data), name)}, headers=JSON)


def attach(client, name: str, data: bytes) -> int:
    response = upload(client, name, data)
    assert response.status_code == 201, response.data
    return response.json["document"]["id"]


def new_conversation(client) -> int:
    return client.post("/conversations", json={}, headers=JSON).json["id"]


def ask(client, conversation_id: int, content: str, documents=()):
    return client.post(
        f"/conversations/{conversation_id}/messages",
        json={"content": content, "document_ids": list(documents)},
        headers=STREAM,
    )


def test_a_question_is_sent_with_its_attached_documents_text_and_cites_it(signed_in, engine):
    document = attach(signed_in, "procedure.md", PROCEDURE.encode())
    conversation = new_conversation(signed_in)
    events = sse_events(
        ask(signed_in, conversation, "Sous combien d'heures déclarer un accident ?", [document]).get_data(
            as_text=True
        )
    )
    sent = engine.requests[-1][-1].content
    assert "48 heures" in sent and sent.endswith("Sous combien d'heures déclarer un accident ?")
    sources = next(data for name, data in events if name == "sources")
    assert sources["passages"][0]["name"] == "procedure.md"
    assert "48 heures" in sources["passages"][0]["text"]


def test_the_question_waits_for_its_document_and_says_so(signed_in, engine):
    document = attach(signed_in, "procedure.md", PROCEDURE.encode())
    conversation = new_conversation(signed_in)
    events = sse_events(ask(signed_in, conversation, "Quel cadenas ?", [document]).get_data(as_text=True))
    phases = [data for name, data in events if name == "status" and data.get("phase") == "documents"]
    assert phases and phases[-1] == {"phase": "documents", "ready": 1, "total": 1}


def test_the_next_turn_sends_the_first_turns_passages_exactly_as_before(signed_in, engine):
    document = attach(signed_in, "procedure.md", PROCEDURE.encode())
    conversation = new_conversation(signed_in)
    ask(signed_in, conversation, "Quel cadenas ?", [document]).get_data()
    first = engine.requests[-1][-1].content
    ask(signed_in, conversation, "Et pour un accident ?").get_data()
    history = engine.requests[-1]
    assert history[-3].content == first  # the prompt cache's prefix is unchanged


def test_a_pdf_cites_the_page_its_passage_is_on(signed_in, engine, tmp_path):
    pages = [
        "Introduction générale de l'entreprise." * 3,
        "Les congés payés se posent trois semaines à l'avance.",
    ]
    path = write_pdf(tmp_path / "rh.pdf", pages)
    document = attach(signed_in, "rh.pdf", path.read_bytes())
    conversation = new_conversation(signed_in)
    events = sse_events(
        ask(signed_in, conversation, "Quand poser ses congés ?", [document]).get_data(as_text=True)
    )
    passages = next(data for name, data in events if name == "sources")["passages"]
    assert any(p["page"] == 2 and "congés" in p["text"] for p in passages)


def test_someone_elses_attachment_cannot_be_sent_with_a_question(client, auth, engine):
    auth.register("bob")
    document = attach(client, "procedure.md", PROCEDURE.encode())
    auth.logout()
    auth.register("carol")
    conversation = new_conversation(client)
    response = ask(client, conversation, "Quel cadenas ?", [document])
    assert response.status_code == 400
    assert "no longer available" in response.get_data(as_text=True)


def test_an_unsupported_file_is_refused_naming_it_and_nothing_is_stored(app, signed_in):
    response = upload(signed_in, "outil.pdf", b"MZ\x90\x00" + bytes(200))
    assert response.status_code == 400
    assert "outil.pdf" in response.json["error"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Document.id))) == 0
    assert not any((app.config["DOCUMENTS_DIR"]).glob("*"))


def test_a_file_over_the_upload_limit_is_refused_with_the_limit(app, signed_in):
    app.config["MAX_UPLOAD_MB"] = 1
    response = upload(signed_in, "gros.txt", b"a" * (1024 * 1024 + 10))
    assert response.status_code == 413
    assert "1" in response.json["error"]


def test_other_requests_keep_the_one_megabyte_limit(signed_in):
    conversation = new_conversation(signed_in)
    response = signed_in.post(
        f"/conversations/{conversation}/messages", data={"content": "a" * (2 * 1024 * 1024)}, headers=STREAM
    )
    assert response.status_code == 413


def test_the_downloaded_file_is_an_attachment_never_sniffed(signed_in):
    document = attach(signed_in, "page.html", b"<html><script>alert(1)</script></html>")
    response = signed_in.get(f"/documents/{document}/file")
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype != "text/html"


def test_deleting_a_conversation_deletes_its_files(app, signed_in):
    document = attach(signed_in, "procedure.md", PROCEDURE.encode())
    conversation = new_conversation(signed_in)
    ask(signed_in, conversation, "Quel cadenas ?", [document]).get_data()
    assert any(app.config["DOCUMENTS_DIR"].iterdir())
    signed_in.post(f"/conversations/{conversation}/delete", headers=JSON)
    assert not any(app.config["DOCUMENTS_DIR"].iterdir())


def test_a_document_left_half_indexed_by_a_stopped_server_is_indexed_at_the_next_start(app, signed_in):
    from app.documents.indexing import indexer, wait_until_indexed

    document = attach(signed_in, "procedure.md", PROCEDURE.encode())
    with app.app_context():
        wait_until_indexed([document], lambda *_: None, lambda: False, 30)
        db.session.execute(sa.update(Document).values(state="indexing"))  # as a killed server left it
        db.session.commit()
        indexer().resume()
        states = wait_until_indexed([document], lambda *_: None, lambda: False, 30)
        chunks = db.session.scalar(sa.select(sa.func.count(Chunk.id)).where(Chunk.document_id == document))
    assert states == {document: "ready"}
    assert chunks == 1  # its passages once, not twice


def test_a_document_whose_passages_fail_to_store_keeps_none_of_them(app, signed_in, monkeypatch):
    from app.documents import indexing

    def broken(texts):
        raise RuntimeError("the embedding model crashed")

    response = upload(signed_in, "procedure.md", (PROCEDURE * 30).encode())
    document = response.json["document"]["id"]
    with app.app_context():
        indexing.wait_until_indexed([document], lambda *_: None, lambda: False, 30)
        db.session.execute(sa.delete(Chunk))
        db.session.execute(sa.update(Document).values(state="waiting"))
        db.session.commit()
        indexing.index_document(document, embed=broken)
        state = db.session.get(Document, document).state
        chunks = db.session.scalar(sa.select(sa.func.count(Chunk.id)))
    assert (state, chunks) == ("error", 0)


def test_a_question_the_documents_do_not_answer_tells_the_model_to_say_so(app, signed_in, engine):
    app.config["DOCUMENT_TOKENS"] = 100  # the document is searched, not sent whole
    document = attach(signed_in, "procedure.md", (PROCEDURE * 3).encode())
    conversation = new_conversation(signed_in)
    events = sse_events(
        ask(signed_in, conversation, "Quelle est la recette de la tarte aux pommes ?", [document]).get_data(
            as_text=True
        )
    )
    assert "No passage of the chosen documents matches this question" in engine.requests[-1][-1].content
    assert next(data for name, data in events if name == "sources")["passages"] == []


def test_a_french_readers_passages_are_introduced_to_the_model_in_french(signed_in, engine):
    signed_in.post("/language", data={"lang": "fr"})
    document = attach(signed_in, "procedure.md", PROCEDURE.encode())
    conversation = new_conversation(signed_in)
    ask(signed_in, conversation, "Quel cadenas ?", [document]).get_data()
    sent = engine.requests[-1][-1].content
    assert sent.startswith("Extraits de documents :")
    assert "en citant chaque extrait utilisé par son numéro" in sent
    assert sent.endswith("Question : Quel cadenas ?")


def test_an_attachment_over_a_megabyte_goes_in_with_the_csrf_token_checked(app, signed_in):
    app.config["WTF_CSRF_ENABLED"] = True
    page = signed_in.get("/").get_data(as_text=True)
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    big = ("Ligne de procédure numéro {}.\n" * 80_000).encode()  # ~2.5 MB of text
    sent = signed_in.post(
        "/documents", data={"file": (io.BytesIO(big), "gros.txt")}, headers={**JSON, "X-CSRFToken": token}
    )
    assert sent.status_code == 201, sent.get_data(as_text=True)[:300]
    refused = signed_in.post("/documents", data={"file": (io.BytesIO(big), "sans-jeton.txt")}, headers=JSON)
    assert refused.status_code == 400


def test_a_follow_up_finding_nothing_new_is_not_told_that_nothing_matches(app, signed_in, engine):
    app.config["DOCUMENT_TOKENS"] = 100  # searched, not sent whole
    document = attach(signed_in, "procedure.md", (PROCEDURE * 3).encode())
    conversation = new_conversation(signed_in)
    ask(signed_in, conversation, "Sous combien d'heures déclarer un accident ?", [document]).get_data()
    ask(signed_in, conversation, "Et la météo de demain à Lyon ?").get_data()
    follow_up = engine.requests[-1][-1].content
    assert follow_up == "Et la météo de demain à Lyon ?"  # the first turn's passages are above it


def test_a_document_whose_indexing_is_stopped_with_the_server_waits_for_the_next_start(app, signed_in):
    from app.documents import indexing

    response = upload(signed_in, "procedure.md", (PROCEDURE * 30).encode())
    document = response.json["document"]["id"]
    with app.app_context():
        indexing.wait_until_indexed([document], lambda *_: None, lambda: False, 60)
        db.session.execute(sa.delete(Chunk))
        db.session.execute(sa.update(Document).values(state="waiting"))
        db.session.commit()
        closing = indexing.Indexer(app)
        closing.close()
        indexing.index_document(document, embed=None, on_progress=closing._progressed)
        state = db.session.get(Document, document).state
        chunks = db.session.scalar(sa.select(sa.func.count(Chunk.id)))
    assert (state, chunks) == ("waiting", 0)
