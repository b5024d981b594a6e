"""Implicit TLS (RFC 8314): submissions (465) and pop3s (995) speak TLS
from the first byte, with the TLS handshake deadline; the certificate is
read again on SIGHUP; `ferrymail cert self-signed` writes a pair the
server can use."""

import hashlib
import poplib
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import HOST, IO_TIMEOUT, PASSWORDS, free_port, unverified_tls

ALICE, BOB = "alice@localhost", "bob@localhost"


def implicit(make_server, **config):
    ports = {"submissions": free_port(), "pop3s": free_port()}
    cfg = {name: {"listen": [f"{HOST}:{port}"]} for name, port in ports.items()}
    cfg.update(config)
    srv = make_server(config=cfg)
    srv.submissions_port, srv.pop3s_port = ports["submissions"], ports["pop3s"]
    return srv


def peer_fingerprint(port: int) -> str:
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as raw:
        with unverified_tls().wrap_socket(raw, server_hostname="localhost") as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def pem_fingerprint(path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(path.read_text())).hexdigest()


def test_submissions_with_swaks_tls_on_connect(make_server):
    swaks = shutil.which("swaks")
    if not swaks:
        pytest.fail("swaks is not installed: apt-get install -y swaks", pytrace=False)
    srv = implicit(make_server)
    r = subprocess.run([swaks, "--server", f"{HOST}:{srv.submissions_port}", "--tls-on-connect",
                        "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", PASSWORDS[ALICE],
                        "--from", ALICE, "--to", BOB, "--body", "over 465"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<~  250 2.0.0 Ok: queued as" in r.stdout, r.stdout
    # TLS from the start: no STARTTLS offered, AUTH offered.
    assert "STARTTLS" not in r.stdout.split("EHLO", 1)[1].split("AUTH PLAIN", 1)[0]
    (msg,) = srv.mailbox(BOB)
    assert b"over 465" in msg and b"with ESMTPSA" in msg  # RFC 3848: TLS and AUTH


def test_pop3s_with_poplib_pop3_ssl(make_server):
    srv = implicit(make_server, tls={"allow_plaintext_auth": "never"})
    srv.send(ALICE, body="for pop3s\r\n")
    p = poplib.POP3_SSL(HOST, srv.pop3s_port, timeout=IO_TIMEOUT, context=unverified_tls())
    try:
        caps = p.capa()
        assert "USER" in caps and "STLS" not in caps, caps  # RFC 2595: logins offered over TLS
        p.user(ALICE)
        p.pass_(PASSWORDS[ALICE])
        assert p.stat()[0] == 1
        assert b"for pop3s" in b"\r\n".join(p.retr(1)[1])
    finally:
        p.quit()
    # The plain port on the same server still refuses a plaintext login.
    plain = poplib.POP3(HOST, srv.pop3_port, timeout=IO_TIMEOUT)
    with pytest.raises(poplib.error_proto):
        plain.user(ALICE)
        plain.pass_(PASSWORDS[ALICE])
    plain.close()


def test_a_silent_client_on_an_implicit_tls_port_is_dropped_at_the_handshake_deadline(make_server):
    srv = implicit(make_server, tls={"handshake_timeout": "1s"})
    for port in (srv.submissions_port, srv.pop3s_port):
        with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as s:
            started = time.monotonic()
            assert s.recv(100) == b"", "nothing is said in plaintext"
            assert time.monotonic() - started < 5
    assert "TLS handshake timed out" in srv.log_text()


def cert_command(srv, hostname: str, out_dir, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([str(srv.bin), "cert", "self-signed", "--hostname", hostname, "--out-dir", str(out_dir),
                           *extra], capture_output=True, text=True, timeout=60)


def test_cert_command_output_is_usable_and_sighup_reloads_the_certificate(make_server, tmp_path):
    srv = make_server(start=False)
    certs = tmp_path / "certs"
    r = cert_command(srv, "one.test", certs)
    assert r.returncode == 0, r.stderr
    cert, key = certs / "one.test.crt", certs / "one.test.key"
    assert f'cert = "{cert}"' in r.stdout and f'key = "{key}"' in r.stdout, r.stdout
    assert key.stat().st_mode & 0o077 == 0, "the private key is for its owner only"
    assert cert_command(srv, "one.test", certs).returncode != 0, "existing files are kept without --force"
    # The printed [tls] lines, as they are, configure the server.
    srv.extra_toml = r.stdout
    port = free_port()
    srv.config["submissions"] = {"listen": [f"{HOST}:{port}"]}
    srv.write_config()
    srv.start()
    first = peer_fingerprint(port)
    assert first == pem_fingerprint(cert)
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as raw:
        with unverified_tls().wrap_socket(raw, server_hostname="one.test") as tls:
            assert tls.recv(100).startswith(b"220 ")

    # A renewed pair in place of the old one (--force replaces), then
    # SIGHUP: new connections get it.
    assert cert_command(srv, "one.test", certs, "--force").returncode == 0
    assert pem_fingerprint(cert) != first
    srv.proc.send_signal(signal.SIGHUP)
    second = wait_for_fingerprint(port, lambda f: f != first)
    assert second == pem_fingerprint(cert)
    assert "TLS certificate reloaded" in srv.log_text()
    # STARTTLS on the plain ports uses it too.
    with srv.submission() as s:
        s.starttls(context=unverified_tls())
        assert hashlib.sha256(s.sock.getpeercert(binary_form=True)).hexdigest() == second

    # A broken certificate: the old one stays, and the error is logged.
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while "TLS certificate not reloaded" not in srv.log_text():
        assert time.monotonic() < deadline, srv.log_tail()
        time.sleep(0.1)
    assert peer_fingerprint(port) == second
    assert srv.running


def wait_for_fingerprint(port: int, good, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        f = peer_fingerprint(port)
        if good(f) or time.monotonic() > deadline:
            return f
        time.sleep(0.1)
