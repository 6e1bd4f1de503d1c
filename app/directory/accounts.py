"""Directory accounts (LDAP / Active Directory, OIDC): made at first sign-in, kept in step after.

Both sign-ins end here with what the directory says of the person (`DirectoryPerson`). The
account is found by the directory's stable id (entryUUID / objectGUID; OIDC iss + sub), never by
name: a name a local account (or another directory's person) already holds is refused, and the
refusal is in the audit log for the admin. Its groups follow the directory groups that Causerie
groups are mapped to; its admin right follows the provider's admin group when one is set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from app import audit
from app.extensions import db
from app.models import Group, GroupMember, User, fold_username, utcnow

UNUSABLE_PASSWORD = "!directory"  # no password hash starts with "!": a local sign-in never matches


@dataclass(frozen=True)
class DirectoryPerson:
    source: str  # "ldap" | "oidc"
    stable_id: str  # entryUUID / objectGUID; for OIDC "<iss> <sub>"
    username: str
    display_name: str = ""
    email: str = ""
    groups: tuple[str, ...] = ()  # as the directory names them (DNs and/or cns; claim values)
    enabled: bool = True
    admin: bool | None = None  # None: no admin group configured, the admin right stays as it is
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def directory_id(self) -> str:
        return f"{self.source}:{self.stable_id}"


class DirectoryRefusal(Exception):
    """The directory knows the person, but they may not sign in here (the reason is the class)."""


class NameClash(DirectoryRefusal):
    """The directory's username belongs to another account here; the admin must sort it out."""


class UnusableName(DirectoryRefusal):
    """The directory's username cannot be a name here: it mixes scripts, so that it could pass for
    another's on every page ("аdmin" with a Cyrillic "а"), or it is longer than a username may be."""


class RegistrationClosed(DirectoryRefusal):
    """No account may be made (registration closed) and this person has none yet."""


class DisabledInDirectory(DirectoryRefusal):
    """The directory says the account is disabled (or it has gone)."""


class DirectoryUnreachable(Exception):
    """The directory could not be asked (down, too slow, TLS refused, service account refused):
    nobody's password or state can be checked now. The message says why, for the server's log."""


def account_for(person: DirectoryPerson) -> User:
    """The person's account, made or brought in step with the directory, and committed. Raises
    NameClash, RegistrationClosed or DisabledInDirectory (each recorded in the audit log)."""
    try:
        return _account_for(person)
    except sa.exc.IntegrityError:
        # The same person's other sign-in (a second tab, a double click) made the account an
        # instant before this one could: the account is there now, and found.
        db.session.rollback()
        return _account_for(person)


def _account_for(person: DirectoryPerson) -> User:
    user = db.session.scalar(sa.select(User).where(User.directory_id == person.directory_id))
    if user is None:
        if not person.enabled:
            raise DisabledInDirectory
        user = _create(person)
    else:
        sync(user, person)
        if not person.enabled:
            db.session.commit()
            raise DisabledInDirectory
    db.session.commit()
    return user


def _create(person: DirectoryPerson) -> User:
    from app.auth.usernames import mixes_scripts  # here: app.auth's package imports the sign-in's

    # A local name's rules: the name is shown to others (shares, the audit log, the Users page).
    name = person.username
    unusable = (
        "mixed scripts"
        if mixes_scripts(name)
        else "length"
        if not name.strip() or max(len(name), len(fold_username(name))) > 64
        else ""
    )
    if unusable:
        details = {"source": person.source, "directory_id": person.directory_id, "reason": unusable}
        audit.record("directory.refused_name", name[:255], actor=None, details=details)
        db.session.commit()
        raise UnusableName(name)
    holder = db.session.scalar(sa.select(User).where(User.username_key == fold_username(person.username)))
    if holder is not None and holder.directory_id == person.directory_id:
        # The same person's other sign-in (a second tab, a double click) made the account
        # between this one's look-up by id and now: theirs, not a clash.
        sync(holder, person)
        return holder
    if holder is not None:
        audit.record(
            "directory.name_clash",
            person.username,
            actor=None,
            details={"source": person.source, "directory_id": person.directory_id, "account_id": holder.id},
        )
        db.session.commit()
        raise NameClash(person.username)
    from app.admin.users import registration_mode  # here: app.admin's package imports the sign-in's

    mode = registration_mode()
    if mode == "closed":
        audit.record("directory.refused_closed", person.username, details={"source": person.source})
        db.session.commit()
        raise RegistrationClosed
    user = User(
        username=person.username,
        password_hash=UNUSABLE_PASSWORD,
        directory_id=person.directory_id,
        pending=mode == "approval",
    )
    db.session.add(user)
    db.session.flush()
    sync(user, person)
    audit.record(
        "account.create",
        user.username,
        actor=user,
        details={"source": person.source, "pending": user.pending},
    )
    return user


def sync(user: User, person: DirectoryPerson) -> None:
    """Name, e-mail, groups, admin right and state as the directory has them now (not committed)."""
    user.display_name = person.display_name[:200]
    user.email = person.email[:320]
    user.directory_checked_at = utcnow()
    if not person.enabled and not user.disabled:
        disable(user, person.source)
    elif person.enabled and user.disabled and user.disabled_by_directory:
        # Disabled because the directory said so, enabled again there: the directory decides. An
        # account the admin disabled here stays disabled.
        user.disabled = user.disabled_by_directory = False
        audit.record("account.enable", user.username, actor=None, details={"by": person.source})
    if person.admin is not None and person.admin != user.is_admin:
        user.is_admin = person.admin
        if not person.admin:
            user.end_sessions()
        audit.record(
            "account.admin" if person.admin else "account.not_admin",
            user.username,
            actor=None,
            details={"by": person.source},
        )
    _sync_groups(user, person.groups)


def disable(user: User, source: str, reason: str = "disabled") -> None:
    """The directory disabled the person (or they are gone from it): out everywhere (not committed)."""
    user.disabled = user.disabled_by_directory = True
    user.end_sessions()
    audit.record("account.disable", user.username, actor=None, details={"by": source, "reason": reason})


def _sync_groups(user: User, directory_groups: Iterable[str]) -> None:
    names = {g.casefold() for g in directory_groups}
    mapped = db.session.scalars(sa.select(Group).where(Group.directory_group != "")).all()
    wanted = {g.id for g in mapped if g.directory_group.casefold() in names}
    current = {
        m.group_id: m
        for m in db.session.scalars(sa.select(GroupMember).where(GroupMember.user_id == user.id))
    }
    for group_id in wanted - current.keys():
        db.session.add(GroupMember(group_id=group_id, user_id=user.id, from_directory=True))
    for group_id, member in current.items():
        if member.from_directory and group_id not in wanted:
            db.session.delete(member)
