//! The HTTP side of each accepted socket: hyper serves HTTP/1, this module
//! routes by path and hands WebSocket upgrades to [`super::connection`] and
//! plain requests for a plugin's static files to [`super::files`].
//!
//! A known route with a valid upgrade answers 101; a known route without an
//! upgrade serves its static files (its `index.html`) if the plugin has
//! some, else answers 426 (Upgrade Required); a path below a route with
//! static files is one of them; a bad upgrade (wrong version, no key)
//! answers 400; an endpoint at its connection cap or backing off after
//! crashes answers 503; anything else 404. tungstenite validates the
//! handshake headers and computes the accept key. A client that does not
//! finish its request within the handshake timeout is cut off.
//!
//! A plugin with an upgrade hook decides before the 101: its rejection is
//! the response (status, headers, body); its acceptance may select one of
//! the offered subprotocols and add headers. No session exists until the
//! handshake is done, so a rejected or abandoned upgrade leaves nothing.
//!
//! After the 101, a plain TCP socket is taken back from hyper and the
//! session runs on the thread of the endpoint instance it is placed on
//! (see [`crate::endpoint`]); a TLS session runs here.

use super::io::{ReadHint, Socket};
use super::peers::PeerPermit;
use super::wire;
use super::{Route, ServerState, connection, files};
use crate::endpoint::EndpointHandle;
use crate::log_limit::LogLimit;
use crate::session::{Header, SessionId, UpgradeAccept, UpgradeDecision, UpgradeReject, UpgradeRequest};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sockudo_ws::deflate::DeflateConfig;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite::handshake::server::create_response_with_body;

/// A response body: whole (answers, handshakes) or streamed (files).
pub(super) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// `bytes` as a whole body.
pub(super) fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

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
pub(super) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<ServerState>,
    permit: ConnectionPermit,
    over_cap: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let shared = shared.clone();
        service_fn(move |req| {
            let (shared, permit) = (shared.clone(), permit.clone());
            async move {
                let response = if over_cap { too_many(peer) } else { route(req, peer, shared, permit).await };
                Ok::<_, Infallible>(response)
            }
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

async fn route(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<ServerState>,
    permit: ConnectionPermit,
) -> Response<Body> {
    let path = req.uri().path();
    let routes = shared.routes.load();
    let Some(Route { endpoint, files, deflate }) = routes.get(path).cloned() else {
        return match below_static_route(&routes, path) {
            Some((files, rest)) => files::serve(req.method(), req.headers(), path, rest, files).await,
            None => plain(StatusCode::NOT_FOUND, "no WebSocket endpoint at this path\n"),
        };
    };
    drop(routes);
    let wants_websocket =
        req.headers().get(UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_websocket {
        if let Some(files) = files {
            return files::serve(req.method(), req.headers(), path, "", files).await;
        }
        let mut resp =
            plain(StatusCode::UPGRADE_REQUIRED, "this endpoint speaks WebSocket: connect with a WebSocket client\n");
        resp.headers_mut().insert(UPGRADE, HeaderValue::from_static("websocket"));
        return resp;
    }
    let mut response = match create_response_with_body(&req, Body::default) {
        Ok(response) => response,
        Err(err) => {
            endpoint.metrics().refused(400);
            return plain(StatusCode::BAD_REQUEST, &format!("bad WebSocket handshake: {err}\n"));
        }
    };
    let admitted = match endpoint.admit() {
        Ok(admitted) => admitted,
        Err(refusal) => {
            if let Some(held_back) = REFUSED.allow() {
                tracing::info!(plugin = %endpoint.name(), %peer, held_back, "refused with 503: {refusal}");
            }
            endpoint.metrics().refused(503);
            return plain(StatusCode::SERVICE_UNAVAILABLE, &format!("{refusal}\n"));
        }
    };
    let path = path.to_owned();
    let query = req.uri().query().map(str::to_owned);
    let accept = if endpoint.has_upgrade_hook() {
        let request = upgrade_request(&req, &path, query.clone(), peer);
        // The decision waits behind the endpoint's other events; a client
        // is not kept longer than its handshake may take.
        match tokio::time::timeout(shared.config.handshake_timeout, endpoint.upgrade(request)).await {
            Ok(UpgradeDecision::Accept(accept)) => accept,
            Ok(UpgradeDecision::Reject(reject)) => {
                endpoint.metrics().upgrade_rejected(reject.status);
                return rejected(&reject);
            }
            Err(_) => {
                endpoint.metrics().refused(503);
                return plain(StatusCode::SERVICE_UNAVAILABLE, "endpoint too busy to decide the upgrade\n");
            }
        }
    } else {
        UpgradeAccept::default()
    };
    if let Some(protocol) = &accept.protocol {
        // Checked by the endpoint: one of the offered, so a valid value.
        if let Ok(value) = HeaderValue::from_str(protocol) {
            response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
    }
    add_headers(&mut response, &accept.headers);
    // Compressed only if the client offers it and the route has room for
    // one more compressed session (`[deflate] max-sessions`).
    let deflate = deflate.and_then(|settings| {
        let offers = extension_offers(&req)?;
        let (answer, codec) = wire::negotiate(&offers, &settings)?;
        let answer = HeaderValue::from_str(&answer).ok()?;
        let permit = endpoint.compress(settings.max_sessions)?;
        response.headers_mut().insert(SEC_WEBSOCKET_EXTENSIONS, answer);
        Some((codec, permit))
    });
    let upgrade = hyper::upgrade::on(&mut req);
    // The session's instance: the one serving its first topic (a room).
    let endpoint = endpoint.place(accept.topics.first().map(String::as_str));
    let id = super::new_session_id();
    let tasks = shared.tasks.clone();
    tasks.spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => return tracing::debug!(%peer, error = %err, "upgrade failed"),
        };
        let (deflate, compressing) = deflate.unzip();
        let held = connection::Held { _admitted: admitted, _permit: permit, _compressing: compressing };
        let session = Upgrade { endpoint, id, path, query, peer, accept, deflate, held };
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            // A plain TCP socket moves to its instance's thread: registered
            // with that thread's runtime, and served there.
            Ok(parts) => {
                let endpoint = session.endpoint.clone();
                let tcp = parts.io.into_inner().into_std().and_then(|socket| {
                    let _there = endpoint.enter();
                    TcpStream::from_std(socket)
                });
                match tcp {
                    Ok(tcp) => {
                        let accepted = session.framed(Socket::tcp(tcp, parts.read_buf), &shared);
                        endpoint.spawn(shared.tasks.clone().track_future(connection::run(accepted, shared)));
                    }
                    Err(err) => tracing::debug!(%peer, error = %err, "cannot move the socket"),
                }
            }
            // TLS: served here.
            Err(upgraded) => {
                let accepted = session.framed(Socket::Upgraded(TokioIo::new(upgraded)), &shared);
                connection::run(accepted, shared).await;
            }
        }
    });
    response
}

/// A session whose handshake is answered, before it runs.
struct Upgrade {
    endpoint: EndpointHandle,
    id: SessionId,
    path: String,
    query: Option<String>,
    peer: SocketAddr,
    accept: UpgradeAccept,
    deflate: Option<DeflateConfig>,
    held: connection::Held,
}

impl Upgrade {
    /// The session over `socket`, framed.
    fn framed(self, socket: Socket, shared: &ServerState) -> connection::Accepted {
        let Self { endpoint, id, path, query, peer, accept, deflate, held } = self;
        let max_message = endpoint.limits().max_message_bytes;
        let io = ReadHint::new(socket);
        let readable = io.readable();
        let ws = wire::open(io, max_message, shared.config.write_buffer_size, deflate);
        connection::Accepted { ws, readable, endpoint, id, path, query, peer, accept, held }
    }
}

/// The route with static files that `path` lies below (the longest such
/// prefix ending at a `/`), and the rest of the path.
fn below_static_route<'a>(
    routes: &super::Routes,
    path: &'a str,
) -> Option<(Arc<crate::manifest::StaticFiles>, &'a str)> {
    let mut end = path.len();
    while let Some(slash) = path[..end].rfind('/') {
        let prefix = if slash == 0 { "/" } else { &path[..slash] };
        if let Some(files) = routes.get(prefix).and_then(|r| r.files.clone()) {
            return Some((files, &path[slash..]));
        }
        end = slash;
    }
    None
}

/// The client's `Sec-WebSocket-Extensions` offers, all headers joined.
fn extension_offers(req: &Request<Incoming>) -> Option<String> {
    let offers: Vec<&str> =
        req.headers().get_all(SEC_WEBSOCKET_EXTENSIONS).iter().filter_map(|v| v.to_str().ok()).collect();
    (!offers.is_empty()).then(|| offers.join(", "))
}

/// What the upgrade hook is told about `req`.
fn upgrade_request(req: &Request<Incoming>, path: &str, query: Option<String>, peer: SocketAddr) -> UpgradeRequest {
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let protocols = req
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    UpgradeRequest { path: path.to_owned(), query, headers, remote: peer, protocols }
}

/// The plugin's rejection as the response (checked by the endpoint).
fn rejected(reject: &UpgradeReject) -> Response<Body> {
    let status = StatusCode::from_u16(reject.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = plain(status, &reject.body);
    add_headers(&mut resp, &reject.headers);
    if !resp.headers().contains_key(CONTENT_TYPE) {
        resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    resp
}

/// Appends `headers` (checked by the endpoint; any that still fail to
/// parse are left out).
fn add_headers(resp: &mut Response<Body>, headers: &[Header]) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            resp.headers_mut().append(name, value);
        }
    }
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

/// A short text answer.
pub(super) fn plain(status: StatusCode, body: &str) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::copy_from_slice(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}
