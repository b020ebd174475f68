//! What the server counts, for `GET /metrics` on the admin listener:
//! Prometheus families from `prometheus-client`, encoded in its text
//! format (no hand-written exposition).
//!
//! Every family is labelled by `route`. An endpoint resolves its labels once
//! ([`Metrics::route`]) into a [`RouteMetrics`] of plain counters, so that
//! counting on the message path is an atomic add (and, per handler call,
//! one histogram observation), never a label lookup. Rare events (closes by
//! code, traps by cause, swaps by outcome, refusals by status) look their
//! label up when they happen.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteCode {
    route: String,
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteHandler {
    route: String,
    handler: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteCause {
    route: String,
    cause: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOutcome {
    route: String,
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Handler call durations: 10 us to ~10 s.
fn call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-5, 4.0, 11))
}

/// The handlers whose calls are timed, in [`RouteMetrics::calls`] order.
pub const HANDLERS: [&str; 10] = [
    "on-upgrade",
    "on-connected",
    "handle-text",
    "handle-binary",
    "on-pong",
    "on-drain",
    "on-disconnected",
    "restore",
    "snapshot",
    "other",
];

/// Every family, shared by the registry and the endpoints.
#[derive(Debug)]
struct Families {
    open: Family<Route, Gauge>,
    accepted: Family<Route, Counter>,
    refused: Family<RouteStatus, Counter>,
    upgrades_rejected: Family<RouteStatus, Counter>,
    received: Family<Route, Counter>,
    batched: Family<Route, Counter>,
    received_bytes: Family<Route, Counter>,
    sent: Family<Route, Counter>,
    sent_bytes: Family<Route, Counter>,
    writes_refused: Family<Route, Counter>,
    closes: Family<RouteCode, Counter>,
    traps: Family<RouteCause, Counter>,
    backoffs: Family<Route, Counter>,
    swaps: Family<RouteOutcome, Counter>,
    calls: HistogramFamily<RouteHandler>,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    families: Arc<Families>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered, all empty.
    pub fn new() -> Self {
        let families = Families {
            open: Family::default(),
            accepted: Family::default(),
            refused: Family::default(),
            upgrades_rejected: Family::default(),
            received: Family::default(),
            batched: Family::default(),
            received_bytes: Family::default(),
            sent: Family::default(),
            sent_bytes: Family::default(),
            writes_refused: Family::default(),
            closes: Family::default(),
            traps: Family::default(),
            backoffs: Family::default(),
            swaps: Family::default(),
            calls: Family::new_with_constructor(call_histogram),
        };
        let mut registry = Registry::with_prefix("wasock");
        let f = &families;
        registry.register("connections_open", "Open WebSocket sessions", f.open.clone());
        registry.register("connections_accepted", "WebSocket upgrades completed", f.accepted.clone());
        registry.register("connections_refused", "Upgrades refused by the server, by HTTP status", f.refused.clone());
        registry.register(
            "upgrades_rejected",
            "Upgrades the plugin's hook rejected, by status",
            f.upgrades_rejected.clone(),
        );
        registry.register("messages_received", "Client messages handed to the plugin", f.received.clone());
        registry.register(
            "messages_batched",
            "Client messages handed to the plugin several in one call",
            f.batched.clone(),
        );
        registry.register_with_unit(
            "received",
            "Payload bytes of client messages",
            Unit::Bytes,
            f.received_bytes.clone(),
        );
        registry.register("messages_sent", "Messages written to clients", f.sent.clone());
        registry.register_with_unit("sent", "Payload bytes written to clients", Unit::Bytes, f.sent_bytes.clone());
        registry.register("writes_refused", "Plugin writes refused by a full outbound queue", f.writes_refused.clone());
        registry.register("closes", "Sessions ended, by close code (1006: without a close frame)", f.closes.clone());
        registry.register("traps", "Plugin instances lost, by cause (trap, deadline, memory)", f.traps.clone());
        registry.register("backoffs", "Times an endpoint backed off after repeated traps", f.backoffs.clone());
        registry.register("swaps", "New versions put in service, by outcome (ok, failed)", f.swaps.clone());
        registry.register_with_unit("handler_call", "Plugin handler calls", Unit::Seconds, f.calls.clone());
        Self { registry, families: Arc::new(families) }
    }

    /// The counters of one route, resolved once.
    pub fn route(&self, route: &str) -> RouteMetrics {
        let f = &self.families;
        let label = Route { route: route.to_owned() };
        let calls = HANDLERS.map(|handler| {
            let labels = RouteHandler { route: route.to_owned(), handler };
            f.calls.get_or_create_owned(&labels)
        });
        RouteMetrics {
            route: route.into(),
            families: f.clone(),
            open: f.open.get_or_create_owned(&label),
            accepted: f.accepted.get_or_create_owned(&label),
            received: f.received.get_or_create_owned(&label),
            batched: f.batched.get_or_create_owned(&label),
            received_bytes: f.received_bytes.get_or_create_owned(&label),
            sent: f.sent.get_or_create_owned(&label),
            sent_bytes: f.sent_bytes.get_or_create_owned(&label),
            writes_refused: f.writes_refused.get_or_create_owned(&label),
            backoffs: f.backoffs.get_or_create_owned(&label),
            calls: Arc::new(calls),
        }
    }

    /// The text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One route's counters.
#[derive(Debug, Clone)]
pub struct RouteMetrics {
    route: Arc<str>,
    families: Arc<Families>,
    /// Open sessions.
    pub open: Gauge,
    /// Upgrades completed.
    pub accepted: Counter,
    /// Client messages handed to the plugin.
    pub received: Counter,
    /// Of those, the ones handed over in batches.
    pub batched: Counter,
    /// Their payload bytes.
    pub received_bytes: Counter,
    /// Messages written to clients.
    pub sent: Counter,
    /// Their payload bytes.
    pub sent_bytes: Counter,
    /// Writes refused by a full queue.
    pub writes_refused: Counter,
    /// Back-offs.
    pub backoffs: Counter,
    /// Call durations, by handler ([`HANDLERS`] order).
    calls: Arc<[Histogram; HANDLERS.len()]>,
}

impl RouteMetrics {
    /// The histogram of `handler`'s calls.
    pub fn call(&self, handler: &str) -> &Histogram {
        let at = HANDLERS.iter().position(|h| *h == handler).unwrap_or(HANDLERS.len() - 1);
        &self.calls[at]
    }

    fn label(&self) -> String {
        self.route.to_string()
    }

    /// An upgrade the server refused with `status`.
    pub fn refused(&self, status: u16) {
        self.families.refused.get_or_create(&RouteStatus { route: self.label(), status }).inc();
    }

    /// An upgrade the plugin's hook rejected with `status`.
    pub fn upgrade_rejected(&self, status: u16) {
        self.families.upgrades_rejected.get_or_create(&RouteStatus { route: self.label(), status }).inc();
    }

    /// A session ended with close `code`.
    pub fn closed(&self, code: u16) {
        self.families.closes.get_or_create(&RouteCode { route: self.label(), code }).inc();
    }

    /// An instance was lost to `cause` (`trap`, `deadline`, `memory`).
    pub fn trapped(&self, cause: &'static str) {
        self.families.traps.get_or_create(&RouteCause { route: self.label(), cause }).inc();
    }

    /// A new version was put in service, or failed to be (`ok`, `failed`).
    pub fn swapped(&self, outcome: &'static str) {
        self.families.swaps.get_or_create(&RouteOutcome { route: self.label(), outcome }).inc();
    }
}
