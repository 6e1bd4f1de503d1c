"""OpenID Connect sign-in (Authlib): the authorization code flow with PKCE (S256), state and
nonce, the provider found by discovery (OIDC_ISSUER/.well-known/openid-configuration), the ID
token checked (signature, iss, aud, exp, nonce), TLS always verified (OIDC_CA_FILE or the usual
CAs).

Authlib keeps the state, the nonce and the PKCE verifier of a login under way in the signed
session cookie, one hour at most, and drops them at the callback: a callback whose state is not
there (expired, replayed, forged) is refused. What the provider says of the person becomes a
`DirectoryPerson` (stable id "<iss> <sub>"); app.directory.accounts does the rest.

The refresh token of the last sign-in is kept on the server, encrypted with a key drawn from
SECRET_KEY (a database dump alone does not hold it); every DIRECTORY_RECHECK_MINUTES the
account is asked for again with it (`recheck`), and a provider that refuses it (account
disabled, grant revoked) signs the person out.
"""

from __future__ import annotations

import base64
import json
import logging
import re

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App
from authlib.integrations.requests_client import OAuth2Session
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, url_for
from joserfc.errors import JoseError

from app.directory import recheck as recheck_registry
from app.directory.accounts import DirectoryPerson, DisabledInDirectory
from app.extensions import db
from app.models import OidcRefreshToken, User, utcnow

log = logging.getLogger("causerie.security")


class ProviderUnreachable(Exception):
    """No answer, or no usable one, from the provider (down, timeout, wrong discovery)."""


class CertificateRefused(ProviderUnreachable):
    """The provider's TLS certificate is not signed by a trusted CA (OIDC_CA_FILE)."""


class LoginExpired(Exception):
    """The callback's state is not one of this browser's logins under way (expired, replayed)."""


class ProviderRefused(Exception):
    """The provider answered the login with an error (the person cancelled: access_denied)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class AnswerRejected(Exception):
    """The provider's tokens do not pass the checks (signature, iss, aud, exp, nonce, sub)."""


class MissingClaim(Exception):
    """The username claim (OIDC_USERNAME_CLAIM) is not among what the provider sent."""

    def __init__(self, claim: str) -> None:
        super().__init__(claim)
        self.claim = claim


class _Session(OAuth2Session):
    def request(self, method, url, *args, **kwargs):
        # Given per request: a session's own `verify` loses to REQUESTS_CA_BUNDLE in requests'
        # merge of the environment, and OIDC_CA_FILE must be the one CA trusted when set.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


class _Client(FlaskOAuth2App):
    client_cls = _Session

    def load_server_metadata(self) -> dict:
        fresh = "_loaded_at" not in self.server_metadata
        metadata = super().load_server_metadata()
        # OpenID Connect Discovery 4.3: the document must name the issuer it was asked for,
        # or ID tokens from another issuer would pass its iss check.
        if fresh and str(metadata.get("issuer", "")).rstrip("/") != _issuer().rstrip("/"):
            self.server_metadata.clear()
            raise ProviderUnreachable(f"discovery names issuer {metadata.get('issuer')!r}, not OIDC_ISSUER")
        return metadata


def _issuer() -> str:
    return current_app.config["OIDC_ISSUER"]


def enabled() -> bool:
    return bool(current_app.config.get("OIDC_ISSUER"))


def _client() -> _Client:
    """The app's one client, its discovery document and keys kept once fetched."""
    client = current_app.extensions.get("oidc")
    if client is None:
        config = current_app.config
        client = _Client(
            FlaskIntegration("oidc"),
            name="oidc",
            client_id=config["OIDC_CLIENT_ID"],
            client_secret=config["OIDC_CLIENT_SECRET"],
            server_metadata_url=_issuer().rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": config["OIDC_SCOPES"],
                "code_challenge_method": "S256",
                "verify": config["OIDC_CA_FILE"] or True,  # never False
                "default_timeout": config["OIDC_TIMEOUT_SECONDS"],
            },
        )
        current_app.extensions["oidc"] = client
    return client


def _talking_to_provider(call, *args, **kwargs):
    """A call that reaches the provider, its network failures made ProviderUnreachable."""
    try:
        return call(*args, **kwargs)
    except requests.exceptions.SSLError as exc:
        log.error("OIDC provider's certificate refused (OIDC_CA_FILE): %s", exc)
        raise CertificateRefused(str(exc)) from exc
    except (requests.exceptions.RequestException, OSError) as exc:  # refused, timeout, 5xx, CA file gone
        log.error("OIDC provider unreachable: %s", exc)
        raise ProviderUnreachable(str(exc)) from exc


def redirect_uri() -> str:
    return current_app.config["OIDC_REDIRECT_URI"] or url_for("oidc.callback", _external=True)


def login_redirect():
    """The redirect to the provider's login page, this login's state, nonce and PKCE verifier
    kept in the session."""
    return _talking_to_provider(_client().authorize_redirect, redirect_uri())


def finish_login() -> tuple[DirectoryPerson, dict]:
    """The person the provider signed in, and the tokens it gave (the callback's request)."""
    client = _client()
    try:
        token = _talking_to_provider(client.authorize_access_token)
    except MismatchingStateError as exc:
        raise LoginExpired from exc
    except OAuthError as exc:  # ?error=... on the callback, or the token endpoint's refusal
        log.warning("OIDC sign-in refused by the provider: %r %r", exc.error, exc.description)
        # Only an error code is shown (RFC 6749 4.1.2.1): anyone can write a link to the callback
        # with words of their own in ?error=, for the sign-in page to say in the app's voice.
        code = exc.error if re.fullmatch(r"[a-z_]{1,40}", exc.error or "") else "invalid_response"
        raise ProviderRefused(code) from exc
    except (AuthlibBaseError, JoseError) as exc:  # a bad signature, iss, aud, exp or nonce
        log.error("OIDC ID token rejected: %r", exc)
        raise AnswerRejected(repr(exc)) from exc
    if not token.get("userinfo"):  # no ID token: not OpenID Connect
        raise AnswerRejected("no ID token")
    return _person(client, token, dict(token["userinfo"])), token


def _person(client: _Client, token: dict, id_claims: dict) -> DirectoryPerson:
    """What the ID token says, completed by the userinfo endpoint when the username or groups
    claim is not in it (Keycloak puts them in both when asked; oidc-provider in userinfo)."""
    config = current_app.config
    username_claim, groups_claim = config["OIDC_USERNAME_CLAIM"], config["OIDC_GROUPS_CLAIM"]
    claims = dict(id_claims)
    metadata = client.load_server_metadata()
    wanting = _claim(claims, username_claim) is None or _claim(claims, groups_claim) is None
    if wanting and metadata.get("userinfo_endpoint"):
        userinfo = _talking_to_provider(client.userinfo, token=token)
        if userinfo.get("sub") != claims["sub"]:  # OIDC Core 5.3.2: else it is someone else's
            raise AnswerRejected("userinfo sub differs from the ID token's")
        claims = {**userinfo, **claims}
    username = _claim(claims, username_claim)
    if not isinstance(username, str) or not username.strip():
        raise MissingClaim(username_claim)
    groups = _claim(claims, groups_claim)
    if groups is None and "_claim_names" in claims:
        # Entra ID sends no groups past 200 ("overage"); the README says to filter them.
        log.warning("OIDC groups claim left out by the provider (overage): %s", claims["_claim_names"])
    groups = tuple(str(g) for g in (groups if isinstance(groups, list) else [groups] if groups else []))
    admin_group = config["OIDC_ADMIN_GROUP"]
    return DirectoryPerson(
        source="oidc",
        stable_id=f"{claims['iss']} {claims['sub']}",
        username=username.strip(),
        display_name=str(claims.get("name") or ""),
        email=str(claims.get("email") or ""),
        groups=groups,
        enabled=True,
        admin=any(g.casefold() == admin_group.casefold() for g in groups) if admin_group else None,
    )


def _claim(claims: dict, name: str):
    """A claim by name, "a.b" for b inside a (Keycloak's realm_access.roles)."""
    if name in claims:
        return claims[name]
    value = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


# The refresh token, kept for the re-checks.


def _fernet() -> Fernet:
    key = HKDF(hashes.SHA256(), 32, salt=None, info=b"causerie oidc refresh token").derive(
        current_app.config["SECRET_KEY"].encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def keep_tokens(user: User, token: dict) -> None:
    """Keep the sign-in's refresh token (and the scope granted, asked for again at each
    refresh) for the account's re-checks; not committed. None given: nothing to re-check with."""
    kept = db.session.get(OidcRefreshToken, user.id)
    if not token.get("refresh_token"):
        if kept is not None:
            db.session.delete(kept)
        return
    secret = _fernet().encrypt(json.dumps({k: token.get(k) for k in ("refresh_token", "scope")}).encode())
    if kept is None:
        db.session.add(OidcRefreshToken(user_id=user.id, token=secret.decode()))
    else:
        kept.token, kept.saved_at = secret.decode(), utcnow()


def recheck(user: User) -> DirectoryPerson:
    """The person as the provider has them now, from a refresh of their last sign-in's tokens
    (the new refresh token kept; not committed). DisabledInDirectory when the provider refuses
    it or there is none; ProviderUnreachable when it does not answer."""
    if not enabled():  # SSO switched off since: nobody to ask, nobody signed out for it
        raise ProviderUnreachable("OIDC_ISSUER is empty: OIDC accounts cannot be checked")
    kept = db.session.get(OidcRefreshToken, user.id)
    if kept is None:
        raise DisabledInDirectory("no refresh token to ask the provider with")
    try:
        saved = json.loads(_fernet().decrypt(kept.token.encode()))
    except (InvalidToken, ValueError) as exc:  # SECRET_KEY changed since
        raise DisabledInDirectory("refresh token unreadable") from exc
    client = _client()
    metadata = _talking_to_provider(client.load_server_metadata)
    with client._get_oauth_client(**metadata) as session:
        session.scope = saved.get("scope") or None  # what was granted, never more
        try:
            token = dict(
                _talking_to_provider(
                    session.refresh_token, metadata["token_endpoint"], refresh_token=saved["refresh_token"]
                )
            )
        except OAuthError as exc:  # invalid_grant: disabled, revoked, expired
            log.warning("OIDC refresh refused for %r: %s %s", user.username, exc.error, exc.description)
            raise DisabledInDirectory(exc.error) from exc
    subject = user.directory_id.removeprefix("oidc:").rsplit(" ", 1)[1]
    claims = {"iss": metadata["issuer"], "sub": subject}
    if token.get("id_token"):
        try:
            claims = dict(client.parse_id_token(token, nonce=None))
        except (AuthlibBaseError, JoseError) as exc:
            log.error("OIDC refreshed ID token rejected for %r: %r", user.username, exc)
            raise AnswerRejected(repr(exc)) from exc
        if claims.get("sub") != subject:  # OIDC Core 12.2: the same person, or nobody
            raise AnswerRejected("refreshed ID token names another sub")
    token.setdefault("scope", saved.get("scope"))
    person = _person(client, token, claims)
    keep_tokens(user, token)
    return person


def _lookup(user: User) -> DirectoryPerson:
    """The re-check's look-up (app.directory.recheck): an answer that does not pass the checks
    is a refusal, as at sign-in; only silence leaves the account as it is."""
    try:
        return recheck(user)
    except (AnswerRejected, MissingClaim) as exc:
        raise DisabledInDirectory(str(exc)) from exc


recheck_registry.register("oidc", _lookup, unreachable=(ProviderUnreachable,))
