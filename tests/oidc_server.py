"""A throwaway OpenID Connect provider for the tests: npm's `oidc-provider` (OpenID Certified)
run by `tests/oidc_provider/provider.mjs` on a free loopback port, over HTTPS with a
certificate from a test CA made for the run (and a second CA that signed nothing of it: the
wrong one to trust). `scripts/setup --test` installs it (`npm ci` in tests/oidc_provider).

    with OidcProvider(redirect_uris=["http://localhost/auth/oidc/callback"]) as provider:
        app_config.update(provider.settings())
        provider.update("bob", groups=["staff"])  # read by the provider at its next look-up

Its people sign in on its own login page (form fields `login`, `password`); consent is given
without a page, as a company's provider does for its own applications.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.certificates import certificates

HERE = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "causerie"
CLIENT_SECRET = "the client's test secret"
NODE = shutil.which("node")


def installed() -> str | None:
    """Why the provider cannot run here, or None."""
    if NODE is None:
        return "node is not installed (scripts/setup --test)"
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        return "oidc-provider is not installed: run scripts/setup --test (npm ci in tests/oidc_provider)"
    return None


@dataclass
class Person:
    login: str
    password: str
    sub: str
    claims: dict
    disabled: bool = False


def default_people() -> dict[str, Person]:
    return {
        "alice": Person(
            "alice",
            "alice's provider password",
            "8f3c0b1e-alice",
            {
                "preferred_username": "alice",
                "name": "Alice Martin",
                "email": "alice@example.com",
                "groups": ["staff", "causerie-admins"],
            },
        ),
        "bob": Person(
            "bob",
            "bob's provider password",
            "27d9a4c6-bob",
            {
                "preferred_username": "bob",
                "name": "Bob Durand",
                "email": "bob@example.com",
                "groups": ["staff"],
            },
        ),
        "carol": Person(
            "carol",
            "carol's provider password",
            "c4e1f2aa-carol",
            {
                "preferred_username": "carol",
                "name": "Carol Petit",
                "email": "carol@example.com",
                "groups": [],
            },
        ),
    }


@dataclass
class OidcProvider:
    redirect_uris: list[str]
    people: dict[str, Person] = field(default_factory=default_people)

    def __post_init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="causerie-oidc-"))
        self.control = secrets.token_hex(16)
        self.issuer = ""
        self.process: subprocess.Popen | None = None

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def other_ca_file(self) -> Path:
        return self.folder / "other-ca.pem"

    def settings(self, **overrides) -> dict:
        """The app's OIDC_* settings for this provider."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_CA_FILE": str(self.ca_file),
            "OIDC_PROVIDER_NAME": "Test SSO",
            **overrides,
        }

    def update(self, login: str, **claims) -> None:
        """Change what the provider says of a person from now on (name, groups...)."""
        self.people[login].claims.update(claims)
        self._write_people()

    def disable(self, login: str) -> None:
        """The person is disabled at the provider: no sign-in, no refresh of their tokens."""
        self.people[login].disabled = True
        self._write_people()

    def revoke(self, login: str) -> None:
        """The provider's admin ends the person's grants (their refresh tokens stop working)."""
        response = requests.post(
            f"{self.issuer}/test-control/revoke/{login}",
            headers={"X-Control": self.control},
            verify=str(self.ca_file),
            timeout=10,
        )
        response.raise_for_status()

    def browse(
        self, authorization_url: str, login: str, password: str | None = None, cancel: bool = False
    ) -> str:
        """Go through the provider's own pages as a person's browser would, from the app's
        redirect to it: its login form filled in (or Cancel clicked); the URL it sends the
        browser back to (the app's callback, with a code or an error)."""
        browser = requests.Session()
        verify = str(self.ca_file)  # per request: a session's own loses to REQUESTS_CA_BUNDLE
        url = authorization_url
        for _ in range(10):
            if not url.startswith(self.issuer):
                return url  # back to the app
            response = browser.get(url, allow_redirects=False, timeout=10, verify=verify)
            if response.is_redirect:
                url = requests.compat.urljoin(url, response.headers["Location"])
                continue
            assert response.ok, f"{url}: {response.status_code} {response.text[:300]}"
            action = re.search(r'<form method="post" action="([^"]+)"', response.text)
            assert action, f"no login form at {url}: {response.text[:300]}"
            if cancel:
                url = requests.compat.urljoin(url, re.search(r'id="cancel" href="([^"]+)"', response.text)[1])
                continue
            password = self.people[login].password if password is None else password
            response = browser.post(
                requests.compat.urljoin(url, action[1]),
                data={"login": login, "password": password},
                allow_redirects=False,
                timeout=10,
                verify=verify,
            )
            assert response.is_redirect, f"sign-in refused at the provider: {response.status_code}"
            url = requests.compat.urljoin(url, response.headers["Location"])
        raise AssertionError("the provider kept redirecting")

    def __enter__(self) -> OidcProvider:
        reason = installed()
        if reason:
            raise RuntimeError(reason)
        made = certificates()
        self.ca_file.write_bytes(made.ca)
        self.other_ca_file.write_bytes(made.other_ca)
        (self.folder / "cert.pem").write_bytes(made.server_certificate)
        (self.folder / "key.pem").write_bytes(made.server_key)
        self._write_people()
        settings = {
            "cert": str(self.folder / "cert.pem"),
            "key": str(self.folder / "key.pem"),
            "accounts": str(self.folder / "accounts.json"),
            "control": self.control,
            "clients": [
                {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": self.redirect_uris}
            ],
        }
        (self.folder / "settings.json").write_text(json.dumps(settings))
        self.process = subprocess.Popen(
            [NODE, str(HERE / "provider.mjs"), str(self.folder / "settings.json")],
            cwd=HERE,
            stdout=subprocess.PIPE,
            stderr=(self.folder / "provider.log").open("wb"),
            text=True,
        )
        line = self.process.stdout.readline()  # {"issuer": ...} once listening, or EOF if it died
        if not line:
            self.stop()
            raise RuntimeError(
                f"the OIDC provider did not start: {(self.folder / 'provider.log').read_text()}"
            )
        self.issuer = json.loads(line)["issuer"]
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def halt(self) -> None:
        """The provider stops answering (its port closed), as when it is down."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write_people(self) -> None:
        accounts = {
            p.login: {"sub": p.sub, "password": p.password, "disabled": p.disabled, "claims": p.claims}
            for p in self.people.values()
        }
        partial = self.folder / "accounts.json.part"
        partial.write_text(json.dumps(accounts))
        partial.replace(self.folder / "accounts.json")  # never half-written when the provider reads it
