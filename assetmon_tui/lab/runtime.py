"""`Lab`: runs the estate's DNS, web, CT and TCP servers on loopback.

All servers live in one background thread with its own asyncio loop, so the
lab works the same from synchronous tests, async tests and the CLI. Sockets
are bound in the caller's thread first, so a port problem raises from
`start()` instead of dying silently in the thread.

Web listeners: one HTTP and one HTTPS server per web address (127.0.1.x, the
legacy address and ::1), all on the same two ports, virtual-hosted by Host
header. Standard ports (80/443, 22/25/6379) are tried first when
`standard_ports` is true; whatever could not be bound gets a free port, and
`info` always tells the real ones.

`latency` (seconds, default 0) delays every DNS, HTTP and CT answer and every
service's first byte, so benchmarks see a network's round trip instead of
loopback's none (TLS handshakes and TCP connects are not delayed).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from collections.abc import Coroutine
from typing import Any

from . import certs, ct, dns_server, services, web_server
from .estate import IPV6_WEB, LEGACY_ADDRESS, WEB_POOL, Estate, Service
from .web_server import url

_START_TIMEOUT = 15.0


def _tcp_socket(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebinding right after a stop
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(512)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"{_hostport(address, port)}: {exc.strerror}") from exc  # which one, for a person
    return sock


def _bind_same_port(addresses: list[str], candidates: list[int]) -> tuple[int, list[socket.socket]]:
    """Bind one port on every address: the first candidate free everywhere
    (0: the kernel picks a free port on the first address, the rest follow)."""
    error: OSError | None = None
    for candidate in candidates:
        socks: list[socket.socket] = []
        try:
            port = candidate
            for address in addresses:
                socks.append(_tcp_socket(address, port))
                port = socks[-1].getsockname()[1]
            return port, socks
        except OSError as exc:
            error = exc
            for s in socks:
                s.close()
    raise error or OSError("no port candidates")


def bind_dns(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP on the same port (0: a free one, tried again while the pair is taken)."""
    for _ in range(20):
        tcp = _tcp_socket(host, port)
        udp = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind((host, tcp.getsockname()[1]))
            return udp, tcp
        except OSError as exc:
            udp.close()
            tcp.close()
            if port:
                raise OSError(exc.errno, f"{_hostport(host, port)} (UDP): {exc.strerror}") from exc
    raise OSError("no free DNS port")


def _ipv6_loopback_available() -> bool:
    try:
        _tcp_socket(IPV6_WEB, 0).close()
        return True
    except OSError:
        return False


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _quiet_exceptions(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Scanners abort TLS handshakes and reset connections all the time.
    if isinstance(context.get("exception"), (ssl.SSLError, ConnectionError, asyncio.TimeoutError)):
        return
    loop.default_exception_handler(context)


class Lab:
    """The offline target. `with Lab() as lab: lab.info[...]`, or `async with`."""

    def __init__(
        self,
        domain: str = "acme.test",
        mutate: int = 0,
        hosts: int | None = None,
        seed: int = 1,
        host: str = "127.0.0.1",
        *,
        dns_port: int = 0,
        ct_port: int = 0,
        http_port: int | None = None,
        https_port: int | None = None,
        standard_ports: bool = True,
        latency: float = 0.0,
    ):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the lab only listens on loopback, not {host}")
        self.estate = Estate(domain, seed, hosts, mutate)
        self.host = host
        self.info: dict[str, Any] = {}
        self._dns_port, self._ct_port = dns_port, ct_port
        self._http_port, self._https_port = http_port, https_port
        self._standard = standard_ports
        self.latency = max(0.0, latency)  # seconds before every DNS/HTTP/CT answer and service banner
        self._web_addresses: list[str] = []  # chosen at start: ::1 only when IPv6 loopback works
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[Any] = []  # asyncio servers and the DNS UDP transport
        self._services: dict[Service, Any] = {}  # running service -> its asyncio server
        self._ports: dict[tuple[str, int], int] = {}  # (address, nominal port) -> bound port, ever
        self.ports: dict[str, int] = {}  # "dns", "ct", "http", "https"
        self.dns_log = dns_server.QueryLog()  # what the DNS server was asked (tests: nothing out of scope)

    @property
    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop thread's event loop (set while the lab runs)."""
        assert self._loop is not None, "the lab is not running"
        return self._loop

    # ---- lifecycle ---------------------------------------------------------
    def start(self) -> dict[str, Any]:
        if self._thread is not None:
            return self.info
        socks: list[socket.socket] = []
        try:
            udp, tcp = bind_dns(self.host, self._dns_port)
            socks += [udp, tcp]
            ct_sock = _tcp_socket(self.host, self._ct_port)
            socks.append(ct_sock)
            self._web_addresses = [*WEB_POOL, LEGACY_ADDRESS] + ([IPV6_WEB] if _ipv6_loopback_available() else [])
            http_port, http_socks = _bind_same_port(self._web_addresses, self._candidates(self._http_port, 80))
            socks += http_socks
            https_port, https_socks = _bind_same_port(self._web_addresses, self._candidates(self._https_port, 443))
            socks += https_socks
        except OSError:
            for s in socks:
                s.close()
            raise
        self.ports = {
            "dns": tcp.getsockname()[1],
            "ct": ct_sock.getsockname()[1],
            "http": http_port,
            "https": https_port,
        }
        contexts = self._tls_contexts()
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_exceptions)
        self._thread = threading.Thread(target=self._run, name="assetmon-lab", daemon=True)
        self._thread.start()
        try:
            self._call(self._start_servers(udp, tcp, ct_sock, http_socks, https_socks, contexts))
        except BaseException:
            self.stop()
            raise
        self.info = self._make_info()
        return self.info

    def stop(self) -> None:
        if self._thread is None:
            return
        self._call(self._close_servers())
        loop = self._running_loop
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._thread = self._loop = None

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Lab:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def set_mutation(self, level: int) -> dict[str, Any]:
        """Switch the running lab to another mutation level; returns the new info.
        DNS, web and CT answer from the new estate at once; TCP services are
        opened and closed to match it before this returns."""
        self.estate = self.estate.at(level)
        if self._thread is not None:
            self._call(self._sync_services())
            self.info = self._make_info()
        return self.info

    def diff(self, a: int, b: int) -> dict[str, list[Any]]:
        """`estate.diff(a, b)`, with `bound_port` on port events when the lab bound that service."""
        out = self.estate.diff(a, b)
        for item in out["ports_opened"] + out["ports_closed"]:
            item["bound_port"] = self._ports.get((item["address"], item["port"]))
        return out

    # ---- inside the loop thread ---------------------------------------------
    def _run(self) -> None:
        loop = self._running_loop
        asyncio.set_event_loop(loop)
        loop.run_forever()
        tasks = asyncio.all_tasks(loop)  # open keep-alive connections
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._running_loop).result(_START_TIMEOUT)

    def _current(self) -> Estate:
        return self.estate  # read on every request, so set_mutation takes effect at once

    async def _start_servers(
        self,
        udp: socket.socket,
        tcp: socket.socket,
        ct_sock: socket.socket,
        http_socks: list[socket.socket],
        https_socks: list[socket.socket],
        contexts: dict[str, ssl.SSLContext],
    ) -> None:
        transport, dns_tcp = await dns_server.serve(self._current, udp, tcp, log=self.dns_log, latency=self.latency)
        self._servers += [transport, dns_tcp]
        ct_handler = ct.handler(lambda: self.estate.ct_entries)
        self._servers.append(await web_server.serve(ct_handler, ct_sock, "http", latency=self.latency))
        app = web_server.vhost_handler(self._current, self.ports)
        for address, hsock, ssock in zip(self._web_addresses, http_socks, https_socks, strict=False):
            ctx = contexts["legacy"] if address == LEGACY_ADDRESS else contexts["shared"]
            self._servers.append(await web_server.serve(app, hsock, "http", latency=self.latency))
            self._servers.append(await web_server.serve(app, ssock, "https", ctx, latency=self.latency))
        await self._sync_services()

    async def _sync_services(self) -> None:
        wanted = set(self.estate.services)
        for svc in [s for s in self._services if s not in wanted]:
            self._services.pop(svc).close()
        for svc in sorted(wanted - self._services.keys(), key=lambda s: (s.address, s.port)):
            sock = self._bind_service(svc)
            self._ports[(svc.address, svc.port)] = sock.getsockname()[1]
            self._services[svc] = await services.serve(svc, sock, self.latency)

    async def _close_servers(self) -> None:
        for server in [*self._servers, *self._services.values()]:
            server.close()
        self._servers, self._services = [], {}

    # ---- helpers -------------------------------------------------------------
    def _candidates(self, explicit: int | None, standard: int) -> list[int]:
        """Ports to try in order: exactly the one asked for, else the standard
        one (when allowed), then free ports."""
        if explicit is not None:
            return [explicit]
        return ([standard] if self._standard else []) + [0] * 20

    def _bind_service(self, svc: Service) -> socket.socket:
        return _bind_same_port([svc.address], self._candidates(None, svc.port))[1][0]

    def _tls_contexts(self) -> dict[str, ssl.SSLContext]:
        est, org = self.estate, self.estate.org
        shared = certs.server_context((est.domain, f"*.{est.domain}", f"*.dyn.{est.domain}"), org)
        # SNI: a CDN's own hostname gets the CDN's wildcard certificate, as on the real CDN.
        provider = {
            item["target"]: certs.server_context(("*." + item["target"].split(".", 1)[1],), "CDN Provider")
            for item in est.cdn
        }

        def pick(sslobj: ssl.SSLSocket | ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            if server_name in provider:
                sslobj.context = provider[server_name]

        shared.sni_callback = pick
        return {"shared": shared, "legacy": certs.server_context(tuple(est.san_names), org, self_signed=True)}

    def _make_info(self) -> dict[str, Any]:
        est, p = self.estate, self.ports
        return {
            "domain": est.domain,
            "seed": est.seed,
            "mutate": est.mutate,
            "hosts": len(est.web_names),
            "latency_ms": round(self.latency * 1000, 3),
            "nameserver": f"{self.host}:{p['dns']}",
            "ct_url": url("http", self.host, p["ct"]),
            "http_port": p["http"],
            "https_port": p["https"],
            "http": [url("http", n, p["http"]) for n in est.web_names],
            "https": [url("https", n, p["https"]) for n in est.web_names],
            "addresses": est.addresses(),
            "listeners": {
                "http": [_hostport(a, p["http"]) for a in self._web_addresses],
                "https": [_hostport(a, p["https"]) for a in self._web_addresses],
            },
            "services": [
                {
                    "name": s.name,
                    "address": s.address,
                    "port": self._ports[(s.address, s.port)],
                    "nominal_port": s.port,
                    "kind": s.kind,
                    "banner": s.banner,
                }
                for s in sorted(est.services, key=lambda s: (s.address, s.port))
            ],
        }
