//! The crates are ready to publish: each ships its licenses and a README, carries the
//! metadata crates.io and docs.rs show, and `rust-version` is a claim its dependencies back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// The whole graph, every platform's dependencies included (so cargo may fetch the manifests
/// of crates only another platform builds).
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// `1.85` or `1.82.0` as comparable numbers.
fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    parts.resize(3, 0);
    parts
}

/// The workspace members meant for crates.io (`publish` not set to `false`).
fn published(metadata: &Value) -> Vec<&Value> {
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| members.contains(p["id"].as_str().unwrap_or_default()))
        .filter(|p| {
            p["publish"]
                .as_array()
                .is_none_or(|registries| !registries.is_empty())
        })
        .collect()
}

#[test]
fn rust_version_is_backed_by_every_dependency_of_the_published_crates() {
    let metadata = metadata();
    let packages: BTreeMap<&str, &Value> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap_or_default(), p))
        .collect();
    let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("a resolved graph")
        .iter()
        .map(|n| (n["id"].as_str().unwrap_or_default(), n))
        .collect();
    let published = published(&metadata);
    assert!(published.len() >= 7, "the seven library and binary crates");
    let ours = published[0]["rust_version"]
        .as_str()
        .expect("rust-version is set");
    // Walk normal and build dependencies (what a user compiles), not dev-dependencies.
    let mut stack: Vec<&str> = published.iter().filter_map(|p| p["id"].as_str()).collect();
    let mut seen = BTreeSet::new();
    let mut too_new = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let package = packages[id];
        let theirs = package["rust_version"].as_str().unwrap_or("0");
        if version(theirs) > version(ours) {
            too_new.push(format!(
                "{} {} needs {theirs}",
                package["name"], package["version"]
            ));
        }
        for dep in nodes[id]["deps"].as_array().into_iter().flatten() {
            let user_facing = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|kind| kind["kind"].as_str() != Some("dev"));
            if user_facing {
                stack.push(dep["pkg"].as_str().unwrap_or_default());
            }
        }
    }
    assert!(
        seen.len() > 50,
        "the walk reached the dependency tree: {}",
        seen.len()
    );
    assert!(
        too_new.is_empty(),
        "rust-version {ours} is not enough for: {too_new:#?}"
    );
}

#[test]
fn every_published_crate_ships_licenses_a_readme_and_crates_io_metadata() {
    let metadata = metadata();
    for package in published(&metadata) {
        let name = package["name"].as_str().unwrap_or_default();
        let manifest = Path::new(package["manifest_path"].as_str().expect("a manifest"));
        let dir = manifest.parent().expect("a folder");
        for file in ["LICENSE-MIT", "LICENSE-APACHE", "README.md"] {
            assert!(dir.join(file).is_file(), "{name} has no {file}");
        }
        assert_eq!(package["readme"].as_str(), Some("README.md"), "{name}");
        for field in ["keywords", "categories"] {
            assert!(
                package[field].as_array().is_some_and(|v| !v.is_empty()),
                "{name} has no {field}"
            );
        }
        assert!(
            package["description"].is_string(),
            "{name} has no description"
        );
        assert!(
            package["metadata"]["docs"]["rs"].is_object(),
            "{name} has no [package.metadata.docs.rs]"
        );
    }
}
