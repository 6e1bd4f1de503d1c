"""Reading an answer stream in a thread of its own, as a real server would serve it.

The test client runs requests in the caller's thread, where an unfinished stream keeps its
request's contexts pushed; a request sent meanwhile from another thread does not see them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.conftest import sse_events
from tests.patience import patience

# Threads on a busy machine take their time: a wait for what must happen is long, and costs
# nothing when it does (tests/patience.py).
WAIT_SECONDS = patience(15.0)


class StreamInThread:
    """`open_stream()` sends the request; `id_header` names the header carrying the answer's id
    (what Stop takes)."""

    def __init__(self, open_stream: Callable, id_header: str) -> None:
        self.body = ""
        self.id: str | None = None
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(open_stream, id_header))
        self.thread.start()
        assert self.opened.wait(WAIT_SECONDS)

    def _read(self, open_stream, id_header) -> None:
        response = open_stream()
        self.id = response.headers[id_header]
        self.opened.set()
        for chunk in response.response:
            self.body += chunk.decode() if isinstance(chunk, bytes) else chunk

    def wait_for_tokens(self, count: int) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while self.body.count("event: token") < count:
            assert time.monotonic() < deadline, self.body
            time.sleep(0.005)

    def join(self, timeout: float = WAIT_SECONDS) -> list[tuple[str, dict]]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the stream did not end"
        return sse_events(self.body)
