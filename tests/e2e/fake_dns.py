"""An authoritative DNS server on loopback (UDP and TCP, one port) for the
outbound and mail-auth tests: MX, A, AAAA, TXT, NXDOMAIN, NODATA, SERVFAIL,
null MX, and names that never get an answer (a timeout).
Standard library only."""

import socket
import struct
import threading
from collections import Counter

from conftest import HOST, free_port

TYPES = {"A": 1, "MX": 15, "AAAA": 28, "SOA": 6, "TXT": 16}
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def parse_question(msg: bytes):
    """(id, flags, qname, qtype, end of question) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd < 1:
        return None
    pos, labels = 12, []
    while pos < len(msg) and msg[pos] != 0:
        n = msg[pos]
        labels.append(msg[pos + 1:pos + 1 + n].decode(errors="replace"))
        pos += 1 + n
    pos += 1
    if pos + 4 > len(msg):
        return None
    qtype, _ = struct.unpack("!HH", msg[pos:pos + 4])
    return qid, flags, ".".join(labels).lower(), qtype, pos + 4


def udp_limit(query: bytes) -> int:
    """The largest UDP answer the client takes: 512 octets (RFC 1035
    4.2.1), or the payload size of its EDNS OPT record (RFC 6891 6.2.5)."""
    q = parse_question(query)
    arcount = struct.unpack("!H", query[10:12])[0] if len(query) >= 12 else 0
    if q and arcount:
        end = q[4]
        # OPT: root name (one zero octet), TYPE 41, CLASS = payload size.
        if query[end:end + 3] == b"\x00\x00\x29" and len(query) >= end + 5:
            return max(512, struct.unpack("!H", query[end + 3:end + 5])[0])
    return 512


def truncated(query: bytes, reply: bytes) -> bytes:
    """An answer too large for UDP as a real server sends it: the header
    with TC set and the question only, so the client asks again over TCP
    (RFC 7766 5)."""
    if len(reply) <= udp_limit(query):
        return reply
    q = parse_question(query)
    flags = struct.unpack("!H", reply[2:4])[0] | 0x0200
    return reply[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + query[12:q[4]]


class DnsServer:
    """Serves `records`: {name: {"MX": [(pref, host)], "A": [ip], "AAAA": [ip],
    "TXT": [text]}}. A name in `servfail` gets SERVFAIL, one in `silent` no
    answer at all; a name not in `records` NXDOMAIN; a known name without
    the asked type NOERROR with no answer (NODATA). An MX host of "." is a
    null MX (RFC 7505). A TXT text longer than 255 octets is sent as
    several strings (RFC 1035 3.3.14), as a zone file would hold it; an
    answer too large for UDP comes truncated (TC), whole over TCP."""

    def __init__(self, records: dict, servfail=(), silent=()):
        self.records = {k.lower().strip("."): v for k, v in records.items()}
        self.servfail = {s.lower() for s in servfail}
        self.silent = {s.lower() for s in silent}
        self.port = free_port()
        self.queries = Counter()
        self._stop = threading.Event()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((HOST, self.port))
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((HOST, self.port))
        self.tcp.listen(16)
        for target in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=target, daemon=True).start()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def answer(self, msg: bytes) -> bytes | None:
        q = parse_question(msg)
        if q is None:
            return None
        qid, flags, name, qtype, end = q
        self.queries[(name, qtype)] += 1
        if name in self.silent:
            return None
        rrs, rcode = [], NOERROR
        if name in self.servfail:
            rcode = SERVFAIL
        elif name not in self.records:
            rcode = NXDOMAIN
        else:
            entry = self.records[name]
            if qtype == TYPES["MX"]:
                for pref, host in entry.get("MX", []):
                    rrs.append((qtype, struct.pack("!H", pref) + encode_name(host)))
            elif qtype == TYPES["A"]:
                rrs += [(qtype, socket.inet_pton(socket.AF_INET, ip)) for ip in entry.get("A", [])]
            elif qtype == TYPES["AAAA"]:
                rrs += [(qtype, socket.inet_pton(socket.AF_INET6, ip)) for ip in entry.get("AAAA", [])]
            elif qtype == TYPES["TXT"]:
                for text in entry.get("TXT", []):
                    raw = text.encode()
                    chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
                    rrs.append((qtype, b"".join(bytes([len(c)]) + c for c in chunks)))
        # QR, AA, RA, RD copied from the query.
        out_flags = 0x8000 | 0x0400 | 0x0080 | (flags & 0x0100) | rcode
        authority = []
        if rcode == NXDOMAIN or (rcode == NOERROR and not rrs):
            # An SOA makes the negative answer authoritative (RFC 2308); TTL 1 s.
            soa = encode_name("ns.test") + encode_name("hostmaster.test") + struct.pack("!IIIII", 1, 60, 60, 60, 1)
            authority.append((TYPES["SOA"], soa))
        head = struct.pack("!HHHHHH", qid, out_flags, 1, len(rrs), len(authority), 0)
        body = msg[12:end]
        for rtype, rdata in rrs + authority:
            ttl = 1 if rtype == TYPES["SOA"] else 60
            body += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata
        return head + body

    def _serve_udp(self):
        while not self._stop.is_set():
            try:
                msg, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            reply = self.answer(msg)
            if reply:
                self.udp.sendto(truncated(msg, reply), peer)

    def _serve_tcp(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn):
        with conn:
            conn.settimeout(10)
            try:
                while True:
                    head = conn.recv(2, socket.MSG_WAITALL)
                    if len(head) < 2:
                        return
                    msg = conn.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL)
                    reply = self.answer(msg)
                    if reply:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

    def close(self):
        self._stop.set()
        for s in (self.udp, self.tcp):
            try:
                s.close()
            except OSError:
                pass
