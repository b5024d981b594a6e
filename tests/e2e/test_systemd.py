"""What the systemd unit relies on: the notify protocol (READY=1 once the
listeners are up, RELOADING=1 around SIGHUP, STOPPING=1 at shutdown),
JSON log lines, and a unit file that `systemd-analyze verify` accepts."""

import json
import signal
import socket
import subprocess

from conftest import ROOT

UNIT = ROOT / "config" / "ferrymail.service"


class NotifySocket:
    """The datagram socket systemd gives a Type=notify service."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(20)

    def next(self) -> dict:
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def close(self):
        self.sock.close()


def test_notify_protocol_ready_reloading_stopping(make_server, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        srv = make_server(start=False)
        srv.env = {"NOTIFY_SOCKET": notify.path}
        srv.start()
        first = notify.next()
        assert first.get("READY") == "1", first
        # Ready means serving: a client gets its greeting now.
        with srv.smtp() as s:
            assert s.noop()[0] == 250
        srv.proc.send_signal(signal.SIGHUP)
        assert notify.next().get("RELOADING") == "1"
        assert notify.next().get("READY") == "1"
        srv.proc.send_signal(signal.SIGTERM)
        assert notify.next().get("STOPPING") == "1"
        assert srv.proc.wait(20) == 0
    finally:
        notify.close()


def test_json_logs_are_one_object_per_line(make_server):
    srv = make_server(config={"log": {"format": "json"}})
    srv.send("alice@localhost", sender="bob@example.org")
    srv.stop()
    events = [json.loads(line) for line in srv.log_text().splitlines() if line.strip()]
    accepted = [e for e in events if e.get("message") == "accepted"]
    assert accepted, events[-5:]
    assert {"timestamp", "level", "session", "msg"} <= accepted[0].keys(), accepted[0]


def test_the_unit_passes_systemd_analyze_verify(tmp_path, make_server):
    # verify checks that ExecStart's program exists: point it at the binary
    # under test, and nothing else changes.
    srv = make_server(start=False)
    unit = tmp_path / "ferrymail.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/ferrymail", str(srv.bin)))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (r.stdout + r.stderr).splitlines() if "ferrymail.service" in line]
    assert r.returncode == 0 and not problems, r.stdout + r.stderr
