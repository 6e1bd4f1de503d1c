"""Against the real server (waitress on 127.0.0.1, `flask serve`): the CSRF token on every POST,
the session cookie's flags, the security headers on every kind of answer, bounded requests,
and a log without passwords (OWASP ASVS 5.0, issue 7).
"""

from __future__ import annotations

import contextlib
import re
import resource
import socket
import time

import pytest
import requests

from benchmarks.client import CSRF_INPUT, ChatClient
from benchmarks.server import LOOPBACK, LiveServer
from config import Config
from tests.conftest import PASSWORD
from tests.url_map import url_of

EXPIRED = "session has expired"
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"DEFAULT_LANGUAGE": "en"}  # the messages asserted below are the English ones
    with LiveServer(tmp_path_factory.mktemp("security"), env) as server:
        yield server


@pytest.fixture(scope="module")
def alice(server) -> ChatClient:
    """The first account, hence the admin."""
    client = ChatClient(server.base_url, timeout=30)
    assert client.register("alice", PASSWORD).ok
    return client


@pytest.fixture(scope="module")
def bob(server, alice) -> ChatClient:
    client = ChatClient(server.base_url, timeout=30)
    assert client.register("bob", PASSWORD).ok
    return client


def csrf_token_of(page: requests.Response) -> str:
    match = CSRF_INPUT.search(page.text)
    assert match, f"no CSRF token on {page.url}"
    return match.group(1) or match.group(2)


def set_cookies(response: requests.Response) -> dict[str, set[str]]:
    """Each cookie the response sets, with its attributes (lower case, values kept for SameSite)."""
    cookies = {}
    for header in response.raw.headers.getlist("Set-Cookie"):
        name_value, *attributes = [part.strip() for part in header.split(";")]
        cookies[name_value.split("=", 1)[0]] = {a.lower() for a in attributes}
    return cookies


def state_of(client: ChatClient) -> dict:
    """What a forged request could change: the conversations and their messages, the models
    offered and the default, the admin's settings of the default model, being signed in."""
    conversations = client.session.get(client.url("/conversations"), headers=JSON).json()["conversations"]
    models = client.session.get(client.url("/models")).json()
    settings = client.session.get(client.url("/admin/models/settings"), params={"model": models["default"]})
    return {
        "conversations": [(c["id"], c["title"], c["model"], c["think"], c["pinned"]) for c in conversations],
        "messages": [len(client.messages(c["id"])) for c in conversations],
        "models": models,
        # the page's form, but for its CSRF tokens (signed anew on every page)
        "settings": re.sub(r'(?:value|content)="[\w.-]{40,}"', "", settings.text),
    }


def test_every_post_without_the_csrf_token_is_refused_and_changes_nothing(app, alice):
    conversation_id = alice.create_conversation()
    assert alice.post_json(f"/conversations/{conversation_id}/rename", {"title": "Before"}).ok
    before = state_of(alice)
    default = before["models"]["default"]
    # every field a POST might read, set to change something (the page's language too: English now)
    fields = ("title", "content", "prompt", "system_prompt")
    body = dict.fromkeys(fields, "forged") | {"model": default, "think": "on", "pinned": "1", "enabled": "0"}
    body["lang"] = "fr"
    posts = [rule for rule in app.url_map.iter_rules() if "POST" in rule.methods]
    assert len(posts) >= 20
    accepted = []
    for rule in posts:
        url = url_of(rule, default_id=conversation_id) + f"?model={default}"
        for as_json in (True, False):
            response = alice.session.post(
                alice.url(url),
                headers=JSON if as_json else {},
                allow_redirects=False,
                **({"json": body} if as_json else {"data": body}),
            )
            if rule.endpoint.startswith(("api.", "openai.")):
                # No CSRF token there: the API takes a key, never the cookie a forged request carries.
                if response.status_code != 401:
                    accepted.append(f"{rule.rule} {'JSON' if as_json else 'form'}: {response.status_code}")
                continue
            text = response.json()["error"] if as_json else response.text
            if response.status_code != 400 or EXPIRED not in text:
                accepted.append(f"{rule.rule} {'JSON' if as_json else 'form'}: {response.status_code}")
    assert not accepted, "\n".join(accepted)
    assert state_of(alice) == before
    assert alice.session.get(alice.url("/"), allow_redirects=False).status_code == 200, "signed out"


def test_another_sessions_csrf_token_is_refused(alice, bob):
    conversation_id = alice.create_conversation()
    for token in (bob.csrf_token, alice.csrf_token[:-2] + "xx", "", "null"):
        response = alice.session.post(
            alice.url(f"/conversations/{conversation_id}/rename"),
            json={"title": "Bob's"},
            headers={**JSON, "X-CSRFToken": token},
        )
        assert response.status_code == 400, token
        assert EXPIRED in response.json()["error"]
        form = alice.session.post(
            alice.url(f"/conversations/{conversation_id}/rename"),
            data={"title": "Bob's", "csrf_token": token},
            allow_redirects=False,
        )
        assert form.status_code == 400, token
    titles = {
        c["id"]: c["title"] for c in alice.session.get(alice.url("/conversations")).json()["conversations"]
    }
    assert titles[conversation_id] != "Bob's"


def test_the_token_of_the_page_before_signing_in_no_longer_works_after_it(server, alice):
    visitor = requests.Session()
    old_token = csrf_token_of(visitor.get(server.base_url + "/login"))
    signed_in = visitor.post(
        server.base_url + "/login",
        data={"csrf_token": old_token, "username": "alice", "password": PASSWORD},
        allow_redirects=False,
    )
    assert signed_in.status_code == 302
    response = visitor.post(
        server.base_url + "/conversations", json={}, headers={**JSON, "X-CSRFToken": old_token}
    )
    assert response.status_code == 400 and EXPIRED in response.json()["error"]


def _sign_in(base_url: str, remember: bool, cookie_header: bool = False) -> tuple[requests.Response, ...]:
    """The sign-in page, then the sign-in itself: both answers, to read their cookies. With
    `cookie_header`, the session cookie goes back by hand (a Secure one would not, over http)."""
    visitor = requests.Session()
    page = visitor.get(base_url + "/login")
    headers = {}
    if cookie_header:
        session = page.raw.headers.getlist("Set-Cookie")[0].split(";")[0]
        headers = {"Cookie": session}
    form = {"csrf_token": csrf_token_of(page), "username": "alice", "password": PASSWORD}
    if remember:
        form["remember"] = "y"
    signed_in = visitor.post(base_url + "/login", data=form, headers=headers, allow_redirects=False)
    assert signed_in.status_code == 302, signed_in.text[:300]
    return page, signed_in


def test_cookies_are_httponly_and_samesite_lax_and_not_secure_over_http(server, alice):
    page, signed_in = _sign_in(server.base_url, remember=True)
    cookies = set_cookies(page) | set_cookies(signed_in)
    assert set(cookies) == {"session"}, cookies  # "Stay signed in" is the session itself, kept longer
    assert "httponly" in cookies["session"] and "samesite=lax" in cookies["session"]
    assert "secure" not in cookies["session"], "a Secure cookie would never come back over http"


def test_cookies_are_secure_when_session_cookie_secure_is_set(tmp_path):
    with LiveServer(tmp_path / "instance", {"SESSION_COOKIE_SECURE": "1"}) as secure:
        secure.flask("create-admin", "alice", "--password", PASSWORD)  # a form would need the cookie back
        page, signed_in = _sign_in(secure.base_url, remember=True, cookie_header=True)
    cookies = set_cookies(page) | set_cookies(signed_in)
    assert set(cookies) == {"session"}, cookies
    assert {"secure", "httponly", "samesite=lax"} <= cookies["session"], cookies["session"]


def content_security_policy(response: requests.Response) -> dict[str, list[str]]:
    directives = [d.split() for d in response.headers["Content-Security-Policy"].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def test_every_kind_of_answer_carries_the_security_headers(server, alice, bob):
    base = server.base_url
    visitor = requests.Session()
    answers = {
        "sign-in page": visitor.get(base + "/login"),
        "redirect to sign in": visitor.get(base + "/", allow_redirects=False),
        "401 JSON": visitor.get(base + "/conversations", headers=JSON),
        "400 CSRF": visitor.post(base + "/login", data={}),
        "chat page": alice.session.get(alice.url("/")),
        "404 page": alice.session.get(alice.url("/nowhere")),
        "404 JSON": alice.session.get(alice.url("/conversations/999999/messages"), headers=JSON),
        "405": alice.session.get(alice.url("/logout")),
        "403": bob.session.get(base + "/admin/models"),
        "413": alice.post_json("/conversations", {"model": "m" * (1024 * 1024 + 1)}),
        "script": visitor.get(base + "/static/js/markdown.js"),
        "vendored script": visitor.get(base + "/static/vendor/purify.min.js"),
        "stylesheet": visitor.get(base + "/static/css/app.css"),
    }
    for what, response in answers.items():
        policy = content_security_policy(response)
        assert policy["default-src"] == ["'self'"], what
        assert policy["script-src"] == ["'self'"], (
            what,
            "no 'unsafe-inline', no 'unsafe-eval', nothing else",
        )
        assert policy["style-src"] == ["'self'"], what
        assert policy["object-src"] == ["'none'"], what
        assert policy["base-uri"] == ["'none'"], what
        assert policy["frame-ancestors"] == ["'none'"], what
        assert policy["form-action"] == ["'self'"], what
        assert response.headers["X-Content-Type-Options"] == "nosniff", what
        assert response.headers["X-Frame-Options"] == "DENY", what
        assert "Traceback" not in response.text, what


def test_a_prompt_over_a_megabyte_gets_413_json_and_the_server_goes_on(alice):
    conversation_id = alice.create_conversation()
    response = alice.post_json(
        f"/conversations/{conversation_id}/messages", {"content": "a" * (1024 * 1024 + 1)}
    )
    assert response.status_code == 413
    assert response.json() == {"error": "The request is too large.", "status": 413}
    assert alice.messages(conversation_id) == []
    assert alice.session.get(alice.url("/conversations"), headers=JSON).ok


def test_the_server_log_holds_no_password(server, alice):
    wrong = "not alice's password but long"
    visitor = requests.Session()
    token = csrf_token_of(visitor.get(server.base_url + "/login"))
    visitor.post(
        server.base_url + "/login", data={"csrf_token": token, "username": "alice", "password": wrong}
    )
    _sign_in(server.base_url, remember=False)
    log = server.log_path.read_text()
    assert "serving on" in log, "the log is the server's"
    assert PASSWORD not in log and wrong not in log
    assert "Traceback" not in log, log[-3000:]


# -- slow and idle clients (issue 16, item 15) ----------------------------------------------
# The sockets a client holds come from 127.0.0.2 (Linux routes all of 127/8 to loopback): one
# address, as one machine on the network, while the page is asked from 127.0.0.1.
OTHER_ADDRESS = "127.0.0.2"
SOCKETS = 1000


@pytest.fixture(scope="module")
def served_directly(tmp_path_factory):
    """The server as `./scripts/serve` runs it (TRUSTED_PROXIES=0), beside a scripted Ollama
    host whose model takes 13 s to load: an answer's stream then waits longer than the time a
    request may take to arrive."""
    from tests.ollama_server import OllamaStandIn

    with OllamaStandIn() as host:
        host.load_delay = 13
        env = {
            "OLLAMA_HOSTS": host.url,
            "OLLAMA_LOAD_TIMEOUT": "60",
            "CONNECTIONS_PER_ADDRESS": str(Config.CONNECTIONS_PER_ADDRESS),  # as served: its default
            "DEFAULT_LANGUAGE": "en",
        }
        with LiveServer(tmp_path_factory.mktemp("served-directly"), env) as server:
            yield server


def _socket_from_other_address(port: int) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((OTHER_ADDRESS, 0))
    sock.connect((LOOPBACK, port))
    return sock


def _seconds_until_closed(sock: socket.socket, limit: float, drip: bytes = b"") -> float:
    """How long the server keeps `sock` open (sending `drip` every second), up to `limit`."""
    started = time.monotonic()
    sock.settimeout(1)
    while time.monotonic() - started < limit:
        try:
            if drip:
                sock.sendall(drip)
            data = sock.recv(65536)
            if not data:
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:  # reset: closed too
            return time.monotonic() - started
    return float("inf")


def test_a_page_loads_within_a_second_while_one_address_holds_1000_slow_or_idle_sockets(served_directly):
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft > SOCKETS + 200, f"ulimit -n is {soft}: this test needs {SOCKETS + 200} descriptors"
    base = served_directly.base_url
    page = requests.get(base + "/login", timeout=30)
    assert page.ok
    held = []
    try:
        for i in range(SOCKETS):
            try:
                sock = _socket_from_other_address(served_directly.port)
                held.append(sock)
                if i % 3 == 1:  # slow headers: a request that never ends
                    sock.sendall(b"GET /login HTTP/1.1\r\nHost: causerie\r\nX-Slow: ")
                elif i % 3 == 2:  # keep-alive: one whole request, then nothing
                    sock.sendall(b"GET /static/css/app.css HTTP/1.1\r\nHost: causerie\r\n\r\n")
                # else: half-open, nothing sent
            except OSError:
                pass  # the server already closed the ones beyond its cap per address
        started = time.monotonic()
        page = requests.get(base + "/login", timeout=30)
        took = time.monotonic() - started
    finally:
        for sock in held:
            sock.close()
    print(f"page with {len(held)} sockets held from {OTHER_ADDRESS}: {took:.3f} s")
    assert page.ok and 'name="username"' in page.text
    assert took < 1.0 * 3, f"the page took {took:.2f} s (limit 1 s, 3x margin)"


def test_a_request_whose_headers_trickle_in_is_closed_after_10_seconds(served_directly):
    sock = _socket_from_other_address(served_directly.port)
    with sock:
        sock.sendall(b"GET /login HTTP/1.1\r\nHost: causerie\r\n")
        took = _seconds_until_closed(sock, limit=60, drip=b"X-Slow: 1\r\n")
    print(f"a request trickling one header a second closed after {took:.1f} s (rule: 10 s)")
    assert 9 <= took < 10 * 3


def test_an_idle_keep_alive_connection_is_closed_sooner_than_an_unfinished_request(served_directly):
    sock = _socket_from_other_address(served_directly.port)
    with sock:
        sock.sendall(b"GET /login HTTP/1.1\r\nHost: causerie\r\n\r\n")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
        sock.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            while sock.recv(65536):  # the rest of the page
                pass
        took = _seconds_until_closed(sock, limit=60)
    print(f"an idle keep-alive connection closed after {took:.1f} s (rule: 5 s)")
    assert took < 5 * 3


def test_an_answer_stream_lives_past_the_request_deadline(served_directly):
    client = ChatClient(served_directly.base_url, timeout=60)
    assert client.register("streamer", PASSWORD).ok
    conversation = client.create_conversation("deepseek-r1:1.5b")  # scripted, 13 s to load
    started = time.monotonic()
    answer = client.ask(conversation, "Bonjour")
    took = time.monotonic() - started
    print(f"the answer's stream stayed open {took:.1f} s while its model loaded")
    assert answer.end is not None and answer.end.name == "done", answer.events[-3:]
    assert took > 12


@pytest.mark.parametrize(("proxies", "kept"), [("0", 3), ("1", 6)])
def test_one_address_holds_at_most_its_cap_of_connections_unless_behind_a_proxy(tmp_path, proxies, kept):
    """Behind a proxy every client has the proxy's address: a cap there would cap everyone."""
    env = {"CONNECTIONS_PER_ADDRESS": "3", "TRUSTED_PROXIES": proxies}
    with LiveServer(tmp_path / "instance", env) as server:
        held = [_socket_from_other_address(server.port) for _ in range(6)]  # all open at once
        answered = 0
        try:
            for sock in held:
                try:
                    sock.sendall(b"GET /login HTTP/1.1\r\nHost: causerie\r\n\r\n")
                    answered += sock.recv(65536).startswith(b"HTTP/1.1 200")
                except OSError:
                    pass  # closed as soon as accepted: over the cap
        finally:
            for sock in held:
                sock.close()
    assert answered == kept


def test_a_lone_surrogate_or_a_huge_id_gets_a_json_4xx_from_the_real_server(alice):
    conversation_id = alice.create_conversation()
    surrogate = alice.session.post(
        alice.url(f"/conversations/{conversation_id}/rename"),
        data=b'{"title": "\\ud800"}',
        headers={**JSON, "Content-Type": "application/json", "X-CSRFToken": alice.csrf_token},
    )
    assert surrogate.status_code == 400 and "cannot be stored" in surrogate.json()["error"]
    huge = alice.session.get(alice.url(f"/conversations/{2**64}/messages"), headers=JSON)
    assert huge.status_code == 404 and huge.json()["status"] == 404
    api = requests.get(alice.url(f"/api/v1/conversations/{2**63}"), timeout=30)  # no Accept header
    assert api.status_code in (401, 404) and api.json()["error"]
