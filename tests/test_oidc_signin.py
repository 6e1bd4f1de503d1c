"""Sign-in with OpenID Connect, against a real provider started by the tests (npm's
oidc-provider over HTTPS with a test CA: tests/oidc_server.py), its own login page filled in.
"""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import flask_migrate
import pytest
import sqlalchemy as sa

from app import create_app
from app.admin.users import set_registration_mode
from app.api import keys
from app.extensions import db
from app.models import AuditEntry, Group, GroupMember, OidcRefreshToken, User
from config import TestConfig
from tests.conftest import _services
from tests.oidc_server import OidcProvider, default_people, installed

CALLBACK = "http://localhost/auth/oidc/callback"


@pytest.fixture(scope="module")
def provider():
    reason = installed()
    if reason:
        pytest.skip(reason)
    with OidcProvider(redirect_uris=[CALLBACK]) as provider:
        yield provider


@pytest.fixture(autouse=True)
def people(provider):
    """Every test starts from the provider's people as tests/oidc_server.py describes them."""
    provider.people = default_people()
    provider._write_people()
    return provider


def oidc_app(database_url, tmp_path, engine, provider, **settings):
    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = database_url
        MODELS_DIR = tmp_path / "models"
        DOCUMENTS_DIR = tmp_path / "documents"

    for name, value in {**provider.settings(), **settings}.items():
        setattr(Config, name, value)
    app = create_app(Config, llm_services=_services(engine))
    with app.app_context():
        flask_migrate.upgrade()
    return app


@pytest.fixture
def app(database_url, tmp_path, engine, provider):
    app = oidc_app(database_url, tmp_path, engine, provider, OIDC_ADMIN_GROUP="causerie-admins")
    yield app
    app.extensions["documents"].close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def sign_in(client, provider, login, *, next_page=None, cancel=False):
    """The whole journey: the app's SSO link, the provider's login page, back to the callback."""
    response = client.get("/auth/oidc/login", query_string={"next": next_page} if next_page else None)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    back = provider.browse(response.location, login, cancel=cancel)
    assert back.startswith(CALLBACK)
    return client.get(back.removeprefix("http://localhost"))


def account(app, username) -> User | None:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == username))
        if user is not None:
            db.session.expunge(user)
        return user


def group_names(app, user) -> set[str]:
    with app.app_context():
        return set(
            db.session.scalars(sa.select(Group.name).join(GroupMember).where(GroupMember.user_id == user.id))
        )


def add_groups(app, **mapped: str) -> None:
    """Causerie groups mapped to a directory group each: {name: directory group}."""
    with app.app_context():
        for name, directory_group in mapped.items():
            db.session.add(Group(name=name, directory_group=directory_group))
        db.session.commit()


def test_sso_sign_in_makes_the_account_with_its_groups_mapped(app, provider):
    add_groups(app, Staff="staff", Research="research")
    client = app.test_client()
    response = sign_in(client, provider, "bob")
    assert response.status_code == 302 and response.location == "/"
    assert client.get("/").status_code == 200  # signed in
    bob = account(app, "bob")
    assert bob.directory_id == f"oidc:{provider.issuer} 27d9a4c6-bob"
    assert (bob.display_name, bob.email) == ("Bob Durand", "bob@example.com")
    assert group_names(app, bob) == {"Staff"}


def test_sso_sign_in_returns_to_the_page_asked_for(app, provider):
    response = sign_in(app.test_client(), provider, "bob", next_page="/settings")
    assert response.status_code == 302 and response.location == "/settings"


def test_sso_sign_in_never_returns_to_another_site(app, provider):
    response = sign_in(app.test_client(), provider, "bob", next_page="https://evil.example.com/")
    assert response.status_code == 302 and response.location == "/"


def test_second_sign_in_finds_the_same_account_even_if_the_username_changed(app, provider):
    client = app.test_client()
    sign_in(client, provider, "bob")
    first = account(app, "bob")
    client.post("/logout")
    provider.update("bob", preferred_username="robert.durand")
    response = sign_in(client, provider, "bob")
    assert response.status_code == 302
    with app.app_context():
        directory_accounts = db.session.scalars(sa.select(User).where(User.directory_id.is_not(None))).all()
        assert [u.id for u in directory_accounts] == [first.id]
    assert client.get("/").status_code == 200


def test_a_name_clash_with_a_local_account_is_refused_and_recorded(app, provider):
    client = app.test_client()
    password = "un mot de passe assez long"
    client.post("/register", data={"username": "carol", "password": password, "confirm": password})
    client.post("/logout")
    response = sign_in(client, provider, "carol")
    assert response.status_code == 409
    assert "The name carol belongs to another account here" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
        clash = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "directory.name_clash"))
        assert clash.target == "carol" and clash.details["source"] == "oidc"
    assert client.get("/").status_code == 302  # not signed in


def test_the_login_redirect_sends_pkce_s256_a_nonce_and_a_state(app, provider):
    response = app.test_client().get("/auth/oidc/login")
    assert response.location.startswith(f"{provider.issuer}/auth?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(response.location).query).items()}
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of a SHA-256
    assert len(query["nonce"]) >= 20 and len(query["state"]) >= 20
    assert query["redirect_uri"] == CALLBACK
    assert "openid" in query["scope"].split()


def test_a_tampered_state_is_refused_with_a_clear_message(app, provider):
    client = app.test_client()
    response = client.get("/auth/oidc/login")
    back = provider.browse(response.location, "bob")
    query = parse_qs(urlsplit(back).query)
    tampered = f"/auth/oidc/callback?code={query['code'][0]}&state=forged{query['state'][0]}"
    response = client.get(tampered)
    assert response.status_code == 400
    assert "This sign-in has expired or was already used: start again." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not signed in


def test_a_callback_used_twice_is_refused_the_second_time(app, provider):
    client = app.test_client()
    back = provider.browse(client.get("/auth/oidc/login").location, "bob")
    assert client.get(back.removeprefix("http://localhost")).status_code == 302
    client.post("/logout")
    response = client.get(back.removeprefix("http://localhost"))
    assert response.status_code == 400
    assert "expired or was already used" in response.get_data(as_text=True)


def test_an_id_token_without_the_nonce_sent_is_refused(app, provider):
    client = app.test_client()
    response = client.get("/auth/oidc/login")
    with client.session_transaction() as session:
        (key,) = [k for k in session if k.startswith("_state_oidc_")]
        state = session[key]
        state["data"]["nonce"] = "not-the-nonce-sent"
        session[key] = state
    back = provider.browse(response.location, "bob")
    response = client.get(back.removeprefix("http://localhost"))
    assert response.status_code == 502
    assert "could not be verified" in response.get_data(as_text=True)
    assert account(app, "bob") is None


def test_a_provider_certificate_from_another_ca_is_refused_with_a_clear_message(
    database_url, tmp_path, engine, provider
):
    app = oidc_app(database_url, tmp_path, engine, provider, OIDC_CA_FILE=str(provider.other_ca_file))
    response = app.test_client().get("/auth/oidc/login")
    assert response.status_code == 502
    page = response.get_data(as_text=True)
    assert "The certificate of Test SSO is not trusted by this server" in page and "OIDC_CA_FILE" in page


def test_an_unreachable_provider_is_told_with_a_clear_message(database_url, tmp_path, engine, provider):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        nowhere = f"https://127.0.0.1:{probe.getsockname()[1]}"
    app = oidc_app(database_url, tmp_path, engine, provider, OIDC_ISSUER=nowhere)
    response = app.test_client().get("/auth/oidc/login")
    assert response.status_code == 502
    assert "Test SSO cannot be reached: try again in a moment" in response.get_data(as_text=True)


def test_a_discovery_document_naming_another_issuer_is_refused(database_url, tmp_path, engine, provider):
    # The same provider by another of its names: its discovery document names 127.0.0.1, and ID
    # tokens checked against that issuer would pass for an OIDC_ISSUER they were not made for.
    elsewhere = provider.issuer.replace("127.0.0.1", "localhost")
    app = oidc_app(database_url, tmp_path, engine, provider, OIDC_ISSUER=elsewhere)
    response = app.test_client().get("/auth/oidc/login")
    assert response.status_code == 502
    assert "Test SSO cannot be reached" in response.get_data(as_text=True)


def test_cancelling_at_the_provider_is_told_with_a_clear_message(app, provider):
    client = app.test_client()
    response = sign_in(client, provider, "bob", cancel=True)
    assert response.status_code == 401
    assert "Sign-in cancelled at the identity provider." in response.get_data(as_text=True)
    assert account(app, "bob") is None


def test_the_groups_claim_maps_to_groups_and_a_change_applies_at_next_sign_in(app, provider):
    add_groups(app, Staff="staff", Research="RESEARCH")  # matched without regard to case
    client = app.test_client()
    sign_in(client, provider, "bob")
    assert group_names(app, account(app, "bob")) == {"Staff"}
    client.post("/logout")
    provider.update("bob", groups=["research"])
    sign_in(client, provider, "bob")
    assert group_names(app, account(app, "bob")) == {"Research"}


def test_the_admin_group_gives_admin_rights(app, provider):
    sign_in(app.test_client(), provider, "alice")
    sign_in(app.test_client(), provider, "bob")
    assert account(app, "alice").is_admin and not account(app, "bob").is_admin


def test_leaving_the_admin_group_takes_admin_rights_away_at_next_sign_in(app, provider):
    client = app.test_client()
    sign_in(client, provider, "alice")
    client.post("/logout")
    provider.update("alice", groups=["staff"])
    sign_in(client, provider, "alice")
    assert not account(app, "alice").is_admin


def test_the_username_comes_from_the_configured_claim(database_url, tmp_path, engine, provider):
    app = oidc_app(database_url, tmp_path, engine, provider, OIDC_USERNAME_CLAIM="email")
    assert sign_in(app.test_client(), provider, "bob").status_code == 302
    assert account(app, "bob@example.com") is not None


def test_with_registration_closed_a_new_sso_account_is_refused_with_a_clear_message(app, provider):
    with app.app_context():
        set_registration_mode("closed")
    response = sign_in(app.test_client(), provider, "bob")
    assert response.status_code == 403
    assert "No new account may be made here" in response.get_data(as_text=True)
    assert account(app, "bob") is None


def test_with_registration_by_approval_a_new_sso_account_waits_and_is_told(app, provider):
    with app.app_context():
        set_registration_mode("approval")
    client = app.test_client()
    response = sign_in(client, provider, "bob")
    assert response.status_code == 403
    assert "waiting for the administrator" in response.get_data(as_text=True)
    assert account(app, "bob").pending
    assert client.get("/").status_code == 302


def test_an_account_disabled_here_cannot_sign_in_with_sso(app, provider):
    client = app.test_client()
    sign_in(client, provider, "bob")
    client.post("/logout")
    with app.app_context():
        db.session.execute(sa.update(User).where(User.username == "bob").values(disabled=True))
        db.session.commit()
    response = sign_in(client, provider, "bob")
    assert response.status_code == 403
    assert "This account is disabled" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_the_sign_in_page_offers_the_provider_and_keeps_the_local_form(app):
    page = app.test_client().get("/login?next=/settings").get_data(as_text=True)
    assert "Sign in with Test SSO" in page
    assert 'href="/auth/oidc/login?next=/settings"' in page
    assert 'name="password"' in page


def test_the_sign_in_page_offers_no_provider_when_none_is_set(database_url, tmp_path, engine, provider):
    off = dict.fromkeys(("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET", "OIDC_CA_FILE"), "")
    client = oidc_app(database_url, tmp_path, engine, provider, **off).test_client()
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with" not in page
    assert client.get("/auth/oidc/login").status_code == 404


def test_the_error_code_the_provider_returns_is_shown(app):
    client = app.test_client()
    client.get("/auth/oidc/login")
    response = client.get("/auth/oidc/callback", query_string={"error": "temporarily_unavailable"})
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert "The identity provider refused the sign-in (temporarily_unavailable)." in page


def test_words_of_anyone_in_the_callbacks_error_are_not_shown(app):
    client = app.test_client()
    for words in ("<img src=x onerror=alert(1)>", "Call +33 1 23 45 67 89 to unlock your account"):
        response = client.get("/auth/oidc/callback", query_string={"error": words})
        assert response.status_code == 401
        page = response.get_data(as_text=True)
        notice = re.search(r"data-notice>(.*?)</p>", page, re.S)[1]
        assert notice == "The identity provider refused the sign-in (invalid_response)."
        assert "<img src=x" not in page


# -- re-checks: every DIRECTORY_RECHECK_MINUTES, the provider is asked again --------------------
def make_check_due(app, username: str) -> None:
    """As if DIRECTORY_RECHECK_MINUTES had passed since the account was last checked."""
    with app.app_context():
        stale = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=16)
        db.session.execute(
            sa.update(User).where(User.username == username).values(directory_checked_at=stale)
        )
        db.session.commit()


def api_key_of(app, username: str) -> str:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == username))
        return keys.create(user, "script")[1]


def test_sso_sign_in_keeps_the_refresh_token_encrypted_on_the_server(app, provider):
    sign_in(app.test_client(), provider, "bob")
    with app.app_context():
        kept = db.session.get(OidcRefreshToken, account(app, "bob").id)
        assert kept is not None
        assert "refresh_token" not in kept.token  # not the JSON it holds, in clear
        assert kept.token.startswith("gAAAAA")  # a Fernet token: AES with an HMAC


def test_re_check_signs_out_a_disabled_users_session_and_refuses_their_api_key(app, provider):
    client = app.test_client()
    sign_in(client, provider, "bob")
    key = api_key_of(app, "bob")
    assert (
        app.test_client().get("/api/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    )
    provider.disable("bob")
    assert client.get("/").status_code == 200  # checked less than DIRECTORY_RECHECK_MINUTES ago
    make_check_due(app, "bob")
    assert client.get("/").status_code == 302  # signed out at the next request
    assert (
        app.test_client().get("/api/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    )
    assert account(app, "bob").disabled


def test_re_check_refuses_the_api_key_of_a_user_whose_grant_was_revoked(app, provider):
    client = app.test_client()
    sign_in(client, provider, "bob")
    key = api_key_of(app, "bob")
    provider.revoke("bob")
    make_check_due(app, "bob")
    assert (
        app.test_client().get("/api/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    )
    assert client.get("/").status_code == 302


def test_re_check_keeps_an_allowed_user_in_and_brings_their_groups_in_step(app, provider):
    add_groups(app, Staff="staff", Research="research")
    client = app.test_client()
    sign_in(client, provider, "bob")
    provider.update("bob", groups=["research"])
    make_check_due(app, "bob")
    assert client.get("/").status_code == 200
    assert group_names(app, account(app, "bob")) == {"Research"}
    make_check_due(app, "bob")  # again: the refresh token kept after the first re-check works
    assert client.get("/").status_code == 200


def test_after_a_re_check_refused_the_person_signs_in_again_at_the_provider(app, provider):
    client = app.test_client()
    sign_in(client, provider, "bob")
    provider.revoke("bob")
    make_check_due(app, "bob")
    assert client.get("/").status_code == 302
    assert sign_in(client, provider, "bob").status_code == 302
    assert client.get("/").status_code == 200


def test_an_unreachable_provider_at_re_check_keeps_the_session(database_url, tmp_path, engine):
    with OidcProvider(redirect_uris=[CALLBACK]) as down:
        app = oidc_app(database_url, tmp_path, engine, down)
        client = app.test_client()
        sign_in(client, down, "bob")
        down.halt()
        make_check_due(app, "bob")
        assert client.get("/").status_code == 200
        assert not account(app, "bob").disabled


def test_an_sso_sign_in_leaves_one_entry_in_the_audit_log(app, provider):
    client = app.test_client()
    sign_in(client, provider, "bob")  # the first: the account made, then signed in
    client.post("/logout")
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.max(AuditEntry.id)))
    sign_in(client, provider, "bob")
    with app.app_context():
        entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.id > before)).all()
        recorded = [(e.action, e.actor_name, e.details) for e in entries]
        assert recorded == [("signin.ok", "bob", {"source": "oidc"})]
