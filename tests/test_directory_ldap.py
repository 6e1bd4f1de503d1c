"""LDAP / Active Directory sign-in, against a real OpenLDAP started for each test (tests/ldap_server.py)."""

from __future__ import annotations

import logging
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa

from app import create_app
from app.admin.users import set_registration_mode
from app.api import keys
from app.directory import ldap, recheck
from app.directory.accounts import UNUSABLE_PASSWORD
from app.extensions import db
from app.models import AuditEntry, Group, GroupMember, User, utcnow
from config import TestConfig
from tests.conftest import ON_POSTGRES, PASSWORD, _services
from tests.ldap_server import GROUPS, LONG_UID, PEOPLE, LdapServer

ALICE = "alice's directory password"
BOB = "bob's directory password"
CAROL = "carol's directory password"
DORA = "dora's directory password"
CSRF_TOKEN = re.compile(r"[\w-]+\.[\w-]+\.[\w-]{27}")
WRONG = "Wrong username or password."
UNREACHABLE = "The company directory cannot be reached: try again in a few minutes."
DISABLED = "Your account is disabled in the company directory. Ask your administrator."


@pytest.fixture
def directory():
    with LdapServer() as server:
        yield server


def make_app(database_url, tmp_path, engine, settings: dict):
    config = type(
        "Config",
        (TestConfig,),
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "MODELS_DIR": tmp_path / "models",
            "DOCUMENTS_DIR": tmp_path / "documents",
            **settings,
        },
    )
    app = create_app(config, llm_services=_services(engine))
    with app.app_context():
        flask_migrate.upgrade()
    return app


@pytest.fixture
def app(database_url, tmp_path, engine, directory):
    """The app with the test directory as its LDAP (ldap:// with StartTLS and the test CA)."""
    app = make_app(database_url, tmp_path, engine, directory.settings())
    yield app
    app.extensions["documents"].close()
    if ON_POSTGRES:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@contextmanager
def logged(caplog, name: str) -> Iterator[None]:
    """The named logger's records in caplog, whatever happened to the root logger's handlers
    (Alembic's logging set-up replaces them when an app is migrated inside a test)."""
    logger = logging.getLogger(name)
    logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        logger.removeHandler(caplog.handler)


def sign_in(client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(
        "/login", data={"username": username, "password": password}, environ_base={"REMOTE_ADDR": address}
    )


def account(app, username: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == username))
        if user is not None:
            db.session.expunge(user)
        return user


def groups_of(app, username: str) -> set[str]:
    with app.app_context():
        return set(
            db.session.scalars(
                sa.select(Group.name).join(GroupMember).join(User).where(User.username == username)
            ).all()
        )


def make_group(app, name: str, directory_group: str) -> None:
    with app.app_context():
        db.session.add(Group(name=name, directory_group=directory_group))
        db.session.commit()


def check_due(app, username: str) -> None:
    """As if DIRECTORY_RECHECK_MINUTES had passed since the account's last check."""
    minutes = app.config["DIRECTORY_RECHECK_MINUTES"]
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == username))
        user.directory_checked_at = utcnow() - timedelta(minutes=minutes, seconds=1)
        db.session.commit()


def audit_actions(app) -> list[tuple[str, str]]:
    with app.app_context():
        entries = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))
        return [(e.action, e.target) for e in entries]


# -- signing in --


def test_a_directory_person_signs_in_with_the_directory_password(app, client, directory):
    response = sign_in(client, "bob", BOB)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    bob = account(app, "bob")
    assert bob.directory_id.startswith("ldap:") and len(bob.directory_id) == len("ldap:") + 36  # entryUUID
    assert (bob.display_name, bob.email) == ("Bob Durand", "bob@example.com")
    assert bob.password_hash == UNUSABLE_PASSWORD


def test_the_sign_in_page_says_company_passwords_work_here(client):
    assert "name and password work here." in client.get("/login").get_data(True)


def test_a_directory_account_signs_in_again_as_the_same_account(app, client, auth):
    sign_in(client, "bob", BOB)
    first = account(app, "bob").id
    auth.logout()
    assert sign_in(client, "Bob", BOB).status_code == 302  # the directory matches names as it does
    assert account(app, "bob").id == first
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_a_wrong_password_and_an_unknown_name_get_the_same_page_and_time(app, client):
    app.config["LOGIN_FAILURES_BEFORE_DELAY"] = 1000  # this test is about the answer, not the throttle
    timings: dict[str, list[float]] = {"wrong password": [], "unknown user": []}
    pages = {}
    for _ in range(5):
        for case, username in (("wrong password", "bob"), ("unknown user", "zoé")):
            start = time.perf_counter()
            response = sign_in(client, username, "not the password at all")
            timings[case].append(time.perf_counter() - start)
            assert response.status_code == 401
            page = response.get_data(as_text=True).replace(f'value="{username}"', "")
            pages[case] = CSRF_TOKEN.sub("", page)
    assert pages["wrong password"] == pages["unknown user"]
    assert WRONG in pages["unknown user"]
    wrong, unknown = (statistics.median(timings[case]) for case in timings)
    print(f"median LDAP failure: wrong password {wrong * 1000:.0f} ms, unknown name {unknown * 1000:.0f} ms")
    assert 1 / 3 < wrong / unknown < 3  # both: one hash, a search and a refused bind


def test_a_wrong_password_and_an_unknown_name_cost_the_directory_the_same_binds(app, client, directory):
    sign_in(client, "bob", "not the password at all")
    after_wrong = directory.binds()
    sign_in(client, "zoé", "not the password at all")
    unknown = directory.binds()[len(after_wrong) :]
    assert len(after_wrong) == len(unknown) == 2  # the service account's, then one refused
    assert after_wrong[1] == f"uid=bob,{PEOPLE}"


def test_a_wrong_password_and_an_unknown_name_count_alike_against_the_throttle(app, client):
    app.config["LOGIN_FAILURES_BEFORE_DELAY"] = 2
    answers = {}
    for username, address in (("bob", "10.0.0.1"), ("zoé", "10.0.0.2")):
        answers[username] = [sign_in(client, username, "not it", address).status_code for _ in range(3)]
    assert answers["bob"] == answers["zoé"] == [401, 401, 429]


def test_an_empty_password_is_refused_without_a_bind(app, directory):
    with app.app_context():
        assert ldap.directory().authenticate("bob", "") is None
    assert directory.binds() == []


def test_a_filter_injection_username_finds_nobody(app, client, directory):
    # Unescaped, "bo*" would find bob and sign in with his password; "*)(uid=*" would match everyone.
    assert sign_in(client, "bo*", BOB).status_code == 401
    assert sign_in(client, "*)(uid=*", BOB).status_code == 401
    assert sign_in(client, "bob)(|(uid=*", BOB).status_code == 401
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


# -- groups and the admin right --


def test_a_directory_group_maps_to_a_causerie_group_at_sign_in(app, client):
    make_group(app, "Everyone", "staff")  # by the group's cn
    make_group(app, "Research", "cn=research,ou=groups,dc=example,dc=com")  # by its DN
    sign_in(client, "bob", BOB)
    assert groups_of(app, "bob") == {"Everyone"}


def test_groups_come_from_a_group_search_when_ldap_group_base_is_set(
    database_url, tmp_path, engine, directory
):
    # memberOf says staff; the search (only research groups) decides.
    settings = directory.settings(LDAP_GROUP_BASE=GROUPS, LDAP_GROUP_FILTER="(&(member={dn})(cn=research))")
    app = make_app(database_url, tmp_path, engine, settings)
    make_group(app, "Everyone", "staff")
    make_group(app, "Research", "research")
    directory.add_to_group("bob", "research")
    sign_in(app.test_client(), "bob", BOB)
    app.extensions["documents"].close()
    assert groups_of(app, "bob") == {"Research"}


def test_a_group_change_in_the_directory_applies_at_the_next_sign_in(app, client, auth, directory):
    make_group(app, "Everyone", "staff")
    make_group(app, "Research", "CN=Research,OU=Groups,DC=example,DC=com")  # case does not matter
    sign_in(client, "bob", BOB)
    directory.add_to_group("bob", "research")
    directory.remove_from_group("bob", "staff")
    assert groups_of(app, "bob") == {"Everyone"}  # nothing changes here until the next sign-in
    auth.logout()
    sign_in(client, "bob", BOB)
    assert groups_of(app, "bob") == {"Research"}


def test_an_admins_own_choice_of_members_is_kept_at_sign_in(app, client, auth):
    make_group(app, "Everyone", "staff")
    with app.app_context():
        db.session.add(Group(name="Testers"))
        db.session.commit()
    sign_in(client, "bob", BOB)
    with app.app_context():
        bob = db.session.scalar(sa.select(User).where(User.username == "bob"))
        testers = db.session.scalar(sa.select(Group).where(Group.name == "Testers"))
        db.session.add(GroupMember(group_id=testers.id, user_id=bob.id))
        db.session.commit()
    auth.logout()
    sign_in(client, "bob", BOB)
    assert groups_of(app, "bob") == {"Everyone", "Testers"}


def test_the_admin_right_comes_from_the_ldap_admin_group(app, client, auth, directory):
    sign_in(client, "alice", ALICE)
    assert account(app, "alice").is_admin
    assert client.get("/admin/users").status_code == 200
    auth.logout()
    sign_in(client, "bob", BOB)
    assert not account(app, "bob").is_admin
    assert client.get("/admin/users").status_code == 403


def test_leaving_the_ldap_admin_group_takes_the_admin_right_at_the_next_sign_in(app, client, auth, directory):
    sign_in(client, "alice", ALICE)
    directory.remove_from_group("alice", "causerie-admins")
    auth.logout()
    sign_in(client, "alice", ALICE)
    assert not account(app, "alice").is_admin


# -- refused --


def test_a_person_disabled_in_the_directory_is_refused_at_sign_in(app, client):
    response = sign_in(client, "dora", DORA)
    assert response.status_code == 403
    assert DISABLED in response.get_data(True)
    assert account(app, "dora") is None
    assert client.get("/").status_code == 302


def test_a_person_disabled_in_the_directory_since_their_last_sign_in_is_refused(app, client, auth, directory):
    sign_in(client, "bob", BOB)
    auth.logout()
    directory.lock("bob")
    response = sign_in(client, "bob", BOB)
    assert response.status_code == 403
    assert "disabled in the company directory" in response.get_data(True)
    assert account(app, "bob").disabled


def test_a_name_clash_with_a_local_account_is_refused_and_recorded(app, client, auth):
    auth.register("carol")  # a local account of this server, with a password of its own
    auth.logout()
    response = sign_in(client, "carol", CAROL)  # the directory's carol
    assert response.status_code == 403
    assert "An account of this server already has this name" in response.get_data(True)
    assert ("directory.name_clash", "carol") in audit_actions(app)
    assert account(app, "carol").directory_id is None  # the local account is left as it was
    assert sign_in(client, "carol", PASSWORD).status_code == 302  # and signs in with its own password


def test_a_directory_name_longer_than_a_username_is_refused_with_a_clear_message(
    database_url, tmp_path, engine, directory
):
    # Signing in with one's e-mail, the username being the uid: longer than 64 characters.
    settings = directory.settings(LDAP_USER_FILTER="(mail={username})")
    app = make_app(database_url, tmp_path, engine, settings)
    response = sign_in(app.test_client(), "jb@example.com", "jean-baptiste's password")
    app.extensions["documents"].close()
    assert response.status_code == 403
    assert "name cannot be used here: it mixes alphabets" in response.get_data(True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
    assert ("directory.refused_name", LONG_UID) in audit_actions(app)


def test_a_new_directory_person_waits_for_approval_when_registration_needs_it(app, client):
    with app.app_context():
        set_registration_mode("approval")
    response = sign_in(client, "bob", BOB)
    assert response.status_code == 401
    assert "waiting for the administrator" in response.get_data(True)
    assert account(app, "bob").pending
    assert client.get("/").status_code == 302


def test_a_new_directory_person_is_refused_when_registration_is_closed(app, client):
    with app.app_context():
        set_registration_mode("closed")
    response = sign_in(client, "bob", BOB)
    assert response.status_code == 403
    assert "this server takes no new accounts" in response.get_data(True)
    assert account(app, "bob") is None
    assert ("directory.refused_closed", "bob") in audit_actions(app)


# -- the directory out of reach --


def test_an_unreachable_directory_is_said_at_sign_in_and_local_accounts_still_sign_in(
    app, client, auth, directory
):
    auth.register("admin")  # the break-glass admin, local
    auth.logout()
    directory.stop()
    response = sign_in(client, "bob", BOB)
    assert response.status_code == 503
    assert UNREACHABLE in response.get_data(True)
    assert sign_in(client, "admin", PASSWORD).status_code == 302


def test_a_directory_that_stopped_answering_fails_the_sign_in_within_its_timeout(
    database_url, tmp_path, engine, directory
):
    app = make_app(database_url, tmp_path, engine, directory.settings(LDAP_TIMEOUT_SECONDS=1))
    directory.stop_answering()  # connections are accepted, nothing is answered
    try:
        start = time.monotonic()
        response = sign_in(app.test_client(), "bob", BOB)
        took = time.monotonic() - start
    finally:
        directory.resume()
        app.extensions["documents"].close()
    assert response.status_code == 503 and UNREACHABLE in response.get_data(True)
    assert took < 10  # one timeout of 1 s, not forever


# -- TLS --


def test_ldaps_with_the_ca_file_signs_in(database_url, tmp_path, engine, directory):
    settings = directory.settings(LDAP_URL=directory.ldaps_url, LDAP_STARTTLS=False)
    app = make_app(database_url, tmp_path, engine, settings)
    assert sign_in(app.test_client(), "bob", BOB).status_code == 302
    app.extensions["documents"].close()


def test_starttls_with_the_ca_file_signs_in(app, client, directory):
    assert app.config["LDAP_STARTTLS"] and app.config["LDAP_URL"].startswith("ldap://")
    assert sign_in(client, "bob", BOB).status_code == 302
    assert "STARTTLS" in (directory.folder / "slapd.log").read_text()


@pytest.mark.parametrize("scheme", ["starttls", "ldaps"])
def test_a_directory_certificate_from_another_ca_is_refused_with_a_clear_error(
    database_url, tmp_path, engine, directory, caplog, scheme
):
    settings = directory.settings(LDAP_CA_FILE=str(directory.other_ca_file))
    if scheme == "ldaps":
        settings.update(LDAP_URL=directory.ldaps_url, LDAP_STARTTLS=False)
    app = make_app(database_url, tmp_path, engine, settings)
    with logged(caplog, "causerie.security"):
        response = sign_in(app.test_client(), "bob", BOB)
    app.extensions["documents"].close()
    assert response.status_code == 503 and UNREACHABLE in response.get_data(True)
    assert f"TLS certificate is not trusted by LDAP_CA_FILE='{directory.other_ca_file}'" in caplog.text
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    assert not any(bind.startswith("uid=bob") for bind in directory.binds())  # the password never left


def test_a_wrong_service_account_password_is_told_to_the_admin_in_the_log(
    database_url, tmp_path, engine, directory, caplog
):
    app = make_app(database_url, tmp_path, engine, directory.settings(LDAP_BIND_PASSWORD="not it"))
    with logged(caplog, "causerie.security"):
        response = sign_in(app.test_client(), "bob", BOB)
    app.extensions["documents"].close()
    assert response.status_code == 503
    assert "check LDAP_BIND_DN and LDAP_BIND_PASSWORD" in caplog.text


# -- the re-check of open sessions and API keys --


def test_an_open_session_ends_after_the_recheck_interval_once_disabled_in_the_directory(
    app, client, directory
):
    sign_in(client, "bob", BOB)
    directory.lock("bob")
    assert client.get("/").status_code == 200  # checked at sign-in a moment ago: not yet
    check_due(app, "bob")
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert account(app, "bob").disabled
    assert ("account.disable", "bob") in audit_actions(app)


def test_an_api_key_is_refused_after_the_recheck_interval_once_disabled_in_the_directory(
    app, client, directory
):
    sign_in(client, "bob", BOB)
    with app.app_context():
        _, key = keys.create(db.session.scalar(sa.select(User).where(User.username == "bob")), "script")
    api = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/v1/models", headers=headers).status_code == 200
    directory.lock("bob")
    check_due(app, "bob")
    assert api.get("/api/v1/models", headers=headers).status_code == 401


def test_a_person_gone_from_the_directory_is_signed_out_at_the_recheck(app, client, directory):
    sign_in(client, "bob", BOB)
    directory.delete("bob")
    check_due(app, "bob")
    assert client.get("/").status_code == 302
    assert account(app, "bob").disabled


def test_a_group_change_in_the_directory_applies_at_the_recheck_of_an_open_session(app, client, directory):
    make_group(app, "Research", "research")
    sign_in(client, "bob", BOB)
    directory.add_to_group("bob", "research")
    check_due(app, "bob")
    assert client.get("/").status_code == 200
    assert groups_of(app, "bob") == {"Research"}


def test_a_group_search_by_username_applies_at_the_recheck_too(database_url, tmp_path, engine, directory):
    # As posixGroup's (memberUid={username}) is: the re-check knows the person by id, not by name.
    by_name = f"(member=uid={{username}},{PEOPLE})"
    settings = directory.settings(LDAP_GROUP_BASE=GROUPS, LDAP_GROUP_FILTER=by_name)
    app = make_app(database_url, tmp_path, engine, settings)
    make_group(app, "Research", "research")
    client = app.test_client()
    sign_in(client, "bob", BOB)
    directory.add_to_group("bob", "research")
    check_due(app, "bob")
    assert client.get("/").status_code == 200
    app.extensions["documents"].close()
    assert groups_of(app, "bob") == {"Research"}


def test_an_unreachable_directory_keeps_open_sessions_until_it_answers_again(app, client, directory):
    sign_in(client, "bob", BOB)
    directory.stop()
    check_due(app, "bob")
    assert client.get("/").status_code == 200
    bob = account(app, "bob")
    assert not bob.disabled
    assert utcnow() - bob.directory_checked_at > timedelta(minutes=app.config["DIRECTORY_RECHECK_MINUTES"])


def test_a_directory_that_did_not_answer_is_asked_again_only_after_a_while(
    app, client, directory, monkeypatch
):
    monkeypatch.setattr(recheck, "RETRY_SECONDS", 3600.0)
    sign_in(client, "bob", BOB)
    directory.stop_answering()
    check_due(app, "bob")
    try:
        assert client.get("/").status_code == 200  # kept: the directory could not say
    finally:
        directory.resume()
    directory.lock("bob")
    binds = len(directory.binds())
    assert client.get("/").status_code == 200  # not asked again yet: no page waits on it meanwhile
    assert len(directory.binds()) == binds
    app.extensions["directory_recheck"].down_until.clear()  # as when RETRY_SECONDS have passed
    assert client.get("/").status_code == 302
    assert account(app, "bob").disabled


def test_an_account_enabled_again_in_the_directory_signs_in_again(app, client, auth, directory):
    sign_in(client, "bob", BOB)
    auth.logout()
    directory.lock("bob")
    sign_in(client, "bob", BOB)
    directory.modify(f"dn: uid=bob,{PEOPLE}\nchangetype: modify\ndelete: pwdAccountLockedTime\n")
    assert sign_in(client, "bob", BOB).status_code == 302
    assert not account(app, "bob").disabled


def test_an_account_the_admin_disabled_stays_disabled_whatever_the_directory_says(app, client, auth):
    sign_in(client, "bob", BOB)
    auth.logout()
    with app.app_context():
        db.session.execute(sa.update(User).where(User.username == "bob").values(disabled=True))
        db.session.commit()
    response = sign_in(client, "bob", BOB)
    assert response.status_code == 401 and "This account is disabled" in response.get_data(True)
    assert account(app, "bob").disabled


# -- the password page --


def test_a_directory_account_is_told_its_password_is_changed_in_the_directory(app, client):
    sign_in(client, "bob", BOB)
    page = client.get("/account/password")
    assert page.status_code == 200
    assert "Your password is your company account's: change it where you change it for other services." in (
        page.get_data(True)
    )
    assert 'name="password"' not in page.get_data(True)
    new = "a new password of mine"
    refused = client.post("/account/password", data={"current": BOB, "password": new, "confirm": new})
    assert refused.status_code == 403


def test_simultaneous_first_sign_ins_of_one_person_make_one_account(app, directory):
    """A person double-clicking, or two tabs: both signed in, one account."""
    app.config["LOGIN_FAILURES_BEFORE_DELAY"] = 100  # tries under way count as failures until they succeed
    clients = [app.test_client() for _ in range(6)]
    start = threading.Barrier(len(clients))
    statuses = []

    def first_sign_in(client):
        start.wait()
        statuses.append(sign_in(client, "bob", BOB).status_code)

    threads = [threading.Thread(target=first_sign_in, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [302] * len(clients)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


# -- Active Directory's shapes (no AD here: what ldap3 hands over from one, checked directly) --

AD_SETTINGS = {
    "LDAP_URL": "ldaps://dc1.corp.example.com",
    "LDAP_USER_BASE": "OU=Staff,DC=corp,DC=example,DC=com",
    "LDAP_USER_FILTER": "(sAMAccountName={username})",
    "LDAP_USERNAME_ATTRIBUTE": "sAMAccountName",
    "LDAP_ID_ATTRIBUTE": "objectGUID",
    "LDAP_GROUP_FILTER": "(member={dn})",
    "LDAP_TIMEOUT_SECONDS": 5,
}
# The GUID {6F9619FF-8B86-D011-B42D-00C04FC964FF} as AD sends it: its first three fields little-endian.
AD_GUID = bytes.fromhex("ff19966f868b11d0b42d00c04fc964ff")


def test_an_active_directory_objectguid_links_the_account_by_its_usual_uuid_form():
    directory = ldap.LdapDirectory(AD_SETTINGS)
    assert directory._stable_id({"objectGUID": [AD_GUID]}) == "6f9619ff-8b86-d011-b42d-00c04fc964ff"


def test_an_active_directory_account_is_looked_up_again_by_its_objectguid_bytes():
    directory = ldap.LdapDirectory(AD_SETTINGS)
    value = directory._id_value("6f9619ff-8b86-d011-b42d-00c04fc964ff")
    assert value == "".join(f"\\{byte:02x}" for byte in AD_GUID)


@pytest.mark.parametrize(
    ("control", "disabled"), [("512", False), ("514", True), ("66050", True), ("66048", False)]
)
def test_an_active_directory_account_with_accountdisable_set_is_disabled(control, disabled):
    assert ldap._disabled({"userAccountControl": [control.encode()]}) is disabled


def test_the_directory_sign_in_benchmark_prints_each_kind_of_sign_in():
    """benchmarks/directory_signin.py runs end to end (its figures are the README's, not checked)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.directory_signin", "--sign-ins", "2"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=600,  # a hang, not a speed: the run takes ~15 s
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for kind in ("local account", "directory account (LDAP)", "directory, wrong password", "unknown name"):
        assert re.search(rf"{re.escape(kind)} +p50 +[\d.]+ ms +p95", done.stdout), done.stdout


def test_each_directory_sign_in_leaves_one_entry_in_the_audit_log(app, client, auth, directory):
    auth.register("carol")  # a local account whose name the directory's carol also has
    auth.logout()
    before = len(audit_actions(app))
    sign_in(client, "bob", BOB)  # first sign-in: the account made, then signed in
    auth.logout()
    sign_in(client, "bob", "not the password at all")
    sign_in(client, "dora", DORA)
    sign_in(client, "carol", CAROL)
    directory.stop()
    sign_in(client, "bob", BOB)
    assert audit_actions(app)[before:] == [
        ("account.create", "bob"),
        ("signin.ok", "bob"),
        ("signout", "bob"),
        ("signin.fail", "bob"),
        ("signin.fail", "dora"),
        ("directory.name_clash", "carol"),
        ("signin.fail", "bob"),
    ]
    with app.app_context():
        failing = sa.select(AuditEntry).where(AuditEntry.action == "signin.fail").order_by(AuditEntry.id)
        failures = db.session.scalars(failing)
        assert [e.details["reason"] for e in failures] == ["password", "disabled", "directory_unreachable"]


def test_with_a_directory_nobody_registers_a_local_account_but_the_first(app, client, auth):
    # Otherwise a colleague could take a coworker's name before their first directory sign-in.
    assert auth.register("admin").status_code == 302  # the first account: the server's admin
    auth.logout()
    assert "No account yet?" not in client.get("/login").get_data(True)
    password = "un mot de passe assez long"
    response = client.post("/register", data={"username": "bob", "password": password, "confirm": password})
    assert response.status_code == 403
    assert "sign in with yours" in response.get_data(True)
    assert account(app, "bob") is None
