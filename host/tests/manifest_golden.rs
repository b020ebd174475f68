//! Golden-file tests for `plugin.toml`: every file in `tests/manifests/` is
//! parsed and the outcome (the error message, or the whole normalized
//! manifest, every default included) must match the `.out` file next to it.
//! Run with `WASOCK_BLESS=1` to rewrite the `.out` files after an intended
//! change.

mod golden;

use std::path::{Path, PathBuf};
use wasock::manifest::Manifest;

fn outcome(text: &str) -> String {
    match Manifest::parse(text, Path::new("plugin"), PathBuf::from("plugin/plugin.toml")) {
        Ok(m) => format!("{m:#?}\n"),
        Err(err) => format!("{err}\n"),
    }
}

#[test]
fn manifests_match_their_golden_outcomes() {
    golden::check("manifests", 10, outcome);
}
