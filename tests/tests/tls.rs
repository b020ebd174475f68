//! `wss://` through the real binary: a client that trusts the test's own CA
//! (made with rcgen) completes the TLS and WebSocket handshakes; SIGHUP
//! re-reads the certificate without dropping the sessions it has; a broken
//! certificate on reload is refused and the old one kept.

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use wasock_tests::cli::Served;
use wasock_tests::{plugins_dir, replace_file, tempdir};

/// A certificate authority of the test's own.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let der = params.self_signed(&key).unwrap().der().clone();
        Self { params, key, der }
    }

    /// A certificate for `localhost` and 127.0.0.1, and its key, as PEM files
    /// `cert.pem` and `key.pem` in `dir` (replaced atomically).
    fn issue(&self, dir: &Path) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key)).unwrap();
        replace_file(&dir.join("cert.pem"), cert.pem().as_bytes());
        replace_file(&dir.join("key.pem"), key.serialize_pem().as_bytes());
    }

    /// A client that trusts only this CA.
    fn client(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

type Wss = WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A wss:// connection to `route`, or the error that stopped it.
async fn wss(addr: &str, connector: &TlsConnector, route: &str) -> Result<Wss, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let port = addr.rsplit(':').next().unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("wss://localhost:{port}{route}"), tls)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn text(ws: &mut Wss) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("timed out") {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

fn hangup(served: &Served) {
    let status = std::process::Command::new("kill").args(["-HUP", &served.pid().to_string()]).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_serves_and_reloads_its_certificate_on_sighup_without_dropping_sessions() {
    let dir = tempdir();
    let (first, second) = (Ca::new("first test CA"), Ca::new("second test CA"));
    first.issue(&dir);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let args = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap(), "--no-watch", "echo"];
    let served = Served::start(&plugins_dir(), &args, Duration::from_secs(120));
    let addr = served.url("").trim_start_matches("ws://").to_owned();

    let mut kept = wss(&addr, &first.client(), "/echo").await.unwrap();
    assert_eq!(text(&mut kept).await, "Welcome to the chat room!");
    kept.send(Message::text("over tls")).await.unwrap();
    assert_eq!(text(&mut kept).await, "You said: over tls");
    assert!(wss(&addr, &second.client(), "/echo").await.is_err(), "a client trusting another CA got in");
    assert!(
        wasock_tests::Client::connect(&served.url("/echo")).await.is_err(),
        "plain ws:// was served on a TLS listener"
    );

    // A new certificate from the second CA, read on SIGHUP.
    second.issue(&dir);
    hangup(&served);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut fresh = loop {
        match wss(&addr, &second.client(), "/echo").await {
            Ok(ws) => break ws,
            Err(err) => assert!(tokio::time::Instant::now() < deadline, "new certificate never served: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(text(&mut fresh).await, "Welcome to the chat room!");
    assert!(wss(&addr, &first.client(), "/echo").await.is_err(), "the old certificate is still served");
    kept.send(Message::text("still here")).await.unwrap();
    assert_eq!(text(&mut kept).await, "You said: still here", "the reload dropped a session");

    // A broken key on the next reload: refused, the second certificate stays.
    replace_file(&key, b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
    hangup(&served);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut after = wss(&addr, &second.client(), "/echo").await.expect("the bad reload replaced the certificate");
    assert_eq!(text(&mut after).await, "Welcome to the chat room!");
    let (_, log) = served.stop();
    assert!(log.contains("TLS certificate reloaded"), "{log}");
    assert!(log.contains("cannot reload the TLS certificate; keeping the old one"), "{log}");
}

#[test]
fn a_bad_certificate_file_stops_serve_with_a_clear_error() {
    let dir = tempdir();
    std::fs::write(dir.join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.join("key.pem"), "not a key").unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new(wasock_tests::cli::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-watch", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg(plugins_dir().join("echo"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("TLS: {}: no certificate in the file", cert.display())), "{stderr}");
}
