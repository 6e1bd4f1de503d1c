"""The directory settings (LDAP_*, OIDC_*), checked once at start: a company connecting its
directory learns at once which variable is wrong, not at the first person's sign-in."""

from __future__ import annotations

import ssl
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask


class DirectoryConfigurationError(ValueError):
    """A directory variable the app cannot start with; the message names it."""


def check(app: Flask) -> None:
    """Refuse to start on an incomplete or wrong directory setting (create_app calls it)."""
    check_ldap(app.config)
    check_oidc(app.config)


def directory_enabled(config: Mapping) -> bool:
    """People come from the company's directory (LDAP or OIDC): local accounts are then the
    admin's to make, not anyone's to register (a colleague could otherwise take a coworker's
    name before their first directory sign-in, and be shared what was meant for them)."""
    return ldap_enabled(config) or oidc_enabled(config)


def ldap_enabled(config: Mapping) -> bool:
    return bool(config.get("LDAP_URL"))


# Settings that mean nothing without LDAP_URL: one of them set alone is a forgotten LDAP_URL.
_LDAP_NEEDS_URL = ("LDAP_BIND_DN", "LDAP_USER_BASE", "LDAP_GROUP_BASE", "LDAP_ADMIN_GROUP", "LDAP_CA_FILE")


def check_ldap(config: MutableMapping) -> None:
    if not ldap_enabled(config):
        for name in _LDAP_NEEDS_URL:
            if config.get(name):
                raise DirectoryConfigurationError(f"{name} is set but LDAP_URL is empty: set LDAP_URL too.")
        return
    url = config["LDAP_URL"]
    parts = urlsplit(url)
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise DirectoryConfigurationError(
            f"LDAP_URL must look like ldaps://dc1.example.com:636 or ldap://ldap.example.com, not {url!r}."
        )
    if parts.scheme == "ldaps" and config.get("LDAP_STARTTLS"):
        raise DirectoryConfigurationError(
            "LDAP_STARTTLS=1 is for an ldap:// LDAP_URL; an ldaps:// URL is already encrypted."
        )
    if not config.get("LDAP_USER_BASE"):
        raise DirectoryConfigurationError(
            "LDAP_USER_BASE is empty: name where people are searched, e.g. ou=people,dc=example,dc=com."
        )
    if config.get("LDAP_BIND_DN") and not config.get("LDAP_BIND_PASSWORD"):
        raise DirectoryConfigurationError(
            "LDAP_BIND_PASSWORD is empty: the service account (LDAP_BIND_DN) needs it."
        )
    _check_filter(config, "LDAP_USER_FILTER", required="{username}")
    _check_filter(config, "LDAP_GROUP_FILTER", required="")
    for name in ("LDAP_USERNAME_ATTRIBUTE", "LDAP_ID_ATTRIBUTE"):
        if not str(config.get(name, "")).replace("-", "").isalnum():
            raise DirectoryConfigurationError(f"{name} must be an attribute name, not {config.get(name)!r}.")
    if float(config.get("LDAP_TIMEOUT_SECONDS", 0)) <= 0:
        raise DirectoryConfigurationError("LDAP_TIMEOUT_SECONDS must be a number of seconds above 0.")
    if config.get("LDAP_CA_FILE"):
        config["LDAP_CA_FILE"] = _ca_file("LDAP_CA_FILE", config["LDAP_CA_FILE"])


def oidc_enabled(config: Mapping) -> bool:
    return bool(config.get("OIDC_ISSUER"))


_OIDC_NEEDS_ISSUER = (
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_ADMIN_GROUP",
    "OIDC_CA_FILE",
    "OIDC_REDIRECT_URI",
)


def check_oidc(config: MutableMapping) -> None:
    if not oidc_enabled(config):
        for name in _OIDC_NEEDS_ISSUER:
            if config.get(name):
                raise DirectoryConfigurationError(
                    f"{name} is set but OIDC_ISSUER is empty: set OIDC_ISSUER too."
                )
        return
    issuer = config["OIDC_ISSUER"]
    parts = urlsplit(issuer)
    # The issuer is where the keys checking every ID token come from: over TLS only.
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise DirectoryConfigurationError(
            "OIDC_ISSUER must be the provider's https:// issuer URL, e.g. "
            f"https://sso.example.com/realms/staff, not {issuer!r}."
        )
    for name, example in (("OIDC_CLIENT_ID", "causerie"), ("OIDC_CLIENT_SECRET", "the client's secret")):
        if not config.get(name):
            raise DirectoryConfigurationError(
                f"{name} is empty: the client registered for Causerie at the provider needs it ({example})."
            )
    if "openid" not in str(config.get("OIDC_SCOPES", "")).split():
        raise DirectoryConfigurationError(
            f"OIDC_SCOPES must include openid, e.g. 'openid profile email offline_access', "
            f"not {config.get('OIDC_SCOPES')!r}."
        )
    for name in ("OIDC_USERNAME_CLAIM", "OIDC_GROUPS_CLAIM"):
        value = str(config.get(name, ""))
        if not value or not all(c.isalnum() or c in "_-.:/" for c in value):
            raise DirectoryConfigurationError(
                f"{name} must be a claim name (a.b for a nested one, e.g. realm_access.roles), not {value!r}."
            )
    redirect_uri = config.get("OIDC_REDIRECT_URI")
    if redirect_uri:
        target = urlsplit(redirect_uri)
        if (
            target.scheme not in ("http", "https")
            or not target.hostname
            or not target.path.endswith("/auth/oidc/callback")
        ):
            raise DirectoryConfigurationError(
                "OIDC_REDIRECT_URI must be this server's callback as people reach it, e.g. "
                f"https://causerie.example.com/auth/oidc/callback, not {redirect_uri!r}."
            )
    if float(config.get("OIDC_TIMEOUT_SECONDS", 0)) <= 0:
        raise DirectoryConfigurationError("OIDC_TIMEOUT_SECONDS must be a number of seconds above 0.")
    if config.get("OIDC_CA_FILE"):
        config["OIDC_CA_FILE"] = _ca_file("OIDC_CA_FILE", config["OIDC_CA_FILE"])


def _check_filter(config: Mapping, name: str, required: str) -> None:
    value = config.get(name, "")
    try:
        value.format(username="x", dn="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise DirectoryConfigurationError(
            f"{name} may hold only {{username}} and {{dn}} between braces, not {value!r}."
        ) from exc
    if not (value.startswith("(") and value.endswith(")")) or (required and required not in value):
        example = "(uid={username})" if required else "(member={dn})"
        raise DirectoryConfigurationError(f"{name} must be an LDAP filter such as {example}, not {value!r}.")


def _ca_file(name: str, value: str) -> str:
    """The CA file as an absolute path, once it is known to hold certificates."""
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise DirectoryConfigurationError(f"{name} names a file that does not exist: {str(path)!r}.")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise DirectoryConfigurationError(f"{name} holds no PEM certificate: {str(path)!r} ({exc}).") from exc
    return str(path)
