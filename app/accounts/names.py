"""Accounts named in a list a person types ("bob, Carol dupont"): a group's members, a knowledge
base's readers."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask_babel import gettext as _

from app.extensions import db
from app.models import User, fold_username

# As people type lists: "bob, carol", "bob; carol" or "bob carol".
SEPARATORS = re.compile(r"[,;\s]+")


def accounts_named(text: str) -> tuple[list[User], str]:
    """The accounts named in `text` (any case), and what is wrong with the list: "" or the names
    no account has, in the reader's language, all of them at once."""
    wanted = {fold_username(name): name for name in SEPARATORS.split(text) if name}
    users = list(db.session.scalars(sa.select(User).where(User.username_key.in_(list(wanted)))))
    unknown = [name for key, name in wanted.items() if all(u.username_key != key for u in users)]
    if unknown:
        quoted = ", ".join(_("“%(name)s”", name=name) for name in unknown)
        return users, _("No account is named %(names)s: check the spelling.", names=quoted)
    return users, ""
