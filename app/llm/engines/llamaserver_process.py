"""llama.cpp's own server: one process per loaded model, started, watched and stopped by the app.

Each process listens on 127.0.0.1 only, on a free port, behind an API key of its own that is
passed in its environment (the command line is what `ps` shows every user), with its web page
off. It dies with the app: the kernel sends it SIGKILL when the thread that started it ends
(PR_SET_PDEATHSIG, set by util-linux's `setpriv`), so one thread that lives as long as the app
starts them all; one left behind anyway (the app killed before that was set) is found by its
pid file and killed when the app starts again. A process that dies is started again at once;
one that dies three times within a minute is left stopped, with the end of its log, for the
admin, and tried again at the next answer after a pause.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
CRASHES_BEFORE_GIVING_UP = 3  # within CRASH_WINDOW seconds
CRASH_WINDOW = 60.0
RETRY_AFTER_GIVING_UP = 30.0  # seconds before an answer may try a crashing server again
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL
LOG_TAIL = 1500  # characters of a server's log shown to the admin when it fails
ALIAS_PREFIX = "causerie/"  # in the command line, so a server left behind can be recognised
# A model's server is restarted for a new plan (the admin changed its context, its threads, the
# prompt cache) once it is idle and has run this long: answers asked before the change, still
# queued, are written by the running server as it is, rather than switching it back and forth.
PLAN_SETTLE = 30.0


@dataclass(frozen=True)
class ServerPlan:
    """How one model's server runs: what the admin and this machine's memory decided. A model
    whose plan changes (the admin's context or threads, the prompt cache switch) is restarted
    once the answers it is writing have ended."""

    model_id: str
    model_path: str
    threads: int
    slots: int  # answers decoded together
    context: int  # tokens per slot
    cache_mb: int  # RAM for the prompts evicted from the slots (--cache-ram); 0: none
    slots_wanted: int  # LLAMA_SLOTS, when memory made `slots` fewer


class ServerFailed(Exception):
    """The server could not be started, or keeps dying: `detail` says why, for the admin;
    `timeout`: the seconds it was given to load, when that was the trouble."""

    def __init__(self, detail: str, timeout: float = 0.0) -> None:
        super().__init__(detail)
        self.detail = detail
        self.timeout = timeout


class ServerProcess:
    """One running llama-server."""

    def __init__(self, plan: ServerPlan, port: int, key: str, popen: subprocess.Popen, log_path: Path):
        self.plan = plan
        self.port = port
        self.key = key
        self.popen = popen
        self.log_path = log_path
        self.started_at = time.monotonic()
        self.ready = False
        self.stopping = False
        self.answering = 0  # answers holding it (it is not restarted under them)
        self.last_used = time.monotonic()
        self.props: dict = {}

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 10.0):
        """A JSON request to the server: (status, decoded body)."""
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
            connection.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = connection.getresponse()
            raw = response.read()
            try:
                return response.status, json.loads(raw) if raw else {}
            except ValueError:
                return response.status, {"error": raw[:300].decode("utf-8", "replace")}
        finally:
            connection.close()

    def log_tail(self) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL))
                return f.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _slug(model_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)[:100]


def serving_flags(threads: int, slots: int, context: int, cache_mb: int) -> list[str]:
    """How a llama-server serves (the model and the port aside); benchmarks/serving.py starts
    its reference server with exactly these."""
    return [
        "--threads", str(threads),
        "--threads-batch", str(threads),
        "--parallel", str(slots),
        "--ctx-size", str(context * slots),
        # Each slot its own context: one long conversation cannot take the others' room,
        # and the context trimming (app.llm.context) can count on `context` per slot.
        "--no-kv-unified",
        "--cache-ram", str(cache_mb),
        # Saving idle slots to the RAM cache is where llama.cpp's open reports of one
        # conversation restored into another lie (#27148): off until proven safe here.
        "--no-cache-idle-slots",
        "--no-webui",
        "--fit", "off",  # the context and slots asked for, not what llama.cpp guesses
        "--poll", "0",  # idle threads sleep rather than spin: the cores are shared
    ]  # fmt: skip


class Servers:
    """Every llama-server of this app. `acquire(plan)` gives a ready server for a model (started
    or restarted as needed) and `release()` gives it back; a background thread starts them and
    watches them."""

    def __init__(self, binary: Path, run_dir: Path, load_timeout: float = 600.0, max_loaded: int = 2) -> None:
        self.binary = binary
        self.run_dir = run_dir
        self.load_timeout = load_timeout
        self.max_loaded = max_loaded
        self._servers: dict[str, ServerProcess] = {}
        self._failed: dict[str, tuple[str, float]] = {}  # model -> (why, when it may be tried again)
        self._crashes: dict[str, list[float]] = {}
        self._cond = threading.Condition()
        self._to_start: list[ServerPlan] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- for the engine ----------------------------------------------------------------------
    def ready(self, plan: ServerPlan) -> bool:
        with self._cond:
            server = self._servers.get(plan.model_id)
            # alive(): a server that has just died is not ready, even before the watcher sees it
            return server is not None and server.ready and server.plan == plan and server.alive()

    def running(self) -> dict[str, ServerProcess]:
        with self._cond:
            return {model: s for model, s in self._servers.items() if s.ready}

    def failure(self, model_id: str) -> str:
        with self._cond:
            return self._failed.get(model_id, ("", 0.0))[0]

    def acquire(self, plan: ServerPlan, cancelled: threading.Event) -> ServerProcess | None:
        """A ready server with this plan, started if needed; None when `cancelled` meanwhile.

        Raises ServerFailed when it cannot be started (or not within the load timeout)."""
        deadline = time.monotonic() + self.load_timeout
        with self._cond:
            self._ensure_thread()
            while True:
                if self._closed:
                    raise ServerFailed("the app is stopping")
                if cancelled.is_set():
                    return None
                server = self._servers.get(plan.model_id)
                dead = server is not None and not server.alive()  # the watcher starts it again
                if server is not None and not dead and server.plan != plan:
                    settled = time.monotonic() - server.started_at >= PLAN_SETTLE
                    if server.answering == 0 and settled:
                        self._stop_locked(server)  # a new plan: the old server goes once idle
                        server = None
                    elif server.ready:
                        server.answering += 1  # written as the running server is (see PLAN_SETTLE)
                        server.last_used = time.monotonic()
                        return server
                if server is None:
                    why, retry_at = self._failed.get(plan.model_id, ("", 0.0))
                    if why and time.monotonic() < retry_at:
                        raise ServerFailed(why)
                    self._failed.pop(plan.model_id, None)
                    if plan not in self._to_start:
                        self._to_start.append(plan)
                        self._cond.notify_all()
                elif server.ready and server.plan == plan and not dead:
                    server.answering += 1
                    server.last_used = time.monotonic()
                    return server
                elif plan.model_id in self._failed:
                    raise ServerFailed(self._failed[plan.model_id][0])
                if time.monotonic() > deadline:
                    raise ServerFailed(f"not ready within {self.load_timeout:.0f} s", self.load_timeout)
                self._cond.wait(0.1)

    def release(self, server: ServerProcess) -> None:
        with self._cond:
            server.answering = max(0, server.answering - 1)
            server.last_used = time.monotonic()
            self._cond.notify_all()

    def stop(self, model_id: str, force: bool = False) -> bool:
        """Stop a model's server (unload); False when none runs, or it is answering and not
        `force`d."""
        with self._cond:
            server = self._servers.get(model_id)
            if server is None or (server.answering and not force):
                return False
            self._stop_locked(server)
        return True

    def close(self) -> None:
        """Stop every server (the app is stopping)."""
        with self._cond:
            self._closed = True
            for server in list(self._servers.values()):
                self._stop_locked(server)
            self._cond.notify_all()

    # -- the background thread ---------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._kill_left_behind()
        if self._thread is None or not self._thread.is_alive():
            # It starts every server and lives as long as the app: the kernel kills a server
            # when the thread that started it ends (PR_SET_PDEATHSIG).
            self._thread = threading.Thread(target=self._watch, name="llama-servers", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while True:
            try:
                with self._cond:
                    if self._closed:
                        return
                    plans, self._to_start = self._to_start, []
                for plan in plans:
                    self._start(plan)
                self._look_after()
                with self._cond:
                    starting = any(not s.ready for s in self._servers.values())
                    if not self._to_start:
                        self._cond.wait(0.1 if starting else 0.5)
            except Exception:  # this thread must outlive any one failure: its servers die with it
                log.exception("looking after the llama-servers failed a round")
                time.sleep(1.0)

    def _look_after(self) -> None:
        """Notice servers that became ready or died."""
        with self._cond:
            servers = list(self._servers.values())
        for server in servers:
            if server.stopping:
                continue
            if not server.alive():
                self._died(server)
            elif not server.ready:
                self._check_ready(server)

    def _check_ready(self, server: ServerProcess) -> None:
        try:
            status, _ = server.call("GET", "/health", timeout=1.0)
            if status != 200:
                return
            _, props = server.call("GET", "/props", timeout=5.0)
        except (OSError, http.client.HTTPException):
            return  # not listening yet
        with self._cond:
            server.props = props if isinstance(props, dict) else {}
            server.ready = True
            self._cond.notify_all()
        log.info(
            "llama-server for %s ready in %.1f s (pid %d, port %d, %d slots of %d tokens)",
            server.plan.model_id,
            time.monotonic() - server.started_at,
            server.pid,
            server.port,
            server.plan.slots,
            server.plan.context,
        )

    def _died(self, server: ServerProcess) -> None:
        tail = server.log_tail()
        code = server.popen.returncode
        plan = server.plan
        now = time.monotonic()
        with self._cond:
            if self._servers.get(plan.model_id) is not server:
                return
            del self._servers[plan.model_id]
            crashes = [t for t in self._crashes.get(plan.model_id, []) if now - t < CRASH_WINDOW] + [now]
            self._crashes[plan.model_id] = crashes
            _remove(self._pid_file(plan.model_id))
            if not server.ready:  # it never came up: a bad file, too little memory, a bad option
                self._failed[plan.model_id] = (
                    f"llama-server exited ({code}) while loading: {tail[-LOG_TAIL:]}",
                    now + RETRY_AFTER_GIVING_UP,
                )
            elif len(crashes) >= CRASHES_BEFORE_GIVING_UP:
                self._failed[plan.model_id] = (
                    f"llama-server stopped {len(crashes)} times within a minute ({code}): {tail[-LOG_TAIL:]}",
                    now + RETRY_AFTER_GIVING_UP,
                )
            else:
                self._to_start.append(plan)  # answered at once: the next answer finds it loading
            self._cond.notify_all()
        log.error(
            "llama-server for %s (pid %d) died with %s: %s", plan.model_id, server.pid, code, tail[-500:]
        )

    def _start(self, plan: ServerPlan) -> None:
        with self._cond:
            if self._closed or plan.model_id in self._servers:
                return
            self._make_room()
        slug = _slug(plan.model_id)
        log_path = self.run_dir / f"{slug}.log"
        key = secrets.token_urlsafe(24)
        port = _free_port()
        arguments = [
            str(self.binary),
            "--model",
            plan.model_path,
            "--alias",
            ALIAS_PREFIX + slug,
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            *serving_flags(plan.threads, plan.slots, plan.context, plan.cache_mb),
        ]
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LD_LIBRARY_PATH": str(self.binary.parent),
            "LLAMA_API_KEY": key,  # not in the arguments: `ps` shows those to every user
        }
        setpriv = shutil.which("setpriv")
        if setpriv:
            arguments = [setpriv, "--pdeathsig", "KILL", "--", *arguments]
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            output = log_path.open("wb")
        except OSError as exc:
            with self._cond:
                self._failed[plan.model_id] = (f"cannot write {log_path}: {exc}", time.monotonic() + 5)
                self._cond.notify_all()
            return
        with output:
            try:
                popen = subprocess.Popen(
                    arguments,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env=environment,
                    start_new_session=True,  # the terminal's Ctrl-C is the app's to handle
                    preexec_fn=None if setpriv else _die_with_parent,
                )
            except OSError as exc:
                with self._cond:
                    self._failed[plan.model_id] = (f"cannot start {self.binary}: {exc}", time.monotonic() + 5)
                    self._cond.notify_all()
                return
        with self._cond:
            self._servers[plan.model_id] = ServerProcess(plan, port, key, popen, log_path)
            self._cond.notify_all()
        try:  # how a later run finds it, should this one be killed before it can stop it
            self._pid_file(plan.model_id).write_text(str(popen.pid))
        except OSError:
            log.warning("llama-server %d: its pid file could not be written", popen.pid)
        log.info(
            "starting llama-server for %s: %d slots of %d tokens", plan.model_id, plan.slots, plan.context
        )

    def _make_room(self) -> None:
        """Stop the least recently used idle servers beyond `max_loaded` (the caller holds
        the lock)."""
        idle = sorted((s for s in self._servers.values() if not s.answering), key=lambda s: s.last_used)
        while len(self._servers) >= self.max_loaded and idle:
            self._stop_locked(idle.pop(0))

    def _stop_locked(self, server: ServerProcess) -> None:
        server.stopping = True
        if self._servers.get(server.plan.model_id) is server:
            del self._servers[server.plan.model_id]
        _remove(self._pid_file(server.plan.model_id))
        threading.Thread(target=_terminate, args=(server.popen,), daemon=True).start()
        self._cond.notify_all()

    def _pid_file(self, model_id: str) -> Path:
        return self.run_dir / f"{_slug(model_id)}.pid"

    def _kill_left_behind(self) -> None:
        """Servers an earlier run left (killed before it could stop them): they hold a model's
        memory for nothing, and a port."""
        if not self.run_dir.is_dir():
            return
        for pid_file in self.run_dir.glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                pid = int(pid_file.read_text().strip())
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                ours = any(b"llama-server" in part for part in command) and any(
                    part.startswith(ALIAS_PREFIX.encode()) for part in command
                )
                if ours:
                    os.kill(pid, signal.SIGKILL)
                    log.warning("killed llama-server %d left behind by an earlier run", pid)
            _remove(pid_file)


def _terminate(popen: subprocess.Popen) -> None:
    popen.terminate()
    try:
        popen.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, without setpriv only
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
