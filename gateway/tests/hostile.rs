//! The hostile corpus (`tests/hostile/corpus.rs`) against a served gateway:
//! every entry gets exactly its outcome, and a refusal costs no planning
//! and no subgraph request; and the hostile conversations
//! (`tests/hostile/streams.rs`: SSE reservations, the `graphql-ws`
//! WebSocket subprotocol) each end as they must; and the hostile
//! configuration files (`tests/hostile/config_files.rs`) each refused with
//! their problem. `cargo bench -p grocery-gateway --bench
//! hostile` prints what each entry costs the gateway.

mod hostile {
    pub mod config_files;
    pub mod corpus;
    pub mod streams;
}

use std::sync::atomic::Ordering;

use hostile::corpus::{Harness, Outcome, entries};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_its_outcome_and_refusals_cost_nothing() {
    let harness = Harness::start().await;
    let mut failures = Vec::new();
    for entry in entries() {
        let planned = harness.gateway.current().supergraph.planner_runs();
        let fetched = harness.fetches.load(Ordering::SeqCst);
        let answer = harness.send(&entry).await;
        let planned = harness.gateway.current().supergraph.planner_runs() - planned;
        let fetched = harness.fetches.load(Ordering::SeqCst) - fetched;
        let ok = match entry.outcome {
            Outcome::Refused(status, code) => {
                answer.status == Some(status)
                    && answer.code() == Some(code)
                    && planned == 0
                    && fetched == 0
            }
            Outcome::Invalid(status, code) => {
                answer.status == Some(status) && answer.code() == Some(code) && fetched == 0
            }
            Outcome::Status(status) => {
                answer.status == Some(status) && planned == 0 && fetched == 0
            }
            Outcome::Answered => answer.status == Some(200) && answer.body.get("data").is_some(),
            Outcome::Closed => answer.status.is_none() && answer.closed,
        };
        if !ok {
            let body = answer.body.to_string();
            failures.push(format!(
                "{}: expected {:?}, got status {:?} code {:?} closed {} (planned {planned}, fetched {fetched}): {}",
                entry.name,
                entry.outcome,
                answer.status,
                answer.code(),
                answer.closed,
                &body[..body.len().min(300)]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_list_never_carries_more_than_its_cap_and_answers_stay_small() {
    let harness = Harness::start().await;
    for entry in entries() {
        let answer = harness.send(&entry).await;
        let errors = answer.body["errors"].as_array().map_or(0, Vec::len);
        assert!(errors <= 101, "{}: {errors} errors", entry.name);
        assert!(
            answer.bytes < 1 << 20,
            "{}: {} bytes",
            entry.name,
            answer.bytes
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_conversation_ends_as_it_must() {
    let harness = Harness::start().await;
    let mut failures = Vec::new();
    for scenario in hostile::streams::scenarios() {
        let fetched = harness.fetches.load(Ordering::SeqCst);
        if let Err(why) = (scenario.run)(&harness).await {
            failures.push(format!("{}: {why}", scenario.name));
        }
        let fetched = harness.fetches.load(Ordering::SeqCst) - fetched;
        if fetched > 0 {
            failures.push(format!("{}: {fetched} subgraph fetches", scenario.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_hostile_configuration_file_is_refused_with_its_problem() {
    let tables: &[&'static [settings::Var]] = &[settings::listen::ENV, gateway::config::ENV];
    let path = std::env::temp_dir().join(format!("config-hostile-{}.yaml", std::process::id()));
    let name = path.display().to_string();
    let mut failures = Vec::new();
    for entry in hostile::config_files::config_entries(&name) {
        std::fs::write(&path, &entry.bytes).unwrap();
        // Read as `serve gateway --config` reads it: the file, then every
        // setting over it (an empty environment), every problem located.
        let problems = match gateway::config::ConfigFile::read(&path, tables) {
            Err(err) => err.to_string(),
            Ok(file) => {
                let file = std::sync::Arc::new(file);
                let mut env = file.env_over(|_| None);
                let _ = gateway::Config::read(&mut env);
                match env.finish() {
                    Ok(()) => String::from("(accepted)"),
                    Err(err) => file.locate(err, |_| false).to_string(),
                }
            }
        };
        if !problems.contains(&entry.problem) {
            failures.push(format!(
                "{}: expected {:?} in:\n{}",
                entry.name,
                entry.problem,
                &problems[..problems.len().min(600)]
            ));
        }
    }
    let _ = std::fs::remove_file(&path);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
