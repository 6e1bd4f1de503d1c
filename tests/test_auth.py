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
    assert b"This username, or one that looks the same, is taken." in response.data


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


# -- names that pass for another (issue 16, item 18) ------------------------------------------
TAKEN = b"This username, or one that looks the same, is taken."
MIXED = b"This username mixes alphabets (such as Latin and Cyrillic letters): write it in one."


def test_a_name_that_differs_only_in_case_is_refused_as_taken(client, auth):
    auth.register("alice")
    auth.logout()
    response = auth.register("Alice")
    assert response.status_code == 400 and TAKEN in response.data


def test_a_fullwidth_copy_of_a_name_is_refused_as_taken(client, auth):
    auth.register("admin")
    auth.logout()
    response = auth.register("ａｄｍｉｎ")
    assert response.status_code == 400 and TAKEN in response.data


def test_a_name_mixing_latin_and_cyrillic_letters_is_refused_with_a_message(client, auth):
    response = auth.register("аlice")  # the first letter is Cyrillic
    assert response.status_code == 400 and MIXED in response.data


def test_a_name_in_one_alphabet_other_than_latin_is_accepted(client, auth):
    assert auth.register("ιωάννης").status_code == 302
    auth.logout()
    assert auth.register("山田たろう").status_code == 302  # Japanese: Han with Hiragana


def test_signing_in_with_a_name_in_another_case_or_width_reaches_the_same_account(client, auth):
    auth.register("alice")
    auth.logout()
    for typed in ("ALICE", "ａｌｉｃｅ"):
        assert auth.login(typed).status_code == 302, typed
        assert client.get("/").status_code == 200
        auth.logout()


def test_accounts_whose_names_collided_before_each_sign_in_with_their_exact_name(app, client, auth):
    """Kept from before names were folded (the migration gives the later one a key of its own)."""
    from app.auth.services import hash_password

    auth.register("alice")
    auth.logout()
    with app.test_request_context():
        db.session.add(
            User(
                username="Alice", username_key="alice#2", password_hash=hash_password("Alice's own password")
            )
        )
        db.session.commit()
    assert auth.login("Alice", "Alice's own password").status_code == 302
    auth.logout()
    assert auth.login("alice").status_code == 302


# -- first steps (issue 16, item 14) ----------------------------------------------------------
def test_the_first_account_is_told_it_is_the_administrator_with_links_to_models_and_benchmarks(client, auth):
    page = client.get(auth.register("first").headers["Location"]).get_data(as_text=True)
    assert "You are this server’s administrator" in page
    assert 'href="/admin/models"' in page and 'href="/admin/benchmarks"' in page


def test_the_administrator_welcome_speaks_french_to_a_french_visitor(client, auth):
    client.post("/language", data={"lang": "fr"})
    page = client.get(auth.register("premier").headers["Location"]).get_data(as_text=True)
    assert "Vous êtes l'administrateur de ce serveur" in page and 'href="/admin/models"' in page


def test_a_later_account_is_only_welcomed(client, auth):
    auth.register("first")
    auth.logout()
    page = client.get(auth.register("second").headers["Location"]).get_data(as_text=True)
    assert "Welcome, second." in page and "You are this server" not in page


# -- a new password, and the API keys (issue 16, item 21) -------------------------------------
NEW_PASSWORD = "another long password"


def make_api_key(client) -> str:
    page = client.post("/settings/api-keys", data={"name": "notebook"}).get_data(as_text=True)
    return re.search(r"data-key>(cau_[\w-]+)<", page).group(1)


def key_works(client, key: str) -> bool:
    return client.get("/api/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def change_password(client, **extra):
    data = {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD, **extra}
    return client.post("/account/password", data=data, follow_redirects=True)


def test_the_password_page_offers_to_revoke_ones_api_keys(signed_in):
    assert b"Also revoke my API keys" in signed_in.get("/account/password").data


def test_changing_ones_password_with_the_box_ticked_revokes_ones_api_keys(signed_in):
    key = make_api_key(signed_in)
    page = change_password(signed_in, revoke_keys="y")
    assert b"your API key is revoked" in page.data
    assert not key_works(signed_in, key)


def test_changing_ones_password_without_the_box_keeps_ones_api_keys(signed_in):
    key = make_api_key(signed_in)
    change_password(signed_in)
    assert key_works(signed_in, key)
