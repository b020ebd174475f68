//! Golden-file tests for `wasock.toml`: every file in `tests/configs/` is
//! parsed (as if at `/etc/wasock/wasock.toml`) and the outcome (the error
//! message, or the whole parsed file, relative paths resolved) must match
//! the `.out` file next to it. Run with `WASOCK_BLESS=1` to rewrite the
//! `.out` files after an intended change.

mod golden;

use std::path::Path;
use wasock::config::file::ConfigFile;

fn outcome(text: &str) -> String {
    match ConfigFile::parse(text, Path::new("/etc/wasock/wasock.toml")) {
        Ok(config) => format!("{config:#?}\n"),
        Err(err) => format!("{err}\n"),
    }
}

#[test]
fn config_files_match_their_golden_outcomes() {
    golden::check("configs", 10, outcome);
}
