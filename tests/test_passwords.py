"""Which passwords an account may have (ASVS 6.2), and how they are kept (ASVS 11.4.2)."""

import threading
import time

import pytest
import sqlalchemy as sa
from argon2 import Type, extract_parameters

from app.auth import services
from app.auth.passwords import common_passwords, is_common
from app.extensions import db
from app.models import User
from tests.conftest import PASSWORD

COMMON = b"This password is among the most common ones: choose another."
IS_USERNAME = b"A password cannot be your username: choose another."
# ASVS 5.0 appendix C, argon2id: the least memory (KiB) for a number of passes (3 or more: 12288).
ASVS_ARGON2ID_MEMORY = {1: 47104, 2: 19456}


def register(client, password: str, username: str = "alice"):
    return client.post("/register", data={"username": username, "password": password, "confirm": password})


def test_a_common_password_is_refused_at_registration_with_a_message(client):
    response = register(client, "qwerty123456")
    assert response.status_code == 400
    assert COMMON in response.data


def test_a_common_password_in_capitals_is_refused_too(client):
    response = register(client, "PASSWORD1234")
    assert response.status_code == 400
    assert COMMON in response.data


def test_a_common_keyboard_run_of_12_characters_is_refused(client):
    for password in ("123456789012", "azertyuiopqs", "qwertyuiopas"):
        response = register(client, password)
        assert response.status_code == 400, password
        assert COMMON in response.data


def test_a_password_equal_to_the_username_is_refused(client):
    response = register(client, "Marguerite.Duras", username="marguerite.duras")
    assert response.status_code == 400
    assert IS_USERNAME in response.data


def test_an_uncommon_password_of_12_characters_is_accepted(client):
    response = register(client, "vélo rouge 7")
    assert response.status_code == 302


def test_128_characters_of_any_kind_emoji_and_spaces_included_are_accepted_and_sign_in(client, auth):
    password = ("🦜 perroquet à l'œil vif, ça va ? " * 4)[:128]
    assert len(password) == 128
    assert register(client, password).status_code == 302
    auth.logout()
    assert auth.login(password=password).status_code == 302


def test_11_characters_are_refused(client):
    response = register(client, "vélo rouge ")
    assert response.status_code == 400
    assert b"12 to 128 characters" in response.data


def test_129_characters_are_refused(client):
    response = register(client, "x" + "unusual words " * 10)  # 141 characters
    assert response.status_code == 400
    assert b"12 to 128 characters" in response.data


def test_no_composition_rule_lower_case_words_alone_are_enough(client):
    assert register(client, "des mots tout simples").status_code == 302


def test_the_list_holds_at_least_10000_common_passwords_including_long_ones():
    passwords = common_passwords()
    assert len(passwords) >= 10_000
    assert sum(len(p) >= 12 for p in passwords) >= 200
    assert is_common("Password") and is_common("1q2w3e4r5t6y")
    assert not is_common(PASSWORD)


def test_a_new_password_is_checked_like_at_registration(signed_in):
    for new, message in (("password1234", COMMON), ("Alice", IS_USERNAME)):
        response = signed_in.post(
            "/account/password", data={"current": PASSWORD, "password": new, "confirm": new}
        )
        assert response.status_code == 400, new
        assert message in response.data


def test_create_admin_command_refuses_a_common_password(app):
    result = app.test_cli_runner().invoke(args=["create-admin", "root", "--password", "password1234"])
    assert result.exit_code != 0
    assert "most common" in result.output


def test_passwords_are_hashed_with_argon2id_at_asvs_appendix_c_strength(app, auth):
    auth.register()
    with app.app_context():
        stored = db.session.scalar(sa.select(User.password_hash))
    params = extract_parameters(stored)
    print(f"argon2id m={params.memory_cost} KiB, t={params.time_cost}, p={params.parallelism}")
    assert params.type is Type.ID
    assert params.memory_cost >= ASVS_ARGON2ID_MEMORY.get(params.time_cost, 12288)
    # argon2-cffi's defaults (RFC 9106's low-memory profile), well above that floor.
    assert (params.memory_cost, params.time_cost, params.parallelism) == (65536, 3, 4)


# -- hashes bounded: one per core at once (issue 16, item 17) ---------------------------------
BUSY = b"The server is busy with other sign-ins: try again in a few seconds."


class CountingHasher:
    """argon2's hasher, counting the hashes under way at once; each is held a moment, so that
    requests sent together overlap whatever the machine's speed."""

    def __init__(self, real) -> None:
        self.real = real
        self.now = self.most = 0
        self.lock = threading.Lock()

    def _at_work(self, work):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.2)
            return work()
        finally:
            with self.lock:
                self.now -= 1

    def hash(self, password):
        return self._at_work(lambda: self.real.hash(password))

    def verify(self, stored, password):
        return self._at_work(lambda: self.real.verify(stored, password))

    def check_needs_rehash(self, stored):
        return self.real.check_needs_rehash(stored)


def test_sign_ups_sent_together_hash_no_more_passwords_at_once_than_allowed(app, monkeypatch):
    app.config.update(PASSWORD_HASHES_AT_ONCE=2, PASSWORD_HASH_WAIT_SECONDS=120, REGISTRATIONS_PER_HOUR=100)
    hasher = CountingHasher(services._hasher)
    monkeypatch.setattr(services, "_hasher", hasher)
    start = threading.Barrier(8)
    statuses = []

    def sign_up(n: int) -> None:
        client = app.test_client()
        start.wait()
        statuses.append(register(client, PASSWORD, username=f"user{n}").status_code)

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [302] * 8  # every one waited its turn, none was refused
    assert hasher.most <= 2


@pytest.fixture
def one_hash_at_once(app):
    """One hashing slot, and a tenth of a second to wait for it."""
    app.config.update(PASSWORD_HASHES_AT_ONCE=1, PASSWORD_HASH_WAIT_SECONDS=0.1)
    return services._slots(app)


def test_a_sign_up_that_waits_too_long_for_its_turn_is_asked_to_try_again(client, one_hash_at_once):
    with one_hash_at_once:  # another sign-up's hash, still under way
        response = register(client, PASSWORD)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert BUSY in response.data


def test_a_sign_in_that_waits_too_long_for_its_turn_is_asked_to_try_again(client, auth, one_hash_at_once):
    auth.register()
    auth.logout()
    with one_hash_at_once:
        response = auth.login()
    assert response.status_code == 503 and BUSY in response.data


def test_a_password_change_that_waits_too_long_for_its_turn_is_asked_to_try_again(
    client, auth, one_hash_at_once
):
    auth.register()
    with one_hash_at_once:
        response = client.post(
            "/account/password",
            data={
                "current": PASSWORD,
                "password": "another long password",
                "confirm": "another long password",
            },
        )
    assert response.status_code == 503 and BUSY in response.data
