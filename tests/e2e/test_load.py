"""Load from a client nobody here wrote: Postfix's smtp-source, 20
concurrent sessions of 2 KB messages, every one delivered exactly once.
This checks correctness under concurrency; speed is measured by
benches/compare.sh, not asserted here."""

import shutil
import subprocess
from pathlib import Path

import pytest

ALICE = "alice@localhost"


def smtp_source() -> str:
    path = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if not Path(path).is_file():
        pytest.fail("smtp-source missing: apt-get install postfix (.ci/run does)", pytrace=False)
    return path


@pytest.mark.parametrize("reuse", [True, False], ids=["sessions-reused", "one-message-per-connection"])
def test_smtp_source_20_sessions_all_delivered_once(server, reuse):
    messages = 400
    args = [smtp_source(), "-s", "20", "-m", str(messages), "-l", "2048",
            "-f", "load@example.org", "-t", ALICE, "-M", "localhost"]
    if reuse:
        args.append("-d")  # keep each connection for the next message
    r = subprocess.run([*args, f"127.0.0.1:{server.smtp_port}"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # smtp-source reports refused mail on stderr
    assert server.count(ALICE) == messages
