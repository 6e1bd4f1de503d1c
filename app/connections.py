"""Waitress's connections, guarded against slow and idle clients (issue 16, item 15).

Waitress reads a request without a thread, so a socket that never finishes its request costs
no thread; but it holds one of `connection_limit` places, and once they are taken waitress stops
accepting, for everyone. Its own timeout (`channel_timeout`) counts from a connection's last
byte, so a client that sends a header byte every few seconds keeps its place forever. Here:

- a request must be whole within REQUEST_SECONDS of its first byte (or of the connection's
  opening, when nothing came); a body only needs to keep arriving;
- a connection idle between requests (keep-alive) is closed after IDLE_SECONDS;
- a connection whose request is being answered is never closed here: an answer's event stream
  lasts as long as the answer (the app caps them per person, MAX_STREAMS_PER_USER);
- served directly, one address holds at most `per_address` connections; the ones beyond are
  closed as soon as accepted. Behind a proxy every client has the proxy's address: no cap then
  (the proxy does that job, see the README's nginx settings).
"""

from __future__ import annotations

import logging
import time

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

log = logging.getLogger(__name__)

REQUEST_SECONDS = 10.0
# Browsers open a new connection when theirs was closed; Apache's KeepAliveTimeout is 5 s too.
IDLE_SECONDS = 5.0
# How often an address refused for its number of connections is written to the log.
REFUSAL_LOG_SECONDS = 60.0


class GuardedChannel(HTTPChannel):
    """A connection that remembers when its current request began and whether it was served."""

    request_began = 0.0
    served = False

    def __init__(self, server, sock, addr, adj, map=None) -> None:
        super().__init__(server, sock, addr, adj, map=map)
        self.request_began = self.creation_time

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_began = time.time()
        return super().received(data)

    def service(self) -> None:
        self.served = True
        super().service()

    def overdue(self, now: float) -> bool:
        """Whether the connection holds a place without doing its share."""
        if self.requests:
            return False  # being answered: a stream may last as long as its answer
        if self.request is not None and self.request.headers_finished:
            return now - self.last_activity > REQUEST_SECONDS  # a body arriving slowly
        if self.request is not None or not self.served:
            return now - self.request_began > REQUEST_SECONDS  # no whole request yet
        if self.total_outbufs_len:
            return now - self.last_activity > REQUEST_SECONDS  # a reader taking its time
        return now - self.last_activity > IDLE_SECONDS  # keep-alive, idle


class GuardedServer(TcpWSGIServer):
    channel_class = GuardedChannel
    per_address = 0  # set by create_server; 0: no cap
    refusals_logged = 0.0

    def maintenance(self, now: float) -> None:
        for channel in list(self.active_channels.values()):
            if isinstance(channel, GuardedChannel) and channel.overdue(now):
                channel.will_close = True

    def handle_accept(self) -> None:
        if self.per_address:
            try:
                accepted = self.accept()
            except OSError:
                return
            if accepted is None:
                return
            conn, addr = accepted
            if self._connections_of(addr[0]) >= self.per_address:
                conn.close()
                self._log_refusal(addr[0])
                return
            try:
                self.set_socket_options(conn)
            except OSError:
                conn.close()
                return
            self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)
            return
        super().handle_accept()

    def _connections_of(self, host: str) -> int:
        return sum(1 for channel in self.active_channels.values() if channel.addr and channel.addr[0] == host)

    def _log_refusal(self, host: str) -> None:
        now = time.monotonic()
        if now - self.refusals_logged > REFUSAL_LOG_SECONDS:
            self.refusals_logged = now
            log.warning("%s holds %d connections: its new ones are closed", host, self.per_address)


def create_server(app, socket_map: dict, host: str, port: int, per_address: int, **settings):
    """Waitress's `create_server` for TCP, with GuardedServer on every address listened on."""
    adj = Adjustments(host=host, port=port, **settings)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    servers = []
    for sockinfo in adj.listen:
        server = GuardedServer(app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo)
        server.per_address = per_address
        servers.append(server)
    if len(servers) == 1:
        return servers[0]
    listening = [(s.effective_host, s.effective_port) for s in servers]
    return MultiSocketServer(socket_map, adj, listening, dispatcher, log_info=servers[0].log_info)
