//! Builds the guest code the tests load, from source, during the test
//! build: the bundled Rust plugins (`plugins/`, into `plugins/target`,
//! exactly where their manifests expect them), the test fixtures
//! (`tests/fixtures/`, into the same target directory) and the plugins and
//! fixtures in other languages (every directory with a `build.sh`, for a
//! plugin the command its manifest runs: C, JavaScript, Python). The nested cargo uses a
//! target directory of its own, so it never waits on the outer build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = here.parent().unwrap().to_path_buf();
    let plugins = root.join("plugins");
    let fixtures = here.join("fixtures");
    let target = plugins.join("target");
    build(&plugins, &target);
    build(&fixtures, &target);
    for dir in [&plugins, &fixtures] {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.path().join("build.sh").is_file() {
                build_script(&entry.path());
            }
        }
    }
    for dir in [&plugins, &fixtures] {
        watch_workspace(dir);
    }
    println!("cargo:rerun-if-changed={}", root.join("guest-sdk").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rustc-env=WASOCK_PLUGINS_DIR={}", plugins.display());
    let wasm = target.join("wasm32-wasip2/release");
    println!("cargo:rustc-env=WASOCK_FIXTURES_WASM={}", wasm.display());
}

/// What installs, builds or caches write into: watching it would rebuild on
/// every run.
const UNWATCHED: [&str; 3] = ["target", "node_modules", "__pycache__"];

/// Every member's sources and manifests, but not build output.
fn watch_workspace(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.join("Cargo.toml").display());
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && !UNWATCHED.iter().any(|u| path.file_name().unwrap() == *u) {
            for file in std::fs::read_dir(&path).unwrap().flatten() {
                let name = file.file_name();
                if !UNWATCHED.iter().any(|u| name == *u) {
                    println!("cargo:rerun-if-changed={}", file.path().display());
                }
            }
        }
    }
}

/// Runs a plugin's `build.sh` in its directory, as `wasock serve --build`
/// would (`sh build.sh` is its manifest's build command).
fn build_script(dir: &Path) {
    let mut cmd = Command::new("sh");
    cmd.arg("build.sh").current_dir(dir);
    run(cmd, || {
        format!("building {} failed: are its toolchains installed? (`.ci/setup` installs them)", dir.display())
    });
}

fn build(workspace: &Path, target: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--workspace"])
        .arg("--target-dir")
        .arg(target)
        .current_dir(workspace);
    run(cmd, || {
        format!(
            "building {} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)",
            workspace.display()
        )
    });
}

/// Runs a nested build without the outer build's variables; panics with
/// `failure()` if it fails.
fn run(mut cmd: Command, failure: impl FnOnce() -> String) {
    without_outer_build_env(&mut cmd);
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    assert!(status.success(), "{}", failure());
}

/// Keeps the outer build's settings (target, flags, target directory) away
/// from a nested build: guest builds have their own.
fn without_outer_build_env(cmd: &mut Command) {
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
}
