//! The HTTP side of each accepted socket: hyper serves HTTP/1, this module
//! routes by exact path and hands WebSocket upgrades to [`super::connection`].
//!
//! A known route with a valid upgrade answers 101; a known route without an
//! upgrade answers 426 (Upgrade Required); a bad upgrade (wrong version, no
//! key) answers 400; an endpoint at its connection cap or backing off after
//! crashes answers 503; anything else 404. tungstenite validates the
//! handshake headers and computes the accept key. A client that does not
//! finish its request within the handshake timeout is cut off.

use super::io::ReadHint;
use super::peers::PeerPermit;
use super::{ServerState, connection};
use crate::log_limit::LogLimit;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, UPGRADE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::create_response_with_body;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

type Body = Full<Bytes>;

/// Upgrades refused with 503 are logged at most once a second.
static REFUSED: LogLimit = LogLimit::new(std::time::Duration::from_secs(1));

/// Connections refused with 429 are logged at most once a second.
static OVER_CAP: LogLimit = LogLimit::new(std::time::Duration::from_secs(1));

/// One of the server's connection permits (and its address's, under a
/// per-address cap); released when the socket's last user (the HTTP
/// connection, or the WebSocket session it upgraded to) ends.
#[derive(Debug, Clone)]
pub(super) struct ConnectionPermit {
    /// Held for what it releases when dropped.
    _held: Arc<(OwnedSemaphorePermit, Option<PeerPermit>)>,
}

impl ConnectionPermit {
    /// Holds `server` and `peer` together.
    pub(super) fn new(server: OwnedSemaphorePermit, peer: Option<PeerPermit>) -> Self {
        Self { _held: Arc::new((server, peer)) }
    }
}

/// Serves one accepted socket until it closes, upgrades, or the server shuts
/// down (then in-flight requests finish and the socket closes).
///
/// A connection `over_cap` (its address holds `max-connections-per-ip`
/// already) gets 429 to every request, and is closed after it.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<ServerState>,
    permit: ConnectionPermit,
    over_cap: bool,
) {
    let service = {
        let shared = shared.clone();
        service_fn(move |req| {
            let (shared, permit) = (shared.clone(), permit.clone());
            let response = if over_cap { too_many(peer) } else { route(req, peer, shared, permit) };
            async move { Ok::<_, Infallible>(response) }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.handshake_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = shared.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, error = %err, "http connection error");
    }
}

fn route(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<ServerState>,
    permit: ConnectionPermit,
) -> Response<Body> {
    let path = req.uri().path();
    let Some(endpoint) = shared.routes.load().get(path).cloned() else {
        return plain(StatusCode::NOT_FOUND, "no WebSocket endpoint at this path\n");
    };
    let wants_websocket =
        req.headers().get(UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_websocket {
        let mut resp =
            plain(StatusCode::UPGRADE_REQUIRED, "this endpoint speaks WebSocket: connect with a WebSocket client\n");
        resp.headers_mut().insert(UPGRADE, HeaderValue::from_static("websocket"));
        return resp;
    }
    let response = match create_response_with_body(&req, Body::default) {
        Ok(response) => response,
        Err(err) => {
            return plain(StatusCode::BAD_REQUEST, &format!("bad WebSocket handshake: {err}\n"));
        }
    };
    let admitted = match endpoint.admit() {
        Ok(admitted) => admitted,
        Err(refusal) => {
            if let Some(held_back) = REFUSED.allow() {
                tracing::info!(plugin = %endpoint.name(), %peer, held_back, "refused with 503: {refusal}");
            }
            return plain(StatusCode::SERVICE_UNAVAILABLE, &format!("{refusal}\n"));
        }
    };
    let path = path.to_owned();
    let query = req.uri().query().map(str::to_owned);
    let upgrade = hyper::upgrade::on(&mut req);
    let config = ws_config(&shared.config, endpoint.limits().max_message_bytes);
    let id = super::new_session_id();
    let tasks = shared.tasks.clone();
    tasks.spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let io = ReadHint::new(TokioIo::new(upgraded));
                let readable = io.readable();
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                let session = connection::Accepted { ws, readable, endpoint, id, path, query, peer };
                connection::run(session, shared).await;
                drop((admitted, permit));
            }
            Err(err) => tracing::debug!(%peer, error = %err, "upgrade failed"),
        }
    });
    response
}

fn ws_config(config: &crate::ServerConfig, max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size)
        .write_buffer_size(config.write_buffer_size)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// The answer to a client address over `max-connections-per-ip`.
fn too_many(peer: SocketAddr) -> Response<Body> {
    if let Some(held_back) = OVER_CAP.allow() {
        tracing::info!(%peer, held_back, "refused with 429: too many connections from this address");
    }
    let mut resp = plain(StatusCode::TOO_MANY_REQUESTS, "too many connections from your address\n");
    resp.headers_mut().insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn plain(status: StatusCode, body: &str) -> Response<Body> {
    let mut resp = Response::new(Body::new(Bytes::copy_from_slice(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}
