"""Clients for the fault tests: steady load that records every request, and hostile clients; and an
app whose kept-alive connections all go stale.

All of them talk to 127.0.0.1 only, are bounded in requests and time, and close what they open.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http.client
import io
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import websockets

REQUEST_TIMEOUT_S = 30
# The steady load of the fault tests: short waits on I/O, back to back.
STEADY_PATH = "/api/io?ms=20"
STEADY_USERS = 16


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: the connection failed (reset, closed without an answer)
    error: str = ""
    body: bytes = b""  # kept when the load asks for it (SteadyLoad.keep_bodies)

    @property
    def failed(self) -> bool:
        return self.status != 200

    @property
    def cut(self) -> bool:
        """The response began (its headers arrived) and its body stopped short."""
        return self.error.startswith("IncompleteRead")


@dataclass
class SteadyLoad:
    """`users` threads asking for `path` back to back on keep-alive connections, until stopped."""

    port: int
    path: str
    users: int
    pause_after_failure: float = 0.0  # a client that got an error waits this long before asking again
    keep_bodies: bool = False
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _user(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                connection.request("GET", self.path, headers={"Host": "localhost"})
                response = connection.getresponse()
                body = response.read()
                outcome = Outcome(started, time.monotonic(), response.status, body=body if self.keep_bodies else b"")
                if response.status != 200 or response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException) as error:
                outcome = Outcome(started, time.monotonic(), None, repr(error))
                connection.close()
            with self._lock:
                self.outcomes.append(outcome)
            if outcome.failed:
                self._stop.wait(self.pause_after_failure)
        connection.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[SteadyLoad]:
        threads = [threading.Thread(target=self._user, daemon=True) for _ in range(self.users)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=REQUEST_TIMEOUT_S + 5)

    def failures(self) -> list[Outcome]:
        with self._lock:
            return [outcome for outcome in self.outcomes if outcome.failed]

    def count(self, since: float = 0.0) -> int:
        """How many requests were answered (or failed), of those sent after `since` (monotonic)."""
        with self._lock:
            return sum(outcome.started > since for outcome in self.outcomes)


def slow_clients(port: int, count: int) -> list[socket.socket]:
    """`count` connections that each send the start of a request and then stall, as slowloris does:
    half stop inside the headers, half inside a declared body."""
    opened = []
    for index in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        if index % 2:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        else:
            client.sendall(b"POST /api/io HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\nx")
        opened.append(client)
    return opened


def trickle(clients: list[socket.socket]) -> int:
    """One more byte on each slow connection; returns how many nginx still holds open."""
    alive = 0
    for client in clients:
        with contextlib.suppress(OSError):
            client.sendall(b"x")
            alive += 1
    return alive


def send_large_body(port: int, size: int, chunked: bool) -> tuple[int | None, int]:
    """POST `size` bytes of body (declared, or chunked without a length) until nginx answers or closes.

    Returns the status nginx answered (None if it only closed) and how many body bytes went out.
    """
    head = "POST /api/io HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    piece = b"x" * (1024 * 1024)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(head.encode())
        client.setblocking(False)
        answer = b""
        while sent < size:
            with contextlib.suppress(BlockingIOError):
                answer += client.recv(65536)
            if answer:
                break
            try:
                client.setblocking(True)
                client.settimeout(10)
                client.sendall(chunk)
                client.setblocking(False)
            except OSError:  # nginx closed the connection after answering
                break
            sent += len(piece)
        client.setblocking(True)
        client.settimeout(10)
        with contextlib.suppress(OSError):
            while not answer.endswith(b"</html>\r\n") and (data := client.recv(65536)):
                answer += data
    status = int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return status, sent


def raw_get(port: int, target: str) -> tuple[int | None, bytes]:
    """GET with the request target sent byte for byte (no client-side normalisation of ../ or %2e)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                answer += data
    if not answer.startswith(b"HTTP/1.1 "):
        return None, answer  # nginx's 444: the connection closed without an answer
    return int(answer.split()[1]), answer.partition(b"\r\n\r\n")[2]


@dataclass
class StaleUpstream:
    """An app whose every kept-alive connection is stale: it answers the first request on a
    connection, then closes the connection unanswered when the next request arrives on it, as a
    worker does that exits just as nginx sends on its idle connection. First answers take
    FIRST_ANSWER_S, so that requests sent at once each hold a connection of their own."""

    FIRST_ANSWER_S = 0.3

    port: int = 0
    connections: int = 0
    dropped: int = 0  # requests that met a closed connection
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _serve(self, connection: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        with connection, connection.makefile("rb") as reader:
            answered = False
            while head := _read_head(reader):
                reader.read(_content_length(head))
                if answered:
                    with self._lock:
                        self.dropped += 1
                    return
                time.sleep(self.FIRST_ANSWER_S)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                answered = True

    @contextlib.contextmanager
    def running(self) -> Iterator[StaleUpstream]:
        upstream = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                upstream._serve(self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def _read_head(reader: io.BufferedReader) -> bytes:
    """A request's line and headers, or b"" once the peer has closed."""
    head = b""
    while (line := reader.readline()) not in {b"", b"\r\n"}:
        head += line
    return head


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


REOPEN_PAUSE_S = 0.2


@dataclass
class OpenWebSockets:
    """`count` WebSockets held open on /ws/echo through nginx, each opened again REOPEN_PAUSE_S after
    it closed, as the sample page does: the close codes they got, and how often they opened."""

    port: int
    count: int
    closes: collections.Counter = field(default_factory=collections.Counter)
    opened: int = 0
    failed_opens: int = 0
    holding: int = 0  # open at this moment

    async def _hold(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                url = f"ws://localhost:{self.port}/ws/echo"
                websocket = await websockets.connect(url, host="127.0.0.1", open_timeout=30)
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
                self.failed_opens += 1
                await asyncio.sleep(REOPEN_PAUSE_S)
                continue
            self.opened += 1
            self.holding += 1
            closed = asyncio.ensure_future(websocket.wait_closed())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not closed.done():
                await websocket.close()
                stopping.cancel()
                return
            stopping.cancel()
            self.holding -= 1
            self.closes[websocket.close_code] += 1
            await asyncio.sleep(REOPEN_PAUSE_S)

    @contextlib.contextmanager
    def running(self) -> Iterator[OpenWebSockets]:
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()

        async def hold_all() -> None:
            await asyncio.gather(*(self._hold(stop) for _ in range(self.count)))

        thread = threading.Thread(target=loop.run_until_complete, args=(hold_all(),), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=REQUEST_TIMEOUT_S)
            loop.close()
