"""Who may use which model (issue 18, item 2): a model some group lists is for its members and
the admins; a model no group lists is for everyone; collections read through a group."""

from __future__ import annotations

import io

import pytest

from app.accounts.access import groups_of, may_use_model, usable_models
from app.extensions import db
from app.models import Collection, CollectionGroup, Document, Group, GroupMember, GroupModel, User
from tests.conftest import AuthActions

JSON = {"Accept": "application/json"}


def signed_in_as(app, username: str):
    client = app.test_client()
    assert AuthActions(client).register(username).status_code == 302
    return client


def user(username: str) -> User:
    return db.session.scalar(db.select(User).where(User.username == username))


def make_group(app, name: str, *, models=(), members=(), collections=()) -> int:
    with app.app_context():
        group = Group(name=name)
        db.session.add(group)
        db.session.flush()
        db.session.add_all(GroupModel(group_id=group.id, model_id=m) for m in models)
        db.session.add_all(GroupMember(group_id=group.id, user_id=user(u).id) for u in members)
        db.session.add_all(CollectionGroup(group_id=group.id, collection_id=c) for c in collections)
        db.session.commit()
        return group.id


@pytest.fixture
def people(app, signed_in):
    """admin (alice), bob and carol."""
    return signed_in, signed_in_as(app, "bob"), signed_in_as(app, "carol")


# -- the rule ---------------------------------------------------------------------------------
def test_a_model_no_group_lists_is_usable_by_everyone(app, people):
    make_group(app, "Juristes", models=["big"], members=["bob"])
    with app.app_context():
        assert may_use_model(user("carol"), "tiny")
        assert may_use_model(user("bob"), "tiny")


def test_a_model_a_group_lists_is_usable_by_its_members_only(app, people):
    make_group(app, "Juristes", models=["big"], members=["bob"])
    with app.app_context():
        assert may_use_model(user("bob"), "big")
        assert not may_use_model(user("carol"), "big")
        assert usable_models(user("bob")) == {"big"}
        assert usable_models(user("carol")) == set()


def test_an_admin_may_use_every_model_whatever_the_groups(app, people):
    make_group(app, "Juristes", models=["big"], members=["bob"])
    with app.app_context():
        assert may_use_model(user("alice"), "big")
        assert usable_models(user("alice")) is None


def test_a_model_listed_by_two_groups_is_usable_by_the_members_of_either(app, people):
    make_group(app, "Juristes", models=["big"], members=["bob"])
    make_group(app, "Compta", models=["big"], members=["carol"])
    with app.app_context():
        assert may_use_model(user("bob"), "big") and may_use_model(user("carol"), "big")


def test_groups_of_lists_a_persons_groups_by_name(app, people):
    make_group(app, "Juristes", members=["bob"])
    make_group(app, "Atelier", members=["bob"])
    make_group(app, "Compta", members=["carol"])
    with app.app_context():
        assert [g.name for g in groups_of(user("bob"))] == ["Atelier", "Juristes"]


# -- collections through a group --------------------------------------------------------------
def test_a_member_of_a_group_reads_a_collection_named_for_that_group(app, people):
    admin, bob, carol = people
    created = admin.post("/knowledge/new", data={"name": "RH", "access": "listed", "readers": "alice"})
    assert created.status_code == 302
    with app.app_context():
        cid = db.session.scalar(db.select(Collection.id).where(Collection.name == "RH"))
    admin.post(
        f"/knowledge/{cid}/documents",
        data={"files": [(io.BytesIO(b"# Paie\n\nLe 25 du mois."), "paie.md")]},
        content_type="multipart/form-data",
    )
    with app.app_context():
        document_id = db.session.scalar(db.select(Document.id).where(Document.collection_id == cid))
    make_group(app, "Paie", members=["bob"], collections=[cid])
    assert 'data-collection-option="RH"' in bob.get("/").get_data(as_text=True)
    assert bob.get(f"/documents/{document_id}", headers=JSON).status_code == 200


def test_someone_outside_the_collections_groups_does_not_read_it(app, people):
    admin, bob, carol = people
    admin.post("/knowledge/new", data={"name": "RH", "access": "listed", "readers": "alice"})
    with app.app_context():
        cid = db.session.scalar(db.select(Collection.id).where(Collection.name == "RH"))
    make_group(app, "Paie", members=["bob"], collections=[cid])
    assert 'data-collection-option="RH"' not in carol.get("/").get_data(as_text=True)
