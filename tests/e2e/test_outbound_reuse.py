"""Outbound connection reuse (RFC 5321 3.3: several transactions on one
connection), against the loopback sinks of outbound_support.py: messages
to one host share a connection while it is cached, a connection the server
closed while it waited costs a reconnect and never a deferral, and idle
connections are closed with QUIT when nobody takes them."""

import json
import time

from outbound_support import ACCEPT, IDLECLOSE, MIXED, world  # noqa: F401 - fixture

SENDER = "alice@localhost"


def queue_empty(srv) -> bool:
    return json.loads(srv.cli("queue", "list", "--json", check=True).stdout) == []


def send_and_wait(srv, world, to, ip, n):
    srv.send(to, sender=SENDER, subject=f"message {n}")
    world.sinks.wait_for(lambda: len(world.sinks.received(ip)) >= n, what=f"delivery of message {n}")


def test_messages_to_one_host_share_a_connection_rfc5321_3_3(world, make_server):
    srv = make_server(config=world.config(delivery={"connection_cache_time": "10s"}))
    for n in range(1, 6):
        send_and_wait(srv, world, "rcpt@accept.test", ACCEPT, n)
    assert world.sinks.transactions[ACCEPT] == 5
    assert world.sinks.connections[ACCEPT] == 1
    # The cached connection's next transaction starts clean: every message
    # has exactly its own envelope.
    assert [m.rcpts for m in world.sinks.received(ACCEPT)] == [["rcpt@accept.test"]] * 5
    assert [m.mail_from for m in world.sinks.received(ACCEPT)] == [SENDER] * 5


def test_a_refused_transaction_leaves_the_connection_reusable_with_rset_rfc5321_4_1_1_5(world, make_server):
    srv = make_server(config=world.config(delivery={"connection_cache_time": "10s"}))
    srv.send("bad@mixed.test", sender=SENDER)
    time.sleep(1.0)
    srv.send("good@mixed.test", sender=SENDER)
    world.sinks.wait_for(lambda: world.sinks.received(MIXED), what="the second message")
    assert world.sinks.connections[MIXED] == 1
    assert world.sinks.received(MIXED)[0].rcpts == ["good@mixed.test"]


def test_cache_off_opens_a_connection_per_message(world, make_server):
    srv = make_server(config=world.config(delivery={"connection_cache_time": "0s"}))
    for n in range(1, 4):
        send_and_wait(srv, world, "rcpt@accept.test", ACCEPT, n)
    assert world.sinks.connections[ACCEPT] == 3
    world.sinks.wait_for(lambda: world.sinks.quits[ACCEPT] == 3, what="a QUIT per connection")


def test_a_connection_the_server_closed_meanwhile_costs_a_reconnect_not_a_deferral(world, make_server):
    # The sink says 421 and closes 0.3 s after a transaction; ferrymail
    # keeps the connection 10 s, so the second message finds it dead.
    srv = make_server(config=world.config(delivery={"connection_cache_time": "10s"}, retry={"interval": "1h"}))
    send_and_wait(srv, world, "rcpt@idleclose.test", IDLECLOSE, 1)
    time.sleep(1.0)
    send_and_wait(srv, world, "rcpt@idleclose.test", IDLECLOSE, 2)
    assert world.sinks.connections[IDLECLOSE] == 2
    deadline = time.monotonic() + 10
    while not queue_empty(srv):
        assert time.monotonic() < deadline, "the queue did not empty"
        time.sleep(0.1)
    assert "deferred" not in srv.log_text()


def test_an_idle_connection_is_closed_with_quit_after_the_cache_time(world, make_server):
    srv = make_server(config=world.config(delivery={"connection_cache_time": "500ms"}))
    send_and_wait(srv, world, "rcpt@accept.test", ACCEPT, 1)
    assert world.sinks.quits[ACCEPT] == 0
    world.sinks.wait_for(lambda: world.sinks.quits[ACCEPT] == 1, timeout=5, what="QUIT after the cache time")
    # The next message opens a new connection.
    send_and_wait(srv, world, "rcpt@accept.test", ACCEPT, 2)
    assert world.sinks.connections[ACCEPT] == 2
