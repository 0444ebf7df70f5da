//! What the checkout rate is measured against, in the same run.
//!
//! - [`tpcb`]: PostgreSQL's built-in TPC-B (`pgbench`, scale 10, 16 clients,
//!   prepared statements) on the server the bench uses, for the same seconds,
//!   so a checkout rate reads as a ratio to what the database alone does on
//!   this machine right now (a busy or slow machine moves both).
//! - [`Cpu`]: the cores this process (every subgraph, the gateway and the
//!   load) and PostgreSQL's backends used over a turn, from `/proc`.
//! - [`Profile`] (`--profile`): PostgreSQL's statements by total time and
//!   the WAL each writes per call (`pg_stat_statements`, when the server
//!   preloads it), and what its active backends were waiting on, sampled
//!   every 20 ms.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use diesel::{QueryableByName, sql_types};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// The server the bench's databases live on.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` pointing at database `name` instead.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

async fn connect(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at TEST_DATABASE_URL: {e}"))
}

/// `pgbench` from `PATH`, else the newest PostgreSQL's own.
fn pgbench() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("pgbench"))
        .find(|p| p.is_file());
    let packaged = || {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin/pgbench"))
            .filter(|p| p.is_file())
            .collect();
        found.sort_by_key(|p| {
            p.components()
                .nth(4)
                .and_then(|c| c.as_os_str().to_str()?.parse::<u32>().ok())
        });
        found.pop()
    };
    on_path.or_else(packaged).unwrap_or_else(|| {
        panic!(
            "the checkout bench compares itself with pgbench, which is missing.\n\
             Fix: `apt-get install -y postgresql-contrib postgresql` (Debian/Ubuntu; \
             `bash .ci/run` installs PostgreSQL) or put pgbench on PATH"
        )
    })
}

/// TPC-B transactions per second, measured for `seconds` on a fresh scale-10
/// database beside the bench's own.
pub async fn tpcb(seconds: u64) -> f64 {
    const DB: &str = "grocery_bench_tpcb";
    let admin = server_url();
    let mut conn = connect(&admin).await;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop the TPC-B database");
    diesel::sql_query(format!("CREATE DATABASE {DB}"))
        .execute(&mut conn)
        .await
        .expect("create the TPC-B database");
    let url = with_database(&admin, DB);
    let bin = pgbench();
    let init = tokio::process::Command::new(&bin)
        .args(["-i", "-s", "10", "-q", &url])
        .output()
        .await
        .expect("run pgbench -i");
    assert!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let run = tokio::process::Command::new(&bin)
        .args([
            "-c",
            "16",
            "-j",
            "2",
            "-M",
            "prepared",
            "-T",
            &seconds.to_string(),
            &url,
        ])
        .output()
        .await
        .expect("run pgbench");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "pgbench: {}{}",
        out,
        String::from_utf8_lossy(&run.stderr)
    );
    let tps = out
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `tps = ` line in pgbench's output:\n{out}"));
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop the TPC-B database");
    tps
}

/// CPU seconds used so far by this process, by each of PostgreSQL's
/// processes, and by the whole machine (busy, total), from `/proc`
/// (USER_HZ = 100).
#[derive(Clone, Debug, Default)]
pub struct Cpu {
    own: f64,
    /// Per process id: its CPU plus what its children that exited used
    /// (`cutime` + `cstime`: a backend's CPU moves to the postmaster's once
    /// it exits).
    postgres: std::collections::HashMap<u32, f64>,
    busy: f64,
    total: f64,
    at: Option<std::time::Instant>,
}

/// The name of `stat`'s process, its CPU seconds, and its reaped children's.
fn ticks_of(stat: &str) -> Option<(String, f64, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // utime, stime, cutime and cstime are fields 14 to 17 of the line, 12 to
    // 15 after the name.
    let field = |i: usize| -> Option<f64> { fields.get(i)?.parse().ok() };
    Some((
        name,
        (field(11)? + field(12)?) / 100.0,
        (field(13)? + field(14)?) / 100.0,
    ))
}

impl Cpu {
    pub fn now() -> Self {
        let own = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| ticks_of(&s))
            .map_or(0.0, |(_, t, _)| t);
        let postgres = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                let (name, own, children) = ticks_of(&stat)?;
                // Backends have no children of their own; the postmaster's
                // are every backend that exited.
                (name == "postgres" || name.starts_with("postgres:"))
                    .then_some((pid, own + children))
            })
            .collect();
        let (busy, total) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let line = s.lines().next()?.strip_prefix("cpu ")?.to_owned();
                let v: Vec<f64> = line
                    .split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect();
                let total: f64 = v.iter().take(8).sum();
                let idle = v.get(3)? + v.get(4)?;
                Some(((total - idle) / 100.0, total / 100.0))
            })
            .unwrap_or_default();
        Self {
            own,
            postgres,
            busy,
            total,
            at: Some(std::time::Instant::now()),
        }
    }

    /// PostgreSQL's CPU seconds from `self` to `now`: every process's growth
    /// (one started in between counts from zero). A backend that exited in
    /// between is missing from `now`; its whole life's CPU reached the
    /// postmaster's reaped-children time, so what it had used before `self`
    /// is taken off again. (A plain difference of sums took a departed
    /// backend's whole life off the figure, down to negative cores.)
    fn postgres_since(&self, now: &Self) -> f64 {
        let grown: f64 = now
            .postgres
            .iter()
            .map(|(pid, t)| t - self.postgres.get(pid).copied().unwrap_or(0.0))
            .sum();
        let departed: f64 = self
            .postgres
            .iter()
            .filter(|(pid, _)| !now.postgres.contains_key(pid))
            .map(|(_, t)| t)
            .sum();
        grown - departed
    }

    /// "grocery 0.71 cores, PostgreSQL 1.02 cores, machine 93 % busy; CPU
    /// per checkout: grocery 2.15 ms, PostgreSQL 3.80 ms" since `self`, for
    /// `done` checkouts. CPU per checkout moves less from run to run than
    /// checkouts/s on a shared machine: compare builds by it.
    pub fn since(&self, done: u64) -> String {
        let now = Self::now();
        let wall = self.at.map_or(1.0, |at| at.elapsed().as_secs_f64());
        let machine = (now.busy - self.busy) / (now.total - self.total).max(0.01);
        let (own, postgres) = (now.own - self.own, self.postgres_since(&now));
        let per = |seconds: f64| seconds * 1000.0 / done.max(1) as f64;
        format!(
            "grocery {:.2} cores, PostgreSQL {:.2} cores, machine {:.0} % busy; \
             CPU per checkout: grocery {:.2} ms, PostgreSQL {:.2} ms",
            own / wall,
            postgres / wall,
            machine * 100.0,
            per(own),
            per(postgres),
        )
    }
}

#[derive(QueryableByName)]
struct Statement {
    #[diesel(sql_type = sql_types::Text)]
    query: String,
    #[diesel(sql_type = sql_types::BigInt)]
    calls: i64,
    #[diesel(sql_type = sql_types::Double)]
    total_ms: f64,
    #[diesel(sql_type = sql_types::Double)]
    mean_ms: f64,
    /// Planning per call (zero unless `pg_stat_statements.track_planning` is on).
    #[diesel(sql_type = sql_types::Double)]
    plan_ms: f64,
    /// How many of the calls were planned anew.
    #[diesel(sql_type = sql_types::BigInt)]
    plans: i64,
    /// WAL written per call, bytes, and of it full-page images per call.
    #[diesel(sql_type = sql_types::Double)]
    wal_bytes: f64,
    #[diesel(sql_type = sql_types::Double)]
    wal_fpi: f64,
}

/// The server's WAL counters (`pg_stat_wal`).
#[derive(QueryableByName, Clone, Copy, Default)]
struct Wal {
    #[diesel(sql_type = sql_types::BigInt)]
    records: i64,
    #[diesel(sql_type = sql_types::BigInt)]
    bytes: i64,
    /// Full-page images (the first change of a page after a checkpoint).
    #[diesel(sql_type = sql_types::BigInt)]
    fpi: i64,
    /// Flushes to disk (each a commit's wait, shared by whoever it covers).
    #[diesel(sql_type = sql_types::BigInt)]
    syncs: i64,
}

async fn wal(conn: &mut AsyncPgConnection) -> Wal {
    diesel::sql_query(
        "SELECT wal_records AS records, wal_bytes::int8 AS bytes, wal_fpi AS fpi, wal_sync AS syncs FROM pg_stat_wal",
    )
    .get_result(conn)
    .await
    .unwrap_or_default()
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = sql_types::Text)]
    wait: String,
    #[diesel(sql_type = sql_types::BigInt)]
    backends: i64,
}

/// Statement times and wait events of one turn.
pub struct Profile {
    conn: AsyncPgConnection,
    statements: bool,
    waits: tokio::task::JoinHandle<BTreeMap<String, i64>>,
    stop: tokio::sync::watch::Sender<bool>,
    wal: Wal,
}

impl Profile {
    /// Resets `pg_stat_statements` (when the server preloads it) and starts sampling waits.
    pub async fn start() -> Self {
        let mut conn = connect(&server_url()).await;
        let statements = diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&mut conn)
            .await
            .is_ok()
            && diesel::sql_query("SELECT pg_stat_statements_reset()")
                .execute(&mut conn)
                .await
                .is_ok();
        if !statements {
            println!(
                "profile            pg_stat_statements is not loaded: statement times left out \
                 (add `shared_preload_libraries = 'pg_stat_statements'` to postgresql.conf and restart; \
                 `pg_stat_statements.track_planning = on` adds planning)"
            );
        }
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let waits = tokio::spawn(async move {
            let mut sampler = connect(&server_url()).await;
            let mut seen = BTreeMap::new();
            while !*stopped.borrow() {
                let rows: Vec<Waiting> = diesel::sql_query(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait, \
                     count(*) AS backends FROM pg_stat_activity \
                     WHERE state = 'active' AND backend_type = 'client backend' \
                     AND pid <> pg_backend_pid() GROUP BY 1",
                )
                .load(&mut sampler)
                .await
                .unwrap_or_default();
                for row in rows {
                    *seen.entry(row.wait).or_insert(0) += row.backends;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stopped.changed() => {}
                }
            }
            seen
        });
        let wal = wal(&mut conn).await;
        Self {
            conn,
            statements,
            waits,
            stop,
            wal,
        }
    }

    /// Prints the WAL written per checkout (`checkouts` done in the turn),
    /// the wait samples and the top statements by total time.
    pub async fn print(mut self, label: &str, checkouts: u64) {
        let _ = self.stop.send(true);
        let now = wal(&mut self.conn).await;
        let per = |n: i64| n as f64 / checkouts.max(1) as f64;
        println!(
            "profile {label}: WAL per checkout {:.1} kB in {:.0} records ({:.1} full-page images), {:.2} flushes",
            per(now.bytes - self.wal.bytes) / 1024.0,
            per(now.records - self.wal.records),
            per(now.fpi - self.wal.fpi),
            per(now.syncs - self.wal.syncs),
        );
        let waits = self.waits.await.unwrap_or_default();
        let samples: i64 = waits.values().sum();
        let mut waits: Vec<_> = waits.into_iter().collect();
        waits.sort_by_key(|(_, n)| -n);
        println!("profile {label}: active backends by wait (share of samples)");
        for (wait, n) in waits.iter().take(8) {
            println!(
                "  {:>5.1} %  {wait}",
                *n as f64 * 100.0 / samples.max(1) as f64
            );
        }
        if !self.statements {
            return;
        }
        let rows: Vec<Statement> = diesel::sql_query(
            "SELECT query, calls, total_exec_time + total_plan_time AS total_ms, \
                    mean_exec_time AS mean_ms, total_plan_time / GREATEST(calls, 1) AS plan_ms, plans, \
                    wal_bytes::float8 / GREATEST(calls, 1) AS wal_bytes, \
                    wal_fpi::float8 / GREATEST(calls, 1) AS wal_fpi \
             FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 15",
        )
        .load(&mut self.conn)
        .await
        .unwrap_or_default();
        let all: f64 = rows.iter().map(|r| r.total_ms).sum();
        // A statement planned on (nearly) every call is a custom plan or one
        // the client never prepared: planning is PostgreSQL CPU too.
        println!(
            "profile {label}: statements by total time, planning included (top 15, {all:.0} ms); \
             per call: executing, planning, share of calls planned, WAL bytes (full-page images)"
        );
        for r in rows {
            let query: String = r.query.split_whitespace().collect::<Vec<_>>().join(" ");
            let query: String = query.chars().take(100).collect();
            println!(
                "  {:>8.0} ms {:>7} calls {:>6.2} ms {:>5.2} ms {:>4.0} % {:>6.0} B ({:.2})  {query}",
                r.total_ms,
                r.calls,
                r.mean_ms,
                r.plan_ms,
                r.plans as f64 * 100.0 / r.calls.max(1) as f64,
                r.wal_bytes,
                r.wal_fpi
            );
        }
    }
}
