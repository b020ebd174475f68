//! Golden-file tests for `wasock.toml`: every file in `tests/configs/` is
//! parsed (as if at `/etc/wasock/wasock.toml`) and the outcome (the error
//! message, or the whole parsed file, relative paths resolved) must match
//! the `.out` file next to it. Run with `WASOCK_BLESS=1` to rewrite the
//! `.out` files after an intended change.

use std::path::{Path, PathBuf};
use wasock::config::file::ConfigFile;

fn outcome(text: &str) -> String {
    match ConfigFile::parse(text, Path::new("/etc/wasock/wasock.toml")) {
        Ok(config) => format!("{config:#?}\n"),
        Err(err) => format!("{err}\n"),
    }
}

#[test]
fn config_files_match_their_golden_outcomes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let bless = std::env::var_os("WASOCK_BLESS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "golden cases missing from {}", dir.display());
    let mut failures = Vec::new();
    for case in cases {
        let got = outcome(&std::fs::read_to_string(&case).unwrap());
        let golden = case.with_extension("out");
        if bless {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!("{}:\n  got:  {got}  want: {want}", case.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
