//! Autobahn|Testsuite, the whole of it (517 cases, permessage-deflate's
//! 12.* and 13.* included), against a pure echo plugin with compression on
//! and a 16 MiB message limit (the 9.* cases send up to 16 MiB and must be
//! echoed within their time limits, so this is a throughput check too).
//! The call deadline is raised to 2 s: copying a 16 MiB message into a
//! fresh instance (its memory growing to hold it) and back out can take
//! longer than the default 100 ms, which would trap and lose the echo, as
//! designed, not as Autobahn expects.
//!
//! Every case must end OK, NON-STRICT or INFORMATIONAL, its close too; none
//! may be UNIMPLEMENTED. The counts per category are printed (run with
//! `--nocapture` to see them) and the reports are left in
//! `target/tmp/autobahn/`. `wstest` comes from `.ci/setup` (in
//! `target/autobahn`), or from `$WSTEST`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasock_tests::{TestServer, compile_fixture, test_config};

fn wstest() -> PathBuf {
    if let Some(path) = std::env::var_os("WSTEST") {
        return path.into();
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/autobahn/bin/wstest");
    assert!(path.is_file(), "no {} (.ci/setup installs it; or set WSTEST)", path.display());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_autobahn_suite_passes_with_compression_on() {
    let wstest = wstest();
    let extra = "[limits]\nmax-message-bytes = 16777216\nqueue-bytes = 67108864\nmemory-mib = 128\n\
                 call-deadline-ms = 2000\n\n[deflate]\n";
    let mirror = compile_fixture("mirror", "mirror", "/", extra, |_| {});
    let server = TestServer::serve(test_config(), vec![mirror]).await;

    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("autobahn");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let spec = serde_json::json!({
        "options": {"failByDrop": false},
        "outdir": out.join("reports"),
        "servers": [{"agent": "wasock", "url": server.url("/")}],
        "cases": ["*"],
        "exclude-cases": [],
        "exclude-agent-cases": {},
    });
    std::fs::write(out.join("spec.json"), spec.to_string()).unwrap();
    let run = tokio::process::Command::new(&wstest)
        .args(["-m", "fuzzingclient", "-s"])
        .arg(out.join("spec.json"))
        .current_dir(&out)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30 * 60), run).await.expect("the suite ends").unwrap();
    assert!(output.status.success(), "wstest: {}", String::from_utf8_lossy(&output.stderr));

    // wstest exits 0 even when it could not reach the server: the report
    // is the verdict.
    let index = std::fs::read_to_string(out.join("reports/index.json")).expect("a report");
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    let cases = index["wasock"].as_object().expect("results for wasock");
    let passed = |b: &str| matches!(b, "OK" | "NON-STRICT" | "INFORMATIONAL");
    let mut per_category: BTreeMap<u32, BTreeMap<String, u32>> = BTreeMap::new();
    let mut failed = Vec::new();
    for (id, result) in cases {
        let behavior = result["behavior"].as_str().unwrap_or("?");
        let close = result["behaviorClose"].as_str().unwrap_or("?");
        let category = id.split('.').next().and_then(|c| c.parse().ok()).unwrap_or(0);
        *per_category.entry(category).or_default().entry(behavior.to_owned()).or_default() += 1;
        // As ../shared/autobahn/summarize.py counts, but UNIMPLEMENTED fails.
        if !passed(behavior) || !(passed(close) || close == "UNIMPLEMENTED" || close == "?") {
            failed.push(format!("{id}: {behavior} / close {close} ({})", result["reportfile"]));
        }
    }
    for (category, counts) in &per_category {
        println!("autobahn {category}.*: {counts:?}");
    }
    println!("autobahn: {} cases, {} failed; reports in {}", cases.len(), failed.len(), out.display());
    assert_eq!(cases.len(), 517, "the full suite");
    if !failed.is_empty() {
        let host: Vec<String> = wasock_tests::logs()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .map(str::to_owned)
            .collect();
        panic!("{} cases failed:\n{}\nhost warnings:\n{}", failed.len(), failed.join("\n"), host.join("\n"));
    }
    server.shutdown().await;
}
