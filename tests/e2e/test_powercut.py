"""Power cuts: the store on a filesystem that keeps nothing that was not
fsynced (powercut_fs.py, a small FUSE layer in the spirit of LazyFS).

- test_power_cut_never_loses_an_acknowledged_message: several SMTP clients
  send while the server is killed (kill -9) and everything not yet fsynced
  is dropped, again and again; every message that got a 250 must be in its
  mailbox exactly once at the end.
- test_a_cleanly_stopped_store_survives_a_power_cut: a store created,
  given an account and mail, stopped cleanly and then cut comes back with
  its account and its mail.

A kill -9 alone cannot tell fsync from sync_file_range or the page cache;
this can. Needs root, /dev/fuse, libfuse3 and the mfusepy package (.ci/run
installs them). FM_FAULT_LONG=1 runs many more cuts.
"""

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from test_faults import DOMAIN, LONG, Sender, Server, check_exactly_once, send_one

FS = Path(__file__).with_name("powercut_fs.py")


class CutFs:
    def __init__(self, path: Path, proc: subprocess.Popen, log: Path):
        self.path, self.proc, self.log = path, proc, log

    def cut(self):
        """Drops everything not made durable (run it with the writer dead)."""
        with open(self.path / ".powercut", "w") as f:
            f.write("cut")

    def stats(self) -> str:
        return (self.path / ".powercut").read_text().strip()

    def durable_dir(self, name: str) -> Path:
        """A directory an operator created properly (mkdir, then fsync of
        its parent): the store's home on the cut filesystem."""
        d = self.path / name
        d.mkdir()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return d


@pytest.fixture
def cutfs(tmp_path):
    if not os.path.exists("/dev/fuse") or os.geteuid() != 0:
        pytest.skip("the power-cut filesystem needs /dev/fuse and root")
    try:
        import mfusepy  # noqa: F401
    except ImportError:
        pytest.fail("mfusepy is missing: pip install mfusepy (.ci/run does)")
    mnt = tmp_path / "cutfs"
    mnt.mkdir()
    log = tmp_path / "cutfs.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(FS), str(mnt)], stdout=out, stderr=out)
    deadline = time.monotonic() + 20
    while not os.path.ismount(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"power-cut filesystem did not mount: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    try:
        yield CutFs(mnt, proc, log)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def server_on(tmp_path: Path, cutfs: CutFs) -> Server:
    """A server whose store (data_dir/store) lives on the cut filesystem;
    its control socket and logs stay on the ordinary disk."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "store").symlink_to(cutfs.durable_dir("store"))
    return Server(tmp_path, data)


def test_power_cut_never_loses_an_acknowledged_message(tmp_path, cutfs):
    server = server_on(tmp_path, cutfs)
    users = [f"cut{i}@{DOMAIN}" for i in range(3)]
    acked, lock = set(), threading.Lock()
    rng = random.Random(7)
    cycles = 30 if LONG else 4
    try:
        server.start()
        for u in users:
            server.add_user(u)
        for cycle in range(cycles):
            stop = threading.Event()
            senders = [Sender(server, users[i % len(users)], acked, lock, stop, seed=cycle * 100 + i) for i in range(6)]
            for s in senders:
                s.start()
            time.sleep(rng.uniform(1.0, 2.5))
            server.kill()
            stop.set()
            for s in senders:
                s.join(timeout=30)
            cutfs.cut()
            server.start()
        print(f"{len(acked)} acknowledged over {cycles} power cuts; {cutfs.stats()}")
        assert len(acked) > cycles, "the load never got going"
        check_exactly_once(server, users, acked)
    finally:
        server.stop()


def test_a_cleanly_stopped_store_survives_a_power_cut(tmp_path, cutfs):
    server = server_on(tmp_path, cutfs)
    user = f"clean@{DOMAIN}"
    acked = set()
    try:
        server.start()
        server.add_user(user)
        for i in range(5):
            token = f"clean-{i}-{time.monotonic_ns()}"
            assert send_one(server, user, token) == 250
            acked.add(token)
        server.stop()
        cutfs.cut()
        server.start()
        # The account is there (POP3 login works) and so is every message.
        seen = check_exactly_once(server, [user], acked)
        assert sum(seen.values()) == len(acked)
    finally:
        server.stop()
