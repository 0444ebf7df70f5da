//! Test databases that a killed run left behind, told apart by their names
//! and dropped when the next run starts.
//!
//! A [`TestDatabase`](super::TestDatabase) is dropped with its test, but a
//! run that is killed (Ctrl-C, a CI timeout, a crash) leaves its databases
//! on the server. So each name says which host and process made it and
//! when, `grocery_test_<host>_<pid>_<unix seconds>_<random>`, and the first
//! test database a process asks for starts with a sweep: a database whose
//! maker is gone from this host, or that is older than [`MAX_AGE`] (made on
//! another host, or by a process whose id was taken again), is dropped —
//! unless a session is connected to it, which a concurrent test process
//! would be. `DROP DATABASE` without `FORCE` refuses a database that gained
//! a session since, so a database in use is never dropped.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// What every test database's name starts with.
const PREFIX: &str = "grocery_test_";

/// A test database at least this old is taken as leaked, whoever made it.
pub const MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// The name of a test database made now by process `pid` of this host.
pub fn database_name(pid: u32, made: SystemTime) -> String {
    let seconds = made
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let random = uuid::Uuid::new_v4().as_u128() as u32;
    format!("{PREFIX}{:08x}_{pid}_{seconds}_{random:08x}", host())
}

/// A short hash of this host's name, so a process id is only ever checked on
/// the host where it means something.
fn host() -> u32 {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    name.trim().bytes().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// Whether process `pid` of this host is alive; `true` where that cannot be told.
fn alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// Whether `name` is a test database whose test run is over.
fn leaked(name: &str, now: SystemTime) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('_').collect();
    let [host_hash, pid, seconds, _random] = parts[..] else {
        // Not a name this harness made (or one from before names said who made them).
        return false;
    };
    let (Ok(host_hash), Ok(pid), Ok(seconds)) = (
        u32::from_str_radix(host_hash, 16),
        pid.parse::<u32>(),
        seconds.parse::<u64>(),
    ) else {
        return false;
    };
    let made = UNIX_EPOCH + Duration::from_secs(seconds);
    let old = now.duration_since(made).is_ok_and(|age| age >= MAX_AGE);
    old || (host_hash == host() && !alive(pid))
}

/// [`sweep`], once per process: before its first test database.
pub(super) async fn sweep_once(admin: &mut AsyncPgConnection) {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            sweep(admin).await;
        })
        .await;
}

#[derive(diesel::QueryableByName)]
struct Database {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// Drops the leaked test databases no session is connected to; answers their names.
pub async fn sweep(admin: &mut AsyncPgConnection) -> Vec<String> {
    let idle: Vec<Database> = diesel::sql_query(
        "SELECT d.datname::text AS name FROM pg_database d
         WHERE d.datname LIKE 'grocery\\_test\\_%'
           AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
    )
    .load(admin)
    .await
    .expect("list test databases");
    let now = SystemTime::now();
    let mut dropped = Vec::new();
    for Database { name } in idle {
        if !leaked(&name, now) {
            continue;
        }
        // No FORCE: a session that connected since the look makes this fail, and the database stays.
        if admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await
            .is_ok()
        {
            dropped.push(name);
        }
    }
    if !dropped.is_empty() {
        eprintln!(
            "dropped {} test database(s) left by earlier runs",
            dropped.len()
        );
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_says_who_made_it_and_when() {
        let now = SystemTime::now();
        let name = database_name(std::process::id(), now);
        assert!(name.len() <= 63, "PostgreSQL's limit: {name}");
        assert!(!leaked(&name, now), "this process is alive: {name}");
        assert!(
            leaked(&name, now + MAX_AGE),
            "at MAX_AGE whoever made it: {name}"
        );
        let unknown = "grocery_test_0123456789abcdef0123456789abcdef";
        assert!(!leaked(unknown, now + MAX_AGE * 10), "not ours to judge");
    }
}
