"""Issue 16 item 10: one tenant's looping plugin slowed another tenant's
RCPT tenfold. With `sandbox.tenant_concurrency`, the looping tenant's hook
calls wait in line for their tenant's permits while the other tenant's
sessions are served.

Run with -s to see the latencies (the issue's report quotes them).
"""

import statistics
import threading
import time

import pytest

from test_plugins import wasm

HAMMERS = 16


def fair_server(make_server, tenant_concurrency: int):
    srv = make_server(config={
        "sandbox": {"deadline": "100ms", "tenant_concurrency": tenant_concurrency},
        "plugins": {"looper": {"path": str(wasm("test_looper"))}},
        "tenants": {
            "loop": {"domains": ["loop.test"], "chain": ["looper"]},
            "calm": {"domains": ["calm.test"]},
        },
    })
    srv.add_user("u@calm.test", "pw")
    return srv


def rcpt(srv, to: str) -> tuple[int, float]:
    """One session to RCPT; the RCPT's code and its latency in seconds."""
    with srv.raw() as c:
        c.greeting()
        c.cmd("EHLO client.test")
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        started = time.monotonic()
        code, _ = c.cmd(f"RCPT TO:<{to}>")
        return code, time.monotonic() - started


@pytest.mark.parametrize("tenant_concurrency", [1, 1000])
def test_a_looping_tenant_does_not_starve_another(make_server, tenant_concurrency):
    srv = fair_server(make_server, tenant_concurrency)
    quiet = [rcpt(srv, "u@calm.test")[1] for _ in range(5)]
    stop = threading.Event()
    loop_codes = []

    def hammer():
        while not stop.is_set():
            loop_codes.append(rcpt(srv, "u@loop.test")[0])

    threads = [threading.Thread(target=hammer) for _ in range(HAMMERS)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the looping tenant's calls fill the server
    calm = [rcpt(srv, "u@calm.test") for _ in range(20)]
    hammering = sum(t.is_alive() for t in threads)
    stop.set()
    for t in threads:
        t.join(60)
    latencies = [lat for _, lat in calm]
    print(f"\ntenant_concurrency={tenant_concurrency}: calm RCPT alone median "
          f"{statistics.median(quiet) * 1000:.1f} ms; under {HAMMERS} looping sessions median "
          f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
          f"looping tenant RCPTs answered meanwhile: {len(loop_codes)}")
    # The calm tenant's sessions all completed while every looping session
    # was still going, and each looping call ended in its failure policy.
    assert [code for code, _ in calm] == [250] * 20
    assert hammering == HAMMERS
    assert loop_codes and set(loop_codes) == {451}, set(loop_codes)
