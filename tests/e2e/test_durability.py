"""'250 means durable': kill -9 the server right after the last 250, or at
random moments during a stream, restart it on the same data_dir, and every
acknowledged message is in its mailbox exactly once and intact. The same
for POP3 deletions and account changes.

FM_TEST_SEED fixes the random kill schedule (printed on each run)."""

import hashlib
import os
import random
import smtplib
import threading
import time
import uuid
from collections import Counter

from conftest import PASSWORDS

USERS = list(PASSWORDS)


def message(token: str, size: int) -> bytes:
    body = b"".join(b"%s %06d\r\n" % (token.encode(), i) for i in range(max(1, size // 40)))
    digest = hashlib.sha256(body).hexdigest()
    return (f"From: <s@example.org>\r\nSubject: durable {token}\r\nX-Token: {token}\r\n"
            f"X-Digest: {digest}\r\n\r\n").encode() + body


def mailbox_tokens(server, user) -> list[str]:
    """Tokens of every message in the mailbox; checks each body's digest."""
    tokens = []
    for msg in server.mailbox(user):
        head, _, body = msg.partition(b"\r\n\r\n")
        fields = dict(l.split(b": ", 1) for l in head.split(b"\r\n") if l.startswith(b"X-"))
        assert hashlib.sha256(body).hexdigest().encode() == fields[b"X-Digest"], f"torn message {fields}"
        tokens.append(fields[b"X-Token"].decode())
    return tokens


def check_exactly_once(server, acked: set[str]) -> Counter:
    seen = Counter()
    for user in USERS:
        seen.update(mailbox_tokens(server, user))
    lost = [t for t in acked if seen[t] == 0]
    doubled = [t for t, n in seen.items() if n > 1]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged messages lost, e.g. {lost[:3]}"
    assert not doubled, f"messages stored more than once: {doubled[:3]}"
    return seen


def test_kill9_right_after_last_250_loses_nothing(server):
    n, threads = 200, 8
    acked: set[str] = set()
    lock = threading.Lock()
    errors = []

    def sender(k: int):
        try:
            with server.smtp() as s:
                for i in range(n // threads):
                    token = f"t{k}-{i}-{uuid.uuid4().hex[:8]}"
                    s.sendmail("s@example.org", [USERS[(k + i) % len(USERS)]], message(token, 200 + 300 * (i % 7)))
                    with lock:
                        acked.add(token)
                        if len(acked) == n:
                            # The very moment the last 250 is read.
                            server.kill()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=sender, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    # The last sender's QUIT may fail against the dead server; every 250 counts.
    assert len(acked) == n, (len(acked), errors[:3])
    assert not server.running
    server.start()
    p = server.pop3(USERS[0])
    stat0 = p.stat()[0]
    p.quit()
    p = server.pop3(USERS[1])
    stat1 = p.stat()[0]
    p.quit()
    assert stat0 + stat1 == n, (stat0, stat1)
    check_exactly_once(server, acked)


class StreamSender(threading.Thread):
    """Sends until stopped; reconnects after the server dies; remembers
    which tokens got a 250."""

    def __init__(self, server, k, acked, lock, stop):
        super().__init__(daemon=True)
        self.server, self.k, self.acked, self.lock, self.stop = server, k, acked, lock, stop
        self.attempts = 0

    def run(self):
        rng = random.Random(self.k)
        smtp = None
        while not self.stop.is_set():
            try:
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", self.server.smtp_port, local_hostname="client.test", timeout=10)
                # A fresh token per attempt: an unanswered one may or may not be stored.
                token = f"s{self.k}-{uuid.uuid4().hex[:12]}"
                self.attempts += 1
                smtp.sendmail("s@example.org", [USERS[self.attempts % len(USERS)]],
                              message(token, rng.choice([100, 2_000, 30_000, 200_000])))
                with self.lock:
                    self.acked.add(token)
            except (OSError, smtplib.SMTPException):
                smtp = None
                time.sleep(0.01)
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass


def test_kill9_at_random_moments_every_250_survives_once(server):
    seed = int(os.environ.get("FM_TEST_SEED", random.randrange(1 << 30)))
    print(f"FM_TEST_SEED={seed}")
    rng = random.Random(seed)
    acked: set[str] = set()
    lock, stop = threading.Lock(), threading.Event()
    senders = [StreamSender(server, k, acked, lock, stop) for k in range(5)]
    for s in senders:
        s.start()
    kills = 4
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.2, 0.9))
            server.kill()
            time.sleep(rng.uniform(0.0, 0.2))
            server.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for s in senders:
            s.join(timeout=30)
    server.kill()
    server.start()
    seen = check_exactly_once(server, acked)
    print(f"kills={kills} attempts={sum(s.attempts for s in senders)} acked={len(acked)} stored={sum(seen.values())}")
    assert len(acked) >= 20, "too few messages got through to test anything"


def test_pop3_deletions_survive_kill9(server):
    with server.smtp() as s:
        for i in range(4):
            s.sendmail("s@example.org", [USERS[0]], message(f"d{i}", 100))
    p = server.pop3(USERS[0])
    p.dele(1)
    p.dele(3)
    assert p.quit().startswith(b"+OK")  # the +OK of UPDATE means deleted on disk
    server.kill()
    server.start()
    assert mailbox_tokens(server, USERS[0]) == ["d1", "d3"]


def test_account_changes_survive_kill9(server):
    server.cli("user", "add", "dora@localhost", "--password-stdin", stdin="dora-pw\n", check=True)
    server.cli("user", "passwd", USERS[0], "--password-stdin", stdin="changed-pw\n", check=True)
    server.cli("user", "del", USERS[1], check=True)
    server.kill()
    server.start()
    listed = server.cli("user", "list", check=True).stdout
    assert "dora@localhost" in listed and USERS[0] in listed and USERS[1] not in listed
    server.pop3("dora@localhost", "dora-pw").quit()
    server.pop3(USERS[0], "changed-pw").quit()


def test_sigterm_exits_zero_and_keeps_mail(server):
    server.send(USERS[0], subject="before stop")
    assert server.stop() == 0, server.log_tail()
    assert "panicked" not in server.log_text()
    server.start()
    assert server.count(USERS[0]) == 1


def test_uidl_survives_kill9_rfc1939_7(server):
    """Unique-ids persist across sessions, including across a crash."""
    with server.smtp() as s:
        for i in range(3):
            s.sendmail("s@example.org", [USERS[0]], message(f"u{i}", 100))
    p = server.pop3(USERS[0])
    before = p.uidl()[1]
    p.quit()
    server.kill()
    server.start()
    p = server.pop3(USERS[0])
    assert p.uidl()[1] == before
    p.quit()
