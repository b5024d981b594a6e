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


def test_record_a_live_session_with_smtplib_and_replay_it(make_server, tmp_path):
    """--record relays a real client's session to a live server and writes
    it as a transcript; `plugin test` replays it against the same plugin
    and config, and every recorded reply holds."""
    import smtplib
    from test_plugins import DEFAULT_CHAIN

    srv = make_server(config={"chain": ["header-filter", *DEFAULT_CHAIN]}, extra_toml=(
        "[plugins.header-filter]\n"
        f"path = \"{wasm('example_header_filter')}\"\n"
        'config = { deny = [{ header = "Subject", contains = "viagra" }] }\n'
    ))
    out = tmp_path / "recorded.transcript"
    proxy = subprocess.Popen(
        [str(binary()), "--config", str(srv.config_path), "plugin", "test", "--record", str(out),
         "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = proxy.stdout.readline()
        assert first.startswith("recording: listening on 127.0.0.1:"), first + proxy.stderr.read()
        port = int(first.split()[3].rsplit(":", 1)[1].rstrip(","))
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            refused = s.sendmail("carol@example.org", ["alice@localhost", "ghost@localhost"],
                                 "Subject: fine\r\n\r\nhello\r\n.leading dot\r\n")
            assert refused["ghost@localhost"][0] == 550
            try:
                s.sendmail("carol@example.org", ["alice@localhost"], "Subject: cheap viagra\r\n\r\nbuy\r\n")
                raise AssertionError("the viagra message was accepted")
            except smtplib.SMTPDataError as e:
                assert e.smtp_code == 550
        proxy.wait(timeout=30)
    finally:
        proxy.kill()
    assert proxy.returncode == 0, proxy.stderr.read()
    text = out.read_text()
    assert "account alice@localhost\n" in text
    assert "> rcpt TO:<ghost@localhost>\n< 550 5.1.1" in text  # smtplib writes verbs in lower case
    assert "message <<EOF\nSubject: fine\n\nhello\n.leading dot\nEOF\n< 250 2.0.0\n" in text
    assert "< 550 5.7.1 Message refused: Subject header matches a filter" in text
    assert srv.count("alice@localhost") == 1

    cmd = [str(binary()), "--config", str(srv.config_path), "plugin", "test", str(wasm("example_header_filter")),
           "--transcript", str(out), "--name", "header-filter"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    # The replay ran on a store of its own: the live server got one message.
    assert srv.count("alice@localhost") == 1
    # And it can fail: the same session against a plugin that filters nothing.
    r = subprocess.run(cmd[:5] + [str(wasm("test_echo"))] + cmd[6:], capture_output=True, text=True, timeout=180)
    assert r.returncode == 1
    assert "- < 550 5.7.1 Message refused: Subject header matches a filter\n+ < 250 2.0.0" in r.stdout
