"""Shared knowledge: collections of documents ("bases de connaissances") that admins, and the
people they name, fill; everyone they are open to can ask their questions of them.

    forms.py     a collection's name, description and readers
    services.py  collections and their documents: made, changed, filled, emptied
    routes.py    the pages (thin over services)
"""

from flask import Blueprint

bp = Blueprint("knowledge", __name__)

from app.knowledge import routes  # noqa: E402,F401
