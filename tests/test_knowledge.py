"""Shared knowledge (issue 17, item 2): collections that admins and the people they name fill,
read by everyone or by listed users; picked for a conversation, carried by presets."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from app.extensions import db
from app.models import (
    Chunk,
    Collection,
    CollectionGroup,
    CollectionReader,
    Conversation,
    Document,
    Group,
    Preset,
    User,
)
from tests.conftest import AuthActions
from tests.documents import write_pdf
from tests.patience import patience
from tests.queries import statements_of

JSON = {"Accept": "application/json"}
NOTE = "# Procédure qualité\n\nChaque non-conformité est déclarée dans les 48 heures au service qualité.\n"


def signed_in_as(app, username: str):
    client = app.test_client()
    assert AuthActions(client).register(username).status_code == 302
    return client


def user_id(app, username: str) -> int:
    with app.app_context():
        return db.session.scalar(db.select(User.id).where(User.username == username))


def create(client, name="Qualité", description="Procédures", access="all", readers=""):
    return client.post(
        "/knowledge/new",
        data={"name": name, "description": description, "access": access, "readers": readers},
    )


def collection_id(app, name="Qualité") -> int:
    with app.app_context():
        return db.session.scalar(db.select(Collection.id).where(Collection.name == name))


def upload(client, cid: int, *files: tuple[str, bytes]):
    return client.post(
        f"/knowledge/{cid}/documents",
        data={"files": [(io.BytesIO(content), name) for name, content in files]},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def documents(app, cid: int) -> list[Document]:
    with app.app_context():
        found = db.session.scalars(db.select(Document).where(Document.collection_id == cid)).all()
        db.session.expunge_all()
        return list(found)


def wait_indexed(app, cid: int) -> list[Document]:
    deadline = time.monotonic() + patience(60)
    while time.monotonic() < deadline:
        found = documents(app, cid)
        if found and all(d.state in ("ready", "error") for d in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"still indexing: {[(d.filename, d.state) for d in documents(app, cid)]}")


def stored_files(app) -> set[str]:
    folder = Path(app.config["DOCUMENTS_DIR"])
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


# -- collections ------------------------------------------------------------------------------
def test_an_admin_creates_a_collection_and_finds_it_in_the_list(app, signed_in):
    response = create(signed_in)
    assert response.status_code == 302
    page = signed_in.get("/knowledge").get_data(as_text=True)
    assert "Qualité" in page and "Procédures" in page and "everyone" in page


def test_a_collection_name_taken_in_another_case_is_refused_with_a_message(app, signed_in):
    create(signed_in, name="Qualité")
    response = create(signed_in, name="QUALITÉ")
    assert response.status_code == 400
    assert "A collection already has this name." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Collection)) == 1


def test_a_collection_name_over_100_characters_is_refused_with_a_message(app, signed_in):
    response = create(signed_in, name="n" * 101)
    assert response.status_code == 400
    assert "A collection name has 1 to 100 characters." in response.get_data(as_text=True)


def test_a_description_over_300_characters_is_refused_with_a_message(app, signed_in):
    response = create(signed_in, description="d" * 301)
    assert response.status_code == 400
    assert "A description has at most 300 characters." in response.get_data(as_text=True)


def test_readers_with_an_unknown_name_are_refused_and_the_name_is_given(app, signed_in):
    response = create(signed_in, access="listed", readers="alice, personne")
    assert response.status_code == 400
    assert "No account is named “personne”" in response.get_data(as_text=True)
    assert collection_id(app) is None


def test_a_collection_for_listed_readers_with_nobody_listed_is_refused(app, signed_in):
    response = create(signed_in, access="listed", readers="  ")
    assert response.status_code == 400
    assert "List who may read it, or open it to everyone." in response.get_data(as_text=True)


def test_editing_a_collection_changes_its_name_and_readers(app, signed_in):
    signed_in_as(app, "bob")
    create(signed_in)
    cid = collection_id(app)
    response = signed_in.post(
        f"/knowledge/{cid}/edit",
        data={"name": "Qualité 2027", "description": "", "access": "listed", "readers": "BOB"},
    )
    assert response.status_code == 302
    page = signed_in.get("/knowledge").get_data(as_text=True)
    assert "Qualité 2027" in page and ">bob<" in page


def test_a_listed_reader_is_offered_the_collection_and_another_user_is_not(app, signed_in):
    bob, carol = signed_in_as(app, "bob"), signed_in_as(app, "carol")
    create(signed_in, name="RH", access="listed", readers="bob")
    upload(signed_in, collection_id(app, "RH"), ("conges.md", NOTE.encode()))
    [document] = documents(app, collection_id(app, "RH"))
    assert 'data-collection-option="RH"' in bob.get("/").get_data(as_text=True)
    assert "RH" not in carol.get("/").get_data(as_text=True)
    assert bob.get(f"/documents/{document.id}", headers=JSON).status_code == 200
    assert carol.get(f"/documents/{document.id}", headers=JSON).status_code == 404
    assert carol.get(f"/documents/{document.id}/file").status_code == 404


def test_an_open_collection_is_offered_to_every_user(app, signed_in):
    create(signed_in, name="Manuels")
    bob = signed_in_as(app, "bob")
    assert 'data-collection-option="Manuels"' in bob.get("/").get_data(as_text=True)


def test_a_manager_who_is_not_admin_can_create_a_collection(app, signed_in):
    bob = signed_in_as(app, "bob")
    signed_in.post(f"/admin/users/{user_id(app, 'bob')}/knowledge", data={"manages_knowledge": "on"})
    assert bob.get("/knowledge").status_code == 200
    assert create(bob, name="Atelier").status_code == 302
    assert collection_id(app, "Atelier") is not None


def test_an_ordinary_user_gets_404_on_the_knowledge_pages(app, signed_in):
    create(signed_in)
    cid = collection_id(app)
    bob = signed_in_as(app, "bob")
    assert bob.get("/knowledge").status_code == 404
    assert bob.get(f"/knowledge/{cid}").status_code == 404
    assert create(bob, name="Pirate").status_code == 404
    assert bob.post(f"/knowledge/{cid}/delete").status_code == 404
    assert collection_id(app) == cid


# -- documents --------------------------------------------------------------------------------
def test_several_files_sent_at_once_are_indexed_and_shown_as_indexed(app, signed_in, tmp_path):
    create(signed_in)
    cid = collection_id(app)
    pdf = write_pdf(tmp_path / "manuel.pdf", ["Première page du manuel.", "Deuxième page : la sécurité."])
    response = upload(signed_in, cid, ("note.md", NOTE.encode()), ("manuel.pdf", pdf.read_bytes()))
    assert "2 documents added" in response.get_data(as_text=True)
    found = {d.filename: d for d in wait_indexed(app, cid)}
    assert {d.state for d in found.values()} == {"ready"}
    assert found["manuel.pdf"].pages == 2
    page = signed_in.get(f"/knowledge/{cid}").get_data(as_text=True)
    assert page.count(">Indexed<") == 2
    states = signed_in.get(f"/knowledge/{cid}/documents", headers=JSON).json["documents"]
    assert {(s["label"], s["finished"]) for s in states} == {("Indexed", True)}


def test_an_unsupported_file_is_refused_by_name_and_the_others_still_go_in(app, signed_in):
    create(signed_in)
    cid = collection_id(app)
    before = stored_files(app)
    response = upload(signed_in, cid, ("photo.exe", b"MZ\x90\x00\x03binary"), ("note.md", NOTE.encode()))
    page = response.get_data(as_text=True)
    assert "“photo.exe” is not a kind of file that can be read" in page
    assert [d.filename for d in documents(app, cid)] == ["note.md"]
    assert len(stored_files(app) - before) == 1


def test_sending_no_file_says_to_choose_some(app, signed_in):
    create(signed_in)
    response = upload(signed_in, collection_id(app))
    assert "Choose the files to add." in response.get_data(as_text=True)


def test_a_file_over_a_megabyte_goes_in_with_the_csrf_token_checked(app, signed_in):
    create(signed_in)
    cid = collection_id(app)
    app.config["WTF_CSRF_ENABLED"] = True
    page = signed_in.get(f"/knowledge/{cid}").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    big = ("Ligne de procédure numéro {}.\n" * 80_000).encode()  # ~2.5 MB of text
    response = signed_in.post(
        f"/knowledge/{cid}/documents",
        data={"csrf_token": token, "files": [(io.BytesIO(big), "gros.txt")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    assert [d.filename for d in documents(app, cid)] == ["gros.txt"]
    refused = signed_in.post(
        f"/knowledge/{cid}/documents",
        data={"files": [(io.BytesIO(big), "sans-jeton.txt")]},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 400 and "session has expired" in refused.get_data(as_text=True)


def test_deleting_a_collection_removes_its_files_from_the_documents_folder(app, signed_in):
    create(signed_in)
    cid = collection_id(app)
    upload(signed_in, cid, ("note.md", NOTE.encode()), ("autre.txt", b"Un autre texte utile."))
    wait_indexed(app, cid)
    names = {d.stored_as for d in documents(app, cid)}
    assert names <= stored_files(app)
    response = signed_in.post(f"/knowledge/{cid}/delete", follow_redirects=True)
    assert "deleted, with its documents" in response.get_data(as_text=True)
    assert not names & stored_files(app)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Document)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(Chunk)) == 0


def test_replacing_a_document_indexes_the_new_version_and_drops_the_old_passages(app, signed_in):
    create(signed_in)
    cid = collection_id(app)
    upload(signed_in, cid, ("note.md", NOTE.encode()))
    [old] = wait_indexed(app, cid)
    response = signed_in.post(
        f"/knowledge/{cid}/documents/{old.id}/replace",
        data={"file": (io.BytesIO(b"# Version 2\n\nLe delai passe a 24 heures."), "note-v2.md")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "“note-v2.md” replaced" in response.get_data(as_text=True)
    [new] = wait_indexed(app, cid)
    assert new.id != old.id and new.filename == "note-v2.md"
    assert old.stored_as not in stored_files(app)
    with app.app_context():
        texts = db.session.scalars(db.select(Chunk.text)).all()
    assert texts and all("48 heures" not in text for text in texts)


def test_a_replacement_that_cannot_be_read_keeps_the_old_version(app, signed_in):
    create(signed_in)
    cid = collection_id(app)
    upload(signed_in, cid, ("note.md", NOTE.encode()))
    [old] = documents(app, cid)
    response = signed_in.post(
        f"/knowledge/{cid}/documents/{old.id}/replace",
        data={"file": (io.BytesIO(b""), "vide.md")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "“vide.md” contains no text." in response.get_data(as_text=True)
    assert [d.id for d in documents(app, cid)] == [old.id]


def test_deleting_a_document_removes_it_and_its_file(app, signed_in):
    create(signed_in)
    cid = collection_id(app)
    upload(signed_in, cid, ("note.md", NOTE.encode()))
    [document] = documents(app, cid)
    response = signed_in.post(f"/knowledge/{cid}/documents/{document.id}/delete", follow_redirects=True)
    assert "“note.md” deleted." in response.get_data(as_text=True)
    assert documents(app, cid) == [] and document.stored_as not in stored_files(app)


def test_a_document_of_another_collection_is_404_through_this_one(app, signed_in):
    create(signed_in, name="A")
    create(signed_in, name="B")
    upload(signed_in, collection_id(app, "A"), ("note.md", NOTE.encode()))
    [document] = documents(app, collection_id(app, "A"))
    response = signed_in.post(f"/knowledge/{collection_id(app, 'B')}/documents/{document.id}/delete")
    assert response.status_code == 404
    assert len(documents(app, collection_id(app, "A"))) == 1


# -- a conversation's collections -------------------------------------------------------------
def conversation_collections(app, conversation_id: int) -> list[int]:
    with app.app_context():
        return db.session.get(Conversation, conversation_id).collection_ids


def test_a_conversation_started_with_collections_keeps_them(app, signed_in):
    create(signed_in, name="A")
    create(signed_in, name="B")
    wanted = [collection_id(app, "B"), collection_id(app, "A")]
    response = signed_in.post("/conversations", json={"collection_ids": wanted}, headers=JSON)
    assert response.status_code == 201
    assert conversation_collections(app, response.json["id"]) == wanted


def test_a_collection_the_user_may_not_read_is_dropped_from_their_choice(app, signed_in):
    create(signed_in, name="Ouverte")
    create(signed_in, name="Direction", access="listed", readers="alice")
    bob = signed_in_as(app, "bob")
    chosen = [collection_id(app, "Direction"), collection_id(app, "Ouverte"), 999999]
    conversation = bob.post("/conversations", json={"collection_ids": chosen}, headers=JSON).json["id"]
    assert conversation_collections(app, conversation) == [collection_id(app, "Ouverte")]
    response = bob.post(
        f"/conversations/{conversation}/settings",
        json={"collection_ids": [collection_id(app, "Direction")]},
        headers=JSON,
    )
    # the same answer as for a collection that does not exist: nothing kept, nothing told
    assert response.status_code == 200 and response.json["collection_ids"] == []


def test_the_settings_form_changes_a_conversations_collections_and_an_empty_choice_clears_them(
    app, signed_in
):
    create(signed_in, name="A")
    cid = collection_id(app, "A")
    conversation = signed_in.post("/conversations", json={}, headers=JSON).json["id"]
    signed_in.post(f"/conversations/{conversation}/settings", data={"collection_ids": ["", str(cid)]})
    assert conversation_collections(app, conversation) == [cid]
    signed_in.post(f"/conversations/{conversation}/settings", data={"collection_ids": [""]})
    assert conversation_collections(app, conversation) == []


def test_settings_sent_without_collections_leave_them_as_they_were(app, signed_in):
    create(signed_in, name="A")
    cid = collection_id(app, "A")
    conversation = signed_in.post("/conversations", json={"collection_ids": [cid]}, headers=JSON).json["id"]
    signed_in.post(
        f"/conversations/{conversation}/settings", json={"system_prompt": "Sois bref."}, headers=JSON
    )
    assert conversation_collections(app, conversation) == [cid]


def test_collections_given_as_anything_but_a_list_of_numbers_are_refused_with_a_message(app, signed_in):
    response = signed_in.post("/conversations", json={"collection_ids": "Qualité"}, headers=JSON)
    assert response.status_code == 400
    assert response.json["error"] == "Knowledge bases are given as a list of their numbers."


def test_the_chat_page_shows_the_chosen_collections_checked(app, signed_in):
    create(signed_in, name="A")
    create(signed_in, name="B")
    cid = collection_id(app, "B")
    conversation = signed_in.post("/conversations", json={"collection_ids": [cid]}, headers=JSON).json["id"]
    page = signed_in.get(f"/c/{conversation}").get_data(as_text=True)
    assert f'value="{cid}" class="h-4 w-4 shrink-0" data-collection-option="B" checked' in page
    assert 'data-collection-option="A" >' in page or 'data-collection-option="A">' in page


# -- who may manage ---------------------------------------------------------------------------
def test_the_admin_names_and_unnames_a_knowledge_manager_on_the_users_page(app, signed_in):
    bob = signed_in_as(app, "bob")
    bob_id = user_id(app, "bob")
    page = signed_in.get("/admin/users").get_data(as_text=True)
    assert "may manage the knowledge bases" in page
    response = signed_in.post(
        f"/admin/users/{bob_id}/knowledge", data={"manages_knowledge": "on"}, follow_redirects=True
    )
    assert "bob can now manage the knowledge bases." in response.get_data(as_text=True)
    assert bob.get("/knowledge").status_code == 200
    assert 'href="/knowledge"' in bob.get("/").get_data(as_text=True)
    signed_in.post(f"/admin/users/{bob_id}/knowledge", data={"manages_knowledge": "off"})
    assert bob.get("/knowledge").status_code == 404


def test_naming_a_knowledge_manager_needs_the_csrf_token(app, signed_in):
    signed_in_as(app, "bob")
    app.config["WTF_CSRF_ENABLED"] = True
    response = signed_in.post(
        f"/admin/users/{user_id(app, 'bob')}/knowledge", data={"manages_knowledge": "on"}
    )
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(User, user_id(app, "bob")).manages_knowledge is False


def test_a_user_who_is_not_admin_cannot_name_a_knowledge_manager(app, signed_in):
    bob = signed_in_as(app, "bob")
    assert (
        bob.post(
            f"/admin/users/{user_id(app, 'bob')}/knowledge", data={"manages_knowledge": "on"}
        ).status_code
        == 403
    )


# -- presets and the model's budget -----------------------------------------------------------
def preset_of(app, name: str) -> Preset:
    with app.app_context():
        preset = db.session.scalar(db.select(Preset).where(Preset.name == name))
        db.session.expunge(preset)
        return preset


def test_a_preset_keeps_the_collections_chosen_for_it_and_the_chat_page_offers_them(app, signed_in):
    create(signed_in, name="A")
    cid = collection_id(app, "A")
    assert "data-preset-collections" in signed_in.get("/settings").get_data(as_text=True)
    signed_in.post(
        "/settings/presets", data={"name": "Qualité", "system_prompt": "", "collection_ids": [str(cid)]}
    )
    preset = preset_of(app, "Qualité")
    assert preset.collection_ids == [cid]
    assert f'data-collections="{cid}">Qualité</option>' in signed_in.get("/").get_data(as_text=True)
    signed_in.post(f"/settings/presets/{preset.id}", data={"name": "Qualité", "system_prompt": ""})
    assert preset_of(app, "Qualité").collection_ids == []


def test_a_preset_cannot_carry_a_collection_its_owner_may_not_read(app, signed_in):
    create(signed_in, name="Direction", access="listed", readers="alice")
    bob = signed_in_as(app, "bob")
    bob.post(
        "/settings/presets",
        data={
            "name": "Espion",
            "system_prompt": "",
            "collection_ids": [str(collection_id(app, "Direction"))],
        },
    )
    assert preset_of(app, "Espion").collection_ids == []


def model_settings(app, model: str):
    with app.app_context():
        from app.models import ModelSetting

        return db.session.get(ModelSetting, model)


def test_the_admin_sets_a_models_document_budget_and_empty_means_the_default(app, signed_in):
    page = signed_in.get("/admin/models/settings?model=tiny").get_data(as_text=True)
    assert "Documents sent with a question (tokens)" in page and "Empty: 1500." in page
    response = signed_in.post(
        "/admin/models/settings?model=tiny", data={"model": "tiny", "enabled": "y", "document_tokens": "3000"}
    )
    assert response.status_code == 302
    assert model_settings(app, "tiny").document_tokens == 3000
    signed_in.post(
        "/admin/models/settings?model=tiny", data={"model": "tiny", "enabled": "y", "document_tokens": ""}
    )
    assert model_settings(app, "tiny").document_tokens is None


def budget(client, value: str, language: str = "en"):
    return client.post(
        "/admin/models/settings?model=tiny",
        data={"model": "tiny", "enabled": "y", "document_tokens": value},
        headers={"Accept-Language": language},
    )


@pytest.mark.parametrize("value", ["199", "32001"])
def test_a_document_budget_out_of_range_is_refused_with_a_message(app, signed_in, value):
    response = budget(signed_in, value)
    assert response.status_code == 400
    assert "The documents’ budget is a whole number of tokens from 200 to 32000." in response.get_data(
        as_text=True
    )
    assert model_settings(app, "tiny") is None


def test_a_document_budget_that_is_not_a_number_is_refused_in_french(app, signed_in):
    response = budget(signed_in, "beaucoup", "fr")
    assert response.status_code == 400
    assert "Le budget des documents est un nombre entier de jetons de 200 à 32000." in response.get_data(
        as_text=True
    )


def test_files_over_the_upload_limit_together_are_refused_with_a_message_and_nothing_stored(app, signed_in):
    create(signed_in)
    cid = collection_id(app)
    app.config["MAX_UPLOAD_MB"] = 1
    app.config["WTF_CSRF_ENABLED"] = True
    page = signed_in.get(f"/knowledge/{cid}").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    half = b"Une ligne de texte.\n" * 40_000  # 800 KB each, 1.6 MB together
    response = signed_in.post(
        f"/knowledge/{cid}/documents",
        data={"csrf_token": token, "files": [(io.BytesIO(half), "un.txt"), (io.BytesIO(half), "deux.txt")]},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "These files weigh more than 1 MB together: send them in several goes." in response.get_data(
        as_text=True
    )
    assert documents(app, cid) == [] and stored_files(app) == set()


def test_saving_a_collection_again_with_the_same_readers_keeps_them(app, signed_in):
    signed_in_as(app, "bob")
    signed_in_as(app, "carol")
    create(signed_in, access="listed", readers="bob carol")
    cid = collection_id(app)
    form = {"name": "Qualité", "description": "", "access": "listed", "readers": "carol, bob, dave"}
    assert "No account is named “dave”" in signed_in.post(f"/knowledge/{cid}/edit", data=form).get_data(
        as_text=True
    )
    response = signed_in.post(f"/knowledge/{cid}/edit", data=form | {"readers": "carol, bob"})
    assert response.status_code == 302
    page = signed_in.get(f"/knowledge/{cid}").get_data(as_text=True)
    assert "Read by: bob, carol" in page


def test_a_taken_name_and_an_unknown_reader_are_both_told_at_once(app, signed_in):
    create(signed_in)
    response = create(signed_in, name="qualité", access="listed", readers="personne")
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "A collection already has this name." in text and "No account is named “personne”" in text


def _collections_read_by_a_group(app, count: int, start: int) -> None:
    """`count` collections made straight in the database, each with a reader and a group."""
    with app.app_context():
        group = Group(name=f"Équipe {start}")
        db.session.add(group)
        db.session.flush()
        for n in range(start, start + count):
            collection = Collection(name=f"Base {n}", owner_id=1, open_to_all=False)
            db.session.add(collection)
            db.session.flush()
            db.session.add(CollectionReader(collection_id=collection.id, user_id=1))
            db.session.add(CollectionGroup(collection_id=collection.id, group_id=group.id))
        db.session.commit()


def test_the_list_of_collections_reads_their_readers_and_groups_at_once_not_one_collection_at_a_time(
    app, signed_in
):
    _collections_read_by_a_group(app, 2, start=0)
    few, page = statements_of(app, signed_in, "/knowledge")
    assert "Base 1" in page
    _collections_read_by_a_group(app, 10, start=2)
    many, page = statements_of(app, signed_in, "/knowledge")
    assert "Base 11" in page and "Équipe 2" in page
    assert many == few
