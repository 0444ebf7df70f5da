//! The private PostgreSQL cluster `grocery dev` runs under `.grocery/pg/`.
//!
//! Created with `initdb` on first use and reused afterwards. It listens only
//! on a unix socket inside that folder (mode 0700, trust auth), on a port
//! picked once and remembered, so nothing else on the machine can reach it.
//! PostgreSQL refuses to run as root; when we are root, every server command
//! runs as the unprivileged `postgres` user, which then owns the folder.
//! When the server binaries are missing, [`install`] installs them.

mod install;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

/// A running cluster and how to reach it; stopped when dropped, so an error
/// or panic during start-up does not leave PostgreSQL running.
pub struct Cluster {
    bindir: PathBuf,
    data: PathBuf,
    run_as: Option<String>,
    running: bool,
    /// Held for the cluster's lifetime: one `grocery dev` per folder.
    _lock: std::fs::File,
    /// URL of the `grocery` database over the unix socket.
    pub url: String,
}

/// The socket is `<dir>/.s.PGSQL.5432`; unix socket paths are limited to 107 bytes.
const MAX_SOCKET_DIR: usize = 90;

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").exists() && dir.join("pg_ctl").exists()
}

/// Where `initdb`/`pg_ctl` live: `PG_BINDIR` (authoritative when set), the
/// versioned folders of Debian's packages and Homebrew's formulas (newest
/// version first), or `PATH`.
fn find_bindir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return has_server_binaries(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = [
        ("/usr/lib/postgresql", ""),
        ("/opt/homebrew/opt", "postgresql@"),
        ("/usr/local/opt", "postgresql@"),
    ]
    .into_iter()
    .flat_map(|(parent, prefix)| {
        std::fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(move |e| {
                let version = e.file_name().to_str()?.strip_prefix(prefix)?.parse().ok()?;
                let bin = e.path().join("bin");
                has_server_binaries(&bin).then_some((version, bin))
            })
    })
    .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| has_server_binaries(dir)))
}

/// [`find_bindir`], installing the binaries first when they are missing.
async fn find_or_install_bindir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = find_bindir() {
        return Ok(dir);
    }
    install::server_binaries().await?;
    find_bindir().ok_or_else(|| {
        anyhow::anyhow!(
            "PostgreSQL was installed, but initdb and pg_ctl are still not where grocery looks \
             (PG_BINDIR, /usr/lib/postgresql/*/bin, Homebrew's postgresql@*/bin, PATH); \
             set PG_BINDIR to their folder"
        )
    })
}

fn is_root() -> bool {
    // The owner of /proc/self is the effective uid of this process.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    false
}

/// uid and gid of a system user, from /etc/passwd.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name))
            .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))?
    })
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let exe = self.bindir.join(program);
        match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.arg("-u").arg(user).arg("--").arg(exe);
                cmd
            }
            None => Command::new(exe),
        }
    }

    /// Runs a server program without blocking the async workers.
    async fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
        tokio::process::Command::from(self.command(program))
            .args(args)
            .output()
            .await
            .with_context(|| format!("running {program}"))
    }

    /// Starts (creating on first use) the cluster under `home/pg`.
    pub async fn start(home: &Path) -> anyhow::Result<Self> {
        let bindir = find_or_install_bindir().await?;
        let home = std::fs::canonicalize(home)?;
        let lock = std::fs::File::create(home.join("dev.lock"))?;
        if lock.try_lock().is_err() {
            bail!(
                "another `grocery dev` is running with {}; stop it or set GROCERY_HOME",
                home.display()
            );
        }
        let root = home.join("pg");
        let data = root.join("data");
        let socket_dir = root.join("run");
        if socket_dir.as_os_str().len() > MAX_SOCKET_DIR {
            bail!(
                "{} is too long a path for PostgreSQL's socket; set GROCERY_HOME to a shorter folder",
                socket_dir.display()
            );
        }
        std::fs::create_dir_all(&socket_dir)?;
        let run_as = if is_root() {
            let (uid, gid) = user_ids("postgres").ok_or_else(|| {
                anyhow::anyhow!(
                    "PostgreSQL refuses to run as root and there is no `postgres` user to run it as; \
                     install the postgresql package (it creates one) or set DATABASE_URL"
                )
            })?;
            chown_tree(&root, uid, gid)?;
            let reachable = Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-w"])
                .arg(&root)
                .status()
                .is_ok_and(|s| s.success());
            if !reachable {
                bail!(
                    "the postgres user cannot reach {} (a parent folder is private); \
                     set GROCERY_HOME to a folder it can reach, e.g. /tmp/grocery",
                    root.display()
                );
            }
            Some("postgres".to_owned())
        } else {
            None
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&socket_dir, std::fs::Permissions::from_mode(0o700))?;
        }
        // The port only names the socket file: nothing listens on TCP.
        let port = 5432;
        let mut cluster = Cluster {
            bindir,
            data: data.clone(),
            run_as,
            running: false,
            _lock: lock,
            url: format!(
                "postgres:///grocery?host={}&port={port}&user=postgres",
                socket_dir.display()
            ),
        };
        let data_arg = data.to_string_lossy().into_owned();
        if !data.join("PG_VERSION").exists() {
            println!(
                "creating a private PostgreSQL cluster in {}",
                data.display()
            );
            let args = [
                "-D",
                &data_arg,
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=reject",
                "-E",
                "UTF8",
                "--no-instructions",
            ];
            let out = cluster.run("initdb", &args).await?;
            if !out.status.success() {
                bail!("initdb failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
        }
        // A cluster left running by a crashed `grocery dev` (we hold the lock,
        // so no live one owns it) is adopted and stopped like our own.
        let status = cluster.run("pg_ctl", &["status", "-D", &data_arg]).await?;
        cluster.running = true;
        if !status.status.success() {
            let options = format!(
                "-p {port} -k {} -c listen_addresses='' -c unix_socket_permissions=0700",
                socket_dir.display()
            );
            let log = root.join("postgres.log").to_string_lossy().into_owned();
            let args = [
                "start", "-D", &data_arg, "-w", "-t", "60", "-l", &log, "-o", &options,
            ];
            let out = cluster.run("pg_ctl", &args).await?;
            if !out.status.success() {
                cluster.running = false;
                bail!(
                    "PostgreSQL did not start (see {log}):\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        cluster.ensure_database().await?;
        Ok(cluster)
    }

    async fn ensure_database(&self) -> anyhow::Result<()> {
        use diesel_async::{
            AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
        };
        let admin_url = kit::db::with_database(&self.url, "postgres");
        let mut conn = AsyncPgConnection::establish(&admin_url)
            .await
            .with_context(|| format!("connecting to the private cluster at {admin_url}"))?;
        let exists = diesel::sql_query("SELECT 1 FROM pg_database WHERE datname = 'grocery'")
            .execute(&mut conn)
            .await?
            > 0;
        if !exists {
            conn.batch_execute("CREATE DATABASE grocery").await?;
        }
        Ok(())
    }

    /// Stops the server (once).
    pub fn stop(&mut self) {
        if !std::mem::take(&mut self.running) {
            return;
        }
        let data = self.data.to_string_lossy().into_owned();
        // Synchronous: this also runs from Drop.
        match self
            .command("pg_ctl")
            .args(["stop", "-D", &data, "-m", "fast", "-w"])
            .output()
        {
            Ok(out) if out.status.success() => println!("PostgreSQL stopped"),
            Ok(out) => eprintln!("pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("pg_ctl stop: {e:#}"),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
