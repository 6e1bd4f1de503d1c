"""Accounts: register, sign in, sign out, and who may see what."""

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import User
from tests.conftest import PASSWORD


def test_registering_signs_the_user_in(client, auth):
    response = auth.register()
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_first_account_becomes_admin_and_later_ones_do_not(app, client, auth):
    auth.register("first")
    auth.logout()
    auth.register("second")
    with app.app_context():
        admins = db.session.scalars(sa.select(User.username).where(User.is_admin)).all()
    assert admins == ["first"]


def test_passwords_are_stored_as_argon2id_hashes(app, auth):
    auth.register()
    with app.app_context():
        stored = db.session.scalar(sa.select(User.password_hash))
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_short_password_is_refused_with_a_message(client):
    response = client.post("/register", data={"username": "bob", "password": "short", "confirm": "short"})
    assert response.status_code == 400
    assert b"12 to 128 characters" in response.data


def test_mismatched_passwords_are_refused_with_a_message(client):
    response = client.post(
        "/register", data={"username": "bob", "password": PASSWORD, "confirm": PASSWORD + "x"}
    )
    assert response.status_code == 400
    assert b"The two passwords differ." in response.data


def test_taken_username_is_refused_with_a_message(client, auth):
    auth.register("bob")
    auth.logout()
    response = auth.register("bob")
    assert response.status_code == 400
    assert b"This username is taken." in response.data


def test_username_with_spaces_or_symbols_is_refused(client, auth):
    response = auth.register("bob smith<script>")
    assert response.status_code == 400
    assert b"letters, digits" in response.data


def test_wrong_password_and_unknown_user_get_the_same_answer(client, auth):
    auth.register()
    auth.logout()
    wrong = auth.login(password="not the right password")
    unknown = auth.login(username="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert b"Wrong username or password." in wrong.data
    assert b"Wrong username or password." in unknown.data


def test_sign_out_ends_the_session(client, auth):
    auth.register()
    auth.logout()
    assert client.get("/").status_code == 302


def test_sign_out_also_ends_a_stay_signed_in_session(client, auth):
    auth.register()
    auth.logout()
    client.post("/login", data={"username": "alice", "password": PASSWORD, "remember": "y"})
    assert client.get("/").status_code == 200
    auth.logout()
    assert client.get("/").status_code == 302


def test_pages_require_login_and_come_back_after_it(client, auth):
    response = client.get("/c/1")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/c/1")
    auth.register()
    auth.logout()
    response = client.post("/login?next=/models", data={"username": "alice", "password": PASSWORD})
    assert response.headers["Location"] == "/models"


def test_login_never_redirects_to_another_site(client, auth):
    auth.register()
    auth.logout()
    response = client.post(
        "/login?next=https://evil.example/", data={"username": "alice", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_scripts_and_streams_get_401_json_instead_of_a_login_page(client):
    for headers in ({"Accept": "application/json"}, {"Accept": "text/event-stream"}):
        response = client.post("/conversations/1/messages", json={"content": "hi"}, headers=headers)
        assert response.status_code == 401
        assert response.is_json and response.json["error"]


def test_state_changes_without_a_csrf_token_are_refused(app, client, auth):
    auth.register()
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/conversations", json={}, headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert "session has expired" in response.json["error"]


def test_create_admin_command_makes_an_admin(app):
    result = app.test_cli_runner().invoke(args=["create-admin", "root", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "root"))
    assert user.is_admin


def test_create_admin_command_refuses_a_short_password(app):
    result = app.test_cli_runner().invoke(args=["create-admin", "root", "--password", "short"])
    assert result.exit_code != 0
    assert "12 to 128 characters" in result.output


def test_create_admin_command_refuses_a_username_the_form_would_refuse(app):
    result = app.test_cli_runner().invoke(args=["create-admin", "bad name!", "--password", PASSWORD])
    assert result.exit_code != 0
    assert "3 to 64 letters" in result.output


def test_every_state_changing_route_requires_the_csrf_token(app, client, auth):
    auth.register()
    app.config["WTF_CSRF_ENABLED"] = True
    posts = [rule for rule in app.url_map.iter_rules() if "POST" in rule.methods]
    assert len(posts) >= 9
    for rule in posts:
        # Every variable part: the first choice of an `any(...)`, else an id.
        url = re.sub(r"<[^>]+>", "1", re.sub(r"<any\(([^,)]+)[^>]*>", r"\1", rule.rule))
        response = client.post(url, data={}, headers={"Accept": "application/json"})
        if rule.endpoint.startswith(("api.", "openai.")):
            # The API needs no token: it takes a key, never the session cookie a forgery carries.
            assert response.status_code == 401, rule.rule
            continue
        assert response.status_code == 400, rule.rule
        assert "session has expired" in response.json["error"], rule.rule
