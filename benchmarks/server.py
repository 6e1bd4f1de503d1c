"""Starting the real server (waitress, on 127.0.0.1) for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
# Settings that could point a test server at real data: never taken from the caller's shell.
# The server keeps its database, key, models and documents folders in its own instance folder.
ISOLATED_SETTINGS = ("DATABASE_URL", "SECRET_KEY", "MODELS_DIR", "DOCUMENTS_DIR", "CAUSERIE_INSTANCE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class LiveServer:
    """`flask serve` in a child process, with its own instance folder and database."""

    def __init__(self, instance_dir: Path, env: dict[str, str] | None = None) -> None:
        self.instance_dir = instance_dir
        self.port = free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if k not in ISOLATED_SETTINGS}
        self.env = {
            **inherited,
            "CAUSERIE_INSTANCE": str(instance_dir),
            "FLASK_APP": "wsgi",
            "PYTHONUNBUFFERED": "1",
            # No Ollama host unless the caller names one (a test's stand-in, a benchmark's host).
            "OLLAMA_HOSTS": "",
            # Every model of its engines offered at once (a test's stand-in, a benchmark's files),
            # unless the caller says otherwise; a real server waits for the admin to enable them.
            "NEW_MODELS_ENABLED": "1",
            # Every person of a test or benchmark signs up from 127.0.0.1, often at once: neither
            # the per-address cap nor a short wait for a hashing turn applies, unless asked.
            "REGISTRATIONS_PER_HOUR": "10000",
            "PASSWORD_HASH_WAIT_SECONDS": "600",
            # Every client of a test or a benchmark comes from 127.0.0.1, standing for many
            # machines: no cap on one address's connections (0) unless the caller sets one.
            "CONNECTIONS_PER_ADDRESS": "0",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None
        self.log_path = instance_dir / "server.log"

    def flask(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "flask", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )

    def command(self) -> list[str]:
        """What serves the app: `flask serve`, as ./scripts/serve runs it."""
        return [sys.executable, "-m", "flask", "serve", "--host", LOOPBACK, "--port", str(self.port)]

    def start(self) -> LiveServer:
        self.instance_dir.mkdir(parents=True, exist_ok=True)
        self.flask("db", "upgrade")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start within 30 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
