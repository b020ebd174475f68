//! `wss://`: TLS through rustls (`tokio-rustls`, the `ring` provider), with
//! the certificate chain and key read from PEM files, and read again on
//! SIGHUP without dropping a connection: sessions keep the TLS state they
//! were accepted with; connections accepted afterwards get the new
//! certificate. A reload that fails (missing file, bad PEM, a key that does
//! not match) is logged and the previous certificate stays in use.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig as RustlsConfig;

/// The certificate chain and private key files (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("certificate {cert} with key {key}: {message}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's message.
        message: String,
    },
}

/// The acceptor in use, replaced on reload.
pub struct Tls {
    files: TlsFiles,
    acceptor: arc_swap::ArcSwap<TlsAcceptor>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads `files`; fails with a clear error if they cannot be used.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let acceptor = acceptor(&files)?;
        Ok(Self { files, acceptor: arc_swap::ArcSwap::from_pointee(acceptor) })
    }

    /// The acceptor for a new connection.
    pub(super) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::clone(&self.acceptor.load())
    }

    /// Reads the files again; on failure the old certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.acceptor.store(Arc::new(acceptor(&self.files)?));
        Ok(())
    }

    /// Reloads on every SIGHUP until the process ends (a task).
    pub(super) async fn reload_on_hangup(self: Arc<Self>) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangup.recv().await.is_some() {
            match self.reload() {
                Ok(()) => tracing::info!(cert = %self.files.cert.display(), "SIGHUP: TLS certificate reloaded"),
                Err(err) => {
                    tracing::error!(error = %err, "SIGHUP: cannot reload the TLS certificate; keeping the old one")
                }
            }
        }
    }
}

fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let file_error =
        |path: &Path, e: &dyn std::fmt::Display| TlsError::File { path: path.to_owned(), message: e.to_string() };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(&files.cert, &e))?;
    if certs.is_empty() {
        return Err(file_error(&files.cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_error(&files.key, &e))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = RustlsConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| TlsError::Pair { cert: files.cert.clone(), key: files.key.clone(), message: e.to_string() })?;
    // HTTP/1.1 only: the upgrade to WebSocket is an HTTP/1.1 request.
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
