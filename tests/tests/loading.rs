//! Bad plugins are reported with the plugin, the file and what is wrong, and
//! skipped; the good ones next to them are served.

use wasock::plugins;
use wasock_tests::{TestServer, fixture_dir, fixture_wasm, plugin_dir, runtime, tempdir, test_config};

fn manifest(name: &str, route: &str, component: &str) -> String {
    format!("manifest-version = 1\nname = \"{name}\"\nroute = \"{route}\"\ncomponent = \"{component}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_plugins_are_reported_and_the_rest_served() {
    let dir = tempdir();
    let good = fixture_dir(&dir, "lifecycle", "/good");
    let lifecycle = fixture_wasm("lifecycle");
    let lifecycle = lifecycle.to_str().unwrap();
    plugin_dir(&dir, "missing", &manifest("missing", "/missing", "nope.wasm"));
    plugin_dir(&dir, "bad-field", &manifest("bad-field", "no-slash", lifecycle));
    plugin_dir(&dir, "unknown-field", &format!("{}colour = 1\n", manifest("unknown-field", "/u", lifecycle)));
    plugin_dir(&dir, "not-toml", "this is = = not toml");
    plugin_dir(&dir, "same-route", &manifest("same-route", "/good", lifecycle));
    plugin_dir(&dir, "wrong-world", &manifest("wrong-world", "/wrong", fixture_wasm("wrong-world").to_str().unwrap()));
    let garbage = plugin_dir(&dir, "garbage", &manifest("garbage", "/garbage", "garbage.wasm"));
    std::fs::write(garbage.join("garbage.wasm"), b"\0asm but not really").unwrap();

    let loaded = plugins::load(runtime(), std::slice::from_ref(&dir));
    let errors: Vec<String> = loaded.errors.iter().map(|e| format!("{e:#}")).collect();
    let expect = |needle: &str| {
        assert!(errors.iter().any(|e| e.contains(needle)), "no error containing {needle:?} in {errors:#?}")
    };
    expect("plugin `missing`: cannot read component");
    expect("missing/nope.wasm");
    expect("bad-field/plugin.toml: field `route`: must start with `/`");
    expect("unknown-field/plugin.toml: line 5, column 1: unknown field `colour`");
    expect("not-toml/plugin.toml: line 1");
    expect("plugin `same-route`");
    expect("route /good is already served by plugin `lifecycle`");
    expect("plugin `wrong-world`");
    expect("does not implement the wasock:plugin world");
    expect("plugin `garbage`");
    expect("garbage.wasm is not a valid WebAssembly component");
    assert_eq!(errors.len(), 7, "{errors:#?}");

    let names: Vec<_> = loaded.plugins.iter().map(|(m, _)| m.name.as_str()).collect();
    assert_eq!(names, ["lifecycle"]);
    assert_eq!(loaded.plugins[0].0.dir, good);
    let plugins = loaded.plugins.iter().map(|(m, _)| m.dir.clone()).collect();
    let server = TestServer::serve(test_config(), plugins).await;
    let mut c = server.connect("/good").await;
    c.lifecycle_id().await;
    c.send_text("served").await;
    assert_eq!(c.recv_text().await, "served");
    server.shutdown().await;
}

#[test]
fn a_path_without_plugins_is_an_error() {
    let dir = tempdir();
    let loaded = plugins::load(runtime(), &[dir.clone(), dir.join("absent")]);
    let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
    assert!(errors[0].contains("no plugin.toml in it or in its subdirectories"), "{errors:?}");
    assert!(errors[1].contains("cannot read directory"), "{errors:?}");
    assert!(loaded.plugins.is_empty());
}

#[test]
fn the_wrong_world_error_names_the_missing_export() {
    let dir = tempdir();
    let wrong = fixture_wasm("wrong-world");
    plugin_dir(&dir, "w", &manifest("w", "/w", wrong.to_str().unwrap()));
    let loaded = plugins::load(runtime(), &[dir]);
    let err = format!("{:#}", loaded.errors[0]);
    assert!(err.contains("wasock:plugin/handler"), "{err}");
}
