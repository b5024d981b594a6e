"""Loopback stand-ins for the rest of the world, for the outbound tests:
SMTP sink servers on 127.0.0.2-127.0.0.9 sharing one port, each with a
scripted behaviour, and the DNS zone (fake_dns.py) that points test
domains at them. Standard library only; nothing leaves loopback.
"""

import asyncio
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from conftest import free_port
from fake_dns import DnsServer

# --- SMTP sinks ------------------------------------------------------------

@dataclass
class Behaviour:
    """How one sink answers. tempfail_first: the first N transactions get
    451 at RCPT; reject: recipients refused with 550; delay: seconds before
    the 354 after DATA; tls: an SSLContext to offer STARTTLS with."""
    tempfail_first: int = 0
    reject: set = field(default_factory=set)
    delay: float = 0.0
    tls: ssl.SSLContext | None = None
    # Seconds between the bytes of the greeting: a server that trickles.
    trickle: float = 0.0
    # Whether EHLO offers 8BITMIME (RFC 6152); a 7-bit-only server if not.
    eightbit: bool = True
    # Seconds a connection may wait for the next command after a finished
    # transaction; then 421 and close (RFC 5321 4.5.3.2.7), as a busy
    # server does to clients that keep connections open.
    idle_close: float = 0.0


@dataclass
class Received:
    ip: str
    mail_from: str
    rcpts: list
    data: bytes
    tls: bool
    helo: str


class Sinks:
    """One asyncio loop in a thread, one listener per configured IP, all on
    `port`. Addresses without a behaviour have no listener (connection
    refused: a host that is down)."""

    def __init__(self, behaviours: dict):
        self.behaviours = behaviours
        self.port = free_port()
        self.messages: list[Received] = []
        self.transactions = Counter()  # MAIL commands per IP
        self.connections = Counter()
        self.quits = Counter()
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.servers = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self):
        servers = []
        for ip in self.behaviours:
            servers.append(await asyncio.start_server(lambda r, w, ip=ip: self._session(ip, r, w), ip, self.port))
        return servers

    def received(self, ip: str | None = None) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if ip is None or m.ip == ip]

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; sinks got {len(self.received())} messages")

    async def _session(self, ip, reader, writer):
        b = self.behaviours[ip]
        with self.lock:
            self.connections[ip] += 1
        tls, helo, mail_from, rcpts, tempfail = False, "", None, [], False

        async def say(line: str):
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        try:
            if b.trickle:
                for byte in f"220 sink-{ip} ESMTP\r\n".encode():
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(b.trickle)
            else:
                await say(f"220 sink-{ip} ESMTP")
            done_one = False
            while True:
                try:
                    raw = await asyncio.wait_for(reader.readline(), b.idle_close if b.idle_close and done_one else 60)
                except asyncio.TimeoutError:
                    if not done_one:
                        raise
                    await say("421 4.4.2 idle timeout, closing")
                    return
                if not raw:
                    return
                line = raw.decode(errors="replace").rstrip("\r\n")
                verb = line[:4].upper()
                if verb == "EHLO":
                    helo = line[5:]
                    caps = ["PIPELINING", "SIZE 10000000", "ENHANCEDSTATUSCODES"]
                    if b.eightbit:
                        caps.append("8BITMIME")
                    if b.tls and not tls:
                        caps.append("STARTTLS")
                    writer.write(f"250-sink-{ip}\r\n".encode() + "".join(f"250{'-' if i < len(caps) - 1 else ' '}{c}\r\n" for i, c in enumerate(caps)).encode())
                    await writer.drain()
                elif verb == "HELO":
                    helo = line[5:]
                    await say(f"250 sink-{ip}")
                elif verb == "STAR" and b.tls and not tls:
                    await say("220 2.0.0 go ahead")
                    await writer.start_tls(b.tls)
                    tls, mail_from, rcpts = True, None, []
                elif verb == "MAIL":
                    with self.lock:
                        self.transactions[ip] += 1
                        n = self.transactions[ip]
                    mail_from, rcpts = line[10:].split(">")[0].lstrip("<"), []
                    tempfail = n <= b.tempfail_first
                    await say("250 2.1.0 ok")
                elif verb == "RCPT":
                    addr = line[8:].split(">")[0].lstrip("<")
                    if mail_from is None:
                        await say("503 5.5.1 MAIL first")
                    elif tempfail:
                        await say("451 4.7.1 greylisted, try again later")
                    elif addr in b.reject:
                        await say(f"550 5.1.1 <{addr}>: no such user here")
                    else:
                        rcpts.append(addr)
                        await say("250 2.1.5 ok")
                elif verb == "DATA":
                    if not rcpts:
                        await say("554 5.5.1 no valid recipients")
                        continue
                    if b.delay:
                        # Before the 354: a client that dies meanwhile never
                        # completes the message, so the sink never counts it.
                        await asyncio.sleep(b.delay)
                    await say("354 end with <CRLF>.<CRLF>")
                    data = bytearray()
                    while True:
                        chunk = await asyncio.wait_for(reader.readline(), 60)
                        if not chunk:
                            return
                        if chunk == b".\r\n":
                            break
                        data += chunk[1:] if chunk.startswith(b".") else chunk
                    with self.lock:
                        self.messages.append(Received(ip, mail_from, list(rcpts), bytes(data), tls, helo))
                    mail_from, rcpts = None, []
                    done_one = True
                    await say("250 2.0.0 ok: queued")
                elif verb == "RSET":
                    mail_from, rcpts = None, []
                    await say("250 2.0.0 ok")
                elif verb == "QUIT":
                    with self.lock:
                        self.quits[ip] += 1
                    await say("221 2.0.0 bye")
                    return
                else:
                    await say("502 5.5.2 not implemented")
        except (OSError, asyncio.TimeoutError, ssl.SSLError, ConnectionError):
            return
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    def close(self):
        async def stop():
            for s in self.servers:
                s.close()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


# --- the world the tests deliver into ---------------------------------------

ACCEPT, TEMPFAIL, MIXED, DOWN1, BACKUP2, DOWN, TLS, SLOW, TRICKLE, SEVENBIT, IDLECLOSE = (f"127.0.0.{i}" for i in range(2, 13))

WORLD = {
    "accept.test": {"MX": [(10, "mx.accept.test")]},
    "mx.accept.test": {"A": [ACCEPT]},
    "tempfail.test": {"MX": [(10, "mx.tempfail.test")]},
    "mx.tempfail.test": {"A": [TEMPFAIL]},
    "mixed.test": {"MX": [(10, "mx.mixed.test")]},
    "mx.mixed.test": {"A": [MIXED]},
    # The preferred MX is down; the backup takes the mail.
    "backup.test": {"MX": [(20, "mx2.backup.test"), (10, "mx1.backup.test")]},
    "mx1.backup.test": {"A": [DOWN1]},
    "mx2.backup.test": {"A": [BACKUP2]},
    "nullmx.test": {"MX": [(0, ".")]},
    # No MX: the implicit MX is the domain's own address (RFC 5321 5.1).
    "implicit.test": {"A": [ACCEPT]},
    "down.test": {"MX": [(10, "mx.down.test")]},
    "mx.down.test": {"A": [DOWN]},
    "tls.test": {"MX": [(10, "mx.tls.test")]},
    "mx.tls.test": {"A": [TLS]},
    "slow.test": {"MX": [(10, "mx.slow.test")]},
    "mx.slow.test": {"A": [SLOW]},
    "trickle.test": {"MX": [(10, "mx.trickle.test")]},
    "mx.trickle.test": {"A": [TRICKLE]},
    "sevenbit.test": {"MX": [(10, "mx.sevenbit.test")]},
    "mx.sevenbit.test": {"A": [SEVENBIT]},
    "idleclose.test": {"MX": [(10, "mx.idleclose.test")]},
    "mx.idleclose.test": {"A": [IDLECLOSE]},
}
SERVFAIL_NAMES = {"servfail.test"}


def tls_context(cert, key) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class World:
    def __init__(self, dns: DnsServer, sinks: Sinks):
        self.dns, self.sinks = dns, sinks

    def config(self, retry=None, delivery=None) -> dict:
        """ferrymail settings that deliver into this world (and nowhere else)."""
        return {
            "hostname": "mx.ferry.test",
            "dns": {"nameservers": [self.dns.address], "timeout": "1s"},
            "delivery": {"port": self.sinks.port, "connect_timeout": "2s", **(delivery or {})},
            "retry": {"interval": "1s", "warn_after": "1h", "give_up_after": "2h", **(retry or {})},
        }


@pytest.fixture
def world(template_data_dir):
    cert = template_data_dir / "tls" / "self-signed.crt"
    key = template_data_dir / "tls" / "self-signed.key"
    behaviours = {
        ACCEPT: Behaviour(),
        TEMPFAIL: Behaviour(tempfail_first=2),
        MIXED: Behaviour(reject={"bad@mixed.test"}),
        BACKUP2: Behaviour(),
        TLS: Behaviour(tls=tls_context(cert, key)),
        SLOW: Behaviour(delay=0.02),
        TRICKLE: Behaviour(trickle=2.0),
        SEVENBIT: Behaviour(eightbit=False),
        IDLECLOSE: Behaviour(idle_close=0.3),
    }
    dns = DnsServer(WORLD, SERVFAIL_NAMES)
    sinks = Sinks(behaviours)
    try:
        yield World(dns, sinks)
    finally:
        sinks.close()
        dns.close()
