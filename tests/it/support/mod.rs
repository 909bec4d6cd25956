//! Shared helpers for the integration tests.

pub(crate) mod http;
pub(crate) mod scenarios;

use std::path::PathBuf;
use std::process::Command;

/// The folder of checked-in fixtures (copied from the API reference).
pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The bytes of one fixture.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file names of every fixture.
pub(crate) fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures folder")
        .map(|entry| {
            entry
                .expect("fixture entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// `cargo tree` of a package's normal dependencies, one crate name per line.
pub(crate) fn cargo_tree(package: &str) -> String {
    cargo_tree_with(package, &["--offline"])
}

/// [`cargo_tree`] with more arguments, e.g. other features (without `--offline`, cargo may
/// fetch the crates of a feature no build has used yet).
pub(crate) fn cargo_tree_with(package: &str, args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "-e", "normal", "--prefix", "none", "-p", package])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether `krate` is one of the crates of a [`cargo_tree`] output.
pub(crate) fn in_tree(tree: &str, krate: &str) -> bool {
    tree.lines()
        .any(|line| line.split_whitespace().next() == Some(krate))
}

/// A binary of the workspace, built on demand (`cargo build -p PACKAGE --bin NAME`) with the
/// same cargo and target dir as the tests. `cargo test` only builds the binaries of the package
/// under test, and the binaries live in other packages.
pub(crate) fn workspace_binary(package: &str, name: &str) -> PathBuf {
    build_artifact(package, &["--bin", name], &[name])
}

/// An example program of a workspace package, built on demand like [`workspace_binary`].
pub(crate) fn workspace_example(package: &str, name: &str) -> PathBuf {
    build_artifact(package, &["--example", name], &["examples", name])
}

fn build_artifact(package: &str, target: &[&str], path: &[&str]) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--offline", "-p", package])
        .args(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {target:?} of {package} failed");
    // `--offline`: everything this needs was fetched to build the tests themselves.
    // The test binary lives in <target>/debug/deps/; artifacts in <target>/debug/.
    let exe = std::env::current_exe().expect("test exe");
    let mut artifact = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf();
    artifact.extend(path);
    artifact.set_extension(std::env::consts::EXE_EXTENSION);
    assert!(artifact.exists(), "{} not found", artifact.display());
    artifact
}
