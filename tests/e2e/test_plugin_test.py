"""`ferrymail plugin test`: the transcripts in tests/e2e/transcripts run
against the repository's plugins with the binary alone (no server started,
nothing compiled), through the server's own driver and chain. Each check
can fail: a changed reply, decider, added header or kv value fails it, and
the failing cases below assert the diff that says so.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import ROOT, binary
from test_plugins import wasm

TRANSCRIPTS = ROOT / "tests" / "e2e" / "transcripts"
# Compiled components are cached per user; the suite shares one cache.
CACHE = Path(tempfile.gettempdir()) / "ferrymail-e2e-plugin-test-cache"


def plugin_test(plugin: str, transcript: Path, *args: str, config: str | None = None):
    cmd = [str(binary()), "plugin", "test", str(wasm(plugin)), "--transcript", str(transcript), *args]
    if config:
        cmd += ["--config", str(TRANSCRIPTS / config)]
    env = dict(os.environ, XDG_CACHE_HOME=str(CACHE))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=tempfile.gettempdir())


def test_header_filter_transcript_holds():
    r = plugin_test("example_header_filter", TRANSCRIPTS / "header-filter.transcript", "--name", "header-filter")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: 19 expectations held" in r.stdout
    assert "header X-Header-Filter: passed; size=*" in r.stdout


def test_a_failed_expectation_exits_1_with_a_diff(tmp_path):
    text = (TRANSCRIPTS / "header-filter.transcript").read_text()
    # The viagra message is refused; this transcript claims it is accepted.
    broken = text.replace("< 550 5.7.1 Message refused: Subject header matches a filter", "< 250 2.0.0")
    broken = broken.replace("header X-Header-Filter: passed; size=*", "header X-Header-Filter: failed")
    assert broken != text
    (tmp_path / "t.transcript").write_text(broken)
    shutil.copy(TRANSCRIPTS / "hello.eml", tmp_path / "hello.eml")
    r = plugin_test("example_header_filter", tmp_path / "t.transcript", "--name", "header-filter")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    line_no = 1 + broken.splitlines().index("< 250 2.0.0")
    at = lines.index("- < 250 2.0.0")
    assert lines[at + 1] == "+ < 550 5.7.1 Message refused: Subject header matches a filter"
    assert f"t.transcript:{line_no}: reply to the message from inline message" in lines[at + 2]
    at = lines.index("- header X-Header-Filter: failed")
    assert lines[at + 1].startswith("+ header X-Header-Filter: passed; size=")
    assert "FAILED: 2 of 19 expectations did not hold" in r.stdout


def test_a_rcpt_chain_that_only_continues_refuses():
    # chain = ["echo"]: echo (no config) continues; the server refuses.
    r = plugin_test("test_echo", TRANSCRIPTS / "continue-only.transcript", "--name", "echo",
                    config="continue-only.toml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "< 554 5.7.1 *Relay access denied" in r.stdout


def test_kv_expectations_read_the_tenants_namespace(tmp_path):
    transcript = TRANSCRIPTS / "echo-kv.transcript"
    r = plugin_test("test_echo", transcript, "--name", "echo", "--tenant", "acme.test")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "in tenant acme.test's chain" in r.stdout
    wrong = transcript.read_text().replace("kv k = first", "kv k = second")
    (tmp_path / "t.transcript").write_text(wrong)
    r = plugin_test("test_echo", tmp_path / "t.transcript", "--name", "echo", "--tenant", "acme.test")
    assert r.returncode == 1
    assert "- kv k = second\n+ kv k = first\n" in r.stdout
    assert "kv in t:acme-test/p:echo" in r.stdout


def test_dns_comes_from_the_transcript_and_grants_from_the_config():
    r = plugin_test("example_dnsbl", TRANSCRIPTS / "dnsbl.transcript", "--name", "dnsbl", config="dnsbl.toml")
    assert r.returncode == 0, r.stdout + r.stderr
    # Without the config's grants.dns the look-up is denied: nothing listed.
    r = plugin_test("example_dnsbl", TRANSCRIPTS / "dnsbl.transcript", "--name", "dnsbl")
    assert r.returncode == 1
    assert "+ < 250" in r.stdout


def test_a_bad_transcript_names_its_line(tmp_path):
    (tmp_path / "t.transcript").write_text("> EHLO x\n< 250\nclient 10.0.0.1\n")
    r = plugin_test("test_echo", tmp_path / "t.transcript")
    assert r.returncode == 1
    assert "t.transcript: line 3: `client` is a setup line" in r.stderr
