"""Log injection (issue 16 item 6): an AUTH LOGIN user name with a LF was
logged raw and forged whole log lines. Every client-controlled string now
goes into the log escaped (one field, one line), and SASL identities with
control characters are refused outright."""

import base64
import re

from conftest import PASSWORDS, ROOT

ALICE = "alice@localhost"
FORGED = "2026-01-01T00:00:00.000000Z  INFO auth ok session=0 user=root"
# Every line the server writes starts with a timestamp and a level.
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z\s+(TRACE|DEBUG|INFO|WARN|ERROR) ")


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def assert_no_forged_lines(srv):
    raw = srv.log_path.read_bytes()
    for bad in (b"\r", b"\x1b", "\u0085".encode(), "\u2028".encode(), "\u202e".encode()):
        assert bad not in raw, f"raw {bad!r} in the log"
    for line in raw.decode().split("\n"):
        if line:
            assert LINE.match(line), f"forged or broken log line: {line!r}"
    assert "\n" + FORGED not in raw.decode()


def test_sasl_identities_with_line_breaks_are_refused_and_nothing_is_forged(server):
    with server.raw(server.submission_port) as c:
        c.greeting()
        c.cmd("EHLO client.test")
        # AUTH LOGIN: the user name is its own line of base64.
        assert c.cmd("AUTH LOGIN")[0] == 334
        code, _ = c.cmd(b64(("mallory\n" + FORGED).encode()))
        assert code in (501, 535), code
        # AUTH PLAIN with CR, LF and ESC in the identity.
        code, _ = c.cmd("AUTH PLAIN " + b64(("\0mal\r\n" + FORGED + "\x1b[2J\0pw").encode()))
        assert code in (501, 535), code
        # A wrong password for a name with no control characters but a
        # forged field: logged quoted.
        code, _ = c.cmd("AUTH PLAIN " + b64(b"\0x client=10.9.9.9\0pw"))
        assert code == 535
    log = server.log_text()
    assert 'user="x client=10.9.9.9"' in log, log[-1500:]
    assert_no_forged_lines(server)
    # The documented fail2ban filter finds the real client, never the forged one.
    assert fail2ban_hosts(log) == ["127.0.0.1"], fail2ban_hosts(log)


def fail2ban_hosts(log: str) -> list:
    """The addresses config/fail2ban/ferrymail.conf's failregex picks out
    of `log` (fail2ban matches the line with its timestamp cut off)."""
    conf = (ROOT / "config" / "fail2ban" / "ferrymail.conf").read_text()
    (failregex,) = re.findall(r"^failregex = (.*)$", conf, re.M)
    pattern = re.compile(failregex.replace("<ADDR>", r"(?P<addr>[0-9A-Fa-f.:]+)"))
    hosts = []
    for line in log.split("\n"):
        m = pattern.search(line.split("Z", 1)[-1])
        if m:
            hosts.append(m.group("addr"))
    return hosts


def test_every_client_string_is_escaped_in_the_log(server):
    nasty = "\x1b[31mred\u0085next\u2028line\u202eevil\x0b\x0c"
    with server.raw() as c:
        c.greeting()
        c.send(f"EHLO helo{nasty}.test\r\n".encode())
        c.reply()
        c.send(f"MAIL FROM:<from{nasty}@example.org>\r\n".encode())
        c.reply()
        for to in (f"to{nasty}@localhost", f"to{nasty}@example.net"):
            c.send(f"RCPT TO:<{to}>\r\n".encode())
            c.reply()
        c.send(f"XYZZY {nasty}\r\n".encode())
        c.reply()
        c.cmd("QUIT")
    with server.raw(server.pop3_port) as p:
        p.line()
        # ASCII control characters end no POP3 argument: refused outright.
        p.send(f"USER {ALICE}{nasty}\r\n".encode())
        assert p.line().startswith(b"-ERR")
        # Unicode line and paragraph separators and bidi overrides pass the
        # parser, so the log must escape them.
        p.send("USER al\u2028ice\u202e\u0085@localhost\r\n".encode())
        assert p.line().startswith(b"+OK")
        p.send(b"PASS wrong\r\n")
        assert p.line().startswith(b"-ERR [AUTH]")
        p.send(b"QUIT\r\n")
    # The server is still fine, and its log says what happened, escaped.
    p = server.pop3(ALICE, PASSWORDS[ALICE])
    p.stat()
    p.quit()
    log = server.log_text()
    assert r"helo\u{1b}[31mred\u{85}next\u{2028}line\u{202e}evil\u{b}\u{c}.test" in log, log[-3000:]
    assert r'user="al\u{2028}ice\u{202e}\u{85}@localhost"' in log, log[-3000:]
    assert "auth failed client=127.0.0.1 service=pop3" in log
    assert_no_forged_lines(server)
