"""Shared harness for the end-to-end tests: run the real `ferrymail` binary
on free loopback ports with a temporary data_dir and talk to it with real
clients (smtplib, poplib, swaks, raw sockets).

The binary: $FM_TEST_BIN, else $CARGO_TARGET_DIR/release/ferrymail, else
<repo>/target/release/ferrymail. Build it first (tests/run.sh does), or run
one file by hand:

    FM_TEST_BIN=/work/target/release/ferrymail python3 -m pytest tests/e2e/test_pop3.py -q

Tests get servers from the `server` fixture (default config, the PASSWORDS
accounts) or `make_server(config={...})` for their own settings.

Environment variables starting with FERRYMAIL_ are configuration for the
server (and unknown keys are fatal), so the harness never passes any on:
its own knobs use the FM_TEST_ prefix.
"""

import imaplib
import os
import poplib
import random
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Accounts every `server` fixture has; the password of each is PASSWORDS[address].
PASSWORDS = {
    "alice@localhost": "alice-secret",
    "bob@localhost": "bob secret with spaces",
}
START_TIMEOUT = 30.0
# Compiled plugins, shared by every server of every run (wasmtime keys its
# cache by component and engine settings, so sharing is safe): the Python
# plugin takes ~15 s to compile, the embedded ones ~1 s.
PLUGIN_CACHE = Path(tempfile.gettempdir()) / "ferrymail-e2e-plugin-cache"
IO_TIMEOUT = 10.0


def binary() -> Path:
    if os.environ.get("FM_TEST_BIN"):
        explicit = Path(os.environ["FM_TEST_BIN"])
        if not (explicit.is_file() and os.access(explicit, os.X_OK)):
            pytest.fail(f"FM_TEST_BIN={explicit} is not an executable file", pytrace=False)
        return explicit.resolve()
    candidates = []
    if os.environ.get("CARGO_TARGET_DIR"):
        target = Path(os.environ["CARGO_TARGET_DIR"])
        if not target.is_absolute():
            target = ROOT / target
        candidates.append(target / "release" / "ferrymail")
    candidates.append(ROOT / "target" / "release" / "ferrymail")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c.resolve()
    pytest.fail(
        f"ferrymail binary not found (tried {', '.join(map(str, candidates))}); "
        "build it with `cargo build --release` or set FM_TEST_BIN",
        pytrace=False,
    )


def server_env(extra=None) -> dict:
    """The environment for a ferrymail process: ours without FERRYMAIL_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRYMAIL_")}
    env.pop("RUST_LOG", None)  # would override [log] level
    env.update(extra or {})
    return env


def _below_ephemeral_range() -> tuple[int, int]:
    """Ports the kernel never hands out to outgoing connections, so a port
    we picked cannot be taken by a client socket before the server binds it."""
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return (max(1024, low - 12000), low - 1)


_rng = random.Random()


def free_port() -> int:
    """A loopback port that is free now, outside the ephemeral range."""
    low, high = _below_ephemeral_range()
    for _ in range(200):
        port = _rng.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # crowded: let the kernel choose
        s.bind((HOST, 0))
        return s.getsockname()[1]


def unused_port() -> int:
    """A loopback port nothing listens on (for a DNS server that never answers)."""
    return free_port()


# --- a minimal TOML writer (tomllib only reads) ---------------------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        s = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(config: dict, prefix: str = "") -> str:
    scalars = [f"{k} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    out = ""
    if scalars:
        out += (f"[{prefix}]\n" if prefix else "") + "\n".join(scalars) + "\n"
    for k, v in config.items():
        if isinstance(v, dict):
            out += to_toml(v, f"{prefix}.{k}" if prefix else k)
    return out


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# --- the server ------------------------------------------------------------

class PortTaken(AssertionError):
    pass


class Server:
    """One ferrymail process on free loopback ports with its own data_dir.

    `config` (a dict, deep-merged over the harness defaults) or `extra_toml`
    (appended verbatim) customise a test's configuration. start/stop/kill
    may be called repeatedly; the data_dir survives restarts.
    """

    def __init__(self, workdir: Path, config: dict | None = None, extra_toml: str = ""):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bin = binary()
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "ferrymail.toml"
        self.log_path = self.workdir / "ferrymail.log"
        self.smtp_port, self.submission_port, self.pop3_port = free_port(), free_port(), free_port()
        self.imap_port = free_port()
        self.config = deep_merge(
            {
                "data_dir": str(self.data_dir),
                "auth_failure_delay": "200ms",
                "plugin_cache_dir": str(PLUGIN_CACHE),
                "smtp": {"listen": [f"{HOST}:{self.smtp_port}"]},
                "submission": {"listen": [f"{HOST}:{self.submission_port}"]},
                "pop3": {"listen": [f"{HOST}:{self.pop3_port}"]},
                "imap": {"listen": [f"{HOST}:{self.imap_port}"]},
                # Never the system resolver (docs/DEVELOPING.md): a loopback
                # port where nothing answers.
                "dns": {"nameservers": [f"{HOST}:{unused_port()}"], "timeout": "1s"},
                # SPF/DKIM/DMARC would wait on that silent resolver for every
                # message; test_mail_auth.py turns them on with a fake DNS.
                "mail_auth": {"verify": False},
                "log": {"level": "info"},
            },
            config or {},
        )
        self.extra_toml = extra_toml
        # Extra environment for the server process (never FERRYMAIL_*).
        self.env: dict = {}
        self.write_config()
        self.proc = None
        self.started_once = False

    def write_config(self):
        self.config_path.write_text(to_toml(self.config) + self.extra_toml)

    # -- process control --

    def start(self, timeout: float = START_TIMEOUT):
        for attempt in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                # Another process took a port between free_port() and the
                # bind; before the first start the ports are ours to change.
                if self.started_once or attempt == 2:
                    raise
                self._repick_ports()

    def _repick_ports(self):
        for name in ("smtp", "submission", "pop3", "imap"):
            old = getattr(self, f"{name}_port")
            if self.config[name]["listen"] == [f"{HOST}:{old}"]:
                new = free_port()
                setattr(self, f"{name}_port", new)
                self.config[name]["listen"] = [f"{HOST}:{new}"]
        self.write_config()

    def _start(self, timeout: float):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bin), "serve", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=server_env(self.env), cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                if "Address already in use" in tail.splitlines()[-1]:
                    raise PortTaken(tail)
                raise AssertionError(f"ferrymail exited with {self.proc.returncode} at start-up:\n{tail}")
            if self._ready():
                self.started_once = True
                return self
            time.sleep(0.02)
        raise AssertionError(f"ferrymail did not start listening within {timeout}s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        # The SMTP port accepting connections, and the control socket (bound
        # just after the listeners) so the CLI talks to this server.
        if self.config["smtp"]["listen"]:
            try:
                with Raw(HOST, self.smtp_port, timeout=5) as probe:
                    probe.greeting()
                    probe.cmd("QUIT")
            except (OSError, EOFError, AssertionError):
                return False
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(str(self.data_dir / "control.sock"))
        except OSError:
            return False
        return True

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        """kill -9: no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self):
        self.stop()
        return self.start()

    # -- CLI --

    def cli(self, *args, stdin: str | None = None, check: bool = False, env: dict | None = None):
        r = subprocess.run(
            [str(self.bin), *args, "--config", str(self.config_path)],
            input=stdin, capture_output=True, text=True, timeout=60, env=server_env(env), cwd=self.workdir,
        )
        if check:
            assert r.returncode == 0, f"ferrymail {' '.join(args)} failed ({r.returncode}): {r.stderr}"
        return r

    def add_user(self, address: str, password: str):
        self.cli("user", "add", address, "--password-stdin", stdin=password + "\n", check=True)

    # -- clients --

    def smtp(self, port: int | None = None, ehlo: str | None = "client.test") -> smtplib.SMTP:
        s = smtplib.SMTP(HOST, port or self.smtp_port, local_hostname="client.test", timeout=IO_TIMEOUT)
        if ehlo:
            s.ehlo(ehlo)
        return s

    def submission(self, ehlo: str | None = "client.test") -> smtplib.SMTP:
        return self.smtp(self.submission_port, ehlo)

    def pop3(self, user: str | None = None, password: str | None = None) -> poplib.POP3:
        p = poplib.POP3(HOST, self.pop3_port, timeout=IO_TIMEOUT)
        if user:
            p.user(user)
            p.pass_(password if password is not None else PASSWORDS[user])
        return p

    def imap(self, user: str | None = None, password: str | None = None) -> imaplib.IMAP4:
        i = imaplib.IMAP4(HOST, self.imap_port, timeout=IO_TIMEOUT)
        if user:
            i.login(user, password if password is not None else PASSWORDS[user])
        return i

    def raw(self, port: int | None = None) -> "Raw":
        return Raw(HOST, port or self.smtp_port)

    def send(self, to, body: str = "hello\r\n", sender: str = "sender@example.org", subject: str = "test",
             headers: str = "") -> None:
        """One message via smtplib on the SMTP port; raises on any refusal."""
        to = [to] if isinstance(to, str) else list(to)
        msg = f"From: <{sender}>\r\nTo: {', '.join(f'<{t}>' for t in to)}\r\nSubject: {subject}\r\n{headers}\r\n{body}"
        with self.smtp() as s:
            refused = s.sendmail(sender, to, msg.encode())
            assert not refused, refused

    def mailbox(self, user: str) -> list[bytes]:
        """Every message in `user`'s mailbox (RETR, CRLF-joined), left in place."""
        p = self.pop3(user)
        try:
            count, _ = p.stat()
            return [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, count + 1)]
        finally:
            p.quit()

    def count(self, user: str) -> int:
        p = self.pop3(user)
        try:
            return p.stat()[0]
        finally:
            p.quit()

    def tls_cert_file(self) -> Path:
        return self.data_dir / "tls" / "self-signed.crt"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(empty log)"


class Raw:
    """A raw SMTP (or POP3) client socket: send exact bytes, read replies."""

    def __init__(self, host: str, port: int, timeout: float = IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes | str):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def line(self) -> bytes:
        """One line without CRLF; EOFError when the server closed first."""
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed; unread: {self.buf!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self) -> tuple[int, str]:
        """One SMTP reply (all continuation lines): (code, text joined by \\n)."""
        texts = []
        while True:
            line = self.line().decode("utf-8", "replace")
            assert len(line) >= 3 and line[:3].isdigit(), f"not an SMTP reply line: {line!r}"
            texts.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return int(line[:3]), "\n".join(texts)
            assert line[3] == "-", f"bad reply separator: {line!r}"

    def cmd(self, command: str | bytes) -> tuple[int, str]:
        self.send(command + ("\r\n" if isinstance(command, str) else b"\r\n"))
        return self.reply()

    def greeting(self) -> tuple[int, str]:
        code, text = self.reply()
        assert code == 220, (code, text)
        return code, text

    def closed(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def unverified_tls() -> ssl.SSLContext:
    """For the generated self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- fixtures ----------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, srv in enumerate(getattr(item, "_ferrymail_servers", [])):
            report.sections.append((f"ferrymail log tail (server {i}, {srv.log_path})", srv.log_tail()))


@pytest.fixture(scope="session")
def template_data_dir(tmp_path_factory) -> Path:
    """A data_dir holding the PASSWORDS accounts (made with the CLI) and the
    generated TLS certificate, copied into each test's server: hashing
    passwords with argon2 for every test would cost more than the tests."""
    srv = Server(tmp_path_factory.mktemp("template"))
    for address, password in PASSWORDS.items():
        srv.add_user(address, password)  # while stopped: the CLI opens the store itself
    srv.start()
    srv.stop()
    assert srv.tls_cert_file().is_file()
    (srv.data_dir / "control.sock").unlink(missing_ok=True)
    return srv.data_dir


@pytest.fixture
def make_server(request, tmp_path, template_data_dir):
    """Factory: make_server(config=None, extra_toml="", users=None, start=True).

    users=None gives the PASSWORDS accounts; a dict creates exactly those
    accounts with `ferrymail user add`. Every server made is stopped at
    teardown; a failing test shows the tail of each server's log.
    """
    servers = []
    request.node._ferrymail_servers = servers

    def make(config: dict | None = None, extra_toml: str = "", users: dict | None = None, start: bool = True) -> Server:
        workdir = tmp_path / f"server{len(servers)}"
        if len(str(workdir / "data" / "control.sock")) > 100:
            # A Unix socket path must fit in sun_path (108 bytes).
            workdir = Path(tempfile.mkdtemp(prefix="fm-e2e-"))
        srv = Server(workdir, config, extra_toml)
        servers.append(srv)
        if users is None:
            shutil.copytree(template_data_dir, srv.data_dir)
        else:
            for address, password in users.items():
                srv.add_user(address, password)
        if start:
            srv.start()
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def server(make_server) -> Server:
    """A running server with the default test config and the PASSWORDS accounts."""
    return make_server()
