"""How long signing in with OpenID Connect takes, against the test provider (npm's oidc-provider
over HTTPS on 127.0.0.1, tests/oidc_server.py) and a real server (waitress, SQLite).

    .venv/bin/python -m benchmarks.oidc_signin [--sign-ins 30]

One sign-in is what a person waits for once they have typed their password at the provider,
plus the app's two steps: the app's redirect to the provider, the provider's pages (its login
form posted, its redirects), then the app's callback (the code exchanged for tokens, the ID
token checked, userinfo asked, the account brought in step) and the page asked for. Each
sign-in is a fresh browser (no session at the provider); the first one, which also fetches the
discovery document and the provider's keys and makes the account, is shown apart.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.server import LiveServer
from tests.oidc_server import OidcProvider


def sign_in(server: LiveServer, provider: OidcProvider, login: str) -> dict[str, float]:
    browser = requests.Session()
    times = {}
    began = time.perf_counter()
    response = browser.get(f"{server.base_url}/auth/oidc/login", allow_redirects=False, timeout=60)
    assert response.status_code == 302, response.text[:300]
    times["app redirect"] = time.perf_counter() - began
    mark = time.perf_counter()
    back = provider.browse(response.headers["Location"], login)
    times["provider pages"] = time.perf_counter() - mark
    mark = time.perf_counter()
    response = browser.get(back, timeout=60)  # the callback, then the page asked for
    assert response.ok and response.url.endswith("/"), (response.status_code, response.url)
    times["callback and page"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - began
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sign-ins", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = LiveServer(Path(folder) / "instance")
        with OidcProvider(redirect_uris=[f"{server.base_url}/auth/oidc/callback"]) as provider:
            server.env.update(provider.settings())
            with server:
                requests.get(f"{server.base_url}/login", timeout=60)  # templates compiled
                first = sign_in(server, provider, "bob")
                runs = [sign_in(server, provider, "bob") for _ in range(args.sign_ins)]
    print(f"first sign-in (discovery, keys, account made): {first['total'] * 1000:.0f} ms")
    print(f"{args.sign_ins} sign-ins, each from a fresh browser:")
    for part in ("app redirect", "provider pages", "callback and page", "total"):
        values = [run[part] * 1000 for run in runs]
        print(
            f"  {part:<18} p50 {statistics.median(values):6.0f} ms   p95 {percentile(values, 0.95):6.0f} ms"
        )


if __name__ == "__main__":
    main()
