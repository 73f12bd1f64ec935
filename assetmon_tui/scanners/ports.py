"""TCP connect port scanner.

One coroutine per port costs ~10x more than the syscalls themselves, so the
connect phase runs in one worker thread driving non-blocking sockets with
epoll (thousands in flight, timeouts swept in deadline order) and posts open
ports to the event loop. A socket whose connect was refused at once (nearly
every probe on loopback and LANs) is reconnected to the next target, which
halves the syscalls and the Python work per port. Each open port's banner
grab starts as soon as it is found (asyncio tasks, BANNER_CONCURRENCY at a
time), so banners overlap discovery and a whole scan ends about one banner
budget after its last open port is found. Progress counts both: connect
attempts and banner grabs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import ipaddress
import resource
import select
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from assetmon_tui.core.portspec import TOP_100 as TOP_100  # port specs are parsed in core (re-exported here)
from assetmon_tui.core.portspec import TOP_1000 as TOP_1000
from assetmon_tui.core.portspec import parse_ports as parse_ports
from assetmon_tui.scanners.banners import PORT_NAMES, grab

BANNER_CONCURRENCY = 128
BANNER_SHARE = 0.4  # of the connect timeout: the banner budget of a silent port
PROGRESS_EVERY = 512  # connect attempts between progress reports...
PROGRESS_INTERVAL = 0.1  # ...and seconds
PROGRESS_BEAT = 0.25  # the latest counts again this often, so a throttling reporter never keeps a stale one
_FD_HEADROOM = 256  # descriptors left for the event loop, banner grabs, DB...
_POLL_MAX = 0.05  # longest epoll wait, so a stop request is seen quickly

_NONBLOCK = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_LINGER_RST = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT pile-up
# Out of local ports / buffers: try that target again once some sockets close.
_RETRY = {errno.EAGAIN, errno.EADDRNOTAVAIL, errno.ENOBUFS}
_NO_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@dataclass
class PortOptions:
    concurrency: int = 2048  # sockets in flight
    timeout: float = 1.0  # connect timeout
    rate: int = 0  # max new connections per second per host, 0 = unlimited
    banners: bool = True
    banner_timeout: float = 0.4  # what a silent port's banner grab costs in all (see banners.grab)


def banner_budget(connect_timeout: float) -> float:
    """The banner budget that goes with a connect timeout (the setting that
    says how far or slow the network is): 0.4 of it, 0.4 s by default."""
    return max(0.05, connect_timeout * BANNER_SHARE)


@dataclass
class PortResult:
    address: str
    port: int
    banner: str = ""
    service: str = ""


# What the connect thread (and the banner grabs) post to the event loop.
_Message = (
    tuple[Literal["open"], str, int]  # address, port
    | tuple[Literal["progress"], int]  # connect attempts done
    | tuple[Literal["done"], BaseException | None]  # the thread's last message
    | tuple[Literal["result"], PortResult]  # a banner grab finished
    | tuple[Literal["beat"]]  # time to repeat the progress
)


def _fd_cap(wanted: int) -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max(1, wanted)
    return max(1, min(wanted, soft - _FD_HEADROOM))


def _connect_scan(
    targets: Iterator[tuple[str, int, int]],
    cap: int,
    timeout: float,
    rate: float,
    stop: threading.Event,
    post: Callable[[_Message], None],
    answered: set[str],
) -> None:
    """Worker thread: connect to every (address, port, family), post
    ("open", address, port) and ("progress", done); always ends with
    ("done", exception-or-None). Closes every socket it made. Addresses that
    gave a definitive answer (open or refused) go to `answered`."""
    ep = select.epoll()
    inflight: dict[int, tuple[socket.socket, str, int]] = {}
    # (deadline, fd, socket): launch order == deadline order
    deadlines: collections.deque[tuple[float, int, socket.socket]] = collections.deque()
    # Locals: this loop runs once per port, attribute lookups add up.
    new_socket, in_progress, refused, aborted = socket.socket, errno.EINPROGRESS, errno.ECONNREFUSED, errno.ECONNABORTED
    # One socket per family whose connect was refused at once, reused for the
    # next target: on loopback and LANs that is nearly every probe.
    spares: dict[int, socket.socket] = {}
    sol, so_error = socket.SOL_SOCKET, socket.SO_ERROR
    retry = None
    exhausted = False
    done = launched = 0
    report_at = PROGRESS_EVERY
    started = report_time = time.monotonic()
    failure: BaseException | None = None

    def opened(sock: socket.socket, address: str, port: int) -> None:
        answered.add(address)
        try:
            if sock.getsockname()[:2] == (address, port):
                return  # connected to itself through the same ephemeral port
            sock.setsockopt(sol, socket.SO_LINGER, _LINGER_RST)
        except OSError:  # already reset by the peer: it was open all the same
            pass
        post(("open", address, port))

    try:
        while not stop.is_set():
            now = time.monotonic()
            budget = cap - len(inflight)
            if rate:
                budget = min(budget, int((now - started) * rate) + 1 - launched)
            while budget > 0:
                target, retry = retry or next(targets, None), None
                if target is None:
                    exhausted = True
                    break
                address, port, family = target
                sock = spares.pop(family, None)
                if sock is not None:  # a socket refused before: reconnecting saves socket() and close()
                    err = sock.connect_ex((address, port))
                    if err == aborted:  # the first call after a failure resets the socket (Linux)
                        err = sock.connect_ex((address, port))
                    if err not in (in_progress, refused, 0):
                        sock.close()  # not what a reset socket does: a new one for this target
                        retry = target
                        continue
                else:
                    try:
                        sock = new_socket(family, _NONBLOCK)
                    except OSError as exc:
                        if exc.errno in _NO_FDS and inflight:
                            retry = target
                            break
                        raise
                    err = sock.connect_ex((address, port))
                launched += 1
                budget -= 1
                if err == in_progress:
                    # On loopback/LAN the RST has often arrived already.
                    err = sock.getsockopt(sol, so_error)
                    if err == 0:
                        fd = sock.fileno()
                        ep.register(fd, select.EPOLLOUT)
                        inflight[fd] = (sock, address, port)
                        deadlines.append((now + timeout, fd, sock))
                        continue
                elif err in _RETRY and inflight:
                    sock.close()
                    retry = target
                    break
                elif err == 0:
                    opened(sock, address, port)
                done += 1
                if err == refused:
                    answered.add(address)
                    if family not in spares:
                        spares[family] = sock
                        continue
                sock.close()
            if exhausted and not inflight:
                break
            if exhausted or retry or len(inflight) >= cap:
                wait = _POLL_MAX  # nothing to launch until sockets finish
            elif rate:  # until the next connection is allowed
                wait = max(0.0, min(_POLL_MAX, launched / rate - (now - started)))
            else:
                wait = 0.0  # more to launch: only collect what is ready
            if deadlines:
                wait = min(wait, max(0.0, deadlines[0][0] - now))
            for fd, _ in ep.poll(wait):
                sock, address, port = inflight.pop(fd)
                err = sock.getsockopt(sol, so_error)
                if err == 0:
                    opened(sock, address, port)
                elif err == refused:
                    answered.add(address)
                sock.close()
                done += 1
            now = time.monotonic()
            while deadlines and deadlines[0][0] <= now:
                _, fd, sock = deadlines.popleft()
                if inflight.get(fd, (None,))[0] is sock:  # no answer: filtered
                    del inflight[fd]
                    sock.close()
                    done += 1
            if done >= report_at and now >= report_time:
                # Bounded in count and in time: each post wakes the event loop,
                # which then competes with this thread for the GIL.
                post(("progress", done))
                report_at, report_time = done + PROGRESS_EVERY, now + PROGRESS_INTERVAL
    except BaseException as exc:  # handed to the consumer, not lost in the thread
        failure = exc
    finally:
        for sock, _, _ in inflight.values():
            sock.close()
        for sock in spares.values():
            sock.close()
        ep.close()
        post(("done", failure))


def _families(addresses: Iterable[str]) -> dict[str, int]:
    families: dict[str, int] = {}
    for raw in addresses:
        try:
            ip = ipaddress.ip_address(str(raw).strip())
        except ValueError:
            raise ValueError(f"not an IP address: {raw!r} (resolve names first)") from None
        families[str(ip)] = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return families


async def scan(
    addresses: Iterable[str],
    ports: list[int],
    options: PortOptions,
    progress: Callable[[int, int], None] | None = None,
    answered: set[str] | None = None,
    banners: Callable[[int, int], None] | None = None,
) -> AsyncIterator[PortResult]:
    """Yield one PortResult per open port, as found (after its banner grab
    when options.banners). progress(done, total) counts connect attempts plus
    the banner grabs of the ports found so far (the total grows by one per
    open port); banners(done, found) counts the grabs alone. Both are called
    at least every PROGRESS_BEAT seconds while the scan runs, and once more
    with the final counts. `answered` receives the addresses that gave some
    definitive answer (a port open or refused): of the others, nothing is
    known (down, filtered)."""
    families = _families(addresses)
    ports = list(dict.fromkeys(ports))
    for port in ports:
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} out of range 1-65535")
    total = len(families) * len(ports)
    if not total:
        return
    # Port-major order spreads the load over hosts, so a global pace of
    # rate * hosts gives each host about `rate` connections per second.
    targets = ((a, p, f) for p in ports for a, f in families.items())

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[_Message] = asyncio.Queue()

    def post(message: _Message) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is listening any more
            loop.call_soon_threadsafe(queue.put_nowait, message)

    stop = threading.Event()
    worker = threading.Thread(
        target=_connect_scan,
        args=(
            targets,
            _fd_cap(options.concurrency),
            options.timeout,
            options.rate * len(families),
            stop,
            post,
            set() if answered is None else answered,
        ),
        name="assetmon-portscan",
        daemon=True,
    )
    # Banner grabs: at most BANNER_CONCURRENCY tasks; the rest wait as plain
    # tuples (a host that "opens" every port must not cost 65k tasks).
    backlog: collections.deque[tuple[str, int]] = collections.deque()
    grabs: set[asyncio.Task[None]] = set()
    running = 0
    connected = found = grabbed = 0  # connect attempts done, banner grabs started/queued, grabs done

    def report() -> None:
        if banners and options.banners:
            banners(grabbed, found)
        if progress:
            progress(connected + grabbed, total + found)

    beats: asyncio.TimerHandle | None = None

    def beat() -> None:
        nonlocal beats
        queue.put_nowait(("beat",))
        beats = loop.call_later(PROGRESS_BEAT, beat)

    async def grab_one(address: str, port: int) -> None:
        banner, service = await grab(address, port, options.banner_timeout)
        queue.put_nowait(("result", PortResult(address, port, banner, service)))

    def start_grabs() -> None:
        nonlocal running
        while backlog and running < BANNER_CONCURRENCY:
            task = asyncio.create_task(grab_one(*backlog.popleft()))
            grabs.add(task)
            task.add_done_callback(grabs.discard)
            running += 1

    worker.start()
    beats = loop.call_later(PROGRESS_BEAT, beat)
    scanning = True
    try:
        while scanning or running:
            message = await queue.get()
            if message[0] == "open":
                _, address, port = message
                if not options.banners:
                    yield PortResult(address, port, service=PORT_NAMES.get(port, ""))
                    continue
                found += 1
                backlog.append((address, port))
                start_grabs()
            elif message[0] == "result":
                running -= 1
                grabbed += 1
                start_grabs()
                report()
                yield message[1]
            elif message[0] == "progress":
                connected = message[1]
                report()
            elif message[0] == "beat":
                report()
            elif message[0] == "done":
                scanning = False
                if message[1] is not None:
                    raise message[1]
                connected = total
                report()
        report()  # the final counts, whatever a reporter dropped before
    finally:
        if beats is not None:
            beats.cancel()
        stop.set()
        for task in list(grabs):
            task.cancel()
        await asyncio.gather(*grabs, return_exceptions=True)
        # Wait for the worker to close its sockets (it polls `stop` every 50 ms).
        while scanning:
            scanning = (await queue.get())[0] != "done"
        worker.join(1)  # "done" is its last act: this returns at once
