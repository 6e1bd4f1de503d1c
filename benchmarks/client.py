"""A client for the app's documented HTTP interface, as the chat page itself uses it.

Used by the end-to-end tests and the benchmarks; it only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

CSRF_INPUT = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf-token" content="([^"]+)"'
)
NEW_API_KEY = re.compile(r"data-key>(cau_[\w-]+)<")  # the Settings page shows a new key once


def require_loopback(base_url: str) -> None:
    host = urlsplit(base_url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise ValueError(f"refusing to send traffic to {host}: only 127.0.0.1 is allowed")


class RefusedError(RuntimeError):
    """A message the server did not take: its status, and its `Retry-After` (seconds) if any."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"{response.status_code}: {response.text[:300]}")
        self.status = response.status_code
        retry_after = response.headers.get("Retry-After", "")
        self.retry_after = float(retry_after) if retry_after.isdigit() else None


@dataclass
class StreamEvent:
    name: str
    data: dict
    at: float  # time.perf_counter() when the event was read
    seq: int | None = None  # the frame's `id:`: 1, 2, 3… within an answer


@dataclass
class StreamedAnswer:
    message_id: int
    events: list[StreamEvent] = field(default_factory=list)
    sent_at: float = 0.0

    @property
    def tokens(self) -> list[StreamEvent]:
        return [e for e in self.events if e.name == "token"]

    @property
    def text(self) -> str:
        return "".join(e.data["text"] for e in self.tokens)

    @property
    def end(self) -> StreamEvent | None:
        return next((e for e in self.events if e.name in ("done", "error")), None)


def _parse_frame(block: str) -> StreamEvent | None:
    """One `event: NAME` + `data: JSON` frame; None for comments such as `: ping`."""
    name, data, seq = "message", [], None
    for line in block.split("\n"):
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif line.startswith("id:"):
            seq = int(line[3:].strip())
    return StreamEvent(name, json.loads("\n".join(data)), time.perf_counter(), seq) if data else None


class ChatClient:
    def __init__(self, base_url: str, timeout: float = 120) -> None:
        require_loopback(base_url)
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.timeout = timeout
        self.csrf_token = ""

    def url(self, path: str) -> str:
        return self.base_url + path

    def _fetch_csrf(self, path: str) -> str:
        page = self.session.get(self.url(path), timeout=self.timeout)
        match = CSRF_INPUT.search(page.text)
        if not match:
            raise RuntimeError(f"no CSRF token on {path} ({page.status_code})")
        return match.group(1) or match.group(2)

    def register(self, username: str, password: str) -> requests.Response:
        token = self._fetch_csrf("/register")
        response = self.session.post(
            self.url("/register"),
            data={"csrf_token": token, "username": username, "password": password, "confirm": password},
            timeout=self.timeout,
        )
        self.csrf_token = self._fetch_csrf("/")
        return response

    def login(self, username: str, password: str) -> requests.Response:
        token = self._fetch_csrf("/login")
        response = self.session.post(
            self.url("/login"),
            data={"csrf_token": token, "username": username, "password": password},
            timeout=self.timeout,
        )
        if response.ok:
            self.csrf_token = self._fetch_csrf("/")
        return response

    def create_api_key(self, name: str) -> str:
        """A new API key, made on the Settings page as a person makes one; the key itself."""
        page = self.session.post(
            self.url("/settings/api-keys"),
            data={"csrf_token": self.csrf_token, "name": name},
            timeout=self.timeout,
        )
        match = NEW_API_KEY.search(page.text)
        if not match:
            raise RuntimeError(f"no new API key on the Settings page ({page.status_code})")
        return match.group(1)

    def post_json(self, path: str, body: dict, **kwargs) -> requests.Response:
        headers = {"X-CSRFToken": self.csrf_token, "Accept": "application/json"}
        return self.session.post(self.url(path), json=body, headers=headers, timeout=self.timeout, **kwargs)

    def create_conversation(self, model: str | None = None) -> int:
        response = self.post_json("/conversations", {"model": model} if model else {})
        response.raise_for_status()
        return response.json()["id"]

    def messages(self, conversation_id: int) -> list[dict]:
        response = self.session.get(
            self.url(f"/conversations/{conversation_id}/messages"), timeout=self.timeout
        )
        response.raise_for_status()
        return response.json()["messages"]

    def stream_answer(
        self, conversation_id: int, content: str, document_ids: tuple[int, ...] = ()
    ) -> Iterator[StreamEvent | StreamedAnswer]:
        """Send a message (with the attachments `document_ids`, uploaded before); yield the
        answer record first, then each event as it arrives."""
        sent_at = time.perf_counter()
        body = {"content": content, **({"document_ids": list(document_ids)} if document_ids else {})}
        response = self.session.post(
            self.url(f"/conversations/{conversation_id}/messages"),
            json=body,
            headers={"X-CSRFToken": self.csrf_token, "Accept": "text/event-stream"},
            stream=True,
            timeout=self.timeout,
        )
        return self._events(response, sent_at)

    def stream_again(self, message_id: int, after: int = 0) -> Iterator[StreamEvent | StreamedAnswer]:
        """Follow an answer again (a reload, another tab), from the event after `after`."""
        response = self.session.get(
            self.url(f"/messages/{message_id}/events"),
            headers={"Accept": "text/event-stream", "Last-Event-ID": str(after)},
            stream=True,
            timeout=self.timeout,
        )
        return self._events(response, time.perf_counter())

    def follow(self, message_id: int, after: int = 0) -> StreamedAnswer:
        """An answer's events from the one after `after` to its end."""
        stream = self.stream_again(message_id, after)
        answer = next(stream)
        for _ in stream:
            pass
        return answer

    def _events(self, response: requests.Response, sent_at: float) -> Iterator[StreamEvent | StreamedAnswer]:
        if response.status_code != 200:
            raise RefusedError(response)
        answer = StreamedAnswer(int(response.headers["X-Message-Id"]), sent_at=sent_at)
        yield answer
        with response:
            # Read whatever has arrived (no fixed chunk size: reading byte by byte would spend
            # the CPU that the model's decode shares), then split it into frames.
            buffer = ""
            for chunk in response.iter_content(chunk_size=None, decode_unicode=True):
                buffer += chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    event = _parse_frame(block)
                    if event is not None:
                        answer.events.append(event)
                        yield event

    def ask(self, conversation_id: int, content: str, document_ids: tuple[int, ...] = ()) -> StreamedAnswer:
        """Send a message and read its whole answer."""
        stream = self.stream_answer(conversation_id, content, document_ids)
        answer = next(stream)
        for _ in stream:
            pass
        return answer
