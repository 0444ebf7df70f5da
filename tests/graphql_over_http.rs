//! The public GraphQL-over-HTTP audit (npm `graphql-http`, `auditServer`;
//! `tests/graphql-http/audit.mjs`) against `grocery dev`: every one of its
//! 61 audits passes on the gateway, MAY included, and every MUST audit on
//! each subgraph.
//!
//! The audit runs as it is published: its GETs carry no header of their
//! own, which the gateway's CSRF prevention refuses only from a browser that
//! says the request comes from another site (see `gateway/src/csrf.rs`).

mod support;

use std::{collections::BTreeMap, process::Command};

use kit::testing::{RedisServer, TestDatabase};
use serde_json::Value;

/// One audit's outcome.
#[derive(Debug)]
struct Audit {
    id: String,
    name: String,
    status: String,
    reason: Value,
}

/// Runs the audit against `url` (`mode`: `bare` or `marked`; see the script).
fn audit(url: &str, mode: &str) -> Vec<Audit> {
    let dir = support::node::package("graphql-http");
    let output = Command::new("node")
        .args(["audit.mjs", url, mode])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the audit of {url} did not run: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let result: Value = serde_json::from_str(line).unwrap();
            Audit {
                id: result["id"].as_str().unwrap().to_owned(),
                name: result["name"].as_str().unwrap().to_owned(),
                status: result["status"].as_str().unwrap().to_owned(),
                reason: result["reason"].clone(),
            }
        })
        .collect()
}

/// The failed audits, one per line with its id, name and reason.
fn failures<'a>(audits: impl IntoIterator<Item = &'a Audit>) -> Vec<String> {
    audits
        .into_iter()
        .filter(|a| a.status != "ok")
        .map(|a| format!("{} {} ({}): {}", a.id, a.name, a.status, a.reason))
        .collect()
}

/// How many audits of each level (MUST, SHOULD, MAY) passed, of how many.
fn tally(audits: &[Audit]) -> BTreeMap<&str, (usize, usize)> {
    let mut levels = BTreeMap::new();
    for a in audits {
        let level = a.name.split_whitespace().next().unwrap_or_default();
        let entry = levels.entry(level).or_insert((0, 0));
        entry.0 += usize::from(a.status == "ok");
        entry.1 += 1;
    }
    levels
}

/// `grocery dev` on a database and a Redis of its own (dropped with it).
async fn stack() -> (support::Dev, TestDatabase, RedisServer) {
    let db = TestDatabase::empty("public").await;
    let redis = RedisServer::start();
    let stream = format!("grocery:audit:{}", uuid::Uuid::new_v4().simple());
    let dev = support::start_dev(&db.config.url, &redis.url(), &stream, &[]);
    (dev, db, redis)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_passes_all_61_graphql_over_http_audits() {
    let (dev, _db, _redis) = stack().await;
    let gateway = format!("http://127.0.0.1:{}/graphql", dev.gateway);

    let audits = audit(&gateway, "bare");
    println!("gateway: {:?}", tally(&audits));
    assert_eq!(audits.len(), 61, "graphql-http 1.23.1 has 61 server audits");
    let failed = failures(&audits);
    assert!(
        failed.is_empty(),
        "the gateway fails {} of {} audits:\n{}",
        failed.len(),
        audits.len(),
        failed.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subgraph_passes_every_must_graphql_over_http_audit() {
    let (dev, _db, _redis) = stack().await;
    let mut failed = Vec::new();
    for name in ["users", "catalog", "inventory", "orders", "logistics"] {
        let audits = audit(&dev.urls[name], "bare");
        println!("{name}: {:?}", tally(&audits));
        assert_eq!(audits.len(), 61, "{name}");
        for failure in failures(audits.iter().filter(|a| a.name.starts_with("MUST"))) {
            failed.push(format!("{name}: {failure}"));
        }
    }
    assert!(
        failed.is_empty(),
        "MUST audits failed on subgraphs:\n{}",
        failed.join("\n")
    );
}
