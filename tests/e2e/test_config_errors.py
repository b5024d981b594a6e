"""A bad configuration stops `ferrymail serve` at once: exit code != 0 and
exactly one line on stderr naming the key or path, never a panic or a
backtrace (RUST_BACKTRACE=1 is set to make any backtrace show)."""

import os
import socket
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from conftest import binary, deep_merge, free_port, server_env, to_toml


def run(args, env=None, timeout=20):
    return subprocess.run(
        [str(binary()), *args], capture_output=True, text=True, timeout=timeout,
        env=server_env({"RUST_BACKTRACE": "1", **(env or {})}), stdin=subprocess.DEVNULL,
    )


def assert_one_clear_line(r, *must_contain):
    assert r.returncode != 0, f"exit code 0 for a bad config; stderr: {r.stderr}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{r.stderr}"
    line = lines[0]
    low = line.lower()
    assert "panicked" not in low and "backtrace" not in low and "stack backtrace" not in r.stderr.lower(), line
    for needle in must_contain:
        assert str(needle) in line, f"{needle!r} not named in: {line}"
    return line


def base_config(data_dir) -> dict:
    """Every listener on a free port, so a config error that goes unnoticed
    cannot collide with anything."""
    return {
        "data_dir": str(data_dir),
        "smtp": {"listen": [f"127.0.0.1:{free_port()}"]},
        "submission": {"listen": [f"127.0.0.1:{free_port()}"]},
        "pop3": {"listen": [f"127.0.0.1:{free_port()}"]},
        "imap": {"listen": []},
    }


@pytest.fixture
def cfg(tmp_path):
    """cfg(overrides: dict, data_dir=None) -> path of a config file."""
    def write(overrides: dict, data_dir: Path | str | None = None) -> Path:
        path = tmp_path / "bad.toml"
        path.write_text(to_toml(deep_merge(base_config(data_dir or tmp_path / "data"), overrides)))
        return path
    return write


BAD = {
    "unknown top-level key": ({"colour": "blue"}, ["colour"]),
    "unknown nested key": ({"smtp": {"max_recipient": 5}}, ["smtp", "max_recipient"]),
    "unknown table": ({"smtpd": {"listen": []}}, ["smtpd"]),
    "bad listen address": ({"smtp": {"listen": ["127.0.0.1:notaport"]}}, ["smtp.listen"]),
    "bad listen ip": ({"pop3": {"listen": ["999.1.1.1:110"]}}, ["pop3.listen"]),
    "listen not a list": ({"submission": {"listen": "127.0.0.1:587"}}, ["submission.listen"]),
    "bad relay network": ({"relay_networks": ["10.0.0.0/33"]}, ["relay_networks"]),
    "bad dns nameserver": ({"dns": {"nameservers": ["8.8.8.8"]}}, ["dns.nameservers"]),
    "bad duration": ({"auth_failure_delay": "fast"}, ["auth_failure_delay"]),
    "bad timeout": ({"smtp": {"command_timeout": "5 parsecs"}}, ["smtp.command_timeout"]),
    "wrong type": ({"smtp": {"max_recipients": "many"}}, ["smtp.max_recipients"]),
    "negative number": ({"smtp": {"max_message_size": -1}}, ["smtp.max_message_size"]),
    "bad enum": ({"tls": {"allow_plaintext_auth": "sometimes"}}, ["tls.allow_plaintext_auth"]),
    "below RFC minimum": ({"smtp": {"max_command_line": 100}}, ["smtp.max_command_line"]),
    "zero recipients": ({"submission": {"max_recipients": 0}}, ["submission.max_recipients"]),
    "empty hostname": ({"hostname": ""}, ["hostname"]),
    "cert without key": ({"tls": {"cert": "/etc/hostname"}}, ["tls.cert", "tls.key"]),
    "missing cert file": ({"tls": {"cert": "/nonexistent/c.pem", "key": "/nonexistent/k.pem"}},
                          ["tls.cert", "/nonexistent/c.pem"]),
    "chain names an unknown milter": ({"chain": ["@tenant", "milter:rspamd", "local"]},
                                      ["chain", 'no milter named "rspamd"', "[milters.rspamd]"]),
    "tenant chain names an unknown milter": (
        {"tenants": {"acme": {"domains": ["acme.test"], "chain": ["milter:odk"]}}},
        ["tenants.acme.chain", 'no milter named "odk"']),
    "bad milter socket": ({"milters": {"rspamd": {"socket": "127.0.0.1:11332"}}}, ["milters.rspamd.socket"]),
    "unknown milter key": ({"milters": {"rspamd": {"socket": "inet:127.0.0.1:11332", "timout": "1s"}}},
                           ["milters", "timout"]),
    "bad milter failure policy": ({"milters": {"rspamd": {"socket": "inet:127.0.0.1:11332", "failure": "accept"}}},
                                  ["milters", "failure"]),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_config_one_line_naming_the_key(cfg, case):
    text, needles = BAD[case]
    r = run(["serve", "--config", str(cfg(text))])
    assert_one_clear_line(r, *needles)


@pytest.mark.parametrize("case", ["unknown top-level key", "bad listen address", "below RFC minimum",
                                  "chain names an unknown milter", "bad milter socket"])
def test_config_check_refuses_bad_config_too(cfg, case):
    text, needles = BAD[case]
    r = run(["config", "check", "--config", str(cfg(text))])
    assert_one_clear_line(r, *needles)
    assert r.stdout == ""


def test_toml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(to_toml(base_config(tmp_path / "data")) + "this is not toml\n")
    r = run(["serve", "--config", str(path)])
    assert_one_clear_line(r, path)


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.toml"
    r = run(["serve", "--config", str(path)])
    assert_one_clear_line(r, path)


def test_unknown_env_variable_is_fatal_and_named(tmp_path):
    r = run(["serve"], env={"FERRYMAIL_COLOUR": "blue"})
    assert_one_clear_line(r, "colour")


def test_bad_env_value_is_named(tmp_path):
    r = run(["config", "check"], env={"FERRYMAIL_SMTP__LISTEN": "oops"})
    assert_one_clear_line(r, "smtp.listen")


def port_in_use_config(tmp_path, key):
    """A config whose `key` listener is on a port another socket holds."""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    busy = f"127.0.0.1:{blocker.getsockname()[1]}"
    path = tmp_path / "busy.toml"
    path.write_text(to_toml(deep_merge(base_config(tmp_path / "data"), {key: {"listen": [busy]}})))
    return blocker, busy, path


def initialise(data_dir: Path):
    """Runs the server once so data_dir holds its store and TLS certificate."""
    ok = data_dir.parent / "init.toml"
    ok.write_text(to_toml(base_config(data_dir)))
    first = subprocess.Popen([str(binary()), "serve", "--config", str(ok)], env=server_env(),
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (data_dir / "control.sock").exists():
            assert first.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
    finally:
        first.terminate()
        first.wait(timeout=15)


@pytest.mark.parametrize("key", ["smtp", "submission", "pop3"])
def test_port_in_use(tmp_path, key):
    initialise(tmp_path / "data")
    blocker, busy, path = port_in_use_config(tmp_path, key)
    with blocker:
        r = run(["serve", "--config", str(path)])
        assert_one_clear_line(r, f"{key}.listen", busy)


def test_port_in_use_on_first_start(tmp_path):
    """The first start on a fresh data_dir is the likeliest time to meet a
    port conflict; stderr must still be the one error line."""
    blocker, busy, path = port_in_use_config(tmp_path, "smtp")
    with blocker:
        r = run(["serve", "--config", str(path)])
        assert_one_clear_line(r, "smtp.listen", busy)


def test_same_port_twice_in_config(tmp_path):
    initialise(tmp_path / "data")
    port = free_port()
    path = tmp_path / "twice.toml"
    both = {"smtp": {"listen": [f"127.0.0.1:{port}"]}, "submission": {"listen": [f"127.0.0.1:{port}"]}}
    path.write_text(to_toml(deep_merge(base_config(tmp_path / "data"), both)))
    r = run(["serve", "--config", str(path)])
    assert_one_clear_line(r, "submission.listen", port)


def test_data_dir_below_a_regular_file(cfg, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    dd = blocker / "data"
    r = run(["serve", "--config", str(cfg({}, data_dir=dd))])
    assert_one_clear_line(r, "data_dir", dd)


@pytest.fixture
def unwritable_dir(tmp_path):
    """An existing directory the server cannot write to. Permission bits do
    not stop root, so as root it is a read-only tmpfs mount; where mounting
    is not permitted either, a procfs directory (no one may create files
    there)."""
    d = tmp_path / "readonly"
    d.mkdir()
    if os.geteuid() != 0:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        yield Path("/proc/1")
        return
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_unwritable_data_dir(cfg, unwritable_dir):
    r = run(["serve", "--config", str(cfg({}, data_dir=unwritable_dir))])
    assert_one_clear_line(r, "data_dir", unwritable_dir)


def test_good_config_check_prints_effective_settings(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(to_toml(deep_merge(base_config(tmp_path / "data"), {"smtp": {"max_recipients": 150}})))
    r = run(["config", "check", "--config", str(path)], env={"FERRYMAIL_HOSTNAME": "mx.env.test"})
    assert r.returncode == 0, r.stderr
    effective = tomllib.loads(r.stdout)
    assert effective["smtp"]["max_recipients"] == 150  # from the file
    assert effective["hostname"] == "mx.env.test"  # env beats file
    assert effective["pop3"]["max_command_line"] == 255  # embedded default
    assert effective["submission"]["require_auth"] is True
