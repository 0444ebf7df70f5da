//! Third-party JavaScript clients the end-to-end tests drive: a folder
//! `tests/<name>/` holds a committed `package.json`, `package-lock.json` and
//! its scripts; [`package`] installs it once per lock file under the target
//! folder (never into the source tree, never again on the next run) and
//! returns where to run its scripts.

use std::{
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    process::Command,
};

/// The folder to run `tests/<name>`'s scripts from: its dependencies
/// installed with `npm ci` under `target/tmp/node/` the first time this lock
/// file is seen, its scripts copied over fresh on every call (editing one
/// needs no new install).
pub fn package(name: &str) -> PathBuf {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "tests/{name} runs on Node.js 20+ and npm (apt-get install nodejs npm; .ci/run installs them)"
    );
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name);
    let lock = std::fs::read(source.join("package-lock.json"))
        .unwrap_or_else(|e| panic!("tests/{name}/package-lock.json: {e}"));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    lock.hash(&mut hasher);
    std::fs::read(source.join("package.json"))
        .unwrap()
        .hash(&mut hasher);
    let installs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("node");
    let installed = installs.join(format!("{name}-{:016x}", hasher.finish()));
    if !installed.join("node_modules").exists() {
        install(&source, &installs, &installed);
    }
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let script = path.extension().is_some_and(|e| e == "mjs" || e == "js");
        if script {
            std::fs::copy(&path, installed.join(path.file_name().unwrap())).unwrap();
        }
    }
    installed
}

/// `npm ci` of `source`'s lock file into a folder of its own, then renamed
/// to `installed` at once: tests installing side by side (nextest runs each
/// in a process of its own) never see a half-installed folder.
fn install(source: &Path, installs: &Path, installed: &Path) {
    let staging = installs.join(format!("staging-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&staging).unwrap();
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(source.join(file), staging.join(file)).unwrap();
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&staging)
        .status()
        .expect("npm is needed to install the test's JavaScript client (apt-get install npm)");
    assert!(status.success(), "npm ci failed for {}", source.display());
    // Another test may have won the race: its folder is as good as ours.
    if std::fs::rename(&staging, installed).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
        assert!(
            installed.join("node_modules").exists(),
            "could not install into {}",
            installed.display()
        );
    }
}
