"""The admin's groups (issue 18, item 2): made, renamed, described and deleted from the UI, with
their members, models and knowledge bases; every mistake said in the admin's language."""

from __future__ import annotations

import html

import pytest

from app.extensions import db
from app.models import AuditEntry, Collection, CollectionGroup, Group, GroupMember, GroupModel, User
from tests.conftest import AuthActions

FR = {"Accept-Language": "fr"}


def signed_in_as(app, username: str):
    client = app.test_client()
    assert AuthActions(client).register(username).status_code == 302
    return client


def said(response) -> str:
    """The page's text as its reader sees it (entities such as &#39; read as characters)."""
    return html.unescape(response.get_data(as_text=True))


def group_named(app, name: str) -> Group | None:
    with app.app_context():
        group = db.session.scalar(db.select(Group).where(Group.name == name))
        if group is not None:
            db.session.expunge(group)
        return group


def create(client, name="Juristes", description="", directory_group=""):
    return client.post(
        "/admin/groups", data={"name": name, "description": description, "directory_group": directory_group}
    )


def member_names(app, group_id: int) -> list[str]:
    with app.app_context():
        query = (
            db.select(User.username)
            .join(GroupMember, GroupMember.user_id == User.id)
            .where(GroupMember.group_id == group_id)
            .order_by(User.username)
        )
        return list(db.session.scalars(query))


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEntry.action).order_by(AuditEntry.id)))


@pytest.fixture
def group_id(app, signed_in) -> int:
    assert create(signed_in).status_code == 302
    return group_named(app, "Juristes").id


# -- the group itself ---------------------------------------------------------------------------
def test_an_admin_creates_a_group_and_finds_it_in_the_list(app, signed_in):
    response = create(
        signed_in, "Juristes", "Le service juridique", "cn=juristes,ou=groups,dc=example,dc=org"
    )
    assert response.status_code == 302
    page = signed_in.get("/admin/groups").get_data(as_text=True)
    assert 'data-group="Juristes"' in page
    assert "Le service juridique" in page and "cn=juristes,ou=groups,dc=example,dc=org" in page


def test_a_group_with_an_empty_name_is_refused_with_a_message(app, signed_in):
    response = create(signed_in, "   ")
    assert response.status_code == 400
    assert "Give the group a name." in said(response)
    assert group_named(app, "") is None


def test_a_group_with_an_empty_name_is_refused_in_french_too(app, signed_in):
    response = signed_in.post("/admin/groups", data={"name": ""}, headers=FR)
    assert response.status_code == 400
    assert "Donnez un nom au groupe." in said(response)


def test_a_group_name_taken_in_another_case_is_refused_with_a_message(app, signed_in, group_id):
    response = create(signed_in, "JURISTES")
    assert response.status_code == 400
    assert "A group named “JURISTES” already exists." in said(response)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Group)) == 1


def test_a_group_name_over_100_characters_is_refused_with_a_message(app, signed_in):
    response = create(signed_in, "g" * 101)
    assert response.status_code == 400
    assert "A group's name has 1 to 100 characters." in said(response)


def test_renaming_a_group_to_another_groups_name_is_refused(app, signed_in, group_id):
    create(signed_in, "Compta")
    response = signed_in.post(f"/admin/groups/{group_id}", data={"name": "compta", "description": ""})
    assert response.status_code == 400
    assert "A group named “compta” already exists." in said(response)
    assert group_named(app, "Juristes") is not None


def test_an_admin_renames_and_describes_a_group_and_the_audit_log_has_before_and_after(
    app, signed_in, group_id
):
    response = signed_in.post(
        f"/admin/groups/{group_id}",
        data={"name": "Juridique", "description": "Contrats", "directory_group": ""},
    )
    assert response.status_code == 302
    group = group_named(app, "Juridique")
    assert group.id == group_id and group.description == "Contrats"
    with app.app_context():
        entry = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "group.update")).one()
        assert entry.details["before"] == {"name": "Juristes", "description": ""}
        assert entry.details["after"] == {"name": "Juridique", "description": "Contrats"}
        assert entry.actor_name == "alice"


def test_deleting_a_group_frees_its_models_for_everyone_and_keeps_its_members_accounts(
    app, signed_in, group_id
):
    bob = signed_in_as(app, "bob")
    signed_in.post(f"/admin/groups/{group_id}/members", data={"members": "bob"})
    signed_in.post(f"/admin/groups/{group_id}/models", data={"models": ["other"]})
    carol = signed_in_as(app, "carol")
    assert "other" not in [m["id"] for m in carol.get("/models").json["models"]]
    assert signed_in.post(f"/admin/groups/{group_id}/delete").status_code == 302
    assert group_named(app, "Juristes") is None
    assert "other" in [m["id"] for m in carol.get("/models").json["models"]]
    assert bob.get("/").status_code == 200
    with app.app_context():
        assert db.session.scalars(db.select(GroupModel)).all() == []
        assert db.session.scalars(db.select(GroupMember)).all() == []
    assert audit_actions(app)[-1] == "group.delete"


def test_an_unknown_group_is_404(app, signed_in):
    assert signed_in.get("/admin/groups/999").status_code == 404
    assert signed_in.post("/admin/groups/999/delete").status_code == 404


def test_every_group_form_leaves_exactly_one_audit_entry(app, signed_in, group_id):
    signed_in_as(app, "bob")
    signed_in.post("/knowledge/new", data={"name": "RH", "access": "listed", "readers": "alice"})
    with app.app_context():
        collection_id = db.session.scalar(db.select(Collection.id))
    forms = [
        ("group.update", f"/admin/groups/{group_id}", {"name": "Juristes", "description": "Contrats"}),
        ("group.members", f"/admin/groups/{group_id}/members", {"members": "bob"}),
        ("group.models", f"/admin/groups/{group_id}/models", {"models": ["other"]}),
        ("group.collections", f"/admin/groups/{group_id}/collections", {"collections": [str(collection_id)]}),
        ("group.create", "/admin/groups", {"name": "Compta"}),
    ]
    for action, url, data in forms:
        before = audit_actions(app)
        assert signed_in.post(url, data=data).status_code == 302, url
        assert audit_actions(app)[len(before) :] == [action], url


# -- members ------------------------------------------------------------------------------------
def test_an_admin_adds_members_by_name_in_any_case_and_removes_one(app, signed_in, group_id):
    signed_in_as(app, "bob"), signed_in_as(app, "carol")
    response = signed_in.post(f"/admin/groups/{group_id}/members", data={"members": "BOB, carol"})
    assert response.status_code == 302
    assert member_names(app, group_id) == ["bob", "carol"]
    with app.app_context():
        bob_id = db.session.scalar(db.select(User.id).where(User.username == "bob"))
    assert signed_in.post(f"/admin/groups/{group_id}/members/{bob_id}/remove").status_code == 302
    assert member_names(app, group_id) == ["carol"]


def test_adding_an_unknown_account_names_it_and_adds_nobody(app, signed_in, group_id):
    signed_in_as(app, "bob")
    response = signed_in.post(f"/admin/groups/{group_id}/members", data={"members": "bob, bernard"})
    assert response.status_code == 400
    assert "No account is named “bernard”: check the spelling." in said(response)
    assert member_names(app, group_id) == []


def test_adding_an_unknown_account_is_said_in_french(app, signed_in, group_id):
    response = signed_in.post(f"/admin/groups/{group_id}/members", data={"members": "bernard"}, headers=FR)
    assert response.status_code == 400
    assert "Aucun compte ne s’appelle « bernard » : vérifiez l’orthographe." in said(response)


def test_adding_no_name_asks_for_usernames(app, signed_in, group_id):
    response = signed_in.post(f"/admin/groups/{group_id}/members", data={"members": " , "})
    assert response.status_code == 400
    assert "Write the usernames to add" in said(response)


def _from_directory(app, group_id: int, username: str) -> int:
    with app.app_context():
        user_id = db.session.scalar(db.select(User.id).where(User.username == username))
        db.session.add(GroupMember(group_id=group_id, user_id=user_id, from_directory=True))
        db.session.commit()
        return user_id


def test_a_member_from_the_directory_is_shown_so_and_cannot_be_removed_by_hand(app, signed_in):
    create(signed_in, "Juristes", directory_group="cn=juristes,ou=groups,dc=example,dc=org")
    group_id = group_named(app, "Juristes").id
    signed_in_as(app, "bob")
    bob_id = _from_directory(app, group_id, "bob")
    page = signed_in.get(f"/admin/groups/{group_id}").get_data(as_text=True)
    assert 'data-member="bob"' in page and "data-from-directory" in page
    assert f"/members/{bob_id}/remove" not in page
    response = signed_in.post(f"/admin/groups/{group_id}/members/{bob_id}/remove")
    assert response.status_code == 400
    assert "bob is in this group through the directory group" in said(response)
    assert member_names(app, group_id) == ["bob"]


def test_changing_the_directory_group_takes_out_the_members_the_old_one_brought(app, signed_in):
    create(signed_in, "Juristes", directory_group="juristes")
    group_id = group_named(app, "Juristes").id
    signed_in_as(app, "bob"), signed_in_as(app, "carol")
    _from_directory(app, group_id, "bob")
    signed_in.post(f"/admin/groups/{group_id}/members", data={"members": "carol"})
    response = signed_in.post(
        f"/admin/groups/{group_id}", data={"name": "Juristes", "directory_group": "legal"}
    )
    assert response.status_code == 302
    assert member_names(app, group_id) == ["carol"], "the one chosen by hand stays"


# -- models and collections ---------------------------------------------------------------------
def test_an_admin_chooses_a_groups_models_and_the_list_shows_them(app, signed_in, group_id):
    response = signed_in.post(f"/admin/groups/{group_id}/models", data={"models": ["other"]})
    assert response.status_code == 302
    with app.app_context():
        assert list(db.session.scalars(db.select(GroupModel.model_id))) == ["other"]
    page = signed_in.get("/admin/groups").get_data(as_text=True)
    assert "Other" in page.split("data-models>")[1].split("</dd>")[0]


def test_an_unknown_model_is_refused_with_its_name(app, signed_in, group_id):
    response = signed_in.post(f"/admin/groups/{group_id}/models", data={"models": ["other", "gpt-9"]})
    assert response.status_code == 400
    assert "No model is named “gpt-9” on this server." in said(response)
    with app.app_context():
        assert db.session.scalars(db.select(GroupModel)).all() == []


def test_an_admin_chooses_a_groups_knowledge_bases(app, signed_in, group_id):
    signed_in.post("/knowledge/new", data={"name": "RH", "access": "listed", "readers": "alice"})
    with app.app_context():
        collection_id = db.session.scalar(db.select(Collection.id))
    response = signed_in.post(
        f"/admin/groups/{group_id}/collections", data={"collections": [str(collection_id)]}
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(CollectionGroup.collection_id)).all() == [collection_id]


def test_an_unknown_knowledge_base_is_refused_with_a_message(app, signed_in, group_id):
    response = signed_in.post(f"/admin/groups/{group_id}/collections", data={"collections": ["4242"]})
    assert response.status_code == 400
    assert "Pick knowledge bases from the list." in said(response)


def test_the_admin_navigation_links_to_the_groups(app, signed_in):
    assert 'href="/admin/groups"' in signed_in.get("/admin/users").get_data(as_text=True)


# -- the Models page says who may use each model ------------------------------------------------
def _row(page: str, model_id: str) -> str:
    return page.split(f'data-model-id="{model_id}"')[1].split("</tr>")[0]


def test_the_models_page_says_who_may_use_each_model(app, signed_in, group_id):
    signed_in.post(f"/admin/groups/{group_id}/models", data={"models": ["other"]})
    page = signed_in.get("/admin/models", headers=FR).get_data(as_text=True)
    assert "Pour :" in _row(page, "tiny") and "tout le monde" in _row(page, "tiny")
    assert f'href="/admin/groups/{group_id}">Juristes</a>' in _row(page, "other")
    assert "tout le monde" not in _row(page, "other")


def test_a_models_settings_page_names_the_groups_it_is_kept_for(app, signed_in, group_id):
    signed_in.post(f"/admin/groups/{group_id}/models", data={"models": ["other"]})
    page = signed_in.get("/admin/models/settings?model=other").get_data(as_text=True)
    who = page.split("data-who>")[1].split("</p>")[0]
    assert "Juristes" in who and "everyone" not in who
    assert "everyone" in signed_in.get("/admin/models/settings?model=tiny").get_data(as_text=True)
