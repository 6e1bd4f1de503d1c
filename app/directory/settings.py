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
