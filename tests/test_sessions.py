"""Sessions end where they must: signing out ends the account's sessions everywhere, a
disabled account is out at its next request, and sessions expire when idle or too old."""

from __future__ import annotations

import time

from app.auth import sessions
from app.extensions import db
from app.models import User
from tests.conftest import PASSWORD, AuthActions


def signed_in_client(app, username="alice", register=False, remember=False):
    client = app.test_client()
    auth = AuthActions(client)
    if register:
        auth.register(username)
    else:
        client.post(
            "/login", data={"username": username, "password": PASSWORD, "remember": "y" if remember else ""}
        )
    return client


def can_chat(client) -> bool:
    return client.get("/conversations", headers={"Accept": "application/json"}).status_code == 200


def test_signing_out_in_one_browser_signs_out_every_browser_of_the_account(app):
    office = signed_in_client(app, register=True)
    office.post("/logout")
    office = signed_in_client(app)
    laptop = signed_in_client(app)
    assert can_chat(office) and can_chat(laptop)
    laptop.post("/logout")
    assert not can_chat(laptop) and not can_chat(office)


def session_cookie_of(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))


def test_stay_signed_in_keeps_the_session_past_the_browser_and_signing_out_elsewhere_ends_it(app):
    signed_in_client(app, register=True).post("/logout")
    home = app.test_client()
    visit = home.post("/login", data={"username": "alice", "password": PASSWORD, "remember": "y"})
    assert "Expires=" in session_cookie_of(visit)  # kept when the browser closes
    assert "remember_token" not in " ".join(
        visit.headers.getlist("Set-Cookie")
    )  # no second key to the account
    office = app.test_client()
    short = office.post("/login", data={"username": "alice", "password": PASSWORD})
    assert "Expires=" not in session_cookie_of(short)  # gone with the browser
    assert can_chat(home)
    office.post("/logout")  # signing out at the office
    assert not can_chat(home)


def test_a_disabled_account_is_out_at_its_next_request_and_cannot_sign_in(app):
    client = signed_in_client(app, register=True)
    assert can_chat(client)
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.username == "alice"))
        user.disabled = True
        db.session.commit()
    assert not can_chat(client)
    page = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert "This account is disabled" in page.get_data(as_text=True) and not can_chat(client)


def test_a_session_left_idle_too_long_expires(app):
    client = signed_in_client(app, register=True)
    with client.session_transaction() as session:
        session[sessions.SEEN_AT] = time.time() - app.config["SESSION_IDLE_MINUTES"] * 60 - 1
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "Your session has expired" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_session_kept_busy_still_ends_after_its_longest_life(app):
    signed_in_client(app, register=True).post("/logout")
    client = signed_in_client(app, remember=True)
    with client.session_transaction() as session:
        session[sessions.SIGNED_IN_AT] = time.time() - app.config["SESSION_MAX_DAYS"] * 86400 - 1
    assert not can_chat(client)


def test_a_session_without_its_clocks_is_ended(app):
    """One signed in before the clocks were kept, or forged without them."""
    client = signed_in_client(app, register=True)
    with client.session_transaction() as session:
        del session[sessions.SIGNED_IN_AT]
    assert not can_chat(client)


def test_stay_signed_in_survives_a_long_pause(app):
    signed_in_client(app, register=True).post("/logout")
    client = signed_in_client(app, remember=True)
    with client.session_transaction() as session:
        session[sessions.SEEN_AT] = time.time() - app.config["SESSION_IDLE_MINUTES"] * 60 - 1
    assert can_chat(client)


def test_signing_in_starts_a_new_session(app):
    signed_in_client(app, register=True).post("/logout")
    client = app.test_client()
    with client.session_transaction() as session:  # planted before the sign-in (session fixation)
        session["planted"] = "by someone else"
        session["lang"] = "en"
    client.post("/login", data={"username": "alice", "password": PASSWORD})
    with client.session_transaction() as session:
        assert "planted" not in session and session["lang"] == "en" and session["_user_id"].startswith("1:")


NEW_PASSWORD = "another long enough password"


def change_password(client, current=PASSWORD, new=NEW_PASSWORD, confirm=None):
    return client.post(
        "/account/password", data={"current": current, "password": new, "confirm": confirm or new}
    )


def test_a_new_password_signs_out_the_other_browsers_and_keeps_this_one(app):
    office = signed_in_client(app, register=True)
    laptop = signed_in_client(app)
    response = change_password(office)
    assert response.status_code == 302
    assert can_chat(office) and not can_chat(laptop)
    assert laptop.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 401
    assert laptop.post("/login", data={"username": "alice", "password": NEW_PASSWORD}).status_code == 302


def test_a_password_change_needs_the_current_password_and_a_valid_new_one(app):
    client = signed_in_client(app, register=True)
    wrong = change_password(client, current="not my password at all")
    assert wrong.status_code == 400 and "This is not your current password." in wrong.get_data(as_text=True)
    short = change_password(client, new="too short")
    assert short.status_code == 400 and "A password has 12 to 128 characters." in short.get_data(as_text=True)
    differ = change_password(client, confirm="yet another long password")
    assert differ.status_code == 400 and "The two passwords differ." in differ.get_data(as_text=True)
    assert client.post("/logout").status_code == 302
    assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 302


def test_the_password_page_is_reachable_from_the_chat(app):
    client = signed_in_client(app, register=True)
    assert 'href="/account/password"' in client.get("/").get_data(as_text=True)
    assert client.get("/account/password").status_code == 200


def test_guessing_the_current_password_on_the_password_page_is_throttled_like_a_sign_in(app):
    client = signed_in_client(app, register=True)
    for _ in range(app.config["LOGIN_FAILURES_BEFORE_DELAY"]):
        assert change_password(client, current="a wrong guess of mine").status_code == 400
    refused = change_password(client)  # even the right one, now
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)


def test_a_session_of_an_account_disabled_behind_the_apps_back_is_no_session(app):
    """Even when the account's token did not change (a database edit), a disabled account is out."""
    client = signed_in_client(app, register=True)
    with app.app_context():
        db.session.execute(db.update(User).values(disabled=True))
        db.session.commit()
    assert not can_chat(client)
