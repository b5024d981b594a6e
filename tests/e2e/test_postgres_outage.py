"""PostgreSQL stopped under a node's feet (pg_ctl stop -m fast on a
cluster of the test's own): SMTP clients sending all along get 4xx for new
messages, never a 250 that is then lost; POP3 and IMAP logins are refused
as temporary failures; once PostgreSQL is started again mail flows by
itself, without restarting ferrymail, and every message acknowledged with
250 before, during and after is in the mailbox."""

import imaplib
import poplib
import smtplib
import threading
import time

import pytest

from conftest import PASSWORDS
from pg_cluster import pg_node, pg_private  # noqa: F401 - fixture
from test_outbound import wait_until

ALICE = "alice@localhost"


class Senders:
    """Two clients sending one message per connection, each with a token,
    until stopped: which got 250, and which reply codes came otherwise."""

    def __init__(self, node, threads: int = 2):
        self.node, self.stop_flag = node, threading.Event()
        self.acked, self.refused, self.errors = [], [], []
        self.lock = threading.Lock()
        self.n = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _token(self) -> str:
        with self.lock:
            self.n += 1
            return f"tok{self.n:05d}"

    def _run(self):
        while not self.stop_flag.is_set():
            token = self._token()
            msg = f"From: <s@example.org>\r\nSubject: {token}\r\n\r\nunder load\r\n".encode()
            try:
                with self.node.smtp() as s:
                    s.sendmail("s@example.org", [ALICE], msg)
                with self.lock:
                    self.acked.append(token)
            except smtplib.SMTPRecipientsRefused as e:
                with self.lock:
                    self.refused.append(e.recipients[ALICE][0])
            except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused, smtplib.SMTPResponseException) as e:
                with self.lock:
                    self.refused.append(e.smtp_code)
            except (OSError, smtplib.SMTPException) as e:
                with self.lock:
                    self.errors.append(repr(e))
            time.sleep(0.02)

    def count(self) -> tuple[int, int]:
        with self.lock:
            return len(self.acked), len(self.refused)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=30)


def test_database_down_under_smtp_load_then_back_without_a_restart(pg_private, make_server):
    cluster, db = pg_private
    node = pg_node(make_server, cluster, db, "a")
    node.add_user(ALICE, PASSWORDS[ALICE])
    senders = Senders(node)
    wait_until(lambda: senders.count()[0] >= 10, what="mail flowing")

    acked_at_stop = senders.count()[0]
    stopped = time.monotonic()
    cluster.stop("fast")
    wait_until(lambda: senders.count()[1] >= 5, timeout=30, what="refusals while the database is down")
    # POP3 and IMAP: a temporary failure, said cleanly, the session alive.
    pop = poplib.POP3("127.0.0.1", node.pop3_port, timeout=15)
    pop.user(ALICE)
    with pytest.raises(poplib.error_proto) as e:
        pop.pass_(PASSWORDS[ALICE])
    assert b"[SYS/TEMP]" in e.value.args[0], e.value
    pop.quit()
    imap = imaplib.IMAP4("127.0.0.1", node.imap_port, timeout=15)
    with pytest.raises(imaplib.IMAP4.error) as e:
        imap.login(ALICE, PASSWORDS[ALICE])
    assert "UNAVAILABLE" in str(e.value), e.value
    imap.logout()
    assert node.running
    down_for = time.monotonic() - stopped
    acked_while_down = senders.count()[0] - acked_at_stop

    cluster.start()
    restarted = time.monotonic()
    acked_at_restart = senders.count()[0]
    wait_until(lambda: senders.count()[0] >= acked_at_restart + 10, timeout=30, what="mail flowing again")
    recovered_after = time.monotonic() - restarted
    senders.stop()

    codes = sorted(set(senders.refused))
    print(f"\ndatabase down {down_for:.1f} s (stop included): {len(senders.refused)} messages refused with {codes}, "
          f"{acked_while_down} acknowledged around the stop; flowing again {recovered_after:.1f} s after the "
          f"restart; {len(senders.acked)} acknowledged in all; client errors {senders.errors[:3]}")
    assert codes and all(400 <= c < 500 for c in codes), f"refusals must be 4xx: {codes}"
    # Nothing acknowledged is lost: every 250 is in the mailbox.
    imap = node.imap(ALICE)
    try:
        imap.select("INBOX", readonly=True)
        typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        stored = {part[1].decode().split(":", 1)[1].strip() for part in data if isinstance(part, tuple)}
    finally:
        imap.logout()
    missing = [t for t in senders.acked if t not in stored]
    assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:5]}"
