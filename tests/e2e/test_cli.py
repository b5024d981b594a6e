"""`ferrymail user add/list/passwd/del` and `reload`, against a running
server (over the control socket) and a stopped one (on the store)."""

import poplib
import signal
import smtplib
import time

import pytest

from conftest import PASSWORDS

ALICE = "alice@localhost"


def listed(server) -> dict[str, str]:
    r = server.cli("user", "list", check=True)
    return dict(line.split("\t", 1) for line in r.stdout.splitlines())


def can_login(server, user, password) -> bool:
    p = server.pop3()
    try:
        p.user(user)
        p.pass_(password)
        return True
    except poplib.error_proto:
        return False
    finally:
        p.quit()


def rcpt_code(server, rcpt) -> int:
    with server.smtp() as s:
        s.mail("s@example.org")
        return s.rcpt(rcpt)[0]


@pytest.fixture(params=["running", "stopped"])
def mode(request):
    return request.param


def test_user_lifecycle(make_server, mode):
    srv = make_server(start=(mode == "running"))
    r = srv.cli("user", "add", "dora@localhost", "--password-stdin", stdin="dora-pw\n")
    assert r.returncode == 0, r.stderr
    assert "dora@localhost" in r.stdout
    assert set(listed(srv)) == {*PASSWORDS, "dora@localhost"}

    r = srv.cli("user", "passwd", "dora@localhost", "--password-stdin", stdin="new pw\n")
    assert r.returncode == 0, r.stderr

    if mode == "stopped":
        srv.start()
    assert rcpt_code(srv, "dora@localhost") == 250
    assert not can_login(srv, "dora@localhost", "dora-pw")
    assert can_login(srv, "dora@localhost", "new pw")
    srv.send("dora@localhost")
    assert listed(srv)["dora@localhost"] == "1 messages"

    if mode == "stopped":
        srv.stop()
    r = srv.cli("user", "del", "dora@localhost")
    assert r.returncode == 0, r.stderr
    assert "dora@localhost" not in listed(srv)
    if mode == "stopped":
        srv.start()
    assert rcpt_code(srv, "dora@localhost") == 550
    assert not can_login(srv, "dora@localhost", "new pw")


def test_deleted_account_takes_its_mail(server):
    server.add_user("erin@localhost", "erin-pw")
    server.send("erin@localhost")
    server.cli("user", "del", "erin@localhost", check=True)
    server.add_user("erin@localhost", "erin-pw")
    p = server.pop3("erin@localhost", "erin-pw")
    assert p.stat()[0] == 0, "a re-created account sees the old account's mail"
    p.quit()


def test_passwd_while_logged_in_applies_to_next_login(server):
    p = server.pop3(ALICE)
    server.cli("user", "passwd", ALICE, "--password-stdin", stdin="rotated\n", check=True)
    assert p.stat()[0] == 0
    p.quit()
    assert can_login(server, ALICE, "rotated")
    with server.submission() as s:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(ALICE, PASSWORDS[ALICE])
    with server.submission() as s:
        assert s.login(ALICE, "rotated")[0] == 235


@pytest.mark.parametrize(
    "address, needle",
    [
        ("x@example.org", "example.org"),  # not a local domain
        ("nodomain", "nodomain"),
        ("@localhost", "@localhost"),
        ("user@", "user@"),
    ],
)
def test_add_refuses_bad_addresses(make_server, mode, address, needle):
    srv = make_server(start=(mode == "running"))
    r = srv.cli("user", "add", address, "--password-stdin", stdin="pw\n")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert set(listed(srv)) == set(PASSWORDS)


def test_wrong_domain_message_names_local_domains(server):
    r = server.cli("user", "add", "x@example.org", "--password-stdin", stdin="pw\n")
    assert r.returncode != 0 and "local_domains" in r.stderr, r.stderr


def test_add_existing_user_fails_and_keeps_password(make_server, mode):
    srv = make_server(start=(mode == "running"))
    r = srv.cli("user", "add", ALICE, "--password-stdin", stdin="hijack\n")
    assert r.returncode != 0 and ALICE in r.stderr, r.stderr
    if mode == "stopped":
        srv.start()
    assert can_login(srv, ALICE, PASSWORDS[ALICE])
    assert not can_login(srv, ALICE, "hijack")


def test_del_and_passwd_of_unknown_user_fail(make_server, mode):
    srv = make_server(start=(mode == "running"))
    r = srv.cli("user", "del", "ghost@localhost")
    assert r.returncode != 0 and "ghost@localhost" in r.stderr, r.stderr
    r = srv.cli("user", "passwd", "ghost@localhost", "--password-stdin", stdin="pw\n")
    assert r.returncode != 0 and "ghost@localhost" in r.stderr, r.stderr


def test_empty_password_refused(server):
    r = server.cli("user", "add", "fay@localhost", "--password-stdin", stdin="\n")
    assert r.returncode != 0 and "password" in r.stderr
    assert "fay@localhost" not in listed(server)


def test_password_never_on_the_command_line(server):
    r = server.cli("user", "add", "gus@localhost", stdin="pw\n")
    assert r.returncode != 0
    assert "gus@localhost" not in listed(server)


def test_only_first_stdin_line_is_the_password(server):
    server.cli("user", "add", "hal@localhost", "--password-stdin", stdin="first line\r\nsecond\n", check=True)
    assert can_login(server, "hal@localhost", "first line")


def test_domain_case_is_ignored(server):
    server.cli("user", "add", "Ivy@LocalHost", "--password-stdin", stdin="ivy-pw\n", check=True)
    assert rcpt_code(server, "ivy@localhost") == 250


def test_cli_does_not_break_a_running_server(server):
    """sled allows one process per store: the CLI must go through the server."""
    for i in range(5):
        server.cli("user", "list", check=True)
    server.send(ALICE)
    assert server.count(ALICE) == 1
    assert server.running


def test_reload(server):
    r = server.cli("reload")
    assert r.returncode == 0, r.stderr
    # The new config is used by new sessions: close relaying for loopback.
    assert rcpt_code(server, "far@example.net") == 250
    server.config["relay_networks"] = []
    server.write_config()
    assert server.cli("reload").returncode == 0
    assert rcpt_code(server, "far@example.net") == 554
    assert rcpt_code(server, ALICE) == 250


def test_reload_with_bad_config_keeps_running_config(server):
    good = server.config_path.read_text()
    server.config["colour"] = "blue"
    server.config["relay_networks"] = []
    server.write_config()
    # The CLI refuses before asking the server ...
    r = server.cli("reload")
    assert r.returncode != 0 and "colour" in r.stderr
    # ... and SIGHUP makes the server try, fail, and keep what it has.
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload failed" not in server.log_text():
        assert time.monotonic() < deadline, "no 'reload failed' in the log"
        time.sleep(0.05)
    assert server.running
    assert rcpt_code(server, "far@example.net") == 250  # old relay_networks still in force
    # Fixed again: the CLI reload goes through.
    server.config_path.write_text(good)
    assert server.cli("reload").returncode == 0


def test_reload_without_server_fails_clearly(make_server):
    srv = make_server(start=False)
    r = srv.cli("reload")
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "no server" in r.stderr, r.stderr


def test_sighup_reloads(server):
    server.config["relay_networks"] = []
    server.write_config()
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while rcpt_code(server, "far@example.net") != 554:
        assert time.monotonic() < deadline, "SIGHUP did not reload"
        time.sleep(0.05)
    assert server.running
