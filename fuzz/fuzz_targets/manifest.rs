//! Any bytes as `plugin.toml`: parsing returns a manifest or an error,
//! never panics.
#![no_main]

use std::path::{Path, PathBuf};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wasock::manifest::Manifest::parse(text, Path::new("plugin"), PathBuf::from("plugin/plugin.toml"));
    }
});
