//! The admin listener (`--admin ADDR`, off unless given): what a load
//! balancer and an operator ask a server, on an address of its own.
//!
//! - `GET /healthz`: 200 while the process serves.
//! - `GET /readyz`: 200 once every plugin given has been loaded or reported
//!   broken; 503 before that and from the moment the server starts shutting
//!   down (before any session is closed), so a load balancer stops sending
//!   clients first.
//! - `GET /status`: JSON, each endpoint's plugin, route, version, contract,
//!   state (`serving` / `backed-off`), sessions, instances and last swap.
//! - `GET /metrics`: the Prometheus text exposition ([`crate::metrics`]).

use crate::metrics::Metrics;
use crate::supervisor::Served;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::UNIX_EPOCH;
use tokio::net::TcpListener;

/// What the admin listener reports.
#[derive(Debug, Default)]
pub struct AdminState {
    /// What is served (the supervisor republishes it after every reload).
    served: Arc<ArcSwap<Vec<Served>>>,
    /// Every plugin given has been loaded or reported broken.
    loaded: AtomicBool,
    /// The server has started shutting down.
    stopping: AtomicBool,
    /// What the server counts.
    metrics: Arc<Metrics>,
}

impl AdminState {
    /// A state reporting `served`; not ready until [`set_loaded`](Self::set_loaded).
    pub fn new(served: Arc<ArcSwap<Vec<Served>>>, metrics: Arc<Metrics>) -> Self {
        Self { served, loaded: AtomicBool::new(false), stopping: AtomicBool::new(false), metrics }
    }

    /// The initial load is done.
    pub fn set_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }

    /// The server is shutting down: not ready any more.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    fn ready(&self) -> Result<(), &'static str> {
        if self.stopping.load(Ordering::Acquire) {
            Err("shutting down\n")
        } else if !self.loaded.load(Ordering::Acquire) {
            Err("loading plugins\n")
        } else {
            Ok(())
        }
    }

    /// The `/status` document.
    fn status(&self) -> serde_json::Value {
        let endpoints: Vec<_> = self
            .served
            .load()
            .iter()
            .map(|s| {
                serde_json::json!({
                    "plugin": s.name,
                    "route": s.route,
                    "version": s.version,
                    "contract": s.contract.to_string(),
                    "state": if s.endpoint.backed_off() { "backed-off" } else { "serving" },
                    "sessions": s.endpoint.sessions(),
                    "instances": s.endpoint.instances(),
                    "last_swap": s.last_swap.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                })
            })
            .collect();
        serde_json::json!({ "ready": self.ready().is_ok(), "endpoints": endpoints })
    }
}

/// Serves the admin routes on `listener` until `shutdown` resolves.
pub async fn run(listener: TcpListener, state: Arc<AdminState>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let response = answer(&req, &state);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn answer(req: &Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match state.ready() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, why),
        },
        "/status" => {
            let mut resp = Response::new(Full::new(Bytes::from(state.status().to_string())));
            resp.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("valid"));
            resp
        }
        "/metrics" => {
            let mut resp = Response::new(Full::new(Bytes::from(state.metrics.encode())));
            let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            resp.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(kind));
            resp
        }
        _ => text(StatusCode::NOT_FOUND, "admin routes: /healthz /readyz /status /metrics\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}
