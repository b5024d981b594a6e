"""Real milters for the milter-bridge tests: Debian's rspamd (its proxy
worker in milter mode, scanning by itself) and OpenDKIM (as a signer), each
run from a private config on a loopback port, and a milter that accepts
connections and never answers. Nothing here speaks the milter protocol:
the counterparts are the real programs."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from conftest import HOST, free_port, unused_port


def program(name: str) -> str:
    """Debian installs the milters in /usr/sbin, not on every user's PATH.
    A missing one fails the test (never a skip): .ci/run installs them."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise RuntimeError(f"{name} is not installed; .ci/run installs it (Debian packages rspamd, opendkim, "
                           "opendkim-tools)")
    return found


def wait_port(port: int, proc: subprocess.Popen, timeout: float, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}\n{tail}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{proc.args[0]} did not listen on {port} within {timeout}s\n{tail}")


def stop(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Rspamd:
    """rspamd 3.x: only the proxy worker, in milter mode with self_scan
    (the scan happens in the proxy; no normal or controller worker, no
    redis). Its resolver is a silent loopback port, so no look-up leaves
    the machine; the GTUBE rule needs none. Starting takes ~15 s (it
    compiles its regular expressions), so tests share one per module."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="fm-rspamd-"))
        self.port = free_port()
        for sub in ("local.d", "override.d", "db", "run", "log"):
            (self.dir / sub).mkdir()
        (self.dir / "override.d" / "worker-proxy.inc").write_text(
            f'bind_socket = "{HOST}:{self.port}";\n'
            "milter = yes;\ntimeout = 120s;\ncount = 1;\n"
            # Scan in the proxy itself (rspamd's documented single-process setup).
            'upstream "local" { default = yes; self_scan = yes; }\n'
        )
        for worker in ("worker-normal.inc", "worker-controller.inc"):
            (self.dir / "override.d" / worker).write_text("enabled = false;\n")
        (self.dir / "local.d" / "options.inc").write_text(
            f'dns {{ nameserver = ["{HOST}:{unused_port()}"]; timeout = 1s; retransmits = 1; }}\n'
        )
        (self.dir / "local.d" / "redis.conf").write_text("enabled = false;\n")
        (self.dir / "local.d" / "logging.inc").write_text('type = "file";\nlevel = "info";\n')
        self.log = self.dir / "log" / "rspamd.log"
        args = [program("rspamd"), "-f", "-c", "/etc/rspamd/rspamd.conf",
                f"--var=LOCAL_CONFDIR={self.dir}", f"--var=DBDIR={self.dir / 'db'}",
                f"--var=RUNDIR={self.dir / 'run'}", f"--var=LOGDIR={self.dir / 'log'}"]
        if os.geteuid() == 0:
            args.append("-i")  # rspamd refuses root unless told; its files are all in self.dir
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, self.proc, 90, self.log)
        except Exception:
            self.close()
            raise

    def close(self):
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class OpenDkim:
    """OpenDKIM 2.11 as a signer for `domain` with an RSA key of its own
    tools (opendkim-genkey): mail from 127.0.0.1 (InternalHosts) is signed,
    relaxed/relaxed. The public record is returned for the fake DNS."""

    def __init__(self, domain: str, selector: str = "odk"):
        self.dir = Path(tempfile.mkdtemp(prefix="fm-opendkim-"))
        self.port = free_port()
        self.domain, self.selector = domain, selector
        subprocess.run([program("opendkim-genkey"), "-b", "2048", "-d", domain, "-s", selector, "-D", str(self.dir)],
                       check=True)
        text = (self.dir / f"{selector}.txt").read_text()
        # The zone line: name IN TXT ( "v=DKIM1; h=sha256; k=rsa; " "p=..." ) ; comment
        body = text[text.index("(") + 1:text.index(")")]
        self.record = "".join(part for part in body.split('"')[1::2])
        self.record_name = f"{selector}._domainkey.{domain}"
        self.log = self.dir / "opendkim.log"
        conf = self.dir / "opendkim.conf"
        conf.write_text(
            f"Socket inet:{self.port}@{HOST}\n"
            f"Domain {domain}\nSelector {selector}\nKeyFile {self.dir / (selector + '.private')}\n"
            "Mode s\nCanonicalization relaxed/relaxed\nInternalHosts 127.0.0.1\n"
            # pytest's and mkdtemp's directories are not root-owned all the way up.
            "RequireSafeKeys no\n"
            f"PidFile {self.dir / 'opendkim.pid'}\nSyslog no\nBackground no\n"
        )
        self.proc = subprocess.Popen([program("opendkim"), "-f", "-x", str(conf)], stdout=open(self.log, "wb"),
                                     stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, self.proc, 20, self.log)
        except Exception:
            self.close()
            raise

    def close(self):
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class HangingMilter:
    """Accepts connections and reads, and never answers a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.held = []
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.held.append(conn)  # kept open, never read or answered

    def close(self):
        self.closed = True
        self.sock.close()
        for c in self.held:
            c.close()


class ScriptedMilter:
    """A milter that speaks the protocol correctly (version 6, header
    actions, every step answered "continue") except at one command, where
    it sends `answer` as given, bytes that need not be a packet at all: a
    hostile or broken filter. Macros ('D') get no answer, as in libmilter."""

    def __init__(self, at: bytes, answer: bytes):
        self.at, self.answer = at, answer
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def packet(code: bytes, data: bytes = b"") -> bytes:
        return (len(data) + 1).to_bytes(4, "big") + code + data

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn):
        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = conn.recv(n - len(buf))
                if not chunk:
                    raise EOFError
                buf += chunk
            return buf
        try:
            while True:
                size = int.from_bytes(read(4), "big")
                packet = read(size)
                cmd = packet[:1]
                if cmd == b"O":
                    # version 6, add/change headers, every step sent and answered
                    conn.sendall(self.packet(b"O", (6).to_bytes(4, "big") + (0x11).to_bytes(4, "big") + bytes(4)))
                elif cmd == self.at:
                    conn.sendall(self.answer)
                elif cmd in (b"D", b"A"):
                    pass
                elif cmd == b"Q":
                    return
                else:
                    conn.sendall(self.packet(b"c"))
        except (EOFError, OSError):
            return

    def close(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
