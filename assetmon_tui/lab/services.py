"""Non-HTTP TCP services for port scanners: just enough protocol to grab a banner.

ssh: sends its identification line, waits for the client's, then hangs up.
smtp: greeting, EHLO/HELO/NOOP/RSET/QUIT; everything else is 502.
redis: PING -> +PONG, INFO, QUIT, over inline or RESP commands; speaks only when spoken to.
"""

from __future__ import annotations

import asyncio
import socket
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .estate import Service

TIMEOUT = 15.0


async def _line(reader: asyncio.StreamReader) -> bytes:
    data = await asyncio.wait_for(reader.readline(), TIMEOUT)
    if not data:
        raise ConnectionResetError
    return data.rstrip(b"\r\n")


async def _ssh(svc: Service, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(svc.banner.encode() + b"\r\n")
    await writer.drain()
    await _line(reader)


async def _smtp(svc: Service, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    host = svc.name
    writer.write(svc.banner.encode() + b"\r\n")
    while True:
        await writer.drain()
        verb = (await _line(reader)).split(b" ", 1)[0].upper()
        if verb in (b"EHLO", b"HELO"):
            writer.write(
                f"250-{host}\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n".encode()
                if verb == b"EHLO"
                else f"250 {host}\r\n".encode()
            )
        elif verb in (b"NOOP", b"RSET"):
            writer.write(b"250 2.0.0 Ok\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 2.0.0 Bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"502 5.5.2 Error: command not recognized\r\n")


async def _redis_command(reader: asyncio.StreamReader) -> list[bytes]:
    first = await _line(reader)
    if not first.startswith(b"*"):  # inline command, e.g. `PING` typed into netcat
        return first.split()
    args: list[bytes] = []
    for _ in range(int(first[1:])):
        size = int((await _line(reader))[1:])
        args.append((await asyncio.wait_for(reader.readexactly(size + 2), TIMEOUT))[:-2])
    return args


async def _redis(svc: Service, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        args = await _redis_command(reader)
        cmd = args[0].upper() if args else b""
        if cmd == b"PING":
            writer.write(b"+PONG\r\n")
        elif cmd == b"INFO":
            info = b"# Server\r\nredis_version:7.2.4\r\nredis_mode:standalone\r\nos:Linux\r\n"
            writer.write(b"$%d\r\n%s\r\n" % (len(info), info))
        elif cmd == b"QUIT":
            writer.write(b"+OK\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"-ERR unknown command '%s'\r\n" % cmd.lower()[:32])
        await writer.drain()


_PROTOCOLS = {"ssh": _ssh, "smtp": _smtp, "redis": _redis}


async def _connection(svc: Service, latency: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        if latency:  # the first byte (banner or reply) comes a round trip later
            await asyncio.sleep(latency)
        await _PROTOCOLS[svc.kind](svc, reader, writer)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
        pass
    finally:
        writer.close()


async def serve(svc: Service, sock: socket.socket, latency: float = 0.0) -> asyncio.Server:
    """Serve estate.Service `svc` on a pre-bound socket (`latency`: seconds
    before it starts talking or reading, 0: at once)."""
    return await asyncio.start_server(partial(_connection, svc, latency), sock=sock)
