//! A throw-away PostgreSQL cluster for tests: `initdb` and `pg_ctl` in a
//! temporary directory, on a free loopback port, run as the `postgres`
//! user when the tests run as root (initdb refuses root). It lives as long
//! as the test process: a watchdog stops it and removes its directory when
//! the process is gone, however it ended.
//!
//! There is no skip: a test that needs PostgreSQL fails with the reason
//! when the binaries are missing (CI installs Debian's `postgresql`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Cluster {
    pub port: u16,
    pub dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

/// The directory with initdb and pg_ctl: `FM_TEST_PG_BIN`, else the newest
/// of Debian's /usr/lib/postgresql/*/bin, else `pg_config --bindir`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FM_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    debian.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    if let Some(dir) = debian.pop() {
        return dir;
    }
    let out = Command::new("pg_config").arg("--bindir").output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!(
            "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin, no pg_config): \
             install Debian's postgresql package, as .ci/run does, or set FM_TEST_PG_BIN"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Cluster {
    /// The process's cluster, started on first use.
    pub fn shared() -> &'static Cluster {
        static CLUSTER: OnceLock<Cluster> = OnceLock::new();
        CLUSTER.get_or_init(Cluster::start)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, mut command: Command, what: &str) {
        let out = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> Cluster {
        let bin = bin_dir();
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("ferrymail-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        if as_postgres {
            let owner = Command::new("chown").arg("postgres:").arg(&dir).status();
            assert!(owner.is_ok_and(|s| s.success()), "chown of {} to postgres", dir.display());
        }
        let cluster = Cluster { port: free_port(), dir, bin, as_postgres };
        let data = cluster.dir.join("data");
        let mut initdb = cluster.command("initdb");
        initdb.arg("-D").arg(&data).args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
        cluster.run(initdb, "initdb");
        let mut start = cluster.command("pg_ctl");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on",
            cluster.port,
            cluster.dir.display()
        );
        start.arg("-D").arg(&data).arg("-l").arg(cluster.dir.join("log")).args(["-w", "-o", &options, "start"]);
        cluster.run(start, "pg_ctl start");
        cluster.watch(std::process::id());
        cluster
    }

    /// Stops the cluster and removes its directory once `pid` has exited.
    fn watch(&self, pid: u32) {
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {} -D {} -m immediate stop >/dev/null 2>&1; rm -rf {}",
            if self.as_postgres {
                format!("runuser -u postgres -- {}", self.bin.join("pg_ctl").display())
            } else {
                self.bin.join("pg_ctl").display().to_string()
            },
            self.dir.join("data").display(),
            self.dir.display()
        );
        // setsid -f: the watchdog is in its own session, outliving us.
        let started = Command::new("setsid")
            .args(["-f", "sh", "-c", &stop])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        assert!(started.is_ok_and(|s| s.success()), "cluster watchdog");
    }

    /// A connection URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database; its name.
    pub fn create_database(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut psql = self.command("psql");
        psql.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-q", "-c"])
            .arg(format!("CREATE DATABASE {name}"));
        self.run(psql, "CREATE DATABASE");
        name
    }

    /// Runs `pg_ctl` with `args` against this cluster (stop/start tests).
    pub fn pg_ctl(&self, args: &[&str]) {
        let mut c = self.command("pg_ctl");
        c.arg("-D").arg(self.dir.join("data")).args(args);
        self.run(c, "pg_ctl");
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(Path::new(&self.dir).join("log")).unwrap_or_default()
    }
}
