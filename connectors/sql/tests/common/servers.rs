//! Real database servers for the tests: Debian's PostgreSQL and MariaDB, each its own
//! instance in a temporary directory, on loopback, on a free port, run by an
//! unprivileged user (`nobody`) when the tests run as root. Readiness is the server's
//! own "ready" log line; the server is killed when its handle is dropped.
//!
//! Missing server binaries fail the test, saying what to install (scripts/test.sh
//! installs them).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Bound on a server's start: a passing run never gets near it.
const START: Duration = Duration::from_secs(120);

/// The password of the tests' database user.
pub const PASSWORD: &str = "pw-Zx81-never-logged";
/// The tests' database user.
pub const USER: &str = "vantiq";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the tests run as root (then the servers run as `nobody`).
fn is_root() -> bool {
    output(Command::new("id").arg("-u")).trim() == "0"
}

/// A command run as the unprivileged user (`nobody`) when we are root: the child is
/// the program itself (no wrapper), so stopping it stops the server.
fn unprivileged(program: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    if is_root() {
        let uid: u32 = output(Command::new("id").args(["-u", "nobody"]))
            .trim()
            .parse()
            .expect("uid");
        let gid: u32 = output(Command::new("id").args(["-g", "nobody"]))
            .trim()
            .parse()
            .expect("gid");
        c.uid(uid).gid(gid);
    }
    c
}

/// Gives the directory to the unprivileged user (when root).
fn hand_over(dir: &Path) {
    if is_root() {
        output(
            Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(dir),
        );
    }
}

/// A temporary directory every user may enter (sockets, data directories below it).
fn scratch() -> tempfile::TempDir {
    // In /tmp when root: `nobody` must be able to reach it (a TMPDIR under /root would
    // not be).
    let mut builder = tempfile::Builder::new();
    builder.prefix("vantiq-sql-test-");
    let dir = if is_root() {
        builder.tempdir_in("/tmp")
    } else {
        builder.tempdir()
    }
    .expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod temp dir");
    dir
}

fn find(candidates: &[PathBuf], what: &str, install: &str) -> PathBuf {
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{what} not found (looked in {candidates:?}): install {install} \
                 (scripts/test.sh does), or set the path in the environment"
            )
        })
}

/// A running server process, its log lines read on a thread (the pipe never fills).
struct Process {
    child: Child,
    name: &'static str,
    /// The signal that shuts the server down at once (PostgreSQL's fast shutdown is
    /// SIGINT; MariaDB's is SIGTERM): clients see their connections closed.
    signal: &'static str,
}

impl Process {
    /// Starts `cmd` and waits for a log line containing `ready`.
    fn start(
        mut cmd: Command,
        name: &'static str,
        ready: &'static str,
        signal: &'static str,
    ) -> Process {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(ready) {
                    let _ = tx.send(Ok(()));
                }
                if std::env::var_os("SQL_TEST_SERVER_LOG").is_some() {
                    eprintln!("[{name}] {line}");
                }
                seen.push(line);
            }
            let _ = tx.send(Err(seen.join("\n")));
        });
        match rx.recv_timeout(START) {
            Ok(Ok(())) => Process {
                child,
                name,
                signal,
            },
            Ok(Err(log)) => panic!("{name} exited before it was ready:\n{log}"),
            Err(_) => {
                let _ = child.kill();
                panic!("{name} not ready within {START:?}")
            }
        }
    }

    fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let stopped = Command::new("kill")
            .arg(format!("-{}", self.signal))
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            eprintln!("{}: could not be signalled, killed", self.name);
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A PostgreSQL server.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    process: Option<Process>,
}

impl Postgres {
    fn bin_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("PG_BIN") {
            return PathBuf::from(dir);
        }
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path().join("bin"))
                    .collect()
            })
            .unwrap_or_default();
        versions.sort();
        versions
            .pop()
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
    }

    /// Creates a cluster (user `vantiq`, password [`PASSWORD`], scram) and starts it.
    pub fn start() -> Postgres {
        let bin = Self::bin_dir();
        let initdb = find(&[bin.join("initdb")], "PostgreSQL's initdb", "postgresql");
        let dir = scratch();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("pwfile");
        hand_over(dir.path());
        output(
            unprivileged(&initdb)
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    USER,
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ])
                .args(["--locale=C", "--no-instructions"])
                .arg(format!("--pwfile={}", pwfile.display())),
        );
        let mut pg = Postgres {
            dir,
            bin,
            port: free_port(),
            process: None,
        };
        pg.resume();
        pg
    }

    /// Starts the server again (same data, same port).
    pub fn resume(&mut self) {
        let postgres = find(
            &[self.bin.join("postgres")],
            "PostgreSQL's postgres",
            "postgresql",
        );
        let mut cmd = unprivileged(&postgres);
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(self.dir.path())
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=60"]);
        self.process = Some(Process::start(
            cmd,
            "postgres",
            "database system is ready to accept connections",
            "INT",
        ));
    }

    /// Shuts the server down at once.
    pub fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            p.stop();
        }
    }

    /// The JDBC URL of database `postgres`.
    pub fn jdbc_url(&self) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/postgres", self.port)
    }
}

/// A MariaDB server with database `vantiq` and user `vantiq` ([`PASSWORD`]).
pub struct MariaDb {
    dir: tempfile::TempDir,
    pub port: u16,
    process: Option<Process>,
}

impl MariaDb {
    /// Installs a data directory and starts the server.
    pub async fn start() -> MariaDb {
        let install = find(
            &[
                PathBuf::from("/usr/bin/mariadb-install-db"),
                PathBuf::from("/usr/bin/mysql_install_db"),
            ],
            "mariadb-install-db",
            "mariadb-server",
        );
        let dir = scratch();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        hand_over(dir.path());
        let mut cmd = Command::new(install);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            // Its own temporary directory: two bootstraps at once in /tmp collide on
            // their temporary tables' names.
            .arg(format!("--tmpdir={}", dir.path().display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg("--skip-name-resolve");
        if is_root() {
            cmd.arg("--user=nobody");
        }
        output(&mut cmd);
        let mut db = MariaDb {
            dir,
            port: free_port(),
            process: None,
        };
        db.resume();
        // The tests' user and database, through the socket as root (no password).
        use sqlx::{ConnectOptions, Executor};
        let mut root = sqlx::mysql::MySqlConnectOptions::new()
            .socket(db.socket())
            .username("root")
            // The statement has the password: not in the tests' log.
            .log_statements(log::LevelFilter::Off)
            .connect()
            .await
            .expect("root connects through the socket");
        root.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE vantiq; CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL ON vantiq.* TO '{USER}'@'%'; GRANT PROCESS ON *.* TO '{USER}'@'%'"
        ))))
        .await
        .expect("user and database");
        db
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    /// Starts the server again (same data, same port).
    pub fn resume(&mut self) {
        let mariadbd = find(
            &[
                PathBuf::from("/usr/sbin/mariadbd"),
                PathBuf::from("/usr/sbin/mysqld"),
            ],
            "mariadbd",
            "mariadb-server",
        );
        let mut cmd = Command::new(mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!(
                "--datadir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--tmpdir={}", self.dir.path().display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ))
            .args([&format!("--port={}", self.port), "--bind-address=127.0.0.1"])
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=32M"])
            .args(["--innodb-flush-log-at-trx-commit=0", "--skip-name-resolve"])
            .arg("--innodb-log-file-size=16M");
        if is_root() {
            cmd.arg("--user=nobody");
        }
        self.process = Some(Process::start(
            cmd,
            "mariadbd",
            "ready for connections",
            "TERM",
        ));
    }

    /// Shuts the server down at once.
    pub fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            p.stop();
        }
    }

    /// The JDBC URL of database `vantiq`.
    pub fn jdbc_url(&self) -> String {
        format!("jdbc:mariadb://127.0.0.1:{}/vantiq", self.port)
    }
}
