"""Sign-in throttling (ASVS 6.3.1): failures counted per account and per address, never for good."""

import re
import statistics
import threading
import time
from pathlib import Path

import flask_migrate
import pytest

from app import create_app
from app.admin.services import load_preferences
from app.auth import throttle
from app.auth.throttle import HOUR, Limits, LoginThrottle
from app.llm import LLMServices
from app.llm.catalogue import Catalogue
from app.llm.scheduler import Scheduler
from config import TestConfig
from tests.conftest import PASSWORD
from tests.fakes import ScriptedEngine

CSRF_TOKEN = re.compile(r"[\w-]+\.[\w-]+\.[\w-]{27}")


class Clock:
    """The throttle's time, moved by hand instead of slept through."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(app) -> Clock:
    fake = Clock()
    throttle.for_app(app).clock = fake
    return fake


@pytest.fixture
def alice(auth):
    auth.register("alice")
    auth.logout()


def sign_in(
    client, username: str = "alice", password: str = "wrong password!", address: str = "127.0.0.1", **kw
):
    return client.post(
        "/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
        **kw,
    )


def test_after_five_wrong_passwords_even_the_right_one_gets_429_with_retry_after(client, alice, clock):
    for _ in range(5):
        assert sign_in(client).status_code == 401
    response = sign_in(client, password=PASSWORD)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert b"Too many failed sign-ins: try again in 1 minute." in response.data


def test_after_the_wait_the_right_password_works(client, alice, clock):
    for _ in range(5):
        sign_in(client)
    clock.advance(59)
    assert sign_in(client, password=PASSWORD).status_code == 429
    clock.advance(1)
    assert sign_in(client, password=PASSWORD).status_code == 302


def test_the_wait_doubles_with_each_further_failure_up_to_fifteen_minutes(client, alice, clock):
    for _ in range(5):
        sign_in(client)
    waits = []
    for _ in range(6):
        wait = int(sign_in(client).headers["Retry-After"])
        waits.append(wait)
        clock.advance(wait)
        assert sign_in(client).status_code == 401  # allowed again, and wrong again
    assert waits == [60, 120, 240, 480, 900, 900]
    assert b"try again in 15 minutes." in sign_in(client).data


def test_failures_from_one_address_at_many_accounts_are_throttled_per_address(client, clock):
    for n in range(5):
        assert sign_in(client, f"user{n}", address="10.0.0.1").status_code == 401
    assert sign_in(client, "user5", address="10.0.0.1").status_code == 429
    assert sign_in(client, "user5", address="10.0.0.2").status_code == 401


def test_failures_from_many_addresses_at_one_account_are_throttled_per_account(client, alice, clock):
    for n in range(5):
        assert sign_in(client, address=f"10.0.0.{n}").status_code == 401
    assert sign_in(client, password=PASSWORD, address="10.0.0.99").status_code == 429
    assert sign_in(client, "bob", address="10.0.0.99").status_code == 401  # others are not held up


def test_unknown_usernames_are_throttled_like_real_ones(client, clock):
    for n in range(5):
        assert sign_in(client, "nobody", address=f"10.0.1.{n}").status_code == 401
    assert sign_in(client, "NoBody", address="10.0.1.99").status_code == 429


def test_a_forged_x_forwarded_for_does_not_escape_the_throttle_without_a_trusted_proxy(client, clock):
    for n in range(5):
        sign_in(client, f"user{n}", headers={"X-Forwarded-For": f"192.0.2.{n}"})
    response = sign_in(client, "user5", headers={"X-Forwarded-For": "192.0.2.77"})
    assert response.status_code == 429


@pytest.fixture
def app_behind_a_proxy(tmp_path: Path):
    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'test.sqlite3'}"
        MODELS_DIR = tmp_path / "models"
        TRUSTED_PROXIES = 1

    catalogue = Catalogue([ScriptedEngine()], default_model="tiny", preferences=load_preferences)
    app = create_app(Config, llm_services=LLMServices(catalogue, Scheduler(catalogue)))
    with app.app_context():
        flask_migrate.upgrade()
    throttle.for_app(app).clock = Clock()
    return app


def test_x_forwarded_for_names_the_address_behind_one_trusted_proxy(app_behind_a_proxy):
    client = app_behind_a_proxy.test_client()
    proxy = "10.9.9.9"
    for n in range(5):
        sign_in(client, f"user{n}", address=proxy, headers={"X-Forwarded-For": "192.0.2.1"})
    assert (
        sign_in(client, "user5", address=proxy, headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 429
    )
    # Another visitor behind the same proxy is not held up; a forged first hop is not believed.
    assert (
        sign_in(client, "user5", address=proxy, headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 401
    )
    forged = {"X-Forwarded-For": "198.51.100.7, 192.0.2.1"}
    assert sign_in(client, "user6", address=proxy, headers=forged).status_code == 429


def test_successful_sign_ins_are_not_counted(client, auth, alice, clock):
    for _ in range(8):
        assert sign_in(client, password=PASSWORD).status_code == 302
        auth.logout()
    for _ in range(4):
        sign_in(client)
    assert sign_in(client, password=PASSWORD).status_code == 302


def test_a_success_clears_the_account_failures_but_not_the_address_ones(client, auth, alice, clock):
    for _ in range(4):
        sign_in(client, address="10.0.0.1")
    assert sign_in(client, password=PASSWORD, address="10.0.0.1").status_code == 302
    auth.logout()
    for n in range(4):  # alice's slate is clean: four more failures do not make her wait
        sign_in(client, address=f"10.0.2.{n}")
    assert sign_in(client, password=PASSWORD, address="10.0.2.99").status_code == 302
    auth.logout()
    # One valid account does not wipe its address's record of guesses at others.
    assert sign_in(client, "bob", address="10.0.0.1").status_code == 401
    assert sign_in(client, "carol", address="10.0.0.1").status_code == 429


def test_an_unknown_username_and_a_wrong_password_get_the_same_page_status_and_time(app, client, alice):
    app.config["LOGIN_FAILURES_BEFORE_DELAY"] = 1000  # this test is about the answer, not the throttle
    timings: dict[str, list[float]] = {"wrong password": [], "unknown user": []}
    pages = {}
    for _ in range(5):
        for case, username in (("wrong password", "alice"), ("unknown user", "zoé")):
            start = time.perf_counter()
            response = sign_in(client, username)
            timings[case].append(time.perf_counter() - start)
            assert response.status_code == 401
            page = response.get_data(as_text=True).replace(f'value="{username}"', "")
            pages[case] = CSRF_TOKEN.sub("", page)  # signed with the time, to the second
    assert pages["wrong password"] == pages["unknown user"]
    wrong, unknown = (statistics.median(timings[case]) for case in timings)
    print(f"median sign-in time: wrong password {wrong * 1000:.0f} ms, unknown user {unknown * 1000:.0f} ms")
    assert 1 / 3 < wrong / unknown < 3  # both check one argon2id hash; the margin absorbs a noisy machine


def test_no_more_than_100_failures_an_hour_even_without_delays():
    clock = Clock()
    throttle_ = LoginThrottle(clock=clock)
    limits = Limits(max_delay=0)  # defaults otherwise: 100 failures an hour
    for n in range(100):
        assert throttle_.begin(f"user{n}", "10.0.0.1", limits).seconds_to_wait == 0
        clock.advance(1)
    assert throttle_.begin("user100", "10.0.0.1", limits).seconds_to_wait == 3600 - 100
    clock.advance(3600 - 100)  # the first failure is an hour old: room for one more
    assert throttle_.begin("user100", "10.0.0.1", limits).seconds_to_wait == 0
    assert throttle_.begin("user101", "10.0.0.1", limits).seconds_to_wait > 0


def test_the_hourly_cap_is_configurable_and_answered_in_minutes(app, client, clock):
    app.config.update(LOGIN_FAILURES_PER_HOUR=3, LOGIN_MAX_DELAY_SECONDS=0)
    for n in range(3):
        assert sign_in(client, f"user{n}").status_code == 401
    response = sign_in(client, "user3")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3600"
    assert b"try again in 60 minutes." in response.data


def test_tries_sent_at_once_cannot_slip_past_the_count(app, alice, clock):
    statuses = []

    def try_once(n: int) -> None:
        statuses.append(sign_in(app.test_client(), address=f"10.0.3.{n}").status_code)

    threads = [threading.Thread(target=try_once, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * 5 + [429] * 7


def test_a_flood_of_made_up_usernames_takes_bounded_memory():
    clock = Clock()
    throttle_ = LoginThrottle(clock=clock, max_keys=1000)
    for n in range(5000):
        throttle_.begin(f"made-up-{n}" * 50, f"10.{n // 250}.{n % 250}.1", Limits())
    assert len(throttle_._failures) <= 1002
    clock.advance(3601)  # an hour later, nothing is left of them
    throttle_.begin("alice", "10.0.0.1", Limits())
    assert len(throttle_._failures) == 2


# -- accounts made per address (issue 16, item 17) --------------------------------------------
def sign_up(app, username: str, address: str = "127.0.0.1"):
    """A new visitor each time (a signed-in one would be sent to the conversations)."""
    data = {"username": username, "password": PASSWORD, "confirm": PASSWORD}
    return app.test_client().post("/register", data=data, environ_base={"REMOTE_ADDR": address})


def test_the_eleventh_sign_up_from_one_address_within_an_hour_gets_429_saying_when(app, clock):
    for n in range(10):
        assert sign_up(app, f"user{n:02d}").status_code == 302
    refused = sign_up(app, "user10")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "3600"
    assert b"Too many accounts were created from this address: try again in 60 minutes." in refused.data
    clock.advance(HOUR + 1)
    assert sign_up(app, "user10").status_code == 302


def test_sign_ups_from_another_address_are_not_held_up(app, clock):
    for n in range(10):
        assert sign_up(app, f"user{n:02d}", address="192.0.2.1").status_code == 302
    assert sign_up(app, "neighbour", address="192.0.2.2").status_code == 302


def test_a_sign_up_refused_for_a_taken_name_does_not_count_against_the_address(app, clock):
    assert sign_up(app, "alice").status_code == 302
    for _ in range(12):
        assert sign_up(app, "alice").status_code == 400
    assert sign_up(app, "bob").status_code == 302
