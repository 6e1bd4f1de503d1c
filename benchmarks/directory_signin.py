"""How long signing in with the company directory's password takes (LDAP: the test OpenLDAP of
tests/ldap_server.py, StartTLS with its test CA), beside a local account's sign-in, on a real
server (waitress, SQLite), both through the login form.

    .venv/bin/python -m benchmarks.directory_signin [--sign-ins 30]

One sign-in is the login form's POST, from the password sent to the redirect to the chat: for a
directory account, a StartTLS connection bound as the service account, the search, a second
StartTLS connection for the person's own bind, the account brought in step (groups, admin
right) and the session started; for a local account, one argon2id hash (64 MiB, 3 passes).
Directory and local sign-ins alternate, so that both see the same machine; the first directory
sign-in, which also makes the account, is shown apart. Wrong passwords are measured too: both
kinds of failure should take the same time (a hash, and the directory asked).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.client import ChatClient
from benchmarks.server import LiveServer
from tests.ldap_server import LdapServer

LOCAL = ("local-admin", "a local admin's long password")
DIRECTORY = ("bob", "bob's directory password")


def timed_sign_in(base_url: str, username: str, password: str, expect_ok: bool = True) -> float:
    client = ChatClient(base_url)
    token = client._fetch_csrf("/login")  # the page itself is not part of the sign-in
    began = time.perf_counter()
    response = client.session.post(
        client.url("/login"),
        data={"csrf_token": token, "username": username, "password": password},
        allow_redirects=False,
        timeout=60,
    )
    took = time.perf_counter() - began
    assert (response.status_code == 302) == expect_ok, (username, response.status_code)
    return took


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def line(name: str, values: list[float], against: list[float] | None = None) -> str:
    p50, p95 = statistics.median(values) * 1000, percentile(values, 0.95) * 1000
    ratio = (
        f"   {statistics.median(values) / statistics.median(against):.2f}x the local p50" if against else ""
    )
    return f"  {name:<28} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms{ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sign-ins", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, LdapServer() as directory:
        settings = directory.settings()
        env = {name: ("1" if value is True else str(value)) for name, value in settings.items()}
        env["LOGIN_FAILURES_BEFORE_DELAY"] = "100000"  # the failures measured are on purpose
        env["LOGIN_FAILURES_PER_HOUR"] = "100000"
        with LiveServer(Path(folder) / "instance", env) as server:
            base = server.base_url
            assert ChatClient(base).register(*LOCAL).ok  # the first account: the local admin
            first = timed_sign_in(base, *DIRECTORY)
            runs: dict[str, list[float]] = {
                k: [] for k in ("local", "directory", "local wrong", "directory wrong")
            }
            runs["unknown"] = []
            for _ in range(args.sign_ins):
                runs["local"].append(timed_sign_in(base, *LOCAL))
                runs["directory"].append(timed_sign_in(base, *DIRECTORY))
                runs["local wrong"].append(timed_sign_in(base, LOCAL[0], "not the password", expect_ok=False))
                runs["directory wrong"].append(
                    timed_sign_in(base, DIRECTORY[0], "not the password", expect_ok=False)
                )
                runs["unknown"].append(
                    timed_sign_in(base, "nobody-here", "not the password", expect_ok=False)
                )
    print(f"first directory sign-in (account made): {first * 1000:.0f} ms")
    print(f"{args.sign_ins} sign-ins of each kind, alternating:")
    print(line("local account", runs["local"]))
    print(line("directory account (LDAP)", runs["directory"], runs["local"]))
    print(line("local, wrong password", runs["local wrong"], runs["local"]))
    print(line("directory, wrong password", runs["directory wrong"], runs["local"]))
    print(line("unknown name", runs["unknown"], runs["local"]))


if __name__ == "__main__":
    main()
