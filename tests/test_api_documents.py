"""Documents and collections through the API (`/api/v1`, `/v1/chat/completions`), with a
scripted engine: a key's owner uploads, follows and removes their documents, names them or a
collection in a question, and gets the passages the answer was written from — never a
collection they may not read."""

import io
import json
import time

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Collection, CollectionReader, User
from tests.conftest import sse_events
from tests.test_api import bearer, make_key

PROCEDURE = (
    "# Procédure de sécurité de la presse 4\n\n"
    "Avant toute intervention, le technicien consigne la presse au cadenas jaune. "
    "Tout accident doit être déclaré au service sécurité sous 48 heures.\n"
)
RULES = (
    "# Règlement des congés\n\n"
    "Les congés d'été se posent avant le 31 mars auprès du service du personnel. "
    "Au-delà, la direction décide seule des dates.\n"
)
QUESTION = "Sous combien d'heures déclarer un accident ?"


class Api:
    """A script holding a key: no session cookie at all."""

    def __init__(self, app, key: str) -> None:
        self.client = app.test_client(use_cookies=False)
        self.headers = bearer(key)

    def get(self, path, **kwargs):
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path, body):
        return self.client.post(path, json=body, headers=self.headers)

    def delete(self, path):
        return self.client.delete(path, headers=self.headers)

    def upload(self, name: str, data: bytes, path: str = "/api/v1/documents"):
        return self.client.post(path, data={"file": (io.BytesIO(data), name)}, headers=self.headers)

    def uploaded(self, name: str, data: bytes, path: str = "/api/v1/documents") -> int:
        response = self.upload(name, data, path)
        assert response.status_code == 201, response.data
        return response.json["document"]["id"]

    def ready(self, document_id: int, seconds: float = 30) -> dict:
        """The document once indexed, as its progress is polled."""
        deadline = time.monotonic() + seconds
        while True:
            document = self.get(f"/api/v1/documents/{document_id}").json["document"]
            if document["state"] in ("ready", "error") or time.monotonic() > deadline:
                return document
            time.sleep(0.05)


@pytest.fixture
def alice(app, signed_in) -> Api:
    """The admin's key."""
    return Api(app, make_key(signed_in))


@pytest.fixture
def bob(app) -> Api:
    client = app.test_client()
    password = "le mot de passe de bob"
    client.post("/register", data={"username": "bob", "password": password, "confirm": password})
    return Api(app, make_key(client, "bob"))


def new_collection(app, name: str, open_to_all: bool = True, readers=()) -> int:
    with app.app_context():
        collection = Collection(name=name, description="", open_to_all=open_to_all)
        db.session.add(collection)
        db.session.flush()
        for username in readers:
            user_id = db.session.scalar(sa.select(User.id).where(User.username == username))
            db.session.add(CollectionReader(collection_id=collection.id, user_id=user_id))
        db.session.commit()
        return collection.id


def filled_collection(app, admin: Api, name: str, text: str = PROCEDURE, **access) -> int:
    collection_id = new_collection(app, name, **access)
    document = admin.uploaded("procedure.md", text.encode(), f"/api/v1/collections/{collection_id}/documents")
    assert admin.ready(document)["state"] == "ready"
    return collection_id


def test_a_key_can_upload_a_document_and_ask_about_it(alice, engine):
    document = alice.uploaded("procedure.md", PROCEDURE.encode())
    answer = alice.post("/api/v1/generate", {"model": "tiny", "prompt": QUESTION, "document_ids": [document]})
    assert answer.status_code == 200, answer.data
    sent = engine.requests[-1][-1].content
    assert "48 heures" in sent and sent.endswith(QUESTION)
    passages = answer.json["sources"]["passages"]
    assert passages[0]["name"] == "procedure.md" and "48 heures" in passages[0]["text"]
    assert passages[0]["document_id"] == document and passages[0]["n"] == 1


def test_a_documents_progress_is_followed_until_it_is_indexed(alice):
    uploaded = alice.upload("procedure.md", PROCEDURE.encode())
    assert uploaded.status_code == 201
    assert uploaded.json["document"]["state"] in ("waiting", "indexing", "ready")
    document = alice.ready(uploaded.json["document"]["id"])
    assert document["state"] == "ready" and document["chunks"] >= 1 and document["error"] == ""


def test_a_collection_the_key_owner_cannot_read_is_unknown_to_the_api(app, alice, bob, engine):
    secret = filled_collection(app, alice, "Direction", open_to_all=False)
    asked = len(engine.requests)
    answers = {
        what: bob.post("/api/v1/generate", {"model": "tiny", "prompt": QUESTION, "collections": [name]})
        for what, name in (("by id", secret), ("by name", "Direction"), ("missing", 999_999))
    }
    for what, answer in answers.items():
        assert answer.status_code == 404, what
    assert answers["by name"].json["error"] == "Unknown collection: “Direction”."
    assert answers["by id"].json["error"] == f"Unknown collection: “{secret}”."
    assert answers["missing"].json["error"] == "Unknown collection: “999999”."
    openai = bob.post(
        "/v1/chat/completions",
        {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}], "collections": ["Direction"]},
    )
    assert openai.status_code == 404 and "Direction" in openai.json["error"]["message"]
    assert len(engine.requests) == asked, "the model was asked nothing"
    assert "Direction" not in bob.get("/api/v1/collections").get_data(as_text=True)


def test_a_listed_reader_asks_a_collection_by_its_name_and_gets_its_passages(app, alice, bob, engine):
    filled_collection(app, alice, "Sécurité atelier", open_to_all=False, readers=["bob"])
    answer = bob.post(
        "/api/v1/generate", {"model": "tiny", "prompt": QUESTION, "collections": ["sécurité ATELIER"]}
    )
    assert answer.status_code == 200, answer.data
    assert "48 heures" in engine.requests[-1][-1].content
    assert "48 heures" in answer.json["sources"]["passages"][0]["text"]


def test_a_streamed_answer_sends_its_sources_before_its_first_word(app, alice, engine):
    collection = filled_collection(app, alice, "Sécurité")
    response = alice.client.post(
        "/api/v1/generate",
        json={"model": "tiny", "prompt": QUESTION, "stream": True, "collections": [collection]},
        headers={**alice.headers, "Accept": "text/event-stream"},
    )
    names = [name for name, _data in sse_events(response.get_data(as_text=True))]
    assert "sources" in names and names.index("sources") < names.index("token")


def test_a_question_named_no_document_gets_empty_sources(alice, engine):
    answer = alice.post("/api/v1/generate", {"model": "tiny", "prompt": QUESTION})
    assert answer.status_code == 200 and answer.json["sources"] == {}
    assert engine.requests[-1][-1].content == QUESTION


def test_a_comparison_answers_each_model_from_the_same_passages(app, alice, engine):
    collection = filled_collection(app, alice, "Sécurité")
    compared = alice.post(
        "/api/v1/compare", {"models": ["tiny", "other"], "prompt": QUESTION, "collections": [collection]}
    )
    assert compared.status_code == 200, compared.data
    for answer in compared.json["answers"]:
        assert "48 heures" in answer["sources"]["passages"][0]["text"]


def test_the_openai_route_returns_the_sources_as_a_field_of_its_own(app, alice, engine):
    collection = filled_collection(app, alice, "Sécurité")
    body = {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}], "collections": ["Sécurité"]}
    whole = alice.post("/v1/chat/completions", body)
    assert whole.status_code == 200, whole.data
    assert "48 heures" in whole.json["sources"]["passages"][0]["text"]
    assert whole.json["choices"][0]["message"]["content"]  # the answer itself unchanged
    streamed = alice.client.post("/v1/chat/completions", json=body | {"stream": True}, headers=alice.headers)
    chunks = [
        json.loads(line[6:])
        for line in streamed.get_data(as_text=True).splitlines()
        if line.startswith("data: {")
    ]
    with_sources = [i for i, chunk in enumerate(chunks) if "sources" in chunk]
    with_text = [i for i, chunk in enumerate(chunks) if chunk["choices"][0]["delta"].get("content")]
    assert with_sources and with_sources[0] < with_text[0]
    assert chunks[with_sources[0]]["sources"]["passages"][0]["document_id"]
    plain = alice.post("/v1/chat/completions", {k: v for k, v in body.items() if k != "collections"})
    assert "sources" not in plain.json  # a call naming no document gets OpenAI's shape exactly
    assert collection


def test_another_users_document_is_unknown_to_the_api(alice, bob, engine):
    document = alice.uploaded("procedure.md", PROCEDURE.encode())
    assert bob.get(f"/api/v1/documents/{document}").status_code == 404
    assert bob.delete(f"/api/v1/documents/{document}").status_code == 404
    asked = bob.post("/api/v1/generate", {"model": "tiny", "prompt": QUESTION, "document_ids": [document]})
    assert asked.status_code == 404 and asked.json["error"] == f"Unknown document: {document}."
    assert bob.get("/api/v1/documents").json["documents"] == []
    assert alice.get(f"/api/v1/documents/{document}").status_code == 200


def test_a_key_owner_removes_their_document(alice):
    document = alice.uploaded("procedure.md", PROCEDURE.encode())
    assert alice.delete(f"/api/v1/documents/{document}").status_code == 204
    assert alice.get(f"/api/v1/documents/{document}").status_code == 404
    assert alice.delete(f"/api/v1/documents/{document}").status_code == 404


def test_the_document_list_holds_ones_own_and_the_readable_collections_a_page_at_a_time(app, alice, bob):
    mine = [bob.uploaded(f"note-{n}.md", RULES.encode()) for n in range(3)]
    shared = filled_collection(app, alice, "Ouverte")
    filled_collection(app, alice, "Fermée", open_to_all=False)
    alices_own = alice.uploaded("privé.md", RULES.encode())
    first = bob.get("/api/v1/documents", query_string={"per_page": 2}).json
    second = bob.get("/api/v1/documents", query_string={"per_page": 2, "page": 2}).json
    assert first["total"] == 4 and first["page"] == 1 and len(first["documents"]) == 2
    listed = first["documents"] + second["documents"]
    assert {d["id"] for d in listed if d["collection_id"] is None} == set(mine)
    assert {d["collection_id"] for d in listed} == {None, shared}
    assert alices_own not in {d["id"] for d in listed}
    refused = bob.get("/api/v1/documents", query_string={"per_page": 1000})
    assert refused.status_code == 400
    assert refused.json["error"] == "“per_page” is a whole number from 1 to 100."


def test_the_collections_list_shows_the_readable_ones_with_their_documents_count(app, alice, bob):
    open_id = filled_collection(app, alice, "Ouverte")
    listed_id = new_collection(app, "Listée", open_to_all=False, readers=["bob"])
    new_collection(app, "Fermée", open_to_all=False)
    collections = bob.get("/api/v1/collections").json["collections"]
    assert [(c["id"], c["name"], c["documents"]) for c in collections] == [
        (listed_id, "Listée", 0),
        (open_id, "Ouverte", 1),
    ]


def test_only_the_people_who_manage_knowledge_upload_into_a_collection(app, alice, bob):
    collection = new_collection(app, "Ouverte")
    refused = bob.upload("procedure.md", PROCEDURE.encode(), f"/api/v1/collections/{collection}/documents")
    assert refused.status_code == 404
    with app.app_context():
        db.session.execute(sa.update(User).where(User.username == "bob").values(manages_knowledge=True))
        db.session.commit()
    accepted = bob.upload("procedure.md", PROCEDURE.encode(), f"/api/v1/collections/{collection}/documents")
    assert accepted.status_code == 201 and accepted.json["document"]["collection_id"] == collection


def test_an_upload_the_api_refuses_says_why_in_the_key_owners_language(app, alice):
    with app.app_context():
        db.session.execute(sa.update(User).values(language="fr"))
        db.session.commit()
    app.config["MAX_UPLOAD_MB"] = 1
    too_large = alice.upload("gros.txt", b"a" * (1024 * 1024 + 200 * 1024))
    assert too_large.status_code == 413 and "1 Mo" in too_large.json["error"]
    unsupported = alice.upload("programme.exe", b"MZ\x90\x00" + bytes(200))
    assert unsupported.status_code == 400 and unsupported.json["error"]
    missing = alice.client.post("/api/v1/documents", data={}, headers=alice.headers)
    assert missing.status_code == 400 and missing.json["error"] == "Choisissez un fichier à envoyer."
    assert alice.get("/api/v1/documents").json["total"] == 0


def test_naming_collections_or_documents_wrongly_is_refused_with_a_message(alice):
    for body, message in (
        ({"collections": "Sécurité"}, "“collections” lists 20 collection ids or names at most."),
        ({"collections": [True]}, "Unknown collection: “True”."),
        ({"document_ids": [1.5]}, "Unknown document: 1.5."),
        ({"document_ids": list(range(30))}, "“document_ids” lists 20 ids of your documents at most."),
    ):
        answer = alice.post("/api/v1/generate", {"model": "tiny", "prompt": QUESTION, **body})
        assert answer.status_code in (400, 404), body
        assert answer.json["error"].startswith(message), answer.json
