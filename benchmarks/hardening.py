"""Two attacks from the hardening run (issue 16, items 15 and 20), each measured on the app as it is
and on the app as it was before, side by side (a noisy machine's figures mean something only
against a reference run on the same machine at the same time).

    .venv/bin/python -m benchmarks.hardening [--sockets 1000] [--wait 30] [--flood-mb 200]

Slow clients. One address (127.0.0.2: Linux routes all of 127/8 to loopback, one machine on the
network) opens `--sockets` connections: a third half-open (nothing sent), a third trickling
headers (a header line a second, a request that never ends), a third idle keep-alive (one whole
request, then nothing). Meanwhile a sign-in page is asked from 127.0.0.1, waited for `--wait`
seconds at most. Each side is a fresh real server with its own instance folder:

- now: `flask serve` as `./scripts/serve` runs it (served directly, TRUSTED_PROXIES=0, the default
  CONNECTIONS_PER_ADDRESS), i.e. app/connections.py's guarded waitress server;
- before: the same app on waitress's own server with the options it had before commit 104521d
  (app/sizing.py's settings without `cleanup_interval` and `asyncore_use_poll`, which that commit
  added; no request deadline, no idle limit, no cap per address).

Also printed: how many of those sockets the server still keeps open `--settle` seconds later
(app/connections.py closes an unfinished request after 10 s, an idle one after 5 s).

Engine flood. The scripted Ollama stand-in (tests/ollama_server.py, `flood_bytes`) answers a chat
with `--flood-mb` MB without a line break. Read in this process by the app's engine (OllamaEngine,
its lines bounded at ENGINE_LINE_MAX_BYTES) and by the `ollama` client as the engine used it
before commit c8e879b (httpx's iter_lines, a line kept whole until its break): this process's
resident memory (RSS, sampled every 10 ms) at the peak above its level before, and the time until
the answer ended. The bounded side runs first, so memory the unbounded read leaves to the
allocator does not count for it.
"""

from __future__ import annotations

import argparse
import gc
import resource
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import ollama
import psutil
import requests

from benchmarks.server import LOOPBACK, LiveServer

OTHER_ADDRESS = "127.0.0.2"
PAGE = "/login"
# What commit 104521d added to waitress's settings (app/sizing.py); without them, waitress as before.
ADDED_FOR_SLOW_CLIENTS = ("cleanup_interval", "asyncore_use_poll")
FLOOD_MODEL = "deepseek-r1:1.5b"  # one of the stand-in's scripted models


# -- the two servers -------------------------------------------------------------------------
def serve_as_before(port: int) -> None:
    """In the child process: the app on plain waitress, as `flask serve` ran it before 104521d."""
    import waitress

    from app.sizing import waitress_settings
    from wsgi import app

    settings = waitress_settings(app.config["MAX_STREAMS"])
    settings = {k: v for k, v in settings.items() if k not in ADDED_FOR_SLOW_CLIENTS}
    waitress.create_server(app, host=LOOPBACK, port=port, ident="causerie", **settings).run()


class ServerAsBefore(LiveServer):
    """The same instance folder, settings and database as LiveServer, on plain waitress."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.hardening", "--serve-as-before", str(self.port)]


def as_served_now(instance_dir: Path) -> LiveServer:
    from config import Config

    # LiveServer lifts the cap (its clients all come from 127.0.0.1): here it is the default,
    # served directly, as ./scripts/serve runs it.
    env = {"CONNECTIONS_PER_ADDRESS": str(Config.CONNECTIONS_PER_ADDRESS), "TRUSTED_PROXIES": "0"}
    return LiveServer(instance_dir, env)


# -- slow clients ----------------------------------------------------------------------------
class SlowClient:
    """`count` sockets from OTHER_ADDRESS, in three kinds, the trickling ones fed every second."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.sockets: list[socket.socket] = []
        self.trickling: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True, name="trickle")

    def open(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        for i in range(self.count):
            if time.monotonic() > deadline:
                break
            sock = socket.socket()
            sock.settimeout(2)
            try:
                sock.bind((OTHER_ADDRESS, 0))
                sock.connect((LOOPBACK, self.port))
                if i % 3 == 1:
                    sock.sendall(b"GET /login HTTP/1.1\r\nHost: causerie\r\n")
                    self.trickling.append(sock)
                elif i % 3 == 2:
                    sock.sendall(b"GET /static/css/app.css HTTP/1.1\r\nHost: causerie\r\n\r\n")
                # else: half-open, nothing sent
            except OSError:
                pass  # refused, or closed at once by a cap: it was tried all the same
            self.sockets.append(sock)
        self._thread.start()

    def _trickle(self) -> None:
        while not self._stop.wait(1.0):
            for sock in list(self.trickling):
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    self.trickling.remove(sock)  # the server closed it

    def still_open(self) -> int:
        """How many of the sockets the server has not closed (what it sent is read and dropped)."""
        self._stop.set()
        self._thread.join()
        count = 0
        for sock in self.sockets:
            sock.setblocking(False)
            try:
                while sock.recv(65536):
                    pass
            except BlockingIOError:
                count += 1  # nothing more to read, and no end: open
            except OSError:
                pass  # reset, or never connected
        return count

    def close(self) -> None:
        self._stop.set()
        for sock in self.sockets:
            sock.close()


def time_page(base_url: str, wait: float) -> tuple[float | None, str]:
    """Seconds a whole sign-in page took from 127.0.0.1 (None: not within `wait`), and a failure."""
    outcome: dict = {}

    def load() -> None:
        try:
            page = requests.get(base_url + PAGE, timeout=wait)
            if page.ok and 'name="username"' in page.text:
                outcome["took"] = time.monotonic() - started
            else:
                outcome["failed"] = f"HTTP {page.status_code}"
        except requests.RequestException as exc:
            outcome["failed"] = type(exc).__name__

    started = time.monotonic()
    thread = threading.Thread(target=load, daemon=True, name="page")
    thread.start()
    thread.join(wait)
    return outcome.get("took"), outcome.get("failed", "")


def slow_clients(server: LiveServer, sockets: int, wait: float, settle: float) -> dict:
    with server:
        alone, failed = time_page(server.base_url, 60)  # compiles the templates, warms the pool
        alone, failed = time_page(server.base_url, 60)
        assert alone is not None, f"the page did not load on an idle server: {failed}"
        client = SlowClient(server.port, sockets)
        try:
            began = time.monotonic()
            client.open()
            opening = time.monotonic() - began
            held, failed = time_page(server.base_url, wait)
            time.sleep(max(0.0, settle - (time.monotonic() - began)))
            still_open = client.still_open()
        finally:
            client.close()
    return {
        "alone": alone,
        "held": held,
        "failed": failed,
        "opened": len(client.sockets),
        "opening": opening,
        "still_open": still_open,
    }


def seconds(value: float | None, failed: str, wait: float) -> str:
    if value is not None:
        return f"{value:.2f} s"
    return f"failed ({failed})" if failed else f"> {wait:g} s"


# -- engine flood ----------------------------------------------------------------------------
class PeakMemory:
    """This process's RSS sampled every 10 ms: the peak above its level at the start."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="rss")

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self.before = self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.before) / 1e6


def read_bounded(url: str) -> str:
    """The app's engine: the answer ends as an EngineError; its code."""
    from app.llm.engines.ollama import OllamaEngine
    from app.llm.types import ChatMessage, EngineError, GenerationOptions

    engine = OllamaEngine(url, list_ttl=0)
    asked = [ChatMessage("user", "Bonjour")]
    try:
        for _ in engine.stream_chat(FLOOD_MODEL, asked, GenerationOptions(max_tokens=8), threading.Event()):
            pass
    except EngineError as error:
        return error.code
    return "ended without an error"


def read_unbounded(url: str) -> str:
    """The `ollama` client as the engine used it before c8e879b: the name of what ended it."""
    client = ollama.Client(url, timeout=httpx.Timeout(120, connect=3))
    try:
        for _ in client.chat(
            model=FLOOD_MODEL, messages=[{"role": "user", "content": "Bonjour"}], stream=True
        ):
            pass
    except Exception as exc:  # noqa: BLE001 - whatever ends it is the figure
        return type(exc).__name__
    finally:
        client.close()
    return "ended without an error"


def engine_flood(megabytes: int) -> dict:
    from tests.ollama_server import OllamaStandIn

    results = {}
    with OllamaStandIn() as standin:
        standin.flood_bytes = megabytes * 1024 * 1024
        for side, read in (("now", read_bounded), ("before", read_unbounded)):
            with PeakMemory() as memory:
                started = time.monotonic()
                ended = read(standin.url)
                took = time.monotonic() - started
            results[side] = {"growth_mb": memory.growth_mb, "seconds": took, "ended": ended}
            gc.collect()
    return results


# -- the report ------------------------------------------------------------------------------
def enough_descriptors(sockets: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = sockets + 200
    if soft < wanted and (hard == resource.RLIM_INFINITY or hard >= wanted):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    elif soft < wanted:
        sys.exit(f"ulimit -n is {soft} (at most {hard}): {sockets} sockets need {wanted}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000, help="sockets held from 127.0.0.2")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds a page is waited for")
    parser.add_argument("--settle", type=float, default=12.0, help="seconds before counting open sockets")
    parser.add_argument("--flood-mb", type=int, default=200, help="MB the Ollama host sends in one line")
    parser.add_argument("--smoke", action="store_true", help="a tiny run of both parts, for the tests")
    parser.add_argument("--serve-as-before", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_as_before:
        serve_as_before(args.serve_as_before)
        return
    if args.smoke:
        args.sockets, args.wait, args.settle, args.flood_mb = 30, 10.0, 0.0, 8
    enough_descriptors(args.sockets)

    from app.connections import IDLE_SECONDS, REQUEST_SECONDS
    from app.llm.types import ENGINE_LINE_MAX_BYTES
    from app.sizing import waitress_settings
    from config import Config

    kinds = f"{(args.sockets + 2) // 3} half-open, {(args.sockets + 1) // 3} trickling headers"
    kinds += f", {args.sockets // 3} idle keep-alive"
    print(f"A sign-in page from {LOOPBACK} while {OTHER_ADDRESS} holds {args.sockets} sockets ({kinds})")
    limit = waitress_settings(Config.MAX_STREAMS)["connection_limit"]
    sides = [
        ("before", f"plain waitress, the settings before 104521d: connection_limit {limit}", ServerAsBefore),
        (
            "now",
            f"flask serve: {Config.CONNECTIONS_PER_ADDRESS} connections per address, a request whole "
            f"within {REQUEST_SECONDS:g} s, idle closed after {IDLE_SECONDS:g} s",
            as_served_now,
        ),
    ]
    for side, label, make in sides:
        with tempfile.TemporaryDirectory() as folder:
            r = slow_clients(make(Path(folder) / "instance"), args.sockets, args.wait, args.settle)
        print(
            f"  {side:6} ({label}): page {r['alone']:.2f} s alone, "
            f"{seconds(r['held'], r['failed'], args.wait)} with the sockets held "
            f"({r['opened']} opened in {r['opening']:.1f} s); "
            f"{r['still_open']} of them still open {args.settle:g} s after the opening began"
        )

    print(f"An Ollama-protocol host sending {args.flood_mb} MB without a line break")
    flood = engine_flood(args.flood_mb)
    labels = {
        "before": "the ollama client as the engine used it before c8e879b: lines read whole",
        "now": f"the app's engine, a line bounded at {ENGINE_LINE_MAX_BYTES / 2**20:g} MiB",
    }
    for side in ("before", "now"):
        r = flood[side]
        print(
            f"  {side:6} ({labels[side]}): RSS +{r['growth_mb']:.0f} MB at the peak, "
            f"ended after {r['seconds']:.2f} s ({r['ended']})"
        )


if __name__ == "__main__":
    main()
