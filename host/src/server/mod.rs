//! The network side: bind, accept, route upgrades to endpoints, and shut down
//! gracefully.
//!
//! - [`http`]: one hyper HTTP/1 connection per accepted socket; routing and
//!   the WebSocket upgrade (404, 426, 400 otherwise).
//! - [`connection`]: one task per WebSocket session, reading, writing,
//!   heartbeats and the closing handshake.
//! - [`files`]: a plugin's static files on plain GET under its route.
//! - [`tls`]: `wss://`, the certificate re-read on SIGHUP.
//! - [`wire`]: the codec under a session, the answer to deflate offers,
//!   and failing a connection after a bad message.
//!
//! [`run`] takes a bound listener, the routing table and a shutdown future.
//! The table is shared: whoever manages the endpoints (the supervisor) swaps
//! it as plugins come, go or move. When the future resolves, `run` stops
//! accepting, closes every session with 1001 and waits up to
//! `shutdown_timeout` for them; then the caller shuts the endpoints down
//! (each calls `on-disconnected` for any session still registered).

mod connection;
mod files;
mod http;
mod io;
mod live;
mod peers;
pub mod tls;
mod wire;

use crate::config::ServerConfig;
use crate::endpoint::EndpointHandle;
use crate::log_limit::LogLimit;
use crate::manifest::{Deflate, Manifest, StaticFiles};
use crate::session::SessionId;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Route -> what it serves. Swapped whole, so a request sees one
/// consistent table.
pub type Routes = HashMap<String, Route>;

/// What one route serves.
#[derive(Debug, Clone)]
pub struct Route {
    /// The WebSocket endpoint.
    pub endpoint: EndpointHandle,
    /// The plugin's static files, served on plain GET at and below the
    /// route; `None` leaves plain GETs at the route a 426.
    pub files: Option<Arc<StaticFiles>>,
    /// permessage-deflate, if the plugin enables it.
    pub deflate: Option<Deflate>,
}

impl Route {
    /// What the plugin of `manifest` serves through `endpoint`.
    pub fn new(endpoint: EndpointHandle, manifest: &Manifest) -> Self {
        let files = manifest.static_files.clone().map(Arc::new);
        Self { endpoint, files, deflate: manifest.deflate.clone() }
    }
}

/// What every connection task shares.
struct ServerState {
    /// The routing table.
    routes: Arc<ArcSwap<Routes>>,
    /// Server settings.
    config: Arc<ServerConfig>,
    /// Cancelled when the server starts shutting down (HTTP connections
    /// wait on it; WebSocket sessions are woken through `live`).
    shutdown: CancellationToken,
    /// Live WebSocket sessions.
    live: live::LiveSessions,
    /// Every connection task, so shutdown can wait for them.
    tasks: TaskTracker,
    /// Connections per client address, if they are capped.
    peers: Option<Arc<peers::PeerCounts>>,
    /// TLS, if serving `wss://`.
    tls: Option<Arc<tls::Tls>>,
}

/// How long the accept loop waits after a failed accept (out of file
/// descriptors): no spinning, and quick to recover once some are free.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Failed accepts are logged at most every 5 s.
static ACCEPT_FAILED: LogLimit = LogLimit::new(Duration::from_secs(5));

/// Source of session ids: unique for the life of the process, even across
/// servers, so an id a plugin keeps can never name a different connection.
static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

/// Makes this process's session ids start with `node`'s low 20 bits (the
/// rest count): in a cluster, an id a node reports in a topic's members
/// names no session on another node.
pub fn prefix_session_ids(node: u64) {
    NEXT_SESSION_ID.fetch_max(((node & 0xF_FFFF) << 44) | 1, Ordering::Relaxed);
}

fn new_session_id() -> SessionId {
    NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed)
}

/// Binds `addr` with a listen backlog of `backlog` (tokio's `bind` uses 1024,
/// too few for a burst of connects).
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves the endpoints in `routes` on `listener` until `shutdown`
/// resolves, then closes every session gracefully.
pub async fn run(
    listener: TcpListener,
    routes: Arc<ArcSwap<Routes>>,
    config: Arc<ServerConfig>,
    tls: Option<Arc<tls::Tls>>,
    shutdown: impl Future<Output = ()>,
) {
    let reloader = tls.clone().map(|tls| tokio::spawn(tls.reload_on_hangup()));
    let shared = Arc::new(ServerState {
        tls,
        routes,
        peers: config.max_connections_per_ip.map(peers::PeerCounts::new),
        config,
        shutdown: CancellationToken::new(),
        live: live::LiveSessions::default(),
        tasks: TaskTracker::new(),
    });
    let permits = Arc::new(Semaphore::new(shared.config.max_connections));
    tokio::pin!(shutdown);
    loop {
        // At the connection cap, stop accepting (clients wait in the listen
        // backlog) rather than starve the connections already served.
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => permit.expect("never closed"),
        };
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    // Over its address's cap, a connection is served only
                    // to be told so (429).
                    let peer_permit = shared.peers.as_ref().map(|p| p.admit(peer.ip()));
                    let over_cap = matches!(peer_permit, Some(None));
                    let permit = http::ConnectionPermit::new(permit, peer_permit.flatten());
                    shared.tasks.spawn(accept(stream, peer, shared.clone(), permit, over_cap));
                }
                Err(err) => {
                    // Out of file descriptors (EMFILE) and the like: the
                    // connection stays in the backlog; back off, keep
                    // serving the sessions there are, retry.
                    if let Some(held_back) = ACCEPT_FAILED.allow() {
                        tracing::warn!(error = %err, held_back, "accept failed; retrying every {ACCEPT_RETRY:?}");
                    }
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
        }
    }
    drop(listener);
    tracing::info!(sessions = shared.tasks.len(), "shutting down: closing every session with 1001");
    shared.shutdown.cancel();
    shared.live.stop();
    shared.tasks.close();
    let timeout = shared.config.shutdown_timeout;
    if tokio::time::timeout(timeout, shared.tasks.wait()).await.is_err() {
        tracing::warn!(left = shared.tasks.len(), "connections still open after {timeout:?}; ending their sessions");
    }
    shared.routes.store(Arc::default());
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    tracing::info!("connections closed");
}

/// Serves one accepted socket: over TLS first if the server has it (a
/// client that does not finish the TLS handshake within the handshake
/// timeout is cut off).
async fn accept(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<ServerState>,
    permit: http::ConnectionPermit,
    over_cap: bool,
) {
    let Some(tls) = &shared.tls else {
        return http::serve(stream, peer, shared, permit, over_cap).await;
    };
    match tokio::time::timeout(shared.config.handshake_timeout, tls.acceptor().accept(stream)).await {
        Ok(Ok(stream)) => http::serve(stream, peer, shared, permit, over_cap).await,
        Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}
