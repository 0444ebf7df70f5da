//! Test databases a killed run left behind are dropped when the next test
//! process asks for its first database, and none that a live process may
//! still use. Alone in its test binary: the sweep runs once per process,
//! before the first test database, so this test must be the one to ask first.

use std::time::{Duration, SystemTime};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use kit::testing::{TestDatabase, leaks};

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn exists(admin: &mut AsyncPgConnection, name: &str) -> bool {
    diesel::sql_query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .execute(admin)
        .await
        .expect("look up database")
        > 0
}

/// The id of a process of this host that has ended.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn `true`");
    let pid = child.id();
    child.wait().expect("`true` ends");
    pid
}

#[tokio::test]
async fn the_first_test_database_of_a_run_sweeps_only_what_no_live_run_can_use() {
    let url = admin_url();
    let mut admin = AsyncPgConnection::establish(&url)
        .await
        .expect("PostgreSQL at TEST_DATABASE_URL");
    let now = SystemTime::now();
    let long_ago = now - leaks::MAX_AGE - Duration::from_secs(60);
    let me = std::process::id();
    let leaked = leaks::database_name(dead_pid(), now);
    let forgotten = leaks::database_name(me, long_ago);
    let live = leaks::database_name(me, now);
    let busy = leaks::database_name(dead_pid(), long_ago);
    for name in [&leaked, &forgotten, &live, &busy] {
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a database named as the harness names them");
    }
    // A session on it, as a test process still running would hold.
    let session = AsyncPgConnection::establish(&kit::db::with_database(&url, &busy))
        .await
        .expect("connect to the busy database");

    let _first = TestDatabase::empty("public").await;

    let mut present = Vec::new();
    for name in [&leaked, &forgotten, &live, &busy] {
        present.push(exists(&mut admin, name).await);
    }
    // Its maker is gone; nobody made it lately; this process is alive; a session is on it.
    assert_eq!(
        present,
        [false, false, true, true],
        "leaked, forgotten, live, busy"
    );

    drop(session);
    for name in [&live, &busy] {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .expect("clean up");
    }
}
