"""Reading an answer stream in a thread of its own, as a real server would serve it.

The test client runs requests in the caller's thread, where an unfinished stream keeps its
request's contexts pushed; a request sent meanwhile from another thread does not see them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.conftest import sse_events


class StreamInThread:
    """`open_stream()` sends the request; `id_header` names the header carrying the answer's id
    (what Stop takes)."""

    def __init__(self, open_stream: Callable, id_header: str) -> None:
        self.body = ""
        self.id: str | None = None
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(open_stream, id_header))
        self.thread.start()
        assert self.opened.wait(5)

    def _read(self, open_stream, id_header) -> None:
        response = open_stream()
        self.id = response.headers[id_header]
        self.opened.set()
        for chunk in response.response:
            self.body += chunk.decode() if isinstance(chunk, bytes) else chunk

    def wait_for_tokens(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while self.body.count("event: token") < count:
            assert time.monotonic() < deadline, self.body
            time.sleep(0.005)

    def join(self, timeout: float = 5.0) -> list[tuple[str, dict]]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the stream did not end"
        return sse_events(self.body)
