"""The worker's log server: serves ``$TRADEWIND_HOME/logs/...`` to signed requests.

``GET /log/<path relative to the log folder>?expires=…&signature=…[&offset=N]`` answers
the bytes of the file from ``offset`` on (at most :data:`MAX_CHUNK` of them) and, in
``X-Log-Offset``, where the next read starts: a webserver tails a running try's log by
asking again from there. Unsigned, wrongly signed and expired requests get 403, and so
does any path that would leave the log folder (``..``, absolute paths, symlinks out).
``GET /health`` answers 200 for load balancers and checks.

It runs in a thread of the ``tradewind worker`` process (``ThreadingHTTPServer``: one
thread per request, so a slow reader never blocks another).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from cluster.errors import ConfigError
from cluster.logserver.signing import ROUTE, SignatureError, verify

log = logging.getLogger(__name__)

#: the most bytes one response carries; the client asks again from ``X-Log-Offset``
MAX_CHUNK = 1024 * 1024
OFFSET_HEADER = "X-Log-Offset"
SIZE_HEADER = "X-Log-Size"


class Refused(Exception):
    """A request this server does not answer with a file; carries the status to send."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def resolve(folder: Path, relative: str) -> Path:
    """The file ``relative`` names inside ``folder``.

    :raises Refused: 403 when the path is absolute, has empty, ``.`` or ``..`` parts,
        a NUL byte, or resolves (through symlinks) outside ``folder``.
    """
    parts = relative.split("/")
    if (
        not relative
        or relative.startswith("/")
        or "\x00" in relative
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise Refused(HTTPStatus.FORBIDDEN, "path outside the log folder")
    base = folder.resolve()
    candidate = base.joinpath(*parts).resolve()
    if not candidate.is_relative_to(base):
        raise Refused(HTTPStatus.FORBIDDEN, "path outside the log folder")
    return candidate


def read_chunk(path: Path, offset: int, limit: int = MAX_CHUNK) -> tuple[bytes, int, int]:
    """``(bytes from offset, next offset, file size)``; past the end reads nothing.

    :raises Refused: 404 when the file does not exist (yet).
    """
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            start = min(offset, size)
            handle.seek(start)
            data = handle.read(limit)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise Refused(HTTPStatus.NOT_FOUND, "no such log") from exc
    return data, start + len(data), size


def parse_offset(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    try:
        offset = int(raw)
    except ValueError as exc:
        raise Refused(HTTPStatus.BAD_REQUEST, "offset must be a whole number") from exc
    if offset < 0:
        raise Refused(HTTPStatus.BAD_REQUEST, "offset must not be negative")
    return offset


class LogServer:
    """Serves ``folder`` on ``host:port`` to requests signed with ``key``.

    :param port: ``0`` picks a free port (tests); :attr:`port` tells which.
    :param clock: seconds since the epoch, injected so tests can expire signatures.
    :param poll_interval: how often the serving thread checks for :meth:`stop`.
    :raises ConfigError: when ``key`` is empty (nothing could ever be verified).
    """

    def __init__(
        self,
        folder: Path,
        *,
        key: str,
        host: str,
        port: int,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.5,
    ) -> None:
        if not key:
            raise ConfigError(
                "webserver.secret_key is empty: the log server needs the cluster secret "
                "(the same on every node) to check signed requests"
            )
        self.folder = folder
        self._key = key
        self._clock = clock
        self._poll_interval = poll_interval
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            args=(self._poll_interval,),
            name="log-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()

    def close_inherited_socket(self) -> None:
        """Close this process's copy of the listening socket (in a forked child)."""
        self._httpd.socket.close()

    def answer(self, target: str) -> tuple[bytes, int, int]:
        """What ``GET target`` returns: ``(body, next offset, size)``.

        :raises Refused: with the status of any refusal.
        """
        parts = urlsplit(target)
        if not parts.path.startswith(ROUTE):
            raise Refused(HTTPStatus.NOT_FOUND, "unknown route")
        relative = unquote(parts.path[len(ROUTE) :])
        query = dict(parse_qsl(parts.query))
        try:
            verify(relative, query, key=self._key, now=self._clock())
        except SignatureError as exc:
            raise Refused(HTTPStatus.FORBIDDEN, str(exc)) from exc
        offset = parse_offset(query.get("offset"))
        return read_chunk(resolve(self.folder, relative), offset)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "tradewind-logs"

            def version_string(self) -> str:
                return self.server_version

            def do_GET(self) -> None:
                if urlsplit(self.path).path == "/health":
                    self._send(HTTPStatus.OK, b"ok\n")
                    return
                try:
                    body, next_offset, size = server.answer(self.path)
                except Refused as refused:
                    self._send(refused.status, f"{refused.reason}\n".encode())
                    return
                self._send(
                    HTTPStatus.OK, body, {OFFSET_HEADER: str(next_offset), SIZE_HEADER: str(size)}
                )

            def _send(
                self, status: HTTPStatus, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # the request line holds the signature: log only the outcome
                log.debug("log request from %s: %s", self.client_address[0], args[1:])

        return Handler
