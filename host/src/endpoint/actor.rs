//! The endpoint's thread: owns the plugin's store, takes events in order and
//! calls the plugin synchronously.
//!
//! A trap (a panic, `unreachable`, a deadline hit, memory exhaustion) kills
//! the whole store, so the actor discards it, keeps the session registry and
//! starts a fresh instance from the precompiled plugin. Connected clients stay
//! connected. If a fresh instance cannot be made, the endpoint keeps its
//! registry up to date (so `on-disconnected` bookkeeping stays right) and
//! tries again on a later event.

use super::{Event, SessionId, Sessions};
use crate::config::ServerConfig;
use crate::runtime::{CompiledPlugin, HostState, PluginBindings, deadline_ticks};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use wasmtime::component::Resource;
use wasmtime::{Store, Trap};

/// How long a failed endpoint waits before it tries a fresh instance again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The plugin instance, or just the sessions while there is none.
enum Slot {
    Live(Box<Store<HostState>>, PluginBindings),
    Down { sessions: Sessions, since: Instant },
}

/// The actor's state.
pub(super) struct Actor {
    plugin: Arc<CompiledPlugin>,
    config: Arc<ServerConfig>,
    slot: Slot,
    rx: mpsc::Receiver<Event>,
    deadline: u64,
}

impl Actor {
    /// Makes the first instance; fails if it cannot be made.
    pub(super) fn new(
        plugin: Arc<CompiledPlugin>,
        config: Arc<ServerConfig>,
        rx: mpsc::Receiver<Event>,
    ) -> anyhow::Result<Self> {
        let (store, bindings) = plugin
            .instantiate(Sessions::default(), &config)
            .map_err(|(e, _)| anyhow::anyhow!("plugin `{}`: instantiation failed: {e:#}", plugin.name))?;
        Ok(Self {
            deadline: deadline_ticks(config.call_deadline),
            plugin,
            config,
            slot: Slot::Live(Box::new(store), bindings),
            rx,
        })
    }

    /// Handles events until told to shut down or every sender is gone.
    pub(super) fn run(mut self) {
        while let Some(event) = self.rx.blocking_recv() {
            if let Event::Shutdown = event {
                break;
            }
            self.handle(event);
        }
        self.end_all();
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Connected { id, path, query, out } => {
                let rep = self.sessions().insert(id, path, query, out);
                self.call("on-connected", id, |p, s| {
                    p.wasock_plugin_handler()
                        .call_on_connected(s, Resource::new_own(rep))
                });
            }
            Event::Text { id, text } => {
                if let Some(rep) = self.sessions().deliverable(id) {
                    self.call("handle-text", id, |p, s| {
                        p.wasock_plugin_handler()
                            .call_handle_text(s, Resource::new_borrow(rep), &text)
                    });
                }
            }
            Event::Binary { id, data } => {
                if let Some(rep) = self.sessions().deliverable(id) {
                    self.call("handle-binary", id, |p, s| {
                        p.wasock_plugin_handler()
                            .call_handle_binary(s, Resource::new_borrow(rep), &data)
                    });
                }
            }
            Event::Pong { id, data } => {
                if let Some(rep) = self.sessions().deliverable(id) {
                    self.call("on-pong", id, |p, s| {
                        p.wasock_plugin_handler()
                            .call_on_pong(s, Resource::new_borrow(rep), &data)
                    });
                }
            }
            Event::Disconnected { id } => self.disconnect(id),
            Event::Shutdown => {}
        }
    }

    /// Calls `on-disconnected` for a live session, then forgets it.
    fn disconnect(&mut self, id: SessionId) {
        if let Some(rep) = self.sessions().borrow_rep(id) {
            self.call("on-disconnected", id, |p, s| {
                p.wasock_plugin_handler()
                    .call_on_disconnected(s, Resource::new_borrow(rep))
            });
            self.sessions().remove(id);
        }
    }

    /// Server shutdown: every session still registered ends here.
    fn end_all(&mut self) {
        for id in self.sessions().ids() {
            self.disconnect(id);
        }
    }

    fn sessions(&mut self) -> &mut Sessions {
        match &mut self.slot {
            Slot::Live(store, _) => &mut store.data_mut().sessions,
            Slot::Down { sessions, .. } => sessions,
        }
    }

    /// Calls into the plugin under the call deadline; on a trap, replaces
    /// the instance.
    fn call(
        &mut self,
        handler: &'static str,
        session: SessionId,
        f: impl FnOnce(&PluginBindings, &mut Store<HostState>) -> wasmtime::Result<()>,
    ) {
        if let Slot::Down { since, .. } = &self.slot {
            if since.elapsed() < RETRY_AFTER {
                return;
            }
            self.restart();
        }
        let Slot::Live(store, bindings) = &mut self.slot else {
            return;
        };
        store.set_epoch_deadline(self.deadline);
        if let Err(err) = f(bindings, store) {
            let cause = match err.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => format!("exceeded its {:?} call deadline", self.config.call_deadline),
                Some(trap) => format!("trapped: {trap}"),
                None => "failed".to_owned(),
            };
            tracing::error!(
                plugin = %self.plugin.name, handler, session,
                error = format!("{err:#}"),
                "plugin {cause}; discarding the instance and starting a fresh one"
            );
            self.slot = Slot::Down {
                sessions: self.take_sessions(),
                since: Instant::now() - RETRY_AFTER,
            };
            self.restart();
        }
    }

    fn take_sessions(&mut self) -> Sessions {
        let placeholder = Slot::Down {
            sessions: Sessions::default(),
            since: Instant::now(),
        };
        match std::mem::replace(&mut self.slot, placeholder) {
            Slot::Live(store, _) => store.into_data().into_sessions(),
            Slot::Down { sessions, .. } => sessions,
        }
    }

    /// Replaces a dead instance with a fresh one from the compiled plugin.
    fn restart(&mut self) {
        let mut sessions = self.take_sessions();
        sessions.reset_handles();
        let live = sessions.len();
        match self.plugin.instantiate(sessions, &self.config) {
            Ok((store, bindings)) => {
                tracing::info!(plugin = %self.plugin.name, sessions = live, "fresh plugin instance started");
                self.slot = Slot::Live(Box::new(store), bindings);
            }
            Err((err, sessions)) => {
                tracing::error!(plugin = %self.plugin.name, error = format!("{err:#}"), "cannot start a fresh plugin instance; retrying later");
                self.slot = Slot::Down {
                    sessions,
                    since: Instant::now(),
                };
            }
        }
    }
}
