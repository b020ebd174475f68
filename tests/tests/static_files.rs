//! A plugin's `[static]` directory over plain HTTP, beside its WebSocket
//! endpoint on the same route: the index at the route, files below it with
//! their types, `ETag`/`304`, HEAD, redirects for directories, the size
//! bound, and no way out of the directory (dot segments, encoded ones,
//! hidden files, symlinks). A route without static files still says 426.

use std::path::{Path, PathBuf};
use wasock_tests::http::{HttpAnswer, request};
use wasock_tests::{Client, TestServer, compile_fixture};

const INDEX: &str = "<!doctype html><title>chat</title><p>hello</p>\n";

/// A plugin at `route` whose `public/` holds an index, a script, a
/// subdirectory, a file over the 4 KiB bound, a 300 KiB file (several
/// chunks), a hidden file and a symlink to a file outside the directory.
fn site(name: &str, route: &str) -> PathBuf {
    compile_fixture("echo-v2", name, route, "[static]\ndir = \"public\"\nmax-file-bytes = 400000\n", |dir| {
        let public = dir.join("public");
        std::fs::create_dir_all(public.join("docs")).unwrap();
        std::fs::write(public.join("index.html"), INDEX).unwrap();
        std::fs::write(public.join("app.js"), "console.log('hi')\n").unwrap();
        std::fs::write(public.join("docs/index.html"), "docs\n").unwrap();
        std::fs::write(public.join("big.bin"), vec![7u8; 400_001]).unwrap();
        std::fs::write(public.join("many.bin"), chunky()).unwrap();
        std::fs::write(public.join(".env"), "SECRET=1\n").unwrap();
        std::fs::write(dir.join("secret.txt"), "outside\n").unwrap();
        std::os::unix::fs::symlink(dir.join("secret.txt"), public.join("link.txt")).unwrap();
    })
}

/// 300 000 bytes that are not all alike, so a mixed-up chunk would show.
fn chunky() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

async fn get(server: &TestServer, path: &str) -> HttpAnswer {
    request(server.addr, "GET", path, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_index_and_files_below_the_route() {
    let server = TestServer::serve(wasock_tests::test_config(), vec![site("site", "/chat")]).await;
    for path in ["/chat", "/chat/", "/chat/index.html"] {
        let answer = get(&server, path).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.text(), INDEX, "{path}");
        assert_eq!(answer.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(answer.header("content-length"), Some(INDEX.len().to_string().as_str()));
        assert_eq!(answer.header("cache-control"), Some("no-cache"));
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert!(answer.header("etag").is_some_and(|t| t.starts_with('"')), "{:?}", answer.headers);
        assert!(answer.header("last-modified").is_some());
    }
    let script = get(&server, "/chat/app.js").await;
    assert_eq!((script.status, script.text().as_str()), (200, "console.log('hi')\n"));
    assert!(script.header("content-type").unwrap().contains("javascript"), "{:?}", script.headers);

    let docs = get(&server, "/chat/docs").await;
    assert_eq!((docs.status, docs.header("location")), (308, Some("/chat/docs/")));
    assert_eq!(get(&server, "/chat/docs/").await.text(), "docs\n");

    let many = get(&server, "/chat/many.bin").await;
    assert_eq!(many.status, 200);
    assert!(many.body == chunky(), "a streamed file arrives whole and in order ({} bytes)", many.body.len());

    // The WebSocket endpoint on the same route is untouched.
    let mut client = Client::connect(&server.url("/chat")).await.unwrap();
    assert_eq!(client.recv_text().await, "Welcome to v2!");
    client.send_text("ping").await;
    assert_eq!(client.recv_text().await, "v2 said: ping");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_304_to_a_current_copy_and_sees_changes_on_disk() {
    let dir = site("cached", "/c");
    let server = TestServer::serve(wasock_tests::test_config(), vec![dir.clone()]).await;
    let first = get(&server, "/c/app.js").await;
    let etag = first.header("etag").unwrap().to_owned();
    let last_modified = first.header("last-modified").unwrap().to_owned();

    let revalidated = request(server.addr, "GET", "/c/app.js", &[&format!("If-None-Match: {etag}")]).await;
    assert_eq!(revalidated.status, 304);
    assert!(revalidated.body.is_empty());
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));
    let by_date = request(server.addr, "GET", "/c/app.js", &[&format!("If-Modified-Since: {last_modified}")]).await;
    assert_eq!(by_date.status, 304);
    let other = request(server.addr, "GET", "/c/app.js", &["If-None-Match: \"something-else\""]).await;
    assert_eq!(other.status, 200);

    let head = request(server.addr, "HEAD", "/c/app.js", &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("18"));
    assert!(head.body.is_empty());

    // A new file on disk is a new validator and new content, no reload.
    std::fs::write(dir.join("public/app.js"), "console.log('changed')\n").unwrap();
    let changed = request(server.addr, "GET", "/c/app.js", &[&format!("If-None-Match: {etag}")]).await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.text(), "console.log('changed')\n");
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outside_the_directory_or_over_the_bound_is_served() {
    let dir = site("guarded", "/g");
    let server = TestServer::serve(wasock_tests::test_config(), vec![dir.clone()]).await;
    assert!(get(&server, "/g/app.js").await.status == 200, "the site itself is served");
    for path in [
        "/g/../plugin.toml",
        "/g/%2e%2e/plugin.toml",
        "/g/docs/../../secret.txt",
        "/g/%2E%2E%2Fsecret.txt",
        "/g/.env",
        "/g/link.txt",
        "/g/..%5csecret.txt",
        "/g/missing.html",
        "/g/public/app.js",
        "/gx/app.js",
    ] {
        let answer = get(&server, path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert!(!answer.text().contains("outside") && !answer.text().contains("SECRET"), "{path}");
    }
    let big = get(&server, "/g/big.bin").await;
    assert_eq!(big.status, 403, "{}", big.text());
    assert!(big.body.len() < 100);

    let post = request(server.addr, "POST", "/g/app.js", &["Content-Length: 0"]).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_without_static_files_still_answers_426() {
    let plain = compile_fixture("echo-v2", "plain", "/plain", "", |_| {});
    let server = TestServer::serve(wasock_tests::test_config(), vec![plain, site("root", "/")]).await;
    let answer = get(&server, "/plain").await;
    assert_eq!(answer.status, 426);
    assert_eq!(answer.header("upgrade"), Some("websocket"));
    // A site at `/` serves below it, but never a route's own path.
    assert_eq!(get(&server, "/app.js").await.status, 200);
    assert_eq!(get(&server, "/").await.text(), INDEX);
    assert_eq!(get(&server, "/plain/app.js").await.status, 404);
    server.shutdown().await;
}

#[test]
fn a_static_dir_outside_the_plugin_is_a_manifest_error() {
    let dir =
        compile_fixture("echo-v2", "escape", "/e", "", |dir| std::fs::create_dir_all(dir.join("public")).unwrap());
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
    for (table, want) in [
        ("[static]\ndir = \"../\"\n", "field `static.dir`: `../` escapes the plugin directory"),
        ("[static]\ndir = \".\"\n", "field `static.dir`: `.` is the plugin directory itself"),
        ("[static]\ndir = \"nope\"\n", "field `static.dir`: `nope`:"),
        ("[static]\ndir = \"public\"\nmax-file-bytes = 0\n", "field `static.max-file-bytes`: must be between"),
        ("[static]\ndirectory = \"public\"\n", "unknown field `directory`"),
    ] {
        let err = wasock::manifest::Manifest::parse(&format!("{manifest}{table}"), &dir, dir.join("plugin.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}\nshould contain {want}");
    }
    let ok = wasock::manifest::Manifest::parse(&format!("{manifest}[static]\ndir = \"public\"\n"), &dir, dir.join("x"));
    let files = ok.unwrap().static_files.unwrap();
    assert_eq!(files.dir, dir.join("public").canonicalize().unwrap());
    assert_eq!(files.max_file_bytes, wasock::manifest::DEFAULT_MAX_FILE_BYTES);
    assert!(Path::new(&files.dir).is_absolute());
}
