"""Mail loops (RFC 5321 6.3): two ferrymail instances whose MX records
point at each other. Before the hop limit existed they passed one message
back and forth thousands of times; now the loop ends at `max_hops` with
554 5.4.6 and the sender gets one delivery status notification."""

import email
import email.policy
import json
import time

import pytest

from fake_dns import DnsServer

SENDER = "alice@localhost"
MAX_HOPS = 8


def queue(srv) -> list[dict]:
    return json.loads(srv.cli("queue", "list", "--json", check=True).stdout)


def loop_reports(srv) -> list[str]:
    """The delivery-status parts of the DSNs in the sender's mailbox."""
    out = []
    for raw in srv.mailbox(SENDER):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg.get_content_type() == "multipart/report":
            out.append(raw.decode(errors="replace"))
    return out


@pytest.fixture
def loop_dns():
    # Both instances listen on 127.0.0.1; each one's [delivery] port is the
    # other one's SMTP port, so "the MX of loop.test" is always the other.
    dns = DnsServer({"loop.test": {"MX": [(10, "mx.loop.test")]}, "mx.loop.test": {"A": ["127.0.0.1"]}})
    yield dns
    dns.close()


def test_two_instances_with_mx_at_each_other_stop_at_the_hop_limit_rfc5321_6_3(make_server, loop_dns):
    def instance(name):
        return make_server(
            config={
                "hostname": f"{name}.ferry.test",
                "max_hops": MAX_HOPS,
                "dns": {"nameservers": [loop_dns.address], "timeout": "1s"},
                "retry": {"interval": "1s"},
            },
            start=False,
        )

    a, b = instance("a"), instance("b")
    a.config["delivery"] = {"port": b.smtp_port, "connect_timeout": "2s"}
    b.config["delivery"] = {"port": a.smtp_port, "connect_timeout": "2s"}
    for srv in (a, b):
        srv.write_config()
        srv.start()

    a.send("someone@loop.test", sender=SENDER, subject="round and round")

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        reports = loop_reports(a) + loop_reports(b)
        if reports and not queue(a) and not queue(b):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the loop did not end: queues {queue(a)} / {queue(b)}")

    # One notification for one message, naming the loop.
    assert len(reports) == 1, reports
    assert "5.4.6" in reports[0], reports[0]
    # Each pass adds one Received: field, so the message crossed at most
    # MAX_HOPS links; then nothing moves any more.
    relayed = a.log_text().count("someone@loop.test") + b.log_text().count("someone@loop.test")
    time.sleep(2)
    assert not queue(a) and not queue(b)
    assert relayed == a.log_text().count("someone@loop.test") + b.log_text().count("someone@loop.test"), "still moving"
