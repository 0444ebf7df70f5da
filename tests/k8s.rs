//! The Kubernetes manifests (`deploy/k8s/`), offline: both overlays build
//! with `kubectl kustomize`, validate against the schemas of a current
//! Kubernetes release, give every container exactly the settings its
//! component reads (README's configuration table), and deploy every
//! component the way a cluster needs it. Then the two commands only the
//! manifests run: `grocery migrate --wait` and `grocery seed`, against a real
//! PostgreSQL.

mod deployment;
mod support;

use std::{
    collections::BTreeSet,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use deployment::{COMPONENTS, Container, SUBGRAPHS, run, tool, venv_tool};
use serde_json::Value;

const OVERLAYS: [&str; 2] = ["dev", "production"];

/// `kubectl kustomize` of an overlay: its YAML, and its objects.
fn build(overlay: &str) -> (String, Vec<Value>) {
    let kubectl = tool("kubectl");
    let dir = format!("deploy/k8s/overlays/{overlay}");
    let yaml = run(&kubectl, &["kustomize", &dir], None);
    let objects = deployment::yaml_documents(&yaml);
    assert!(
        objects.len() > 20,
        "{dir} built only {} objects",
        objects.len()
    );
    (yaml, objects)
}

fn kind<'a>(objects: &'a [Value], kind: &str) -> impl Iterator<Item = &'a Value> {
    let kind = kind.to_owned();
    objects.iter().filter(move |o| o["kind"] == kind.as_str())
}

fn named<'a>(objects: &'a [Value], kind_: &str, name: &str) -> &'a Value {
    kind(objects, kind_)
        .find(|o| o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind_} named {name}"))
}

/// The pod template of a workload.
fn pod_spec(object: &Value) -> Option<&Value> {
    match object["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => Some(&object["spec"]["template"]),
        "CronJob" => Some(&object["spec"]["jobTemplate"]["spec"]["template"]),
        _ => None,
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Every container (init containers too) that runs `grocery`, with where it is.
fn grocery_containers(objects: &[Value]) -> Vec<(String, &Value, &Value)> {
    let mut found = Vec::new();
    for object in objects {
        let Some(template) = pod_spec(object) else {
            continue;
        };
        let place = format!(
            "{}/{}",
            object["kind"].as_str().unwrap(),
            object["metadata"]["name"].as_str().unwrap()
        );
        let spec = &template["spec"];
        for list in ["initContainers", "containers"] {
            for container in spec[list].as_array().into_iter().flatten() {
                let command = strings(&container["command"]);
                let image = container["image"].as_str().unwrap_or("");
                if command.first() == Some(&"grocery") {
                    let name = container["name"].as_str().unwrap_or("?");
                    found.push((format!("{place} ({name})"), template, container));
                } else {
                    assert!(
                        !image.contains("grocery"),
                        "{place}: a grocery container must say what it runs (`command: [grocery, …]`)"
                    );
                }
            }
        }
    }
    found
}

#[test]
fn both_overlays_build_and_validate_against_the_kubernetes_schemas() {
    let validate = venv_tool("kubernetes-validate");
    for overlay in OVERLAYS {
        let (yaml, _) = build(overlay);
        let file = std::env::temp_dir().join(format!(
            "grocery-k8s-{overlay}-{}.yaml",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&file, &yaml).unwrap();
        // --strict: a property the schema does not know (a typo, a field of a
        // newer release) is an error, not a warning.
        let report = run(
            &validate,
            &[
                "--strict",
                "--kubernetes-version",
                deployment::KUBERNETES_VERSION,
                file.to_str().unwrap(),
            ],
            None,
        );
        let _ = std::fs::remove_file(&file);
        assert!(
            !report.contains("ERROR") && !report.contains("WARN"),
            "{overlay}:\n{report}"
        );
    }
}

#[test]
fn every_container_sets_exactly_what_its_component_reads() {
    let settings = deployment::settings();
    for overlay in OVERLAYS {
        let (_, objects) = build(overlay);
        let mut problems = Vec::new();
        let mut roles = BTreeSet::new();
        for (place, template, container) in grocery_containers(&objects) {
            // Service links would hand every pod USERS_PORT=tcp://…, GATEWAY_PORT=…:
            // names the components read as their own settings.
            if template["spec"]["enableServiceLinks"] != false {
                problems.push(format!("{place}: enableServiceLinks must be false"));
            }
            if !container["envFrom"].is_null() {
                problems.push(format!(
                    "{place}: envFrom hides which variables a container gets; list them under env"
                ));
            }
            let env: BTreeSet<String> = container["env"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["name"].as_str().unwrap().to_owned())
                .collect();
            let command = strings(&container["command"]);
            let container = Container::new(format!("{overlay}: {place}"), &command[1..], env);
            roles.insert(container.role);
            problems.extend(container.drift(&settings));
        }
        assert!(
            problems.is_empty(),
            "deploy/k8s/overlays/{overlay} and README's configuration table disagree:\n  {}",
            problems.join("\n  ")
        );
        for role in COMPONENTS.iter().chain(&["migrate"]) {
            assert!(roles.contains(role), "{overlay}: nothing runs {role}");
        }
    }
}

/// Whether `selector` (a label selector) selects a pod with `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let by_label = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels[k] == *v);
    let by_expression = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let value = &labels[e["key"].as_str().unwrap()];
            let listed = value
                .as_str()
                .is_some_and(|v| strings(&e["values"]).contains(&v));
            match e["operator"].as_str().unwrap() {
                "In" => listed,
                "NotIn" => !listed,
                "Exists" => !value.is_null(),
                "DoesNotExist" => value.is_null(),
                other => panic!("operator {other}"),
            }
        });
    by_label && by_expression
}

/// The pods (by `app.kubernetes.io/name`, `*` for any pod or anywhere) that
/// the network policies let reach `port` of the pods labelled `labels`.
fn admitted(objects: &[Value], labels: &Value, port: &str, number: u64) -> BTreeSet<String> {
    let names: Vec<String> = objects
        .iter()
        .filter_map(pod_spec)
        .filter_map(|t| t["metadata"]["labels"]["app.kubernetes.io/name"].as_str())
        .map(str::to_owned)
        .collect();
    let mut peers = BTreeSet::new();
    for policy in kind(objects, "NetworkPolicy") {
        if !selects(&policy["spec"]["podSelector"], labels) {
            continue;
        }
        for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
            let ports = rule["ports"].as_array();
            let opens = ports.is_none_or(|ports| {
                ports
                    .iter()
                    .any(|p| p["port"] == port || p["port"].as_u64() == Some(number))
            });
            if !opens {
                continue;
            }
            let Some(from) = rule["from"].as_array() else {
                peers.insert("*".to_owned());
                continue;
            };
            for peer in from {
                if !peer["namespaceSelector"].is_null() || !peer["ipBlock"].is_null() {
                    peers.insert("*".to_owned());
                    continue;
                }
                for name in &names {
                    let pod = serde_json::json!({ "app.kubernetes.io/name": name });
                    if selects(&peer["podSelector"], &pod) {
                        peers.insert(name.clone());
                    }
                }
            }
        }
    }
    peers
}

#[test]
fn every_component_is_deployed_the_way_a_cluster_needs_it() {
    for overlay in OVERLAYS {
        let (_, objects) = build(overlay);
        let mut images = BTreeSet::new();
        for component in COMPONENTS {
            let deployment = named(&objects, "Deployment", component);
            let template = &deployment["spec"]["template"];
            let labels = &template["metadata"]["labels"];
            let spec = &template["spec"];
            let container = &spec["containers"][0];
            let at = format!("{overlay}: Deployment/{component}");
            assert_eq!(
                strings(&container["command"]),
                ["grocery", "serve", component],
                "{at}"
            );
            images.insert(container["image"].as_str().unwrap().to_owned());
            assert_eq!(
                container["readinessProbe"]["httpGet"]["path"], "/ready",
                "{at}"
            );
            assert_eq!(
                container["livenessProbe"]["httpGet"]["path"], "/health",
                "{at}"
            );
            for (what, value) in [
                ("requests.cpu", &container["resources"]["requests"]["cpu"]),
                (
                    "requests.memory",
                    &container["resources"]["requests"]["memory"],
                ),
                ("limits.memory", &container["resources"]["limits"]["memory"]),
            ] {
                assert!(value.is_string(), "{at}: no {what}");
            }
            assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{at}");
            assert_eq!(
                container["securityContext"]["readOnlyRootFilesystem"], true,
                "{at}"
            );
            assert_eq!(
                container["securityContext"]["allowPrivilegeEscalation"], false,
                "{at}"
            );
            assert_eq!(spec["automountServiceAccountToken"], false, "{at}");
            let spread = spec["topologySpreadConstraints"].as_array();
            assert!(
                spread.is_some_and(|s| s
                    .iter()
                    .any(|c| c["topologyKey"] == "kubernetes.io/hostname")),
                "{at}: not spread over nodes"
            );
            assert!(
                kind(&objects, "PodDisruptionBudget")
                    .any(|p| selects(&p["spec"]["selector"], labels)),
                "{at}: no PodDisruptionBudget"
            );
            let replicas = match component {
                "gateway" => {
                    let hpa = kind(&objects, "HorizontalPodAutoscaler")
                        .find(|h| h["spec"]["scaleTargetRef"]["name"] == "gateway")
                        .expect("the gateway has an autoscaler");
                    hpa["spec"]["minReplicas"].as_u64().unwrap_or(1)
                }
                _ => deployment["spec"]["replicas"].as_u64().unwrap_or(1),
            };
            assert!(replicas >= 2, "{at}: {replicas} replica(s)");
            if SUBGRAPHS.contains(&component) {
                assert_eq!(
                    strings(&spec["initContainers"][0]["command"]),
                    ["grocery", "migrate", "--wait", component],
                    "{at}: starts before its migrations are applied"
                );
            }
        }
        let grocery_images: BTreeSet<_> = grocery_containers(&objects)
            .iter()
            .map(|(_, _, c)| c["image"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            grocery_images, images,
            "{overlay}: one image for everything"
        );
        assert!(
            kind(&objects, "Job").any(|j| strings(
                &j["spec"]["template"]["spec"]["containers"][0]["command"]
            ) == ["grocery", "migrate"]),
            "{overlay}: no migrations Job"
        );

        // Only the gateway is exposed.
        for service in kind(&objects, "Service") {
            let kind_ = service["spec"]["type"].as_str().unwrap_or("ClusterIP");
            assert_eq!(
                kind_, "ClusterIP",
                "{overlay}: {} is exposed",
                service["metadata"]["name"]
            );
        }
        for ingress in kind(&objects, "Ingress") {
            for rule in ingress["spec"]["rules"].as_array().unwrap() {
                for path in rule["http"]["paths"].as_array().unwrap() {
                    assert_eq!(path["backend"]["service"]["name"], "gateway", "{overlay}");
                }
            }
        }
        // Ingress is refused unless admitted, and the stock API admits three callers.
        assert!(
            kind(&objects, "NetworkPolicy")
                .any(|p| p["spec"]["podSelector"] == serde_json::json!({})
                    && p["spec"]["ingress"].is_null()
                    && strings(&p["spec"]["policyTypes"]).contains(&"Ingress")),
            "{overlay}: no default-deny ingress policy"
        );
        let inventory = serde_json::json!({ "app.kubernetes.io/name": "inventory" });
        let mut callers: BTreeSet<String> =
            ["catalog", "orders", "logistics"].map(String::from).into();
        if overlay == "dev" {
            callers.insert("demo-data".into());
        }
        assert_eq!(
            admitted(&objects, &inventory, "grpc", 50051),
            callers,
            "{overlay}"
        );
        let gateway = serde_json::json!({ "app.kubernetes.io/name": "gateway" });
        assert_eq!(
            admitted(&objects, &gateway, "http", 4000),
            BTreeSet::from(["*".to_owned()]),
            "{overlay}"
        );

        let gateway_env = &named(&objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
            [0]["env"];
        let introspection = gateway_env
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "INTROSPECTION");
        match overlay {
            "dev" => {
                assert_eq!(
                    introspection.map(|e| &e["value"]),
                    Some(&Value::from("true"))
                );
                named(&objects, "StatefulSet", "postgres");
                let seed = named(&objects, "Job", "grocery-demo-data");
                assert_eq!(
                    strings(&seed["spec"]["template"]["spec"]["containers"][0]["command"]),
                    ["grocery", "seed"]
                );
            }
            _ => {
                assert!(introspection.is_none(), "production answers introspection");
                assert!(
                    kind(&objects, "Secret").next().is_none(),
                    "production ships a Secret"
                );
                assert!(kind(&objects, "Job").all(|j| j["metadata"]["name"] == "grocery-migrate"));
                assert!(
                    objects.iter().all(|o| o["metadata"]["name"] != "postgres"),
                    "production runs PostgreSQL outside the cluster"
                );
                let redis = named(&objects, "StatefulSet", "redis");
                assert!(
                    !redis["spec"]["volumeClaimTemplates"].is_null(),
                    "Redis keeps no volume"
                );
                let command =
                    strings(&redis["spec"]["template"]["spec"]["containers"][0]["command"]);
                assert!(
                    command.windows(2).any(|w| w == ["--appendonly", "yes"]),
                    "{command:?}"
                );
            }
        }
    }
}

/// `grocery <args>` with `env`, its output captured.
fn grocery(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(support::BIN);
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn finished(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "exited with {}:\n{text}", out.status);
    text
}

/// Waits for `child` to end within `patience`; `None` if it is still running.
fn ended_within(
    child: &mut std::process::Child,
    patience: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn the_init_container_waits_until_the_migrations_job_has_run() {
    let db = kit::testing::TestDatabase::empty("public").await;
    let url = db.config.url.as_str();
    let mut waiting = grocery(
        &["migrate", "--wait", "orders"],
        &[("ORDERS_DATABASE_URL", url)],
    )
    .spawn()
    .unwrap();
    // Nothing migrates the schema yet: it keeps waiting.
    assert!(
        ended_within(&mut waiting, Duration::from_secs(3)).is_none(),
        "`migrate --wait` ended before anything was migrated"
    );
    // Another subgraph's migrations are not the ones it waits for.
    finished(
        grocery(&["migrate", "users"], &[("DATABASE_URL", url)])
            .spawn()
            .unwrap(),
    );
    assert!(ended_within(&mut waiting, Duration::from_secs(3)).is_none());
    // The Job: every schema, orders included.
    finished(
        grocery(&["migrate"], &[("DATABASE_URL", url)])
            .spawn()
            .unwrap(),
    );
    let status = ended_within(&mut waiting, Duration::from_secs(15))
        .expect("`migrate --wait` still waits after the migrations ran");
    assert!(status.success(), "{status}");
    // Once applied, waiting takes no time, and applies nothing.
    let started = Instant::now();
    finished(
        grocery(&["migrate", "--wait"], &[("DATABASE_URL", url)])
            .spawn()
            .unwrap(),
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn the_demo_data_job_seeds_what_dev_seeds_once_the_stock_api_answers() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    let db = kit::testing::TestDatabase::empty("public").await;
    let url = db.config.url.clone();
    let home = std::env::temp_dir().join(format!("grocery-seed-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    finished(
        grocery(&["migrate"], &[("DATABASE_URL", &url)])
            .spawn()
            .unwrap(),
    );
    let keys = home.join("keys");
    let keygen = grocery(&["keygen", "--dir", keys.to_str().unwrap()], &[])
        .output()
        .unwrap();
    let printed = String::from_utf8(keygen.stdout).unwrap();
    let public = &printed[printed.find("-----BEGIN").expect("a public key")..];
    std::fs::write(keys.join("public.pem"), public).unwrap();

    let rpc = format!("127.0.0.1:{}", support::free_port());
    let token = uuid::Uuid::new_v4().simple().to_string();
    let rpc_url = format!("http://{rpc}");
    // The Job starts before inventory does: users and inventory are seeded at once,
    // the products once the stock API answers.
    let seed = grocery(
        &["seed"],
        &[
            ("DATABASE_URL", &url),
            ("GROCERY_DEMO_PASSWORD", "seed-test-pass"),
            ("INVENTORY_RPC_URL", &rpc_url),
            ("INTERNAL_RPC_TOKEN", &token),
        ],
    )
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let port = support::free_port().to_string();
    let _inventory = support::start(
        &["serve", "inventory"],
        &[
            ("DATABASE_URL", url.clone()),
            ("INVENTORY_PORT", port),
            ("INVENTORY_RPC_ADDR", rpc.clone()),
            ("INTERNAL_RPC_TOKEN", token.clone()),
            (
                "JWT_PUBLIC_KEYS_FILE",
                keys.join("public.pem").display().to_string(),
            ),
            // Nobody serves the access changes here: inventory starts after its patience.
            (
                "REVOCATIONS_URL",
                format!(
                    "http://127.0.0.1:{}/internal/access-changes",
                    support::free_port()
                ),
            ),
        ],
        &home,
    );
    let output = finished(seed);
    for component in ["users", "inventory", "catalog"] {
        assert!(output.contains(&format!("seeded {component}")), "{output}");
    }

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    let mut count = async |sql: &str| {
        diesel::sql_query(sql)
            .get_result::<Count>(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .n
    };
    assert_eq!(count("SELECT count(*) AS n FROM users.users WHERE device_id IN ('admin', 'truck-1', 'partner-1')").await, 3);
    assert_eq!(
        count("SELECT count(*) AS n FROM catalog.products").await,
        10
    );
    assert_eq!(
        count("SELECT count(DISTINCT sku) AS n FROM inventory.batches").await,
        10
    );

    // Seeding again changes nothing.
    finished(
        grocery(
            &["seed"],
            &[
                ("DATABASE_URL", &url),
                ("GROCERY_DEMO_PASSWORD", "seed-test-pass"),
                ("INVENTORY_RPC_URL", &rpc_url),
                ("INTERNAL_RPC_TOKEN", &token),
            ],
        )
        .spawn()
        .unwrap(),
    );
    assert_eq!(
        count("SELECT count(*) AS n FROM catalog.products").await,
        10
    );
    let _ = std::fs::remove_dir_all(&home);
}
