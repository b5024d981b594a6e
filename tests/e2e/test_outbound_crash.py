"""kill -9 in the middle of delivering a batch, then restart: every
accepted message reaches the sink or is still queued; none is lost.
Duplicates are possible only for a crash between the remote 250 and the
queue update (at-least-once, as RFC 5321 accepts); the test counts them
and requires them to be rare."""

import threading
import uuid
from collections import Counter

from outbound_support import SLOW, world  # noqa: F401 - fixture
from test_outbound import queue, wait_until

N = 200
SESSIONS = 4


def test_kill9_during_delivery_loses_nothing(world, make_server):
    srv = make_server(config=world.config())
    tokens = [f"t-{i}-{uuid.uuid4().hex[:8]}" for i in range(N)]
    errors = []

    def send(part):
        try:
            with srv.smtp() as s:
                for t in part:
                    msg = f"From: <s@example.org>\r\nSubject: {t}\r\nX-Token: {t}\r\n\r\nbatch\r\n"
                    assert not s.sendmail("s@example.org", [f"{t}@slow.test"], msg.encode())
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=send, args=(tokens[k::SESSIONS],)) for k in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    # Every message is acknowledged; kill while the sink is part-way through.
    world.sinks.wait_for(lambda: len(world.sinks.received(SLOW)) >= N // 4, what="a quarter delivered")
    srv.kill()
    delivered_before = len(world.sinks.received(SLOW))
    assert delivered_before < N, "the batch finished before the kill; slow the sink down"

    srv.start()
    world.sinks.wait_for(lambda: {m.rcpts[0].split("@")[0] for m in world.sinks.received(SLOW)} >= set(tokens),
                         timeout=60, what="every message delivered after the restart")
    wait_until(lambda: queue(srv) == [], what="an empty queue")
    seen = Counter(m.rcpts[0].split("@")[0] for m in world.sinks.received(SLOW))
    lost = [t for t in tokens if seen[t] == 0]
    duplicates = sum(n - 1 for n in seen.values())
    print(f"\nkill -9 at {delivered_before}/{N} delivered: {duplicates} duplicates after the restart")
    assert not lost
    # Only attempts between a remote 250 and their durable commit can repeat:
    # the connections in flight plus those awaiting the group fsync at the
    # kill (observed 0-11 of 200 on a loaded 2-core machine). More than a
    # fifth would mean duplicates are the norm, not the crash window.
    assert duplicates <= N // 5, f"{duplicates} duplicates: at-least-once should be rare"
