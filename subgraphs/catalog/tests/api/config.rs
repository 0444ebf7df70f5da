use std::collections::HashMap;

use kit::config::Env;

use crate::support::KEYS;

fn env(vars: &[(&str, &str)]) -> Env {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Env::from_fn(move |name| vars.get(name).cloned())
}

#[test]
fn configuration_defaults_the_inventory_url_and_lists_everything_missing() {
    let mut ok = env(&[
        ("DATABASE_URL", "postgres://db/grocery"),
        ("INTERNAL_RPC_TOKEN", "t0ken"),
    ]);
    let cfg = catalog::Config::read(&mut ok, Some(KEYS.clone()));
    ok.finish().expect("complete configuration");
    assert_eq!(cfg.db.schema, "catalog");
    assert_eq!(cfg.inventory_rpc_url, "http://127.0.0.1:50051");
    assert_eq!(cfg.rpc_token, "t0ken");

    let mut own = env(&[
        ("CATALOG_DATABASE_URL", "postgres://catalog-db/c"),
        ("INVENTORY_RPC_URL", "http://inventory:50051"),
        ("INTERNAL_RPC_TOKEN", "t0ken"),
    ]);
    let cfg = catalog::Config::read(&mut own, Some(KEYS.clone()));
    own.finish().expect("complete configuration");
    assert_eq!(cfg.db.url, "postgres://catalog-db/c");
    assert_eq!(cfg.inventory_rpc_url, "http://inventory:50051");

    let mut missing = env(&[("INVENTORY_RPC_URL", "not a url")]);
    catalog::Config::read(&mut missing, None);
    let problems = missing.finish().unwrap_err().0.join("\n");
    for expected in [
        "CATALOG_DATABASE_URL or DATABASE_URL",
        "JWT_PUBLIC_KEYS_FILE is required",
        "INVENTORY_RPC_URL=\"not a url\"",
        "INTERNAL_RPC_TOKEN is required",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} missing from:\n{problems}"
        );
    }
}
