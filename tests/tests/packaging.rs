//! Both crates could be published as they are: `cargo package` succeeds for
//! `wasock-guest` (verified: the packaged crate builds from its own files)
//! and for `wasock` (listed and packed; its verification would rebuild
//! wasmtime from scratch), and each carries the WIT it is built from.

use std::path::Path;
use std::process::Command;

fn cargo_package(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo).arg("package").args(args).arg("--allow-dirty").current_dir(root).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "cargo package {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

#[test]
fn the_guest_sdk_packages_builds_and_carries_its_wit() {
    let files = cargo_package(&["-p", "wasock-guest", "--list"]);
    for file in ["wit/wasock.wit", "wit/v0.1/wasock.wit", "src/lib.rs", "js/wasock.js", "python/wasock.py"] {
        assert!(files.lines().any(|l| l == file), "{file} not packaged:\n{files}");
    }
    cargo_package(&["-p", "wasock-guest"]);
}

#[test]
fn the_server_packages_with_its_wit_and_templates() {
    let files = cargo_package(&["-p", "wasock", "--list"]);
    for file in ["wit/wasock.wit", "wit/v0.1/wasock.wit", "templates/js/wasock.js", "templates/python/wasock.py"] {
        assert!(files.lines().any(|l| l == file), "{file} not packaged:\n{files}");
    }
    cargo_package(&["-p", "wasock", "--no-verify"]);
}
