"""IMAP with clients nobody here wrote, beyond imaplib: curl (LIST, FETCH,
SEARCH) and mbsync (isync) syncing an account to a local Maildir and back:
a flag change and a deletion made locally reach the server, and a second
sync changes nothing."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import HOST, PASSWORDS

ALICE = "alice@localhost"


def deliver(server, n, prefix="m"):
    with server.smtp() as s:
        for i in range(n):
            s.sendmail("sender@example.org", [ALICE], f"Subject: {prefix}{i}\r\n\r\nbody of {prefix}{i}\r\n")


def curl(server, path: str, *args: str) -> str:
    url = f"imap://{HOST}:{server.imap_port}/{path}"
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "-u", f"{ALICE}:{PASSWORDS[ALICE]}", url, *args],
        capture_output=True, text=True, timeout=20,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed (tests/run.sh names it)")
def test_curl_lists_fetches_and_searches(server):
    deliver(server, 2)
    listing = curl(server, "")
    for name in ("INBOX", "Sent", "Drafts", "Trash", "Junk"):
        assert f'"/" {name}' in listing, listing
    # curl's ;UID= is a UID FETCH BODY[] of that message.
    body = curl(server, "INBOX;UID=2")
    assert "Subject: m1" in body and "body of m1" in body
    assert curl(server, "INBOX?SUBJECT%20m0").strip() == "* SEARCH 1"


def mbsync_config(server, home: Path) -> Path:
    maildir = home / "Mail"
    maildir.mkdir(parents=True, exist_ok=True)
    rc = home / "mbsyncrc"
    rc.write_text(f"""
IMAPAccount test
Host {HOST}
Port {server.imap_port}
User {ALICE}
Pass "{PASSWORDS[ALICE]}"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel test
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    return rc


def mbsync(rc: Path, home: Path) -> str:
    out = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HOME": str(home)})
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def local_messages(home: Path) -> dict[str, str]:
    """INBOX messages by subject, each with its Maildir flags."""
    out = {}
    for sub in ("cur", "new"):
        for f in (home / "Mail" / "INBOX" / sub).iterdir():
            subject = next(l for l in f.read_text().splitlines() if l.startswith("Subject: "))[9:]
            out[subject] = f.name.split(":2,")[1] if ":2," in f.name else ""
    return out


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync not installed (Debian package isync)")
def test_mbsync_round_trip(server, tmp_path):
    deliver(server, 3)
    rc = mbsync_config(server, tmp_path)
    mbsync(rc, tmp_path)
    assert set(local_messages(tmp_path)) == {"m0", "m1", "m2"}
    assert (tmp_path / "Mail" / "Sent").is_dir(), "every folder was synced"

    # Locally: flag m0, delete m1.
    for sub in ("cur", "new"):
        for f in (tmp_path / "Mail" / "INBOX" / sub).iterdir():
            text = f.read_text()
            base = f.name.split(":2,")[0]
            if "Subject: m0" in text:
                f.rename(tmp_path / "Mail" / "INBOX" / "cur" / f"{base}:2,F")
            elif "Subject: m1" in text:
                f.unlink()
    mbsync(rc, tmp_path)

    i = server.imap(ALICE)
    i.select("INBOX", readonly=True)
    typ, data = i.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    server_view = {d[1].decode().strip()[9:]: d[0].decode() for d in data if isinstance(d, tuple)}
    assert set(server_view) == {"m0", "m2"}, server_view
    assert "\\Flagged" in server_view["m0"] and "\\Flagged" not in server_view["m2"]
    i.logout()

    # A second sync finds nothing to do: the same files, the same server.
    before = sorted(p.name for p in (tmp_path / "Mail").rglob("*") if p.is_file() and ".mbsyncstate" not in p.name)
    mbsync(rc, tmp_path)
    after = sorted(p.name for p in (tmp_path / "Mail").rglob("*") if p.is_file() and ".mbsyncstate" not in p.name)
    assert before == after
    i = server.imap(ALICE)
    typ, data = i.select("INBOX")
    assert data == [b"2"]
