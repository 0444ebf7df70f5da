//! `docker-compose.yml`, offline: valid for docker-compose (the Debian
//! package; no Docker engine needed), replicas for real, a gateway that
//! answers introspection, a header that lists every port, and every service
//! given exactly the settings its component reads.

mod deployment;

use std::collections::BTreeSet;

use deployment::{Container, run, tool};
use serde_json::Value;

/// The compose file as docker-compose resolves it (anchors merged, variables filled in).
fn resolved() -> Value {
    let compose = tool("docker-compose");
    // Validation first: a file it refuses fails here with its reason.
    run(&compose, &["config", "--quiet"], None);
    let yaml = run(&compose, &["config"], None);
    let mut documents = deployment::yaml_documents(&yaml);
    assert_eq!(documents.len(), 1);
    documents.remove(0)
}

fn services(config: &Value) -> &serde_json::Map<String, Value> {
    config["services"].as_object().expect("services")
}

fn header() -> String {
    let text = std::fs::read_to_string(deployment::root().join("docker-compose.yml")).unwrap();
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_compose_file_runs_replicas_and_a_gateway_for_graphiql() {
    let config = resolved();
    let services = services(&config);
    let replicated: Vec<&str> = services
        .iter()
        .filter(|(_, s)| s["deploy"]["replicas"].as_u64().unwrap_or(1) >= 2)
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(replicated.len() >= 2, "replicated: {replicated:?}");
    for name in &replicated {
        // Two containers cannot publish one host port.
        assert!(
            services[*name]["ports"].is_null(),
            "{name} has replicas and publishes a host port"
        );
        assert!(
            header().contains(name),
            "the header does not mention {name}"
        );
    }
    let gateway = &services["gateway"]["environment"];
    assert_eq!(gateway["INTROSPECTION"], "true", "{gateway}");
    assert_eq!(gateway["GRAPHIQL"], "true", "{gateway}");
    assert!(
        header().contains("--compatibility"),
        "the header says nothing of docker-compose v1"
    );
}

#[test]
fn the_header_lists_every_port() {
    let config = resolved();
    let header = header();
    let mut ports = BTreeSet::new();
    for (name, service) in services(&config) {
        for published in service["ports"].as_array().into_iter().flatten() {
            // docker-compose spells them `{published, target}` or "4000:4000".
            match published {
                Value::Object(p) => {
                    ports.insert(p["published"].to_string().trim_matches('"').to_owned());
                    ports.insert(p["target"].to_string());
                }
                other => ports.extend(other.as_str().unwrap().split(':').map(str::to_owned)),
            }
        }
        for exposed in service["expose"].as_array().into_iter().flatten() {
            ports.insert(exposed.as_str().map_or(exposed.to_string(), str::to_owned));
        }
        let env = &service["environment"];
        for key in ["PORT", "INVENTORY_RPC_ADDR"] {
            if let Some(value) = env[key].as_str() {
                ports.insert(value.rsplit(':').next().unwrap().to_owned());
            }
        }
        match name.as_str() {
            "postgres" => ports.insert("5432".into()),
            "redis" => ports.insert("6379".into()),
            _ => false,
        };
    }
    let missing: Vec<_> = ports
        .iter()
        .filter(|p| !header.contains(p.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "ports not in the header: {missing:?}\n{header}"
    );
}

#[test]
fn every_service_sets_exactly_what_its_component_reads() {
    let settings = deployment::settings();
    let config = resolved();
    let mut problems = Vec::new();
    let mut roles = BTreeSet::new();
    for (name, service) in services(&config) {
        let ours = service["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("grocery"));
        // The image's entrypoint is `grocery serve`; a service that replaces it
        // (the key generator) runs no component.
        if !ours || !service["entrypoint"].is_null() {
            continue;
        }
        let component: Vec<&str> = service["command"]
            .as_array()
            .expect("a grocery service names its component")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let env: BTreeSet<String> = service["environment"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        let args: Vec<&str> = ["serve"].into_iter().chain(component).collect();
        let container = Container::new(format!("docker-compose.yml: {name}"), &args, env);
        roles.insert(container.role);
        problems.extend(container.drift(&settings));
    }
    assert!(
        problems.is_empty(),
        "docker-compose.yml and README's configuration table disagree:\n  {}",
        problems.join("\n  ")
    );
    for component in deployment::COMPONENTS {
        assert!(roles.contains(component), "compose runs no {component}");
    }
}
