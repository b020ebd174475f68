//! The compile cache: a second load of the same component comes from disk,
//! and an entry that is corrupt or that wasmtime refuses is ignored and
//! rebuilt, never trusted.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasock::plugins;
use wasock::runtime::{CompileCache, CompiledPlugin, Origin, Runtime};
use wasock_tests::{TestServer, fixture_dir, tempdir, test_config};

/// Loads the `lifecycle` fixture through a fresh runtime caching in `cache`.
fn load(cache: &Path) -> (Arc<Runtime>, CompiledPlugin) {
    wasock_tests::runtime(); // starts log capture
    let runtime = Arc::new(Runtime::with_cache(Some(CompileCache::new(cache))).unwrap());
    let dir = fixture_dir(&tempdir(), "lifecycle", "/lifecycle");
    let loaded = plugins::load(&runtime, &[dir]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let plugin = loaded.plugins.into_iter().next().unwrap().1;
    (runtime, plugin)
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    found.sort();
    found
}

/// The plugin, loaded through a runtime caching in `cache`, answers on a
/// real server.
async fn serves(cache: &Path) {
    let runtime = Arc::new(Runtime::with_cache(Some(CompileCache::new(cache))).unwrap());
    let dir = fixture_dir(&tempdir(), "lifecycle", "/lifecycle");
    let server = TestServer::serve_on(runtime, test_config(), vec![dir], false).await;
    let mut c = server.connect("/lifecycle").await;
    assert!(c.recv_text().await.starts_with("id:"));
    c.send_text("hello").await;
    assert_eq!(c.recv_text().await, "hello");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_load_comes_from_the_cache_and_works() {
    let cache = tempdir().join("cache");
    let (_, first) = load(&cache);
    assert_eq!(first.origin, Origin::Compiled);
    assert_eq!(entries(&cache).len(), 1);
    let (_, second) = load(&cache);
    assert_eq!(second.origin, Origin::Cached);
    assert_eq!(second.hash, first.hash);
    serves(&cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_entry_is_ignored_and_rebuilt() {
    let cache = tempdir().join("cache");
    load(&cache);
    let entry = entries(&cache).remove(0);
    let mut data = std::fs::read(&entry).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&entry, &data).unwrap();

    let (_, plugin) = load(&cache);
    assert_eq!(plugin.origin, Origin::Compiled, "a corrupt entry was used");
    assert!(wasock_tests::logs().contains("ignoring a corrupt compile cache entry"));
    // Rewritten: the next load is a hit again.
    assert_eq!(load(&cache).1.origin, Origin::Cached);
    serves(&cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_wasmtime_refuses_is_ignored_and_rebuilt() {
    let cache = tempdir().join("cache");
    load(&cache);
    // A well-formed entry (right checksum) whose artifact is not one this
    // engine made: wasmtime's own check must refuse it.
    let entry = entries(&cache).remove(0);
    let artifact = b"\x7fELF not a wasmtime artifact".to_vec();
    let mut data = b"wasock1\n".to_vec();
    data.extend_from_slice(&Sha256::digest(&artifact));
    data.extend_from_slice(&artifact);
    std::fs::write(&entry, &data).unwrap();

    let (_, plugin) = load(&cache);
    assert_eq!(plugin.origin, Origin::Compiled);
    assert!(wasock_tests::logs().contains("compile cache entry wasmtime refuses"));
    assert_eq!(load(&cache).1.origin, Origin::Cached);
    serves(&cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_cache_still_loads() {
    let dir = tempdir();
    let blocker = dir.join("file-not-dir");
    std::fs::write(&blocker, b"").unwrap();
    let (_, plugin) = load(&blocker.join("cache"));
    assert_eq!(plugin.origin, Origin::Compiled);
    serves(&blocker.join("cache")).await;
}
