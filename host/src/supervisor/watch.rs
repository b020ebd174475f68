//! Runs the [`Supervisor`] as a task: file changes under the plugin paths
//! (through `notify`, debounced so a component still being written is not
//! picked up half-way), SIGHUP, and explicit requests each trigger a reload.
//! With `--build`, a change to a plugin's sources runs its build command
//! first; the build's output then triggers the swap.

use super::{Rebuild, ReloadReport, Supervisor};
use notify::{RecursiveMode, Watcher};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long the disk must be quiet before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Controls a running supervisor task.
#[derive(Debug)]
pub struct SupervisorHandle {
    /// Reload requests, each with where its report goes.
    requests: mpsc::Sender<oneshot::Sender<ReloadReport>>,
    /// Cancelled to stop the task.
    stop: CancellationToken,
    /// The task; it hands the supervisor back when it stops.
    task: JoinHandle<Supervisor>,
}

impl SupervisorHandle {
    /// Reloads now (building every plugin first with `--build`) and returns
    /// what changed.
    pub async fn reload(&self) -> ReloadReport {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(tx).await.is_err() {
            return ReloadReport::default();
        }
        rx.await.unwrap_or_default()
    }

    /// Stops watching and hands the supervisor back (for its `shutdown`).
    pub async fn stop(self) -> Supervisor {
        self.stop.cancel();
        self.task.await.expect("supervisor task panicked")
    }
}

/// Starts the task. With `watch`, file changes under the supervisor's paths
/// trigger reloads; SIGHUP and [`SupervisorHandle::reload`] always do.
pub fn spawn(supervisor: Supervisor, watch: bool) -> anyhow::Result<SupervisorHandle> {
    let (changes_tx, changes) = mpsc::unbounded_channel::<notify::Event>();
    let watcher = if watch {
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && !event.kind.is_access()
            {
                let _ = changes_tx.send(event);
            }
        })?;
        for path in supervisor.paths() {
            watcher.watch(path, RecursiveMode::Recursive)?;
        }
        Some(watcher)
    } else {
        None
    };
    let (requests, rx) = mpsc::channel(4);
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(supervisor, changes, rx, stop.clone(), watcher));
    Ok(SupervisorHandle { requests, stop, task })
}

async fn run(
    mut supervisor: Supervisor,
    mut changes: mpsc::UnboundedReceiver<notify::Event>,
    mut requests: mpsc::Receiver<oneshot::Sender<ReloadReport>>,
    stop: CancellationToken,
    _watcher: Option<notify::RecommendedWatcher>,
) -> Supervisor {
    let mut hangup = hangup_signal();
    let all = if supervisor.build { Rebuild::All } else { Rebuild::None };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return supervisor,
            _ = recv_hangup(&mut hangup) => {
                tracing::info!("SIGHUP: reloading every plugin");
                supervisor.reload(all.clone()).await;
            }
            Some(reply) = requests.recv() => {
                let report = supervisor.reload(all.clone()).await;
                let _ = reply.send(report);
            }
            Some(first) = changes.recv() => {
                let mut changed: HashSet<PathBuf> = first.paths.into_iter().collect();
                // Debounce: wait until the disk has been quiet for a while.
                while let Ok(Some(event)) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {
                    changed.extend(event.paths);
                }
                let rebuild = supervisor.dirs_to_build(&changed);
                supervisor.reload(rebuild).await;
            }
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup()).ok()
    }
    #[cfg(not(unix))]
    None
}

async fn recv_hangup(hangup: &mut Hangup) {
    #[cfg(unix)]
    if let Some(signal) = hangup {
        signal.recv().await;
        return;
    }
    std::future::pending::<()>().await
}
