//! Helpers that change plugins on disk the way a deploy would, for the
//! hot-swap tests (whose servers are [`crate::TestServer::watch`]).

use crate::fixture_wasm;
use std::path::{Path, PathBuf};

/// Writes plugin directory `<parent>/<name>` serving a copy of `component`
/// (as `plugin.wasm`) at `route`, with `extra` manifest TOML.
pub fn swap_plugin_dir(parent: &Path, name: &str, route: &str, component: &[u8], extra: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.wasm"), component).unwrap();
    let manifest =
        format!("manifest-version = 1\nname = \"{name}\"\nroute = \"{route}\"\ncomponent = \"plugin.wasm\"\n{extra}");
    replace_file(&dir.join("plugin.toml"), manifest.as_bytes());
    dir
}

/// Replaces a file the way deploy tools should: write aside, then rename.
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp-new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The same component with a custom section appended: identical code, a new
/// content hash (a "new version" that behaves the same).
pub fn rehash(component: &[u8], tag: &str) -> Vec<u8> {
    let name = b"wasock-test";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = component.to_vec();
    out.push(0);
    out.push(u8::try_from(payload.len()).expect("short tag"));
    out.extend_from_slice(&payload);
    out
}

/// The bytes of a built guest component (bundled plugin or fixture).
pub fn wasm_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture_wasm(name)).unwrap()
}

/// The component of bundled plugin `name`, wherever its manifest puts it.
pub fn bundled_wasm(name: &str) -> Vec<u8> {
    let (manifests, errors) = wasock::plugins::discover(&[crate::plugins_dir().join(name)]);
    assert!(errors.is_empty(), "{errors:?}");
    std::fs::read(&manifests[0].component).unwrap()
}
