#!/usr/bin/env python3
"""Password guessing against a real ferrymail binary, as an attacker would
do it (issue 16 item 5): how many guesses per minute it gets answered,
from one address and from 100, and whether a wrong password for an
existing account takes longer than for an unknown one.

    python3 benches/bruteforce.py --bin target/release/ferrymail [--seconds 60]

Every client is on loopback: Linux routes all of 127.0.0.0/8 to lo, so a
socket bound to 127.0.3.17 is another client address to the server. The
server runs with its default configuration (auth_failure_delay = 1s, the
[clients] limits where the binary has them) on free ports.

Scenarios (each `--seconds` long, its own fresh server):
  one-address   10 parallel connections from 127.0.2.1, AUTH PLAIN guesses
                for one account on submission, reconnecting when dropped
  100-addresses one connection from each of 127.0.3.1 … 127.0.3.100, the
                same account
  spray-100     as 100-addresses, but each address guesses its own account
                (password spraying: the per-account limit does not apply)
A "guess" is an answer that judged the password (235/535); 454 and 421
refusals are not guesses. Then the POP3 timing: PASS with a wrong password
for the existing account and for unknown ones, 20 each, each from its own
address (so no limit interferes), median and spread.
"""

import argparse
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
USER, PASSWORD = "alice@localhost", "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: str, workdir: Path, spray_accounts: int = 0):
        self.bin, self.dir = binary, workdir
        self.smtp, self.submission, self.pop3 = free_port(), free_port(), free_port()
        self.config = workdir / "ferrymail.toml"
        self.config.write_text(
            f'data_dir = "{workdir / "data"}"\n'
            f'[smtp]\nlisten = ["{HOST}:{self.smtp}"]\n'
            f'[submission]\nlisten = ["{HOST}:{self.submission}"]\n'
            f'[pop3]\nlisten = ["{HOST}:{self.pop3}"]\n'
            '[imap]\nlisten = []\n[log]\nlevel = "warn"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("FERRYMAIL_")}
        self.env = env
        for n in range(spray_accounts):
            self.cli("user", "add", f"user{n}@localhost", "--password-stdin", stdin=f"pw{n}\n")
        self.cli("user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
        self.log = open(workdir / "server.log", "wb")
        self.proc = subprocess.Popen([binary, "serve", "--config", str(self.config)],
                                     stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((HOST, self.submission), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    sys.exit(f"server did not start: {(workdir / 'server.log').read_text()[-2000:]}")
                time.sleep(0.1)

    def cli(self, *args, stdin=None):
        subprocess.run([self.bin, *args, "--config", str(self.config)], input=stdin, text=True,
                       capture_output=True, check=True, env=self.env)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.codes = {}

    def add(self, code):
        with self.lock:
            self.codes[code] = self.codes.get(code, 0) + 1


def reply(f) -> int:
    while True:
        line = f.readline()
        if not line:
            raise EOFError
        if line[3:4] != b"-":
            return int(line[:3])


def guesser(port: int, source: str, account: str, stop: float, counts: Counts):
    n = 0
    while time.monotonic() < stop:
        try:
            with socket.create_connection((HOST, port), timeout=30, source_address=(source, 0)) as s:
                f = s.makefile("rb")
                if reply(f) != 220:
                    counts.add("refused-at-connect")
                    time.sleep(0.5)
                    continue
                s.sendall(b"EHLO attacker.test\r\n")
                reply(f)
                while time.monotonic() < stop:
                    n += 1
                    s.sendall(f"AUTH PLAIN {b64(chr(0) + account + chr(0) + f'guess{n}')}\r\n".encode())
                    code = reply(f)
                    counts.add(code)
                    if code == 421:
                        break
        except (OSError, EOFError, ValueError):
            counts.add("dropped")
            time.sleep(0.1)


def attack(binary: str, seconds: float, sources: list, accounts: list) -> dict:
    with tempfile.TemporaryDirectory(prefix="fm-brute-") as d:
        srv = Server(binary, Path(d), spray_accounts=len(set(accounts)) if len(set(accounts)) > 1 else 0)
        try:
            counts = Counts()
            stop = time.monotonic() + seconds
            threads = [threading.Thread(target=guesser, args=(srv.submission, src, acc, stop, counts))
                       for src, acc in zip(sources, accounts)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return counts.codes
        finally:
            srv.stop()


def pop3_pass_time(port: int, source: str, user: str) -> float:
    with socket.create_connection((HOST, port), timeout=30, source_address=(source, 0)) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(f"USER {user}\r\n".encode())
        f.readline()
        started = time.monotonic()
        s.sendall(b"PASS wrong password\r\n")
        line = f.readline()
        took = time.monotonic() - started
        assert line.startswith(b"-ERR"), line
        return took


def timing(binary: str, n: int = 20) -> tuple:
    with tempfile.TemporaryDirectory(prefix="fm-timing-") as d:
        srv = Server(binary, Path(d))
        try:
            known, unknown = [], []
            for i in range(n):
                known.append(pop3_pass_time(srv.pop3, f"127.0.4.{i + 1}", USER))
                unknown.append(pop3_pass_time(srv.pop3, f"127.0.5.{i + 1}", f"nobody{i}@localhost"))
            return known, unknown
        finally:
            srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--skip-timing", action="store_true")
    a = ap.parse_args()
    scenarios = {
        "one-address": (["127.0.2.1"] * 10, [USER] * 10),
        "100-addresses": ([f"127.0.3.{i}" for i in range(1, 101)], [USER] * 100),
        "spray-100": ([f"127.0.3.{i}" for i in range(1, 101)], [f"user{i}@localhost" for i in range(100)]),
    }
    print(f"binary: {a.bin}; {a.seconds:.0f} s per scenario")
    for name, (sources, accounts) in scenarios.items():
        codes = attack(a.bin, a.seconds, sources, accounts)
        guesses = codes.get(535, 0) + codes.get(235, 0)
        per_min = guesses * 60 / a.seconds
        print(f"{name:14} guesses judged: {guesses:5}  = {per_min:7.1f}/min   all answers: "
              f"{dict(sorted(codes.items(), key=str))}")
        sys.stdout.flush()
    if not a.skip_timing:
        known, unknown = timing(a.bin)
        fmt = lambda xs: (f"median {statistics.median(xs) * 1000:7.1f} ms  "
                          f"min {min(xs) * 1000:7.1f}  max {max(xs) * 1000:7.1f}")
        print(f"POP3 PASS, existing account: {fmt(known)}")
        print(f"POP3 PASS, unknown account:  {fmt(unknown)}")
        overlap = max(unknown) >= min(known)
        print(f"ranges overlap: {overlap}")


if __name__ == "__main__":
    main()
