"""Sign-in throttling (ASVS 6.3.1): failed sign-ins counted per account and per address; and
accounts made per address (REGISTRATIONS_PER_HOUR), on the same hourly counts.

After LOGIN_FAILURES_BEFORE_DELAY failures within an hour, the next try must wait a minute,
then twice as long after each further failure, never more than LOGIN_MAX_DELAY_SECONDS: the
owner of an attacked account waits at worst that long, and is never locked out for good. On
top of that, at most LOGIN_FAILURES_PER_HOUR failures an hour. A success clears the account's
failures, not the address's: one valid account must not wipe an address's record of guesses
at others.

The counters live in this process's memory, behind a lock: Causerie runs as one waitress
process (many threads), so one dict sees every try. A restart forgets them; several processes
would each count apart and need a shared store instead.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import Flask, current_app
from flask_babel import ngettext

from app.models import fold_username

HOUR = 3600.0
FIRST_DELAY = 60.0
# Bounds the memory a flood of made-up usernames can take; past it the stalest are forgotten.
MAX_KEYS = 100_000

Key = tuple[str, bytes | str]


@dataclass(frozen=True)
class Limits:
    failures_before_delay: int = 5
    failures_per_hour: int = 100
    max_delay: float = 900.0

    @classmethod
    def from_config(cls, config: Mapping) -> Limits:
        return cls(
            failures_before_delay=max(1, int(config["LOGIN_FAILURES_BEFORE_DELAY"])),
            failures_per_hour=max(1, int(config["LOGIN_FAILURES_PER_HOUR"])),
            max_delay=max(0.0, float(config["LOGIN_MAX_DELAY_SECONDS"])),
        )


@dataclass
class SignInAttempt:
    """One try, counted as a failure from the start, so that tries sent in parallel cannot all
    slip in before the first is counted; `succeeded()` takes it back."""

    throttle: LoginThrottle
    account: Key
    address: Key
    at: float
    seconds_to_wait: int  # above 0: refused without checking the password, and not counted

    def succeeded(self) -> None:
        self.throttle.forget(self)


@dataclass
class SignUp:
    """An account being made, counted from the start; `made_none()` takes it back (the name was
    taken, the server too busy): only accounts made count against the address."""

    throttle: LoginThrottle
    key: Key
    at: float
    seconds_to_wait: int  # above 0: refused, and not counted

    def made_none(self) -> None:
        self.throttle.give_back(self)


class LoginThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS) -> None:
        self.clock = clock
        self.max_keys = max_keys
        # Ordered by last failure, the stalest first: pruning stops at the first recent one.
        self._failures: OrderedDict[Key, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def begin(self, username: str, address: str, limits: Limits) -> SignInAttempt:
        """A try by this name from this address: refused for a while, or counted and allowed."""
        account = ("account", _digest(username))
        place = ("address", address)
        with self._lock:
            now = self.clock()
            self._prune(now)
            wait = max(self._wait(account, now, limits), self._wait(place, now, limits))
            if not wait:
                for key in (account, place):
                    self._count(key, now, limits)
        return SignInAttempt(self, account, place, now, math.ceil(wait))

    def forget(self, attempt: SignInAttempt) -> None:
        with self._lock:
            self._failures.pop(attempt.account, None)
            self._take_back(attempt.address, attempt.at)

    def begin_sign_up(self, address: str, per_hour: int) -> SignUp:
        """An account made from this address, counted at once (sign-ups sent together cannot all
        slip in), or refused while the address made `per_hour` within the hour: the hourly cap
        of failures, with no delays, on a count of its own."""
        key = ("sign-up", address)
        limits = Limits(failures_before_delay=1, failures_per_hour=max(1, per_hour), max_delay=0.0)
        with self._lock:
            now = self.clock()
            self._prune(now)
            wait = self._wait(key, now, limits)
            if not wait:
                self._count(key, now, limits)
        return SignUp(self, key, now, math.ceil(wait))

    def give_back(self, sign_up: SignUp) -> None:
        with self._lock:
            self._take_back(sign_up.key, sign_up.at)

    def _take_back(self, key: Key, at: float) -> None:
        times = self._failures.get(key)
        if times is not None and at in times:
            times.remove(at)
            if not times:
                del self._failures[key]

    def _wait(self, key: Key, now: float, limits: Limits) -> float:
        recent = [t for t in self._failures.get(key, ()) if t > now - HOUR]
        wait = 0.0
        if len(recent) >= limits.failures_per_hour:
            wait = recent[-limits.failures_per_hour] + HOUR - now
        beyond = len(recent) - limits.failures_before_delay
        if beyond >= 0:
            delay = min(limits.max_delay, FIRST_DELAY * 2.0 ** min(beyond, 32))
            wait = max(wait, recent[-1] + delay - now)
        return max(wait, 0.0)

    def _count(self, key: Key, now: float, limits: Limits) -> None:
        times = self._failures.pop(key, None)
        if times is None or times.maxlen != limits.failures_per_hour:
            times = deque(times or (), maxlen=limits.failures_per_hour)
        times.append(now)
        self._failures[key] = times

    def _prune(self, now: float) -> None:
        # A key whose last failure is an hour old has no effect any more.
        while self._failures:
            key, times = next(iter(self._failures.items()))
            if times and times[-1] > now - HOUR and len(self._failures) <= self.max_keys:
                break
            del self._failures[key]


def _digest(username: str) -> bytes:
    # Folded, since "Alice" and "alice" (and "ａｌｉｃｅ") are tries at the same person; hashed, since people
    # sometimes type their password in the username field, and it must not stay in memory.
    return hashlib.sha256(fold_username(username.strip()).encode()).digest()


_creating = threading.Lock()


def for_app(app: Flask) -> LoginThrottle:
    """The app's throttle, made at its first use (tests replace its clock)."""
    with _creating:
        if "login_throttle" not in app.extensions:
            app.extensions["login_throttle"] = LoginThrottle()
        return app.extensions["login_throttle"]


def begin(username: str, address: str | None) -> SignInAttempt:
    """A sign-in try in the current app, with its configured limits."""
    return for_app(current_app).begin(username, address or "", Limits.from_config(current_app.config))


def begin_sign_up(address: str | None) -> SignUp:
    """An account made from this address in the current app (REGISTRATIONS_PER_HOUR)."""
    per_hour = int(current_app.config["REGISTRATIONS_PER_HOUR"])
    return for_app(current_app).begin_sign_up(address or "", per_hour)


def sign_up_wait_message(seconds: int) -> str:
    return ngettext(
        "Too many accounts were created from this address: try again in %(num)d minute.",
        "Too many accounts were created from this address: try again in %(num)d minutes.",
        math.ceil(seconds / 60),
    )


def wait_message(seconds: int) -> str:
    return ngettext(
        "Too many failed sign-ins: try again in %(num)d minute.",
        "Too many failed sign-ins: try again in %(num)d minutes.",
        math.ceil(seconds / 60),
    )
