#!/usr/bin/env python3
"""A loopback DNS server (the tests' tests/e2e/fake_dns.py) answering
sink.test MX -> mx.sink.test A 127.0.0.1, so an MTA relaying to sink.test
reaches the smtp-sink on this machine. Prints its port, then serves until
killed. Used by benches/outbound.sh and benches/compare.sh."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))
from fake_dns import DnsServer  # noqa: E402

dns = DnsServer({"sink.test": {"MX": [(10, "mx.sink.test")]}, "mx.sink.test": {"A": ["127.0.0.1"]}})
print(dns.port, flush=True)
while True:
    time.sleep(3600)
