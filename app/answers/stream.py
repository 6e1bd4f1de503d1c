"""Following an answer over Server-Sent Events, from any point of it.

A subscription replays the answer's events after the one it names (`Last-Event-ID`, or the
`after` query parameter; 0: from the start), then follows it live, with a `: ping` comment at
once (so the headers leave) and every PING_SECONDS while nothing else is sent. Leaving closes
the subscription only; the answer goes on (but for `watched_only` answers). A subscription
also ends when its session does (signed out elsewhere, a new password), and when a newer one of
the same person takes its place (`closed`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

from flask import Response, current_app, request, stream_with_context

from app.answers.live import AnswerEvent, LiveAnswer
from app.answers.messages import session_ended_message, stream_closed_message
from app.answers.registry import StreamTicket
from app.llm.types import Outcome

PING = ": ping\n\n"
TICK = 0.25  # how often a quiet subscription looks at its client and its session
# Once text flows, events go out at most this often, several in one write: each write wakes
# this thread and the server's, and on a small machine those wake-ups are taken from the
# engine's own threads. 25 ms is under a frame of the page's rendering; the first token is
# never held back.
COALESCE = 0.025
SESSION_CHECK_SECONDS = 2.0


def frame(event: str, data: dict, seq: int | None = None) -> str:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class ChatFrames:
    """The answer stream of the chat's HTTP interface (the README's vocabulary)."""

    def event(self, event: AnswerEvent) -> str:
        return frame(event.name, event.data, event.seq)

    def cut(self, message: str) -> str:
        """This subscription ends before the answer does: the session ended."""
        return frame("error", {"message": message, "cut": True})

    def closed(self, message: str) -> str:
        """A newer subscription of the same person took this one's place."""
        return frame("closed", {"reason": "another_page", "message": message})


def resume_point() -> int:
    """The last event the subscriber has: `Last-Event-ID`, else `?after=`; 0 for none."""
    for value in (request.headers.get("Last-Event-ID", ""), request.args.get("after", "")):
        if value.strip().isdigit():
            return int(value.strip())
    return 0


class Subscription:
    """One reader of one answer, over one HTTP response."""

    def __init__(
        self,
        live: LiveAnswer,
        ticket: StreamTicket,
        after: int,
        frames,
        client_gone: Callable[[], bool],
        readable: Callable[[], bool] | None,
        ping_every: float,
        on_close: Callable[[StreamTicket], None],
    ) -> None:
        self.live = live
        self.ticket = ticket
        self.after = after
        self.frames = frames
        self.client_gone = client_gone
        self.readable = readable
        self.ping_every = ping_every
        self._on_close = on_close
        self._closed = False
        self._saw_the_end = False
        self._lock = threading.Lock()
        live.watch()

    def __iter__(self) -> Iterator[str]:
        last_sent = last_checked = time.monotonic()
        last_text = 0.0  # when text last went out
        seq = self.after
        try:
            yield PING
            while True:
                events = self.live.after(seq, TICK)
                wait = COALESCE - (time.monotonic() - last_text)
                if events and last_text and wait > 0 and not events[-1].final:
                    time.sleep(wait)  # a few more tokens, in the same write
                    events = self.live.after(seq, 0)
                out = []
                for event in events:
                    seq = event.seq
                    out.append(self.frames.event(event))
                    if event.name in ("token", "thinking"):
                        last_text = time.monotonic()
                if out and "".join(out):
                    last_sent = time.monotonic()
                    yield "".join(out)
                if events and events[-1].final:
                    self._saw_the_end = True
                    return
                if not events and self.live.ended.is_set():
                    return  # resumed after its last event: nothing more will come
                now = time.monotonic()
                if self.ticket.closed.is_set():
                    yield self.frames.closed(stream_closed_message())
                    return
                if self.readable is not None and now - last_checked >= SESSION_CHECK_SECONDS:
                    last_checked = now
                    if not self.readable():
                        yield self.frames.cut(session_ended_message())
                        return
                if self.client_gone():
                    return
                if now - last_sent >= self.ping_every:
                    last_sent = now
                    yield PING
        finally:
            self.close()

    def close(self) -> None:
        """Once, whether the stream ran or its response was closed before it began."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.live.unwatch()
        self._on_close(self.ticket)
        if self.live.watched_only and not self._saw_the_end:
            self.live.cancel(Outcome.DISCONNECTED)  # nobody can come back to it


def sse_response(
    live: LiveAnswer,
    ticket: StreamTicket,
    after: int = 0,
    frames=None,
    readable: Callable[[], bool] | None = None,
    headers: dict | None = None,
) -> Response:
    """The answer as an event stream, from the event after `after`. An answer that has ended
    is sent whole at once: no thread waits on it."""
    from app.answers import registry

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
    if live.ended.is_set():
        registry().close_stream(ticket)
        frames = frames or ChatFrames()
        body = PING + "".join(frames.event(event) for event in live.events[after:])
        return Response(body, mimetype="text/event-stream", headers=headers)
    subscription = Subscription(
        live,
        ticket,
        after,
        frames or ChatFrames(),
        client_gone=request.environ.get("waitress.client_disconnected", lambda: False),
        readable=readable,
        ping_every=current_app.config["PING_SECONDS"],
        on_close=registry().close_stream,
    )
    response = Response(
        stream_with_context(iter(subscription)), mimetype="text/event-stream", headers=headers
    )
    response.call_on_close(subscription.close)
    return response
