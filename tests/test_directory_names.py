"""Names a directory or an identity provider gives that could not be a local account's name
(issue 18, item 1, attacked as a colleague would): the account is found by its stable id, but
its name is shown to others (shares, the audit log, the Users page) and stored in a column of
64 characters."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.directory.accounts import DirectoryPerson, DirectoryRefusal, account_for
from app.extensions import db
from app.models import User
from tests.conftest import AuthActions


def person(username: str) -> DirectoryPerson:
    return DirectoryPerson(
        source="oidc", stable_id=f"https://idp.example sub-{len(username)}", username=username
    )


def test_a_directory_name_that_passes_for_another_by_mixing_scripts_makes_no_account(app, client):
    AuthActions(client).register("admin")
    with app.app_context():
        with pytest.raises(DirectoryRefusal):
            account_for(person("\u0430dmin"))  # CYRILLIC SMALL LETTER A, then Latin
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


def test_a_directory_name_longer_than_a_username_makes_no_account(app):
    with app.app_context():
        with pytest.raises(DirectoryRefusal):
            account_for(person("a" * 65))
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
