"""Plugin state is the cluster's, not a node's: two ferrymail nodes on one
PostgreSQL database (pg_cluster.py) run the greylist and rate-limit
plugins, whose kv (namespaced by tenant and plugin, not by node) lives in
the database. A triplet greylisted through node a passes on node b once
its delay is over, and a client's messages through a and b are one count
against one limit."""

import time

from conftest import PASSWORDS
from pg_cluster import pg, pg_node, pg_shared  # noqa: F401 - fixtures
from test_plugins import DEFAULT_CHAIN, rcpt_reply

ALICE, BOB = "alice@localhost", "bob@localhost"


def two_nodes(make_server, cluster, db, plugins: dict, chain: list):
    config = {"plugins": plugins, "chain": [*chain, *DEFAULT_CHAIN]}
    a, b = (pg_node(make_server, cluster, db, n, config=config) for n in ("a", "b"))
    for user in (ALICE, BOB):
        a.add_user(user, PASSWORDS[user])
    return a, b


def test_a_triplet_greylisted_on_one_node_passes_on_another_after_the_delay(pg, make_server):
    cluster, db = pg
    a, b = two_nodes(make_server, cluster, db, {"greylist": {"path": "builtin:greylist", "config": {"delay": "2s"}}},
                     ["greylist"])
    code, text = rcpt_reply(a, ALICE)
    assert code == 451 and text.startswith("4.7.1"), (code, text)
    first_seen = time.monotonic()
    # Node b knows the triplet: it answers with what is left of a's delay.
    code, text = rcpt_reply(b, ALICE)
    assert code == 451 and "try again in" in text, (code, text)
    time.sleep(max(0.0, first_seen + 2.2 - time.monotonic()))
    # Node b never saw this triplet before the delay: a per-node list would
    # greylist it now (451); the shared one lets it through.
    assert rcpt_reply(b, ALICE)[0] == 250
    # Passed once, it passes on every node.
    assert rcpt_reply(a, ALICE)[0] == 250
    # Node b greylists a triplet nobody has seen, so its plugin is running.
    code, text = rcpt_reply(b, BOB)
    assert code == 451 and text.startswith("4.7.1"), (code, text)
    rows = cluster.psql("SELECT count(*) FROM kv WHERE convert_from(namespace, 'UTF8') LIKE '%greylist%'", db)
    print(f"\ngreylist: {rows} kv rows in the database, one list for both nodes")


def mail_from_reply(node, sender: str = "someone@example.org") -> tuple[int, str]:
    with node.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        return c.cmd(f"MAIL FROM:<{sender}>")


def test_a_client_over_its_rate_limit_on_one_node_is_over_it_on_every_node(pg, make_server):
    cluster, db = pg
    # `sender` without AUTH: per client address, counted at MAIL FROM.
    a, b = two_nodes(make_server, cluster, db,
                     {"rate-limit": {"path": "builtin:rate-limit", "config": {"max": 3, "window": "1h"}}},
                     ["rate-limit"])
    a.send(ALICE, subject="one, via a")
    b.send(ALICE, subject="two, via b")
    a.send(ALICE, subject="three, via a")
    # Three messages of 127.0.0.1 are the limit, whichever nodes took them.
    for node in (b, a):
        code, text = mail_from_reply(node)
        assert code == 450 and text.startswith("4.7.1"), (node.config["hostname"], code, text)
    assert a.count(ALICE) == 3
