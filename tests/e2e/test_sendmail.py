"""`sendmail` and `mailq` for local programs: the options cron, PHP's
mail(), git and mailutils use, the binary invoked through symlinks, and
the maildrop that keeps a message when no server runs. Real clients:
GNU mailutils' `mail` and the sendmail command lines those programs run."""

import email
import email.policy
import os
import pwd
import subprocess
import time

import pytest

from conftest import server_env

ALICE = "alice@localhost"


def run(srv, args, stdin: bytes, argv0=None):
    """`ferrymail sendmail ARGS` (or ARGS through a symlink named argv0)."""
    if argv0:
        link = srv.workdir / argv0
        if not link.exists():
            link.symlink_to(srv.bin)
        cmd = [str(link), "-C", str(srv.config_path), *args]
    else:
        cmd = [str(srv.bin), "--config", str(srv.config_path), "sendmail", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=60, env=server_env(), cwd=srv.workdir)


def messages(srv, user=ALICE):
    return [email.message_from_bytes(m, policy=email.policy.default) for m in srv.mailbox(user)]


def wait_for_mail(srv, user=ALICE, count=1, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = messages(srv, user)
        if len(got) >= count:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{user} has {len(messages(srv, user))} messages, wanted {count}\n{srv.log_tail()}")


def test_t_i_takes_recipients_from_headers_and_removes_bcc(server):
    msg = (
        b"To: Alice <alice@localhost>\n"
        b"Bcc: bob@localhost\n"
        b"Subject: cron output\n"
        b"\n"
        b"line one\n"
        b".\n"
        b"after a lone dot (-i keeps going)\n"
    )
    r = run(server, ["-t", "-i"], msg)
    assert r.returncode == 0, r.stderr
    for user in (ALICE, "bob@localhost"):
        (m,) = messages(server, user)
        assert m["Subject"] == "cron output"
        assert "Bcc" not in m and "bob@localhost" not in m.as_string()
        # Missing From, Date and Message-ID are added (RFC 6409 8); From is
        # the local user at our hostname.
        assert m["Date"] and m["Message-ID"].endswith("@localhost>")
        assert m["From"].addresses[0].addr_spec == f"{pwd.getpwuid(os.getuid()).pw_name}@localhost"
        assert "after a lone dot" in m.get_content()
        # The trace field names the local user by the kernel's account of it.
        assert f"(from uid {os.getuid()})" in m["Received"]


def test_invoked_as_sendmail_with_f_F_and_argument_recipients(server):
    r = run(server, ["-oi", "-f", "cron@localhost", "-F", "Cron Daemon", ALICE],
            b"Subject: via symlink\n\nbody\n", argv0="sendmail")
    assert r.returncode == 0, r.stderr
    (m,) = messages(server)
    assert (m["From"].addresses[0].display_name, m["From"].addresses[0].addr_spec) == ("Cron Daemon", "cron@localhost")
    assert m["Return-Path"] == "<cron@localhost>"
    assert m["Subject"] == "via symlink"


def test_without_i_a_lone_dot_ends_the_message(server):
    r = run(server, [ALICE], b"Subject: dot\n\nkept\n.\ndropped\n")
    assert r.returncode == 0, r.stderr
    (m,) = messages(server)
    assert "kept" in m.get_content() and "dropped" not in m.get_content()


@pytest.mark.parametrize(
    "args, stdin, code",
    [
        ([], b"Subject: x\n\nno recipient\n", 64),  # EX_USAGE
        (["-t"], b"Subject: x\n\nno To either\n", 64),
        (["bad address@localhost"], b"Subject: x\n\n", 65),  # EX_DATAERR
        (["-bs"], b"", 64),
    ],
    ids=["no-recipients", "t-without-to", "bad-recipient", "unsupported-mode"],
)
def test_refusals_exit_with_sysexits_codes(server, args, stdin, code):
    r = run(server, args, stdin)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert r.stderr.startswith(b"sendmail: "), r.stderr
    assert messages(server) == []


def test_without_a_server_the_maildrop_keeps_the_message_until_it_starts(server):
    server.stop()
    r = run(server, [ALICE], b"Subject: while down\n\nkept for later\n")
    assert r.returncode == 0, r.stderr
    assert list((server.data_dir / "maildrop").glob("*.msg")), "nothing in the maildrop"
    server.start()
    (m,) = wait_for_mail(server)
    assert m["Subject"] == "while down"
    assert not list((server.data_dir / "maildrop").glob("*.msg"))


def test_mailq_lists_a_deferred_message(server):
    # The harness's resolver never answers: remote mail waits in the queue.
    assert run(server, ["someone@remote.test"], b"Subject: deferred\n\nx\n").returncode == 0
    deadline = time.monotonic() + 20
    while True:
        r = subprocess.run([str(server.bin), "--config", str(server.config_path), "mailq"],
                           capture_output=True, text=True, timeout=60, env=server_env())
        assert r.returncode == 0, r.stderr
        if "someone@remote.test" in r.stdout:
            break
        assert time.monotonic() < deadline, r.stdout
        time.sleep(0.2)
    link = server.workdir / "mailq"
    link.symlink_to(server.bin)
    # As `mailq` the binary reads /etc/ferrymail unless told; -bp through sendmail takes -C.
    r = run(server, ["-bp"], b"")
    assert r.returncode == 0 and b"someone@remote.test" in r.stdout, r


def test_empty_queue_says_so(server):
    r = run(server, ["-bp"], b"")
    assert (r.returncode, r.stdout) == (0, b"Mail queue is empty\n"), r


def test_mailutils_mail_delivers_through_our_sendmail(server):
    # mailutils runs the program its `sendmail` variable names with -oi -t
    # style arguments; a two-line wrapper points it at this server's config.
    wrapper = server.workdir / "sendmail-wrapper"
    wrapper.write_text(f'#!/bin/sh\nexec "{server.bin}" --config "{server.config_path}" sendmail "$@"\n')
    wrapper.chmod(0o755)
    r = subprocess.run(
        ["mail.mailutils", "-E", f"set sendmail=sendmail://{wrapper}", "-s", "from mailutils", ALICE],
        input=b"hello from mail(1)\n", capture_output=True, timeout=60, env=server_env({"HOME": str(server.workdir)}),
    )
    assert r.returncode == 0, r.stderr
    (m,) = wait_for_mail(server)
    assert m["Subject"] == "from mailutils"
    assert "hello from mail(1)" in m.get_content()
