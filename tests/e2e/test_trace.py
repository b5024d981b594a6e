"""`ferrymail trace ID`: the per-transaction decision trace, end to end.

A recipient refused by a plugin (the trace names the plugin, its hook and
its reply), a message accepted and filed locally (every plugin that ran,
with its answer and time), and a message deferred by the remote server,
then delivered (both attempts, with the server and reply of each). The IDs
are the ones the logs and replies give an operator: the session id and the
message id.
"""

import json
import re
import time

from outbound_support import TEMPFAIL, world  # noqa: F401 - fixture
from test_plugins import DEFAULT_CHAIN, echo

ALICE = "alice@localhost"


def wait_until(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def trace(srv, ident: str) -> tuple[str, list[dict]]:
    text = srv.cli("trace", ident, check=True).stdout
    records = json.loads(srv.cli("trace", ident, "--json", check=True).stdout)
    return text, records


def queued_as(reply: bytes) -> str:
    m = re.search(rb"queued as ([0-9a-f]{16})", reply)
    assert m, reply
    return m.group(1).decode()


def hooks(record: dict) -> list[dict]:
    return [s for s in record["steps"] if s["kind"] == "hook"]


def test_a_recipient_refused_by_a_plugin_names_the_plugin_and_its_reply(make_server):
    srv = make_server(config={
        "plugins": {"bouncer": echo(rcpt=("reject", 553, "5.7.26", "bouncer says no"))},
        "chain": ["bouncer", *DEFAULT_CHAIN],
    })
    with srv.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<someone@example.org>")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>") == (553, "5.7.26 bouncer says no")
        c.cmd("QUIT")
    session = wait_until(lambda: re.search(r"session=([0-9a-f]+).*stage=\"?rcpt", srv.log_text()), what="the log line")
    sid = session.group(1)
    text, records = wait_until(lambda: trace_or_none(srv, sid), what="the trace")
    assert len(records) == 1, records
    (record,) = records
    assert record["message"] is None and record["outcome"].startswith("no message"), record
    (call,) = [h for h in hooks(record) if h["hook"] == "rcpt"]
    assert call["plugin"] == "bouncer" and call["decided"] and not call["failed"], call
    assert call["answer"] == "reject 553 5.7.26 bouncer says no", call
    rcpt = [s for s in record["steps"] if s["kind"] == "command" and s["command"].startswith("RCPT")]
    assert rcpt and rcpt[0]["reply"] == "553 5.7.26 bouncer says no", record["steps"]
    assert "plugin bouncer: reject 553 5.7.26 bouncer says no" in text, text
    assert "<- decided" in text, text


def trace_or_none(srv, ident):
    r = srv.cli("trace", ident)
    if r.returncode != 0:
        return None
    return r.stdout, json.loads(srv.cli("trace", ident, "--json", check=True).stdout)


def test_an_accepted_local_message_shows_every_plugin_call(make_server):
    srv = make_server(config={
        "plugins": {"stamp": echo()},
        "chain": ["stamp", *DEFAULT_CHAIN],
    })
    with srv.smtp() as s:
        s.mail("someone@example.org")
        s.rcpt(ALICE)
        code, reply = s.data(b"Subject: traced\r\n\r\nhello\r\n")
        assert code == 250, reply
    msg = queued_as(reply)
    assert srv.count(ALICE) == 1
    text, (record,) = trace(srv, msg)
    assert record["message"] == msg and record["outcome"].startswith("accepted"), record
    calls = {(h["plugin"], h["hook"]): h for h in hooks(record)}
    # The echo plugin's data hook continued, adding its header; the default
    # local plugin claimed the recipient.
    assert calls[("stamp", "data")]["answer"].startswith("continue (+1 header fields)"), calls
    assert calls[("local", "rcpt")]["answer"] == "accept" and calls[("local", "rcpt")]["decided"], calls
    assert ("local", "route") in calls, "routing at acceptance is part of the record"
    assert all(h["micros"] >= 0 for h in calls.values())
    assert f"message {msg}" in text and "plugin local: accept" in text, text
    assert "RCPT" in text and "MAIL" in text, text
    # The session id from the log finds the same transaction, through the
    # session's index, written when the session ends (after its QUIT reply).
    sid = re.search(rf"session=([0-9a-f]+) msg={msg}", srv.log_text()).group(1)
    _, by_session = wait_until(lambda: trace_or_none(srv, sid), what="the session's index")
    assert [r["message"] for r in by_session] == [msg]


def test_unknown_ids_are_a_clear_error(server):
    r = server.cli("trace", "00000000deadbeef")
    assert r.returncode != 0 and "no trace for 00000000deadbeef" in (r.stdout + r.stderr)
    r = server.cli("trace", "not-an-id")
    assert r.returncode != 0 and "not an id" in (r.stdout + r.stderr)


def test_a_deferred_then_delivered_message_shows_both_attempts(world, make_server):
    srv = make_server(config=world.config(retry={"interval": "1s"}))
    with srv.smtp() as s:
        s.mail(ALICE)
        s.rcpt("x@tempfail.test")
        code, reply = s.data(b"Subject: outbound\r\n\r\nhello\r\n")
        assert code == 250, reply
    msg = queued_as(reply)
    world.sinks.wait_for(lambda: world.sinks.received(TEMPFAIL), timeout=30, what="delivery after retries")

    def delivered():
        _, (record,) = trace(srv, msg)
        results = [a["recipients"][0]["result"] for a in record["attempts"]]
        return record if results and results[-1] == "delivered" else None

    record = wait_until(delivered, what="the delivered attempt in the trace")
    attempts = record["attempts"]
    assert len(attempts) >= 2, attempts
    first, last = attempts[0]["recipients"][0], attempts[-1]["recipients"][0]
    assert first["result"] == "deferred" and first["reply"].startswith("451 4.7.1"), first
    assert first["next_attempt"] and first["server"], first
    assert last["result"] == "delivered" and last["reply"].startswith("250"), last
    text, _ = trace(srv, msg)
    assert "delivery attempt 1" in text and "-> deferred, next try" in text and "-> delivered" in text, text


def test_queue_show_includes_the_trace(world, make_server):
    srv = make_server(config=world.config(retry={"interval": "1h"}))
    with srv.smtp() as s:
        s.mail(ALICE)
        s.rcpt("x@tempfail.test")
        code, reply = s.data(b"Subject: waits\r\n\r\nhello\r\n")
    msg = queued_as(reply)

    def attempted():
        entries = json.loads(srv.cli("queue", "list", "--json", check=True).stdout)
        return next((e for e in entries if e["attempts"] >= 1), None)

    entry = wait_until(attempted, what="a first attempt")
    shown = json.loads(srv.cli("queue", "show", entry["id"], "--json", check=True).stdout)
    assert shown["trace"]["message"] == msg, shown
    assert shown["trace"]["attempts"][0]["recipients"][0]["result"] == "deferred", shown
    text = srv.cli("queue", "show", entry["id"], check=True).stdout
    assert "trace:" in text and "delivery attempt 1" in text, text


def test_traces_can_be_turned_off(make_server):
    srv = make_server(config={"trace": {"enabled": False}})
    with srv.smtp() as s:
        s.mail("someone@example.org")
        s.rcpt(ALICE)
        code, reply = s.data(b"Subject: untraced\r\n\r\nhello\r\n")
    r = srv.cli("trace", queued_as(reply))
    assert r.returncode != 0 and "no trace" in (r.stdout + r.stderr)


def test_a_message_refused_at_data_is_kept_under_its_message_id(make_server):
    srv = make_server(config={"chain": ["filter", *DEFAULT_CHAIN]}, extra_toml=(
        '[plugins.filter]\npath = "builtin:header-filter"\n'
        'config = { deny = [{ header = "Subject", contains = "spam" }] }\n'))
    with srv.smtp() as s:
        s.mail("someone@example.org")
        s.rcpt(ALICE)
        assert s.data(b"Subject: spam\r\n\r\nbuy\r\n")[0] == 550
    msg = wait_until(lambda: re.search(r"message refused by policy.*msg=([0-9a-f]{16})", srv.log_text()),
                     what="the refusal log line").group(1)
    _, (record,) = trace(srv, msg)
    assert record["outcome"] == "refused: 550 5.7.1 Message refused: Subject header matches a filter", record
    (call,) = [h for h in hooks(record) if h["hook"] == "data"]
    assert call["plugin"] == "filter" and call["decided"], call
