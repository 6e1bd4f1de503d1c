"""Command-line commands: `flask create-admin`, `flask serve` (and `flask bench`, app.bench.cli)."""

from __future__ import annotations

import getpass
import logging
import os
import signal
import threading
import time

import click
from flask import Flask, current_app, make_response, request

from app.sizing import waitress_settings

log = logging.getLogger(__name__)

# The promise made to whoever stops the server (systemd, docker, Ctrl-C): out within this
# many seconds of SIGTERM or SIGINT, the answers being written saved as interrupted.
SHUTDOWN_SECONDS = 10.0
# How long the running answers get to end (the engine stops between two tokens) and to be
# saved by their streams; whatever is still unsaved then is marked interrupted as it stands.
ANSWERS_SECONDS = 6.0
# How long the last frames (each stream's `done`) get to leave for their clients.
FLUSH_SECONDS = 0.5


def init_app(app: Flask) -> None:
    from app.bench.cli import bench

    app.cli.add_command(bench)

    @app.cli.command("create-admin")
    @click.argument("username")
    @click.option("--password", envvar="ADMIN_PASSWORD", help="Read from the prompt when absent.")
    def create_admin(username: str, password: str | None) -> None:
        """Create an admin account, or make an existing account admin."""
        import re

        from app.auth.passwords import is_common
        from app.auth.services import PASSWORD_MAX, PASSWORD_MIN, USERNAME_PATTERN, create_user, find_user
        from app.auth.usernames import mixes_scripts
        from app.extensions import db

        if not (3 <= len(username) <= 64 and re.match(USERNAME_PATTERN, username)):
            raise click.ClickException("A username has 3 to 64 letters, digits, dots, dashes or underscores.")
        if mixes_scripts(username):
            raise click.ClickException("A username is written in one alphabet, not Latin and Cyrillic mixed.")
        existing = find_user(username)
        if existing is not None:
            existing.is_admin = True
            db.session.commit()
            click.echo(f"{existing.username} is now an admin.")
            return
        password = password or getpass.getpass("Password: ")
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise click.ClickException(f"A password has {PASSWORD_MIN} to {PASSWORD_MAX} characters.")
        if is_common(password) or password.strip().casefold() == username.casefold():
            raise click.ClickException("This password is among the most common ones, or is the username.")
        create_user(username, password, admin=True)
        click.echo(f"Admin {username} created.")

    @app.cli.command("serve")
    @click.option("--host", default=None, help="Address to listen on (default: HOST).")
    @click.option("--port", default=None, type=int, help="Port (default: PORT).")
    def serve(host: str | None, port: int | None) -> None:
        """Run the app under waitress, the production server; SIGTERM stops it gracefully."""
        from app.connections import create_server

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from app.database import sweep_unfinished_answers
        from app.instance_lock import InstanceBusy, hold

        try:
            lock = hold(current_app.config["INSTANCE_DIR"], "flask serve")  # noqa: F841 - held for life
        except InstanceBusy as busy:
            raise click.ClickException(f"This instance folder is in use by {busy.holder}.") from None

        swept = sweep_unfinished_answers()
        if swept:
            log.warning("%d answers left unfinished by the last run are marked interrupted", swept)
        from app.bench.runs import sweep_unfinished_runs

        swept = sweep_unfinished_runs()
        if swept:
            log.warning("%d benchmarks left unfinished by the last run are marked interrupted", swept)
        from app.documents import indexing, store

        store.sweep()
        indexing.indexer().resume()  # documents a stopped server had not finished indexing
        app = current_app._get_current_object()
        config = app.config
        settings = waitress_settings(config["MAX_STREAMS"])
        host = host or config["HOST"]
        port = port or config["PORT"]
        # Behind a proxy every client has the proxy's address: no cap per address then.
        per_address = 0 if config["TRUSTED_PROXIES"] else config["CONNECTIONS_PER_ADDRESS"]
        socket_map: dict = {}
        server = create_server(
            app, socket_map, host, port, per_address=per_address, ident="causerie", **settings
        )
        shutdown = GracefulShutdown(app, server, socket_map)
        app.before_request(shutdown.refuse_new_answers)
        shutdown.install()
        log.info(
            "serving on http://%s:%s with %s, %s connections per address",
            host,
            port,
            settings,
            per_address or "no cap on",
        )
        server.run()  # returns once the shutdown has closed every socket
        shutdown.finish()


class GracefulShutdown:
    """On SIGTERM or SIGINT: refuse new answers, interrupt the running ones, let their streams
    save what was written (as interrupted), then close the server, all within SHUTDOWN_SECONDS.

    The signal handler only starts a thread: waitress's loop must keep running meanwhile,
    since it is what sends the streams' last frames to their clients.
    """

    def __init__(self, app: Flask, server, socket_map: dict) -> None:
        self.app = app
        self.server = server
        self.socket_map = socket_map
        self.started = threading.Event()
        self.began = 0.0

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def refuse_new_answers(self):
        """A `before_request` hook: once shutting down, a new message gets a 503."""
        if self.started.is_set() and request.endpoint == "chat.send_message":
            from app.errors import render_error

            response = make_response(*render_error(503))
            response.headers["Retry-After"] = "30"
            return response
        return None

    def _on_signal(self, signum: int, _frame) -> None:
        # Runs in the main thread, between two turns of waitress's loop: only starts threads.
        if self.started.is_set():
            return
        self.began = time.monotonic()
        self.started.set()
        name = signal.Signals(signum).name
        threading.Thread(target=self._shut_down, args=(name,), name="shutdown", daemon=True).start()
        threading.Thread(target=self._deadline, name="shutdown-deadline", daemon=True).start()

    def _shut_down(self, signal_name: str) -> None:
        log.info("%s received: shutting down", signal_name)
        try:
            self._interrupt_answers()
        except Exception:
            log.exception("shutdown: the answers could not all be saved")
        finally:
            self._wait_for_output(FLUSH_SECONDS)
            self._close_server()

    def _interrupt_answers(self) -> None:
        from app.answers import registry
        from app.database import sweep_unfinished_answers, unfinished_answers
        from app.llm import services
        from app.llm.types import Outcome

        with self.app.app_context():
            llm, answers = services(), registry()
        benchmarks = self.app.extensions["bench"]
        self.app.extensions["documents"].close()  # what it was indexing is taken up at the next start
        llm.scheduler.close()  # a message already past the 503 check still cannot start an answer
        interrupted = answers.cancel_all(Outcome.INTERRUPTED)
        level = logging.WARNING if interrupted else logging.INFO
        log.log(level, "shutting down: %d answers interrupted", interrupted)
        deadline = self.began + ANSWERS_SECONDS
        while True:
            # Again each time: an answer whose request was under way when the signal came.
            answers.cancel_all(Outcome.INTERRUPTED)
            llm.scheduler.cancel_all(Outcome.INTERRUPTED)
            # The answers are over once each has stored its ending, and the benchmarks' thread
            # has saved its run as interrupted too (the next start sweeps what had no time).
            if llm.scheduler.active() == 0 and answers.unsaved() == 0 and benchmarks.idle.is_set():
                with self.app.app_context():
                    if unfinished_answers() == 0:
                        break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        with self.app.app_context():
            swept = sweep_unfinished_answers()  # the safety net: nothing stays 'generating'
        llm.close()  # the engine processes this app started (llama-server)
        waited = time.monotonic() - self.began
        if swept:
            log.warning("%d answers unsaved after %.1f s are marked interrupted as they stood", swept, waited)
        elif interrupted:
            log.info("the interrupted answers were saved within %.1f s", waited)

    def _wait_for_output(self, timeout: float) -> None:
        """Give waitress a moment to send what the streams wrote last."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pending = any(getattr(d, "total_outbufs_len", 0) for d in list(self.socket_map.values()))
            except RuntimeError:  # the map changed while read: look again
                pending = True
            if not pending:
                return
            time.sleep(0.02)

    def _close_server(self) -> None:
        """Close every socket from waitress's own loop thread; its `run()` then returns."""
        from waitress import wasyncore
        from waitress.server import BaseWSGIServer

        server = next(d for d in list(self.socket_map.values()) if isinstance(d, BaseWSGIServer))
        server.trigger.pull_trigger(lambda: wasyncore.close_all(self.socket_map))

    def finish(self) -> None:
        """In the main thread, after waitress's loop ended: stop its worker threads."""
        remaining = self.began + SHUTDOWN_SECONDS - 1.0 - time.monotonic()
        self.server.task_dispatcher.shutdown(timeout=max(0.1, min(1.0, remaining)))
        log.info("stopped %.1f s after the signal", time.monotonic() - self.began)
        # Everything is saved. A generation thread may still be inside llama.cpp: leave now,
        # rather than let the interpreter's clean-up free a model under it.
        logging.shutdown()
        os._exit(0)

    def _deadline(self) -> None:
        """The last resort, should something hang: the process ends within SHUTDOWN_SECONDS."""
        time.sleep(max(0.0, self.began + SHUTDOWN_SECONDS - 0.5 - time.monotonic()))
        log.error("shutdown not over after %.1f s: exiting now", time.monotonic() - self.began)
        logging.shutdown()
        os._exit(1)  # answers still 'generating' are marked interrupted at the next start
