//! Many nodes as one: `wasock serve --cluster nats://HOST:PORT` joins
//! servers through a NATS server, so that each route behaves as one
//! endpoint for topics and broadcasts.
//!
//! One task per server holds the NATS connection (`async-nats`, which
//! reconnects by itself). It takes the fan-outs the endpoints' plugins make
//! from a bounded queue ([`Uplink`]; an endpoint never waits for it) and
//! publishes them; it delivers the other nodes' fan-outs to every instance
//! of the route's endpoint; and every [`PRESENCE_EVERY`] it reports this
//! node's topic members of each route when they changed (and at least every
//! [`RESEND_EVERY`]), which the other nodes add to topic sizes and member
//! lists until the report is [`PRESENCE_EXPIRES`] old.
//!
//! Delivery across nodes is at most once: a fan-out made while NATS is away,
//! or that the queue cannot take, reaches this node's members only. One
//! publisher's fan-outs reach every node in order (one connection, one
//! subject per route). A node's own delivery never waits for NATS.
//!
//! - [`wire`]: the subjects and what travels on them.

pub mod wire;

use crate::endpoint::EndpointHandle;
use crate::log_limit::LogLimit;
use crate::server::Routes;
use crate::session::{Delivery, NodeId, Outgoing, PRESENCE_EXPIRES, Target, Uplink};
use arc_swap::ArcSwap;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wire::{Presence, Subject};

/// How often this node looks for changed memberships to report.
pub const PRESENCE_EVERY: Duration = Duration::from_millis(200);

/// Longest between two reports of a route's members (a heartbeat).
pub const RESEND_EVERY: Duration = Duration::from_millis(400);

/// Fan-outs waiting for NATS, at most (then they reach this node only).
const QUEUE: usize = 16 << 10;

/// How long one publish may wait for the connection before it is dropped.
const PUBLISH_WAIT: Duration = Duration::from_secs(1);

const _: () = assert!(RESEND_EVERY.as_millis() * 2 <= PRESENCE_EXPIRES.as_millis());

static DROPPED: LogLimit = LogLimit::new(Duration::from_secs(5));
static MALFORMED: LogLimit = LogLimit::new(Duration::from_secs(5));

/// This server's membership of a cluster.
#[derive(Debug)]
pub struct Cluster {
    node: NodeId,
    uplink: Uplink,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Why the cluster cannot be joined.
#[derive(Debug, thiserror::Error)]
#[error("cluster address {url:?}: {reason}")]
pub struct ClusterError {
    url: String,
    reason: String,
}

impl Cluster {
    /// Joins the cluster of the NATS server at `url` (connecting in the
    /// background, and again whenever the connection is lost), serving the
    /// endpoints of `routes`.
    pub async fn join(url: &str, routes: Arc<ArcSwap<Routes>>) -> Result<Self, ClusterError> {
        let error = |reason: String| ClusterError { url: url.to_owned(), reason };
        let node = new_node_id();
        crate::server::prefix_session_ids(node);
        let client = async_nats::ConnectOptions::new()
            .name(format!("wasock-{node:016x}"))
            .retry_on_initial_connect()
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("cluster: connected to NATS"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("cluster: lost NATS; serving this node's sessions only until it is back");
                    }
                    other => tracing::warn!("cluster: {other}"),
                }
            })
            .connect(url)
            .await
            .map_err(|e| error(e.to_string()))?;
        let subscriber = client.subscribe(wire::SUBJECTS).await.map_err(|e| error(e.to_string()))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let stop = CancellationToken::new();
        let link = Link { node, client, routes, sent: HashMap::new() };
        let task = tokio::spawn(link.run(rx, subscriber, stop.clone()));
        tracing::info!(node = format!("{node:016x}"), "cluster: joining through {url}");
        Ok(Self { node, uplink: Uplink::new(tx), stop, task })
    }

    /// Where endpoints hand their fan-outs for the other nodes.
    pub fn uplink(&self) -> Uplink {
        self.uplink.clone()
    }

    /// This node's id (the high bits of its session ids).
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Leaves the cluster: stops publishing and delivering.
    pub async fn leave(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// A random node id: the process's hasher keys are random.
fn new_node_id() -> NodeId {
    use std::hash::{BuildHasher, RandomState};
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    RandomState::new().hash_one((std::process::id(), nanos)) | 1
}

/// The connection task's state.
struct Link {
    node: NodeId,
    client: async_nats::Client,
    routes: Arc<ArcSwap<Routes>>,
    /// Per route: the membership version last reported, and when.
    sent: HashMap<String, (u64, Instant)>,
}

impl Link {
    async fn run(
        mut self,
        mut outgoing: mpsc::Receiver<Outgoing>,
        mut incoming: async_nats::Subscriber,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(PRESENCE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                Some(out) = outgoing.recv() => self.publish_fan_out(&out).await,
                Some(msg) = incoming.next() => self.receive(&msg),
                _ = tick.tick() => self.report_presence().await,
            }
        }
    }

    async fn publish(&self, subject: String, payload: bytes::Bytes) {
        let sent = tokio::time::timeout(PUBLISH_WAIT, self.client.publish(subject, payload)).await;
        if !matches!(sent, Ok(Ok(())))
            && let Some(held_back) = DROPPED.allow()
        {
            tracing::warn!(held_back, "cluster: NATS did not take a message; it reached this node only");
        }
    }

    async fn publish_fan_out(&self, out: &Outgoing) {
        if let Some(payload) = wire::encode_fan_out(self.node, out.topic.as_deref(), &out.msg) {
            self.publish(wire::fan_out_subject(&out.route), payload).await;
        }
    }

    fn endpoint(&self, route: &str) -> Option<EndpointHandle> {
        self.routes.load().get(route).map(|r| r.endpoint.clone())
    }

    fn receive(&self, msg: &async_nats::Message) {
        match wire::parse_subject(msg.subject.as_str()) {
            Some(Subject::FanOut(route)) => match wire::decode_fan_out(&msg.payload) {
                Some(fan_out) if fan_out.node == self.node => {}
                Some(fan_out) => {
                    let Some(endpoint) = self.endpoint(&route) else { return };
                    let target = fan_out.topic.map_or(Target::All, |t| Target::Topic(t.into()));
                    let delivery = Delivery { target, msg: fan_out.msg, except: None };
                    if !endpoint.deliver_everywhere(&delivery)
                        && let Some(held_back) = DROPPED.allow()
                    {
                        tracing::warn!(held_back, %route, "cluster: an instance's queue is full; a fan-out from another node skipped it");
                    }
                }
                None => malformed(msg.subject.as_str()),
            },
            Some(Subject::Presence(route)) => match serde_json::from_slice::<Presence>(&msg.payload) {
                Ok(presence) if presence.node == self.node => {}
                Ok(presence) => {
                    if let Some(endpoint) = self.endpoint(&route) {
                        endpoint.directory().remote().report(presence.node, presence.topics, Instant::now());
                    }
                }
                Err(_) => malformed(msg.subject.as_str()),
            },
            None => malformed(msg.subject.as_str()),
        }
    }

    /// Reports each route's members where they changed or are due again.
    async fn report_presence(&mut self) {
        let now = Instant::now();
        let routes = self.routes.load_full();
        self.sent.retain(|route, _| routes.contains_key(route));
        for (route, served) in routes.iter() {
            let directory = served.endpoint.directory();
            let version = directory.version();
            let due =
                self.sent.get(route).is_none_or(|&(v, at)| v != version || now.duration_since(at) >= RESEND_EVERY);
            if !due {
                continue;
            }
            let presence = Presence { node: self.node, topics: directory.local_members_by_topic() };
            match serde_json::to_vec(&presence) {
                Ok(json) => self.publish(wire::presence_subject(route), json.into()).await,
                Err(err) => tracing::error!(%err, "cluster: cannot encode a presence report"),
            }
            self.sent.insert(route.clone(), (version, now));
        }
    }
}

fn malformed(subject: &str) {
    if let Some(held_back) = MALFORMED.allow() {
        tracing::warn!(held_back, subject, "cluster: ignored a message this wasock cannot read");
    }
}
