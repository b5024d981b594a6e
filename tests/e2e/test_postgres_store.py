"""[store] backend = "postgres": one node on a throw-away PostgreSQL
cluster (pg_cluster.py). The schema is migrated by `ferrymail store
migrate` (and at start), accounts made by the CLI land in the database,
mail sent with smtplib is read back with poplib and imaplib, and a node
that cannot log in to the database says so in one line naming the key."""

import subprocess

from conftest import PASSWORDS, server_env, unused_port
from pg_cluster import ROLE_PASSWORD, pg, pg_node, pg_shared  # noqa: F401 - fixtures


def test_migrate_then_accounts_and_mail_live_in_the_database(pg, make_server):
    cluster, db = pg
    node = pg_node(make_server, cluster, db, "a", start=False)
    first = node.cli("store", "migrate", check=True).stdout
    assert "applied schema version 1" in first, first
    again = node.cli("store", "migrate", check=True).stdout
    assert "nothing to apply" in again, again
    assert cluster.psql("SELECT string_agg(version::text, ',') FROM schema_migrations", db) == "1"

    # No server runs: the CLI opens the database itself.
    node.add_user("alice@localhost", PASSWORDS["alice@localhost"])
    assert cluster.psql("SELECT address FROM accounts", db) == "alice@localhost"
    node.start()
    node.send("alice@localhost", body="kept by postgres\r\n", subject="pg-1")
    assert b"kept by postgres" in node.mailbox("alice@localhost")[0]
    imap = node.imap("alice@localhost")
    try:
        typ, data = imap.select("INBOX")
        assert typ == "OK" and data == [b"1"]
        typ, data = imap.uid("FETCH", "1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK" and b"Subject: pg-1" in data[0][1]
    finally:
        imap.logout()
    assert not (node.data_dir / "store").exists(), "nothing went to a sled store in data_dir"
    # While the server runs the CLI goes through it, as with sled.
    listed = node.cli("user", "list", check=True).stdout
    assert "alice@localhost\t1 messages" in listed, listed
    assert cluster.psql("SELECT count(*) FROM mail", db) == "1"


def test_password_from_the_environment(pg, make_server):
    cluster, db = pg
    node = pg_node(make_server, cluster, db, "env", start=False, password_file="")
    node.env = {"FERRYMAIL_STORE__PASSWORD": ROLE_PASSWORD}
    node.start()
    node.add_user("bob@localhost", PASSWORDS["bob@localhost"])
    node.send("bob@localhost")
    assert node.count("bob@localhost") == 1
    shown = node.cli("config", "check", env=node.env, check=True).stdout
    assert ROLE_PASSWORD not in shown and "password_file" in shown


def start_failure(node) -> str:
    r = subprocess.run([str(node.bin), "serve", "--config", str(node.config_path)], capture_output=True, text=True,
                       timeout=60, env=server_env(node.env), stdin=subprocess.DEVNULL)
    assert r.returncode != 0, "the server started"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_a_node_that_cannot_reach_or_log_in_to_the_database_fails_in_one_line(pg, make_server, tmp_path):
    cluster, db = pg
    node = pg_node(make_server, cluster, db, "bad", start=False)
    (node.workdir / "db-password").write_text("not the password\n")
    line = start_failure(node)
    assert "store.url (ferrymail@127.0.0.1:" in line and "password authentication failed" in line, line
    assert "not the password" not in line

    node.config["store"]["password_file"] = str(tmp_path / "missing")
    node.write_config()
    line = start_failure(node)
    assert f"config key store.password_file: cannot read {tmp_path / 'missing'}" in line, line

    node.config["store"]["password_file"] = str(node.workdir / "db-password")
    node.config["store"]["url"] = "postgres://ferrymail@127.0.0.1:notaport/x"
    node.write_config()
    line = start_failure(node)
    assert "config key store.url: not a PostgreSQL URL" in line, line

    node.config["store"]["url"] = f"postgres://ferrymail@127.0.0.1:{unused_port()}/{db}"
    node.write_config()
    line = start_failure(node)
    assert "store.url" in line and "unavailable" in line, line
