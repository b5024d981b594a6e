"""swaks, the SMTP test tool operators reach for, against ferrymail.
swaks is required: install it with `apt-get install -y swaks`."""

import shutil
import subprocess

import pytest

from conftest import PASSWORDS

ALICE, BOB = "alice@localhost", "bob@localhost"


@pytest.fixture(scope="module")
def swaks_bin() -> str:
    path = shutil.which("swaks")
    if path is None:
        pytest.fail("swaks is not installed: apt-get install -y swaks", pytrace=False)
    return path


def swaks(swaks_bin, port, *args, timeout=30):
    return subprocess.run([swaks_bin, "--server", f"127.0.0.1:{port}", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_swaks_pipelined_to_two_recipients(server, swaks_bin):
    r = swaks(swaks_bin, server.smtp_port, "--from", "s@example.org", "--to", f"{ALICE},{BOB}",
              "--pipeline", "--helo", "swaks.client.test",
              "--header", "Subject: from swaks", "--body", "line1\n.leading dot\n..two dots\nend")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0" in r.stdout
    for user in (ALICE, BOB):
        (msg,) = server.mailbox(user)
        assert msg.startswith(b"Return-Path: <s@example.org>\r\nReceived: from swaks.client.test ")
        assert b"Subject: from swaks\r\n" in msg
        assert msg.split(b"\r\n\r\n", 1)[1].startswith(b"line1\r\n.leading dot\r\n..two dots\r\nend\r\n")


def test_swaks_helo_protocol(server, swaks_bin):
    r = swaks(swaks_bin, server.smtp_port, "--protocol", "SMTP", "--from", "s@example.org", "--to", ALICE)
    assert r.returncode == 0, r.stdout + r.stderr
    (msg,) = server.mailbox(ALICE)
    assert b"with SMTP id" in msg


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_starttls_auth_submission(server, swaks_bin, mech):
    r = swaks(swaks_bin, server.submission_port, "--tls", "--auth", mech, "--auth-user", ALICE,
              "--auth-password", PASSWORDS[ALICE], "--from", ALICE, "--to", BOB)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout
    (msg,) = server.mailbox(BOB)
    assert b"with ESMTPSA" in msg


def test_swaks_auth_without_tls_on_loopback_relays(make_server, swaks_bin):
    srv = make_server(config={"relay_networks": []})
    r = swaks(swaks_bin, srv.submission_port, "--auth", "PLAIN", "--auth-user", BOB,
              "--auth-password", PASSWORDS[BOB], "--from", BOB, "--to", "far@example.net")
    assert r.returncode == 0, r.stdout + r.stderr


def test_swaks_wrong_password(server, swaks_bin):
    r = swaks(swaks_bin, server.submission_port, "--auth", "PLAIN", "--auth-user", ALICE,
              "--auth-password", "wrong", "--from", ALICE, "--to", BOB)
    assert r.returncode == 28, r.stdout  # swaks: authentication failed
    assert "535 5.7.8" in r.stdout
    assert server.count(BOB) == 0


def test_swaks_unknown_user(server, swaks_bin):
    r = swaks(swaks_bin, server.smtp_port, "--from", "s@example.org", "--to", "ghost@localhost")
    assert r.returncode == 24, r.stdout  # swaks: no recipient accepted
    assert "550 5.1.1" in r.stdout


def test_swaks_relay_denied(make_server, swaks_bin):
    srv = make_server(config={"relay_networks": []})
    r = swaks(swaks_bin, srv.smtp_port, "--from", "s@example.org", "--to", "far@example.net")
    assert r.returncode == 24, r.stdout
    assert "554 5.7.1" in r.stdout


def test_swaks_submission_without_auth_refused(server, swaks_bin):
    r = swaks(swaks_bin, server.submission_port, "--from", ALICE, "--to", BOB)
    assert r.returncode != 0
    assert "530 5.7.0" in r.stdout
    assert server.count(BOB) == 0
