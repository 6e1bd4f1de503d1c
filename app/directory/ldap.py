"""LDAP / Active Directory: a person's password checked by the directory, and what it says of them.

A service account (LDAP_BIND_DN) finds the person under LDAP_USER_BASE with LDAP_USER_FILTER,
the name typed escaped (RFC 4515) so that "*)(uid=*" matches nobody; then the person's own bind
checks the password. An empty password is refused before any bind: LDAP reads a simple bind with
a name and no password as an anonymous bind, which "succeeds" (RFC 4513 5.1.2).

ldap3 rather than python-ldap: pure Python, so nothing to compile on the server, and LDAPS or
StartTLS with a CA file through ldap3.Tls. The certificate is always checked, against
LDAP_CA_FILE or the system's CAs. Every connection has LDAP_TIMEOUT_SECONDS to open and to get
each answer: a directory that stopped answering cannot hold a sign-in, or a page, for long.

Disabled in the directory: Active Directory's userAccountControl with ACCOUNTDISABLE (2) set;
OpenLDAP's ppolicy permanent lock (pwdAccountLockedTime = 000001010000Z, what an admin sets to
lock an account; a lock for too many failed binds passes by itself and is not a disabling).
"""

from __future__ import annotations

import logging
import math
import ssl
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from flask import current_app
from ldap3 import NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_bytes, escape_filter_chars
from ldap3.utils.dn import parse_dn

from app.directory.accounts import DirectoryPerson, DirectoryUnreachable

log = logging.getLogger("causerie.directory")

SOURCE = "ldap"
ACCOUNTDISABLE = 0x2  # Active Directory's userAccountControl flag
PERMANENTLY_LOCKED = "000001010000Z"  # OpenLDAP ppolicy: locked by an admin, until one unlocks it
INVALID_CREDENTIALS = 49
NOBODY = "causerie-no-such-person"  # the bind an unknown name gets, refused as a wrong password is


class LdapDirectory:
    """The directory LDAP_* settings name (read from a Flask config)."""

    def __init__(self, config: Mapping) -> None:
        self.url = config["LDAP_URL"]
        self.bind_dn = config.get("LDAP_BIND_DN", "")
        self.bind_password = config.get("LDAP_BIND_PASSWORD", "")
        self.user_base = config["LDAP_USER_BASE"]
        self.user_filter = config["LDAP_USER_FILTER"]
        self.username_attribute = config["LDAP_USERNAME_ATTRIBUTE"]
        self.id_attribute = config["LDAP_ID_ATTRIBUTE"]
        self.group_base = config.get("LDAP_GROUP_BASE", "")
        self.group_filter = config["LDAP_GROUP_FILTER"]
        self.admin_group = config.get("LDAP_ADMIN_GROUP", "").casefold()
        self.starttls = bool(config.get("LDAP_STARTTLS"))
        self.ca_file = config.get("LDAP_CA_FILE", "")
        self.timeout = float(config["LDAP_TIMEOUT_SECONDS"])
        try:
            tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file or None)
        except ldap_errors.LDAPException as exc:  # checked at start, but gone or changed since
            raise DirectoryUnreachable(f"LDAP_CA_FILE={self.ca_file!r} cannot be read: {exc}") from exc
        self.server = Server(self.url, tls=tls, connect_timeout=self.timeout, get_info=NONE)

    @property
    def attributes(self) -> list[str]:
        return sorted(
            {
                self.username_attribute,
                self.id_attribute,
                "displayName",
                "cn",
                "mail",
                "memberOf",
                "userAccountControl",
                "pwdAccountLockedTime",
            }
        )

    def authenticate(self, username: str, password: str) -> DirectoryPerson | None:
        """What the directory says of the person whose name and password these are; None for a
        wrong password and for a name it does not know alike. Raises DirectoryUnreachable."""
        if not password:
            return None  # never sent: an empty password would be an anonymous bind, which succeeds
        with self._service() as service:
            name = escape_filter_chars(username)
            entries = self._search(service, self.user_base, self.user_filter.format(username=name, dn=""))
            if len(entries) != 1:
                if len(entries) > 1:
                    log.warning("LDAP: several entries match %r (LDAP_USER_FILTER): none signs in", username)
                # The same work as a wrong password (a bind refused), so that the time taken does
                # not tell which names the directory knows.
                self._bind_as(f"{self.username_attribute}={NOBODY},{self.user_base}", password, quiet=True)
                return None
            entry = entries[0]
            if not self._bind_as(entry["dn"], password):
                return None
            return self._person(service, entry, typed=username)

    def lookup(self, stable_id: str) -> DirectoryPerson | None:
        """The person with this stable id as the directory has them now (the re-check of open
        sessions and API keys); None when they are gone. Raises DirectoryUnreachable."""
        with self._service() as service:
            by_id = f"({self.id_attribute}={self._id_value(stable_id)})"
            entries = self._search(service, self.user_base, by_id)
            return self._person(service, entries[0]) if len(entries) == 1 else None

    # -- connections --

    def _connection(self, user: str | None, password: str | None) -> Connection:
        connection = Connection(
            self.server,
            user=user,
            password=password,
            authentication=SIMPLE if user else None,
            receive_timeout=max(1, math.ceil(self.timeout)),  # whole seconds: ldap3 packs it as SO_RCVTIMEO
            read_only=True,
            raise_exceptions=False,
        )
        try:
            connection.open()
            if self.starttls and not connection.start_tls():
                raise DirectoryUnreachable(self._explain(None, connection))
        except ldap_errors.LDAPException as exc:
            _close(connection)
            raise DirectoryUnreachable(self._explain(exc, connection)) from exc
        return connection

    @contextmanager
    def _service(self) -> Iterator[Connection]:
        """A connection bound as the service account (anonymous without LDAP_BIND_DN)."""
        connection = self._connection(self.bind_dn or None, self.bind_password or None)
        try:
            try:
                bound = connection.bind()
            except ldap_errors.LDAPException as exc:
                raise DirectoryUnreachable(self._explain(exc, connection)) from exc
            if not bound:
                result = connection.result or {}
                raise DirectoryUnreachable(
                    f"the service account LDAP_BIND_DN={self.bind_dn!r} cannot bind "
                    f"({result.get('description')}: {result.get('message', '')}); "
                    "check LDAP_BIND_DN and LDAP_BIND_PASSWORD"
                )
            yield connection
        finally:
            _close(connection)

    def _bind_as(self, dn: str, password: str, quiet: bool = False) -> bool:
        """The person's own bind: True for the right password. Any refusal is a refusal (a
        disabled AD account answers 49 too); only a directory that cannot be reached is not."""
        connection = self._connection(dn, password)
        try:
            if connection.bind():
                return True
            result = connection.result or {}
            if result.get("result") != INVALID_CREDENTIALS and not quiet:
                log.warning("LDAP: bind refused: %s: %s", result.get("description"), result.get("message"))
            return False
        except ldap_errors.LDAPException as exc:
            raise DirectoryUnreachable(self._explain(exc, connection)) from exc
        finally:
            _close(connection)

    def _search(self, connection: Connection, base: str, search_filter: str, attributes=None) -> list[dict]:
        try:
            done = connection.search(
                base,
                search_filter,
                search_scope=SUBTREE,
                attributes=attributes or self.attributes,
                size_limit=2,  # more than one match signs nobody in: no need for the rest
                time_limit=max(1, int(self.timeout)),
            )
        except ldap_errors.LDAPException as exc:
            raise DirectoryUnreachable(self._explain(exc, connection)) from exc
        outcome = (connection.result or {}).get("description")
        if outcome == "noSuchObject":
            log.warning("LDAP: %r does not exist: nobody is found under it (check LDAP_*_BASE)", base)
        elif not done and outcome not in ("success", "sizeLimitExceeded"):
            message = (connection.result or {}).get("message", "")
            raise DirectoryUnreachable(f"search under {base!r} failed: {outcome} {message}")
        return [e for e in connection.response or () if e.get("type") == "searchResEntry"]

    def _explain(self, exc: Exception | None, connection: Connection) -> str:
        """Why the directory could not be used, for the server's log: the admin's first clue."""
        text = f"{exc}" if exc is not None else f"{connection.result}"
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            trusted = f"LDAP_CA_FILE={self.ca_file!r}" if self.ca_file else "the system's CAs (no CA file)"
            return f"{self.url}'s TLS certificate is not trusted by {trusted}: {text}"
        if "hostname" in text.lower() and "match" in text.lower():
            return f"{self.url}'s TLS certificate does not name this host: {text}"
        return f"{self.url}: {type(exc).__name__ if exc else 'StartTLS'}: {text}"

    # -- what the directory says --

    def _person(self, service: Connection, entry: dict, typed: str = "") -> DirectoryPerson:
        raw = entry.get("raw_attributes", {})
        stable_id = self._stable_id(raw)
        if not stable_id:
            raise DirectoryUnreachable(
                f"{entry['dn']!r} has no {self.id_attribute}: set LDAP_ID_ATTRIBUTE to its stable id "
                "(entryUUID for OpenLDAP, objectGUID for Active Directory)"
            )
        username = _text(raw, self.username_attribute) or typed
        groups = self._groups(service, entry["dn"], raw, username)
        folded = {g.casefold() for g in groups}
        return DirectoryPerson(
            source=SOURCE,
            stable_id=stable_id,
            username=username,
            display_name=_text(raw, "displayName") or _text(raw, "cn"),
            email=_text(raw, "mail"),
            groups=groups,
            enabled=not _disabled(raw),
            admin=(self.admin_group in folded) if self.admin_group else None,
            extra={"dn": entry["dn"]},
        )

    def _stable_id(self, raw: Mapping) -> str:
        values = _values(raw, self.id_attribute)
        if not values:
            return ""
        value = values[0]
        if len(value) == 16 and self.id_attribute.casefold() == "objectguid":
            return str(uuid.UUID(bytes_le=value))  # AD's GUID: little-endian bytes, shown as a UUID
        return value.decode("utf-8", "replace").strip().lower()

    def _id_value(self, stable_id: str) -> str:
        """The stable id as a filter value: AD's objectGUID is matched on its bytes."""
        if self.id_attribute.casefold() == "objectguid":
            return escape_bytes(uuid.UUID(stable_id).bytes_le)
        return escape_filter_chars(stable_id)

    def _groups(self, service: Connection, dn: str, raw: Mapping, username: str) -> tuple[str, ...]:
        """Each group by its DN and by its cn: LDAP_ADMIN_GROUP and the Causerie groups'
        mappings may name either."""
        if self.group_base:
            escaped = {"dn": escape_filter_chars(dn), "username": escape_filter_chars(username)}
            found = self._search_all(service, self.group_base, self.group_filter.format(**escaped))
            dns = [g["dn"] for g in found]
        else:
            dns = [v.decode("utf-8", "replace") for v in _values(raw, "memberOf")]
        names: list[str] = []
        for group in dns:
            names.append(group)
            try:
                attribute, value, _ = parse_dn(group)[0]
            except (ldap_errors.LDAPException, IndexError):
                continue
            if attribute.casefold() == "cn":
                names.append(value)
        return tuple(dict.fromkeys(names))

    def _search_all(self, connection: Connection, base: str, search_filter: str) -> list[dict]:
        try:
            connection.search(base, search_filter, search_scope=SUBTREE, attributes=["cn"], paged_size=500)
        except ldap_errors.LDAPException as exc:
            raise DirectoryUnreachable(self._explain(exc, connection)) from exc
        return [e for e in connection.response or () if e.get("type") == "searchResEntry"]


def _close(connection: Connection) -> None:
    """Unbind, whatever state the connection is in (a failed TLS handshake leaves no socket)."""
    try:
        connection.unbind()
    except (ldap_errors.LDAPException, OSError):
        pass


def _values(raw: Mapping, attribute: str) -> list[bytes]:
    # Attribute names are case-insensitive; the server may spell them its own way.
    wanted = attribute.casefold()
    return next((list(v) for k, v in raw.items() if k.casefold() == wanted), [])


def _text(raw: Mapping, attribute: str) -> str:
    values = _values(raw, attribute)
    return values[0].decode("utf-8", "replace").strip() if values else ""


def _disabled(raw: Mapping) -> bool:
    control = _text(raw, "userAccountControl")
    if control.lstrip("-").isdigit() and int(control) & ACCOUNTDISABLE:
        return True
    return _text(raw, "pwdAccountLockedTime") == PERMANENTLY_LOCKED


def directory() -> LdapDirectory | None:
    """This app's LDAP directory, or None when LDAP_URL is empty. Raises DirectoryUnreachable when
    its CA file cannot be read."""
    app = current_app._get_current_object()
    if not app.config.get("LDAP_URL"):
        return None
    if "ldap_directory" not in app.extensions:
        app.extensions["ldap_directory"] = LdapDirectory(app.config)
    return app.extensions["ldap_directory"]
