"""The queue across restarts and under the operator's hand: `ferrymail
queue list/show/flush/delete/bounce` against a running server and against
the store directly, and pending work resumed after a stop."""

import time

from outbound_support import TEMPFAIL, world  # noqa: F401 - fixture
from test_outbound import SENDER, queue, reports, status_text, wait_until


def first_attempted(srv, n=1):
    return wait_until(lambda: next((e for e in queue(srv) if e["attempts"] >= n), None), what=f"attempt {n}")


def test_list_show_flush_bounce_delete_on_a_running_server(world, make_server):
    srv = make_server(config=world.config(retry={"interval": "1h"}))
    srv.send("x@down.test", sender=SENDER, subject="held")
    entry = first_attempted(srv)
    qid = entry["id"]
    table = srv.cli("queue", "list", check=True).stdout.splitlines()
    assert table[0].startswith("ID\tAGE\tNEXT\tTRIES\tSENDER\tRECIPIENTS\tLAST REPLY")
    row = next(line for line in table if line.startswith(qid)).split("\t")
    assert row[3] == "1" and row[4] == SENDER and row[5] == "x@down.test" and row[6].startswith("451 4.4.1"), row
    shown = srv.cli("queue", "show", qid, check=True).stdout
    assert "x@down.test deferred (1 attempts" in shown, shown

    # flush: tried again now, not in an hour.
    assert "scheduled now" in srv.cli("queue", "flush", qid, check=True).stdout
    first_attempted(srv, 2)

    # bounce: returned to the sender at once, with the operator's reason.
    srv.cli("queue", "bounce", qid, check=True)
    (bounce,) = wait_until(lambda: reports(srv), what="the bounce")
    assert "Returned to sender by the postmaster" in status_text(bounce)
    wait_until(lambda: queue(srv) == [], what="an empty queue")

    # delete: gone, and the sender is not told.
    srv.send("y@down.test", sender=SENDER)
    qid = first_attempted(srv)["id"]
    assert "deleted" in srv.cli("queue", "delete", qid, check=True).stdout
    assert queue(srv) == []
    time.sleep(0.5)
    assert len(reports(srv)) == 1

    bad = srv.cli("queue", "show", "00000000000000ff")
    assert bad.returncode != 0 and "no such queue entry" in bad.stderr
    assert srv.cli("queue", "show", "not-an-id").returncode != 0


def test_queue_commands_work_on_the_store_without_a_server(world, make_server):
    srv = make_server(config=world.config(retry={"interval": "1h"}))
    srv.send("x@down.test", sender=SENDER)
    qid = first_attempted(srv)["id"]
    srv.stop()
    assert [e["id"] for e in queue(srv)] == [qid]
    assert "scheduled now" in srv.cli("queue", "flush", check=True).stdout
    srv.start()
    first_attempted(srv, 2)  # the flush made it due at once
    srv.stop()
    srv.cli("queue", "delete", qid, check=True)
    assert queue(srv) == []
    srv.start()


def test_pending_work_resumes_after_a_restart(world, make_server):
    srv = make_server(config=world.config(retry={"interval": "2s"}))
    srv.send("x@tempfail.test", sender=SENDER)
    first_attempted(srv)
    srv.stop()
    time.sleep(2.5)
    srv.start()
    world.sinks.wait_for(lambda: world.sinks.received(TEMPFAIL), timeout=30, what="delivery after the restart")
    wait_until(lambda: queue(srv) == [], what="an empty queue")
