//! The golden-file harness the `plugin.toml` and `wasock.toml` tests share:
//! every `*.toml` in a directory under `tests/` is turned into its outcome,
//! which must match the `.out` file next to it; `WASOCK_BLESS=1` rewrites
//! the `.out` files after an intended change.

use std::path::{Path, PathBuf};

/// Checks every case in `tests/<dir>` (at least `min_cases` of them).
pub(crate) fn check(dir: &str, min_cases: usize, outcome: impl Fn(&str) -> String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(dir);
    let bless = std::env::var_os("WASOCK_BLESS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= min_cases, "golden cases missing from {}", dir.display());
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
