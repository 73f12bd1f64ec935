"""A small asyncio HTTP/1.1 server and the lab's virtual-host application.

Hand-rolled rather than a framework so the lab has no extra dependency and
keeps exact control of status lines and headers. It supports what scanners and
the HTTP benchmark need: keep-alive, HEAD, Content-Length bodies (read and
ignored), TLS when given an SSLContext. Request bodies and chunked uploads are
not interpreted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # estate imports this module (through ct)
    from .estate import Estate

IDLE_TIMEOUT = 30.0
MAX_BODY = 1 << 20


@dataclass
class Request:
    method: str
    target: str  # as sent: path plus query
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    scheme: str  # "http" or "https"
    host: str  # Host header, lower-case, without port ("" when absent)


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    cookies: list[str] = field(default_factory=list)  # Set-Cookie values


Handler = Callable[[Request], Response]


def host_without_port(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8080
        return value[1:].split("]")[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def url(scheme: str, host: str, port: int, path: str = "/") -> str:
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}{'' if port == default else f':{port}'}{path}"


def _render(resp: Response, head_only: bool, keep_alive: bool) -> bytes:
    reason = HTTPStatus(resp.status).phrase
    lines = [
        f"HTTP/1.1 {resp.status} {reason}",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Length: {len(resp.body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    lines += [f"{k}: {v}" for k, v in resp.headers.items()]
    lines += [f"Set-Cookie: {c}" for c in resp.cookies]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head if head_only else head + resp.body


def _parse(head: bytes, scheme: str) -> tuple[Request, str]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    path, _, query = target.partition("?")
    if "://" in path:  # absolute-form target (proxy style): keep the path only
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    req = Request(
        method.upper(), target, path or "/", query, headers, scheme, host_without_port(headers.get("host", ""))
    )
    return req, version


async def _connection(
    handler: Handler, scheme: str, latency: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
            try:
                req, version = _parse(head, scheme)
            except ValueError:
                writer.write(_render(Response(400, {"Content-Type": "text/plain"}, b"Bad Request\n"), False, False))
                break
            length = int(req.headers.get("content-length", "0") or 0)
            if length:
                await reader.readexactly(min(length, MAX_BODY))
            connection = req.headers.get("connection", "").lower()
            keep_alive = (version == "HTTP/1.1" and connection != "close") or connection == "keep-alive"
            keep_alive = keep_alive and "transfer-encoding" not in req.headers and length <= MAX_BODY
            if latency:  # a network's round trip before every response (`--latency`)
                await asyncio.sleep(latency)
            writer.write(_render(handler(req), req.method == "HEAD", keep_alive))
            await writer.drain()
            if not keep_alive:
                break
    except (
        TimeoutError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        ConnectionError,
        ssl.SSLError,
        ValueError,
    ):
        pass  # clients that vanish or misbehave just lose their connection
    finally:
        writer.close()


async def serve(
    handler: Handler,
    sock: socket.socket,
    scheme: str,
    ssl_context: ssl.SSLContext | None = None,
    latency: float = 0.0,
) -> asyncio.Server:
    """Serve `handler` on a pre-bound socket; `latency` seconds pass before each
    response (0: answer at once). TLS handshakes are not delayed."""
    return await asyncio.start_server(
        partial(_connection, handler, scheme, latency),
        sock=sock,
        ssl=ssl_context,
        ssl_handshake_timeout=10 if ssl_context else None,
    )


class ThreadedServer:
    """`serve(handler)` on a loopback port in a thread of its own (usable from
    sync and async callers alike); a context manager."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0, name: str = "lab-http") -> None:
        import threading

        self.handler, self.host = handler, host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(64)
        self._sock.setblocking(False)
        self.port = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError(f"{self._thread.name} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(serve(self.handler, self._sock, "http"))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(self._loop)  # keep-alive connections still open
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()


# ---- the virtual-host application ------------------------------------------


def _nginx_404() -> Response:
    body = (
        b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1>"
        b"</center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(404, {"Server": "nginx/1.24.0", "Content-Type": "text/html"}, body)


def _cookie(host: str, name: str) -> str:
    value = hashlib.sha256(f"{host}|{name}".encode()).hexdigest()[:32]
    return f"{name}={value}; Path=/; HttpOnly"


def vhost_handler(get_estate: Callable[[], Estate], ports: dict[str, int]) -> Handler:
    """Answer by Host header from the current estate. `ports` maps scheme to
    the port really bound, for absolute redirects; read at request time."""

    def handle(req: Request) -> Response:
        vh = get_estate().vhosts.get(req.host)
        if vh is None:  # like an nginx default server
            return _nginx_404()
        base = dict(vh.headers)
        path_query = req.path + (f"?{req.query}" if req.query else "")
        if vh.canonical:
            return Response(301, {**base, "Location": url("https", vh.canonical, ports["https"], path_query)})
        if req.scheme == "http" and vh.https_only:
            return Response(301, {**base, "Location": url("https", vh.name, ports["https"], path_query)})
        if req.path == "/" and vh.login:
            return Response(302, {**base, "Location": vh.login})
        item = vh.files.get(req.path)
        if item is not None:
            ctype, body = item
            cookies = [_cookie(vh.name, c) for c in vh.cookies] if ctype.startswith("text/html") else []
            return Response(200, {**base, "Content-Type": ctype}, body, cookies)
        if req.path.startswith(("/api/", "/graphql", "/v1/", "/v2/")) and vh.profile in ("react", "express"):
            return Response(
                401, {**base, "Content-Type": "application/json"}, json.dumps({"error": "unauthorized"}).encode()
            )
        return Response(404, {**base, "Content-Type": "text/html"}, b"<h1>Not Found</h1>\n")

    return handle
