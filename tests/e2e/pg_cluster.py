"""A throw-away PostgreSQL cluster for the end-to-end tests, as the store
crate's tests make theirs (host/store/src/postgres/cluster.rs): initdb and
pg_ctl in a temporary directory on a free loopback port, run as the
`postgres` user via runuser when the tests run as root (initdb refuses
root). Local (socket) logins are trusted, TCP logins need a password, so
ferrymail connects the way a real node does.

No skip: without PostgreSQL the tests fail with the reason (CI installs
Debian's `postgresql`, .ci/run). FM_TEST_PG_BIN overrides the bin dir.

Fixtures: `pg` (one cluster per test session, a database per test) and
`pg_private` (a cluster of the test's own, for tests that stop it);
`pg_node(make_server, db, name, ...)` makes a ferrymail node on a database.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import HOST, deep_merge, free_port

ROLE = "ferrymail"
ROLE_PASSWORD = "node pass 'quoted'"


def bin_dir() -> Path:
    if os.environ.get("FM_TEST_PG_BIN"):
        return Path(os.environ["FM_TEST_PG_BIN"])
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    try:
        return Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pytest.fail("PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin, no pg_config): "
                    "install Debian's postgresql package, as .ci/run does, or set FM_TEST_PG_BIN", pytrace=False)


class PgCluster:
    def __init__(self):
        self.bin = bin_dir()
        self.as_postgres = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="fm-e2e-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.databases = 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync",
                  "--auth-local=trust", "--auth-host=scram-sha-256")
        self.start()
        self._watchdog()
        self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE_PASSWORD.replace(chr(39), chr(39) * 2)}'")

    def _command(self, program: str, *args) -> list:
        cmd = [str(self.bin / program), *map(str, args)]
        return ["runuser", "-u", "postgres", "--", *cmd] if self.as_postgres else cmd

    def _run(self, program: str, *args, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(self._command(program, *args), capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        if check:
            assert r.returncode == 0, f"{program} {' '.join(map(str, args))} failed: {r.stdout}{r.stderr}"
        return r

    def start(self):
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses={HOST} -c max_connections=200 "
                   "-c fsync=on -c synchronous_commit=on")
        self._run("pg_ctl", "-D", self.data, "-l", self.dir / "log", "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast"):
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def _watchdog(self):
        """Stops the cluster and removes it when this test process is gone,
        however it ended (the fixture's finaliser does it first normally)."""
        pg_ctl = " ".join(self._command("pg_ctl", "-D", self.data, "-m", "immediate", "stop"))
        script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                  f"{pg_ctl} >/dev/null 2>&1; rm -rf {self.dir}")
        subprocess.run(["setsid", "-f", "sh", "-c", script], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    def close(self):
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Runs `sql` as the superuser over the socket; its rows, tab-separated."""
        r = self._run("psql", "-h", self.dir, "-p", self.port, "-U", "postgres", "-d", database,
                      "-v", "ON_ERROR_STOP=1", "-qAtF", "\t", "-c", sql)
        return r.stdout.strip()

    def create_database(self) -> str:
        self.databases += 1
        name = f"fm{self.databases}"
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name

    def url(self, database: str) -> str:
        """libpq-style, without the password (nodes read it from a file)."""
        return f"postgres://{ROLE}@{HOST}:{self.port}/{database}"

    def log(self) -> str:
        try:
            return (self.dir / "log").read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture(scope="session")
def pg_shared():
    cluster = PgCluster()
    yield cluster
    cluster.close()


@pytest.fixture
def pg(pg_shared):
    """The session's cluster and a fresh database of this test: (cluster, db)."""
    return pg_shared, pg_shared.create_database()


@pytest.fixture
def pg_private():
    """A cluster of this test's own (it may stop and start it): (cluster, db)."""
    cluster = PgCluster()
    try:
        yield cluster, cluster.create_database()
    finally:
        cluster.close()


def pg_node(make_server, cluster: PgCluster, db: str, name: str, config: dict | None = None,
            start: bool = True, **store):
    """A ferrymail node on `db`, named `name` (hostname NAME.ferry.test),
    its database password in a file of its own. No accounts of its own:
    they are the database's. `store` adds [store] keys."""
    srv = make_server(config=config, users={}, start=False)
    password_file = srv.workdir / "db-password"
    password_file.write_text(ROLE_PASSWORD + "\n")
    srv.config = deep_merge(srv.config, {
        "hostname": f"{name}.ferry.test",
        "store": {"backend": "postgres", "url": cluster.url(db), "password_file": str(password_file),
                  "pool_size": 8, "connect_timeout": "2s", "node_name": name, **store},
    })
    srv.write_config()
    if start:
        srv.start()
    return srv
