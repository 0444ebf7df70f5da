//! Route files are checked before they serve: the shipped Ordering API
//! loads, and a file that names an unknown document or variable, leaves a
//! required variable without a source, or asks a shape its document cannot
//! give is refused with a message naming its line.

use std::path::{Path, PathBuf};

use gateway::{Supergraph, rest::Table};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn supergraph() -> Supergraph {
    let sdl = std::fs::read_to_string(repo().join("schema/supergraph.graphql")).unwrap();
    Supergraph::load(&sdl).unwrap()
}

/// A directory holding `yaml` as `api.yaml`.
fn dir_with(yaml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rest-routes-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("api.yaml"), yaml).unwrap();
    dir
}

fn load(yaml: &str) -> Result<Table, String> {
    let dir = dir_with(yaml);
    let result = Table::load(
        &dir,
        &repo().join("schema/persisted"),
        supergraph().api_schema(),
    )
    .map_err(|e| format!("{e:#}"));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A valid file with `route` as its one route (indented as a list item).
fn with_route(route: &str) -> String {
    format!(
        "manifest: ordering-v1\nerrors:\n  statuses:\n    BAD_USER_INPUT: 400\n  body:\n    status: error\nroutes:\n{route}"
    )
}

const LOGIN: &str = "  - route: POST /api/login
    document: OrderingLogin
    token: none
    variables:
      deviceId: body.device_id
      password: body.password
    answer:
      access_token: $login.accessToken
";

#[test]
fn the_shipped_ordering_api_loads_with_every_route() {
    let table = Table::load(
        &repo().join("schema/rest"),
        &repo().join("schema/persisted"),
        supergraph().api_schema(),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let routes: Vec<String> = table.routes().map(|r| r.label.clone()).collect();
    assert_eq!(
        routes,
        [
            "POST /api/client/register",
            "POST /api/client/login",
            "POST /api/client/refresh",
            "POST /api/client/order/preview",
            "POST /api/client/order/confirm",
            "POST /api/client/order/cancel",
            "POST /api/truck/restock",
        ]
    );
    assert!(load(&with_route(LOGIN)).is_ok());
}

#[track_caller]
fn refused(yaml: &str, line: usize, words: &[&str]) {
    let err = match load(yaml) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(err) => err,
    };
    assert!(
        err.contains(&format!("api.yaml:{line}:")),
        "line {line} named in: {err}"
    );
    for word in words {
        assert!(err.contains(word), "{word:?} in: {err}");
    }
}

#[test]
fn an_unknown_document_or_manifest_is_refused_naming_the_line() {
    refused(
        &with_route(&LOGIN.replace("OrderingLogin", "NoSuchDocument")),
        9,
        &["no document", "NoSuchDocument"],
    );
    refused(
        &with_route(LOGIN).replace("manifest: ordering-v1", "manifest: nowhere"),
        1,
        &["nowhere.json"],
    );
    refused(
        &with_route(LOGIN).replace("manifest: ordering-v1\n", ""),
        1,
        &["manifest"],
    );
}

#[test]
fn an_unknown_or_missing_variable_is_refused_naming_the_line() {
    refused(
        &with_route(&LOGIN.replace("deviceId: body.device_id", "device: body.device_id")),
        12,
        &["no variable $device", "$deviceId"],
    );
    refused(
        &with_route(&LOGIN.replace("      password: body.password\n", "")),
        11,
        &["needs $password"],
    );
    refused(
        &with_route(&LOGIN.replace("body.password", "path.password")),
        13,
        &["no parameter {password}"],
    );
    refused(
        &with_route(&LOGIN.replace("body.password", "cookie.password")),
        13,
        &["not a source"],
    );
    refused(
        &with_route(
            &LOGIN
                .replace("token: none", "token: access")
                .replace("body.password", "bearer"),
        ),
        13,
        &["bearer"],
    );
}

#[test]
fn an_impossible_shape_is_refused_naming_the_line() {
    refused(
        &with_route(&LOGIN.replace("$login.accessToken", "$login.user.id")),
        15,
        &["selects no `user`"],
    );
    refused(
        &with_route(&LOGIN.replace("$login.accessToken", "$logout")),
        15,
        &["selects no `logout`"],
    );
    refused(
        &with_route(&LOGIN.replace(
            "access_token: $login.accessToken",
            "access_token: { pick: $login.accessToken, enum: { A: b } }",
        )),
        15,
        &["not an enum"],
    );
    refused(
        &with_route(&LOGIN.replace(
            "access_token: $login.accessToken",
            "access_token: { pick: $login.accessToken, map: { key: a, value: b } }",
        )),
        15,
        &["not a list"],
    );
    let preview = "  - route: POST /api/preview
    document: OrderingPreview
    variables:
      items: { from: body.items, each: { sku: sku, quantity: qty } }
    answer:
      status: { pick: $previewOrder.status, enum: { RESERVD: reserved } }
";
    refused(
        &with_route(preview),
        13,
        &["OrderStatus has no value RESERVD"],
    );
    refused(
        &with_route(&preview.replace("quantity: qty", "amount: qty")),
        11,
        &["OrderLineInput has no field amount"],
    );
    refused(
        &with_route(&preview.replace(", quantity: qty", "")),
        11,
        &["OrderLineInput.quantity is required"],
    );
}

#[test]
fn malformed_files_and_routes_are_refused_naming_the_line() {
    refused(
        &with_route(&LOGIN.replace("POST /api/login", "FETCH /api/login")),
        8,
        &["FETCH"],
    );
    refused(
        &with_route(&LOGIN.replace("POST /api/login", "POST /graphql")),
        8,
        &["gateway's own"],
    );
    refused(
        &with_route(&LOGIN.replace("POST /api/login", "POST /api/../x")),
        8,
        &["plain text"],
    );
    refused(
        &with_route(&LOGIN.replace("    token: none\n", "    token: none\n    colour: red\n")),
        11,
        &["unknown key `colour`"],
    );
    refused(
        &with_route(&format!("{LOGIN}    status: 404\n")),
        16,
        &["success status"],
    );
    refused(
        &with_route(&format!("{LOGIN}{LOGIN}")),
        16,
        &["declared twice"],
    );
    refused(
        &with_route(LOGIN).replace("BAD_USER_INPUT: 400", "BAD_USER_INPUT: teapot"),
        4,
        &["error status"],
    );
    // YAML that does not parse, and a duplicate key, name their place too.
    let Err(broken) = load("manifest: ordering-v1\nroutes: [\n") else {
        panic!("accepted broken YAML")
    };
    assert!(broken.contains("api.yaml"), "{broken}");
    let Err(twice) = load(
        &with_route(LOGIN).replace("    token: none\n", "    token: none\n    token: access\n"),
    ) else {
        panic!("accepted a duplicate key")
    };
    assert!(twice.contains("Duplicate key"), "{twice}");
    assert!(load("- a list\n").is_err());
}

#[test]
fn a_reload_replaces_the_routes_and_a_broken_one_keeps_the_old() {
    let dir = dir_with(&with_route(LOGIN));
    let supergraph = supergraph();
    let rest = gateway::rest::Rest::load(
        gateway::rest::RestOptions {
            dir: dir.clone(),
            manifests: repo().join("schema/persisted"),
            required: true,
        },
        supergraph.api_schema(),
    )
    .unwrap();
    let labels = |rest: &gateway::rest::Rest| -> Vec<String> {
        rest.table().routes().map(|r| r.label.clone()).collect()
    };
    assert_eq!(labels(&rest), ["POST /api/login"]);
    std::fs::write(
        dir.join("api.yaml"),
        with_route(&LOGIN.replace("/api/login", "/api/sign-in")),
    )
    .unwrap();
    rest.reload(supergraph.api_schema()).unwrap();
    assert_eq!(labels(&rest), ["POST /api/sign-in"]);
    std::fs::write(
        dir.join("api.yaml"),
        with_route(&LOGIN.replace("OrderingLogin", "Gone")),
    )
    .unwrap();
    let err = rest.reload(supergraph.api_schema()).unwrap_err();
    assert!(format!("{err:#}").contains("api.yaml:9:"), "{err:#}");
    assert_eq!(labels(&rest), ["POST /api/sign-in"], "the old routes serve");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_supergraph_reload_checks_the_routes_again_and_keeps_them_when_they_no_longer_fit() {
    let sdl = std::fs::read_to_string(repo().join("schema/supergraph.graphql")).unwrap();
    let options = gateway::GatewayOptions {
        persisted: gateway::pipeline::persisted::PersistedOptions {
            manifests: Some(repo().join("schema/persisted")),
            ..Default::default()
        },
        rest: Some(gateway::rest::RestOptions {
            dir: repo().join("schema/rest"),
            manifests: repo().join("schema/persisted"),
            required: true,
        }),
        ..Default::default()
    };
    let gateway = gateway::Gateway::new(&sdl, None, &options).unwrap();
    let rest = gateway.rest.clone().expect("routes load");
    let first = rest.table();
    gateway.reload(&sdl).unwrap();
    let second = rest.table();
    assert!(
        !std::sync::Arc::ptr_eq(&first, &second),
        "checked again against the new supergraph"
    );
    // A supergraph whose `login` is renamed: it serves, and the routes that were
    // checked keep serving rather than none.
    let without_login = sdl.replace("  login(deviceId", "  signIn(deviceId");
    assert_ne!(without_login, sdl);
    gateway.reload(&without_login).unwrap();
    assert!(std::sync::Arc::ptr_eq(&second, &rest.table()));
    assert_eq!(rest.table().routes().count(), 7);
}
