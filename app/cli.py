"""Command-line commands: `flask create-admin`, `flask serve`."""

from __future__ import annotations

import getpass
import logging

import click
from flask import Flask, current_app

log = logging.getLogger(__name__)


def waitress_settings(max_streams: int) -> dict:
    """Threads and connections derived from how many answers may stream at once.

    Every open stream holds a waitress thread for its whole length; page loads get threads
    of their own on top, so a full house of streams never makes a page wait.
    """
    return {
        "threads": max_streams + 8,
        "connection_limit": max_streams * 4 + 50,
        # Lets the app learn that a client went away while its answer streams.
        "channel_request_lookahead": 5,
    }


def init_app(app: Flask) -> None:
    @app.cli.command("create-admin")
    @click.argument("username")
    @click.option("--password", envvar="ADMIN_PASSWORD", help="Read from the prompt when absent.")
    def create_admin(username: str, password: str | None) -> None:
        """Create an admin account, or make an existing account admin."""
        import re

        import sqlalchemy as sa

        from app.auth.services import PASSWORD_MAX, PASSWORD_MIN, USERNAME_PATTERN, create_user
        from app.extensions import db
        from app.models import User

        if not (3 <= len(username) <= 64 and re.match(USERNAME_PATTERN, username)):
            raise click.ClickException("A username has 3 to 64 letters, digits, dots, dashes or underscores.")
        existing = db.session.scalar(sa.select(User).where(User.username == username))
        if existing is not None:
            existing.is_admin = True
            db.session.commit()
            click.echo(f"{username} is now an admin.")
            return
        password = password or getpass.getpass("Password: ")
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise click.ClickException(f"A password has {PASSWORD_MIN} to {PASSWORD_MAX} characters.")
        create_user(username, password, admin=True)
        click.echo(f"Admin {username} created.")

    @app.cli.command("serve")
    @click.option("--host", default=None, help="Address to listen on (default: HOST).")
    @click.option("--port", default=None, type=int, help="Port (default: PORT).")
    def serve(host: str | None, port: int | None) -> None:
        """Run the app under waitress, the production server."""
        import waitress

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from app.database import sweep_unfinished_answers

        swept = sweep_unfinished_answers()
        if swept:
            log.warning("%d answers left unfinished by the last run are marked interrupted", swept)
        config = current_app.config
        settings = waitress_settings(config["MAX_STREAMS"])
        host = host or config["HOST"]
        port = port or config["PORT"]
        log.info("serving on http://%s:%s with %s", host, port, settings)
        waitress.serve(current_app._get_current_object(), host=host, port=port, ident="causerie", **settings)
