//! SIGHUP reloads every plugin. (Alone in its test binary: the signal goes
//! to the whole process.)

use wasock_tests::{TestServer, replace_file, swap_plugin_dir, tempdir, wasm_bytes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_without_a_watcher() {
    let dir = tempdir();
    let plugin = swap_plugin_dir(&dir, "echo", "/echo", &wasm_bytes("echo"), "");
    let server = TestServer::watch(&dir, false).await;
    // A no-op reload makes sure the supervisor task runs (and listens for
    // SIGHUP) before the signal is sent.
    assert!(server.reload().await.swapped.is_empty());
    let mut c = server.connect("/echo").await;
    assert_eq!(c.recv_text().await, "Welcome to the chat room!");
    replace_file(&plugin.join("plugin.wasm"), &wasm_bytes("echo-v2"));
    let status = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut n = 0;
    loop {
        c.send_text(&n.to_string()).await;
        let reply = c.recv_text().await;
        if reply == format!("v2 said: {n}") {
            break;
        }
        assert_eq!(reply, format!("You said: {n}"));
        n += 1;
        assert!(n < 500, "SIGHUP did not reload");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(wasock_tests::logs().contains("SIGHUP: reloading every plugin"));
    server.shutdown().await;
}
