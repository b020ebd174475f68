//! Plugins get no files, environment or network unless their manifest
//! grants it, and grants cannot reach outside the plugin directory.

use wasock::plugins;
use wasock_tests::{TestServer, compile_fixture, fixture_manifest, plugin_dir, runtime, tempdir, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_reachable_by_default() {
    // The host has HOME; the plugin must not see it.
    assert!(std::env::var("HOME").is_ok());
    let plain = compile_fixture("misbehave", "plain", "/plain", "", |_| {});
    let server = TestServer::serve(test_config(), vec![plain]).await;
    let mut c = server.connect("/plain").await;
    c.send_text("read-file").await;
    assert!(c.recv_text().await.starts_with("denied:"));
    c.send_text("env").await;
    assert_eq!(
        c.recv_text().await,
        "HOME=denied: environment variable not found GREETING=denied: environment variable not found"
    );
    c.send_text("net").await;
    assert!(c.recv_text().await.starts_with("denied:"));
    c.send_text("read-granted").await;
    assert!(c.recv_text().await.starts_with("denied:"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_env_and_read_only_dirs_are_reachable() {
    let grants = "[grants]\nenv = { GREETING = \"hello\" }\ninherit-env = [\"HOME\"]\nread-dirs = [\"static\"]\n";
    let granted = compile_fixture("misbehave", "granted", "/granted", grants, |dir| {
        std::fs::create_dir_all(dir.join("static")).unwrap();
        std::fs::write(dir.join("static/hello.txt"), "hi from a file").unwrap();
    });
    let server = TestServer::serve(test_config(), vec![granted]).await;
    let mut c = server.connect("/granted").await;
    c.send_text("read-granted").await;
    assert_eq!(c.recv_text().await, "ok \"hi from a file\"");
    c.send_text("env").await;
    let home = std::env::var("HOME").unwrap();
    assert_eq!(c.recv_text().await, format!("HOME=ok {home:?} GREETING=ok \"hello\""));
    // Only what was granted: no writes, no other files, no network.
    c.send_text("write-granted").await;
    assert!(c.recv_text().await.starts_with("denied:"));
    c.send_text("read-file").await;
    assert!(c.recv_text().await.starts_with("denied:"));
    c.send_text("net").await;
    assert!(c.recv_text().await.starts_with("denied:"));
    server.shutdown().await;
}

#[test]
fn grants_that_escape_the_plugin_directory_are_refused_at_load() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.join("outside")).unwrap();
    let cases = [
        ("parent", "read-dirs = [\"..\"]", "`..` escapes the plugin directory"),
        ("absolute", "read-dirs = [\"/etc\"]", "`/etc` escapes the plugin directory"),
        ("itself", "read-dirs = [\".\"]", "is the plugin directory itself"),
        ("missing", "read-dirs = [\"nope\"]", "`nope`: No such file or directory"),
        ("symlink", "read-dirs = [\"link\"]", "`link` escapes the plugin directory"),
        ("bad-env", "env = { \"A-B\" = \"x\" }", "field `grants.env`: `A-B` is not a valid variable name"),
    ];
    for (name, grant, _) in &cases {
        let d = plugin_dir(
            &dir,
            name,
            &fixture_manifest("misbehave", name, &format!("/{name}"), &format!("[grants]\n{grant}\n")),
        );
        if *name == "symlink" {
            std::os::unix::fs::symlink(dir.join("outside"), d.join("link")).unwrap();
        }
    }
    let loaded = plugins::load(runtime(), std::slice::from_ref(&dir));
    assert!(loaded.plugins.is_empty());
    for (name, _, want) in cases {
        let err = loaded
            .errors
            .iter()
            .map(|e| e.to_string())
            .find(|e| e.contains(&format!("{name}/plugin.toml")))
            .unwrap_or_else(|| panic!("no error for {name}"));
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_reach_another_endpoints_sessions() {
    let probe = compile_fixture("misbehave", "probe", "/probe", "", |_| {});
    let server = TestServer::serve(test_config(), vec![probe, wasock_tests::plugin("lifecycle")]).await;
    let mut other = server.connect("/lifecycle").await;
    let other_id = other.lifecycle_id().await;
    let mut c = server.connect("/probe").await;
    c.send_text(&format!("open:{other_id}")).await;
    assert_eq!(c.recv_text().await, format!("open {other_id}: false; sees 1 sessions, 0 in lobby"));
    // Its own sessions it can open.
    let mut mine = server.connect("/probe").await;
    mine.send_text("open:0").await;
    assert_eq!(mine.recv_text().await, "open 0: false; sees 2 sessions, 0 in lobby");
    assert_eq!(c.recv_text().await, "probe");
    other.send_text("nothing arrived here").await;
    assert_eq!(other.recv_text().await, "nothing arrived here");
    server.shutdown().await;
}
