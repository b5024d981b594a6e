"""Timeouts that hold (issue 16 item 3), on the real binary: every phase
has one deadline for the whole phase, reads and writes alike. Before the
fix each read had its own timeout, so a client (or a remote server)
trickling a byte at a time lived forever, and no write had any timeout."""

import json
import poplib
import socket
import ssl
import time

from outbound_support import world  # noqa: F401 - fixture

ALICE = "alice@localhost"


def trickle_until_closed(sock, payload: bytes, interval: float, limit: float) -> tuple[bytes, float]:
    """Sends `payload` a byte every `interval` seconds, collecting what the
    server says, until it closes the connection or `limit` passes. Returns
    (everything received, seconds until the close)."""
    start = time.monotonic()
    got = b""
    i = 0
    sock.settimeout(interval)
    while time.monotonic() - start < limit:
        if i < len(payload):
            try:
                sock.sendall(payload[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                return got, time.monotonic() - start
            i += 1
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return got, time.monotonic() - start
        if not chunk:
            return got, time.monotonic() - start
        got += chunk
    raise AssertionError(f"still open after {limit}s; got {got!r}")


def greeted(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    buf = b""
    while not buf.endswith(b"\r\n"):
        buf += sock.recv(4096)
    assert buf.startswith(b"220 "), buf
    return sock


def test_a_trickled_command_times_out_as_a_whole_rfc5321_4_5_3_2_7(make_server):
    srv = make_server(config={"smtp": {"command_timeout": "3s"}})
    with greeted(srv.smtp_port) as sock:
        # One byte every half second, never a line end: each read comes in
        # well under the timeout, the command as a whole does not.
        got, closed_after = trickle_until_closed(sock, b"NOOP NOOP NOOP NOOP NOOP", 0.5, 15)
    assert got.startswith(b"421 4.4.2 ") and b"Timeout" in got, got
    assert 2.5 < closed_after < 6, closed_after


def test_trickled_data_times_out_as_a_whole(make_server):
    srv = make_server(config={"smtp": {"data_timeout": "3s"}})
    with greeted(srv.smtp_port) as sock:
        sock.sendall(b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n")
        buf = b""
        while b"354 " not in buf:
            buf += sock.recv(4096)
        got, closed_after = trickle_until_closed(sock, b"Subject: slow\r\n" + b"x\r\n" * 100, 0.2, 15)
    assert got.startswith(b"421 4.4.2 ") and b"message content" in got, got
    assert 2.5 < closed_after < 6, closed_after
    assert srv.count(ALICE) == 0


def test_a_stalled_starttls_handshake_is_dropped(make_server):
    srv = make_server(config={"tls": {"handshake_timeout": "2s"}})
    with greeted(srv.smtp_port) as sock:
        sock.sendall(b"EHLO c\r\nSTARTTLS\r\n")
        got, closed_after = trickle_until_closed(sock, b"", 0.2, 15)
    assert b"220 2.0.0 Ready to start TLS" in got, got
    assert closed_after < 5, closed_after
    # The server logs just after closing the socket: give it a moment.
    deadline = time.monotonic() + 3
    while "TLS handshake timed out" not in srv.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "TLS handshake timed out" in srv.log_text(), srv.log_tail()


def test_a_stalled_stls_handshake_is_dropped(make_server):
    srv = make_server(config={"tls": {"handshake_timeout": "2s"}})
    sock = socket.create_connection(("127.0.0.1", srv.pop3_port), timeout=10)
    with sock:
        assert sock.recv(4096).startswith(b"+OK")
        sock.sendall(b"STLS\r\n")
        got, closed_after = trickle_until_closed(sock, b"", 0.2, 15)
    assert got.startswith(b"+OK Begin TLS"), got
    assert closed_after < 5, closed_after


def test_a_pop3_client_that_stops_reading_retr_frees_the_maildrop(make_server):
    """Issue 16 item 3, seen on the wire: RETR of a 20 MB message, then the
    client stopped reading; the session held the maildrop lock forever
    (a second login got -ERR [IN-USE] still after 30 s)."""
    srv = make_server(config={"pop3": {"idle_timeout": "3s"}})
    body = ("x" * 998 + "\r\n") * 20_000  # 20 MB
    srv.send(ALICE, body=body)
    sock = socket.create_connection(("127.0.0.1", srv.pop3_port), timeout=10)
    # A small receive buffer so the server's writes block soon.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with sock:
        assert sock.recv(4096).startswith(b"+OK")
        sock.sendall(f"USER {ALICE}\r\nPASS alice-secret\r\n".encode())
        buf = b""
        while buf.count(b"\r\n") < 2:
            buf += sock.recv(4096)
        assert b"maildrop has 1 messages" in buf, buf
        sock.sendall(b"RETR 1\r\n")
        time.sleep(0.5)  # the server starts writing; we never read again
        start = time.monotonic()
        while True:
            try:
                p = poplib.POP3("127.0.0.1", srv.pop3_port, timeout=10)
                p.user(ALICE)
                p.pass_("alice-secret")
                break
            except poplib.error_proto as e:
                assert b"IN-USE" in e.args[0], e
                p.close()
                assert time.monotonic() - start < 8, "the lock outlived idle_timeout"
                time.sleep(0.5)
        assert p.stat()[0] == 1, "the message is still there: no UPDATE on a timeout"
        p.quit()
    assert time.monotonic() - start > 1.5, "the first session should have held the lock for a while"


def queue(srv) -> list[dict]:
    return json.loads(srv.cli("queue", "list", "--json", check=True).stdout)


def test_a_trickled_greeting_ends_the_attempt_at_greeting_timeout(world, make_server):  # noqa: F811
    """Issue 16 item 3, seen on the wire: a greeting trickled at 1 byte / 2 s
    kept a delivery in flight > 54 s with greeting_timeout = 5s."""
    srv = make_server(config=world.config(delivery={"greeting_timeout": "4s"}, retry={"interval": "1h"}))
    start = time.monotonic()
    srv.send("x@trickle.test", sender=ALICE)
    while True:
        entries = [e for e in queue(srv) if e["attempts"] >= 1]
        if entries:
            break
        assert time.monotonic() - start < 12, "the attempt outlived greeting_timeout"
        time.sleep(0.2)
    took = time.monotonic() - start
    r = entries[0]["recipients"][0]
    assert r["state"] == "deferred" and r["last_reply"].startswith("451 4.4.2"), r
    assert "greeting" in r["last_reply"], r
    assert 3.5 < took < 12, took


def test_tls_handshake_on_a_ssl_context_still_works(make_server):
    """The deadline does not cut a healthy handshake short."""
    srv = make_server(config={"tls": {"handshake_timeout": "2s"}})
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with srv.smtp() as s:
        s.starttls(context=ctx)
        s.ehlo("client.test")
        assert s.noop()[0] == 250
