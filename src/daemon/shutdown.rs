//! The two-phase shutdown.
//!
//! Sources stop first, then the senders get a bounded time to deliver what the sources
//! committed last, then they stop (a receiver that is down costs only that bounded wait;
//! everything undelivered stays in the outbox for the next start). Last, the outbox writer
//! commits what it has and its thread ends.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hearth_outbox::OutboxWriter;
use hearth_runtime::watchdog::{self, SystemdNotifier};
use hearth_runtime::{ExitSummary, Supervisor, SupervisorError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The signals of the two phases and what the drain waits on.
pub(super) struct Phases {
    sources_stop_tx: watch::Sender<bool>,
    /// Turns true in the first phase: sources stop.
    pub sources_stop: watch::Receiver<bool>,
    stop_tx: watch::Sender<bool>,
    /// Turns true in the second phase: senders and maintenance stop.
    pub stop: watch::Receiver<bool>,
    /// Sources still inside a submission; the drain waits for them before it counts the backlog.
    pub sources_running: Arc<AtomicUsize>,
    drain_time: Duration,
}

impl Phases {
    pub fn new(supervisor: &hearth_config::SupervisorConfig) -> Self {
        let (sources_stop_tx, sources_stop) = watch::channel(false);
        let (stop_tx, stop) = watch::channel(false);
        Self {
            sources_stop_tx,
            sources_stop,
            stop_tx,
            stop,
            sources_running: Arc::new(AtomicUsize::new(0)),
            drain_time: (supervisor.shutdown_grace.get() / 2).min(Duration::from_secs(5)),
        }
    }
}

/// Run the supervisor until `shutdown` resolves, then stop in two phases.
pub(super) fn supervise(
    supervisor: Supervisor,
    phases: Phases,
    shutdown: impl Future<Output = ()> + Send + 'static,
    notifier: Arc<SystemdNotifier>,
    drain_writer: OutboxWriter,
) -> JoinHandle<Result<ExitSummary, SupervisorError>> {
    let Phases {
        sources_stop_tx,
        stop_tx,
        sources_running: running,
        drain_time,
        ..
    } = phases;
    tokio::spawn(supervisor.run(async move {
        shutdown.await;
        tracing::info!(
            "shutting down: sources stop, senders deliver what they can, the outbox commits"
        );
        watchdog::stopping(&*notifier);
        let _ = sources_stop_tx.send(true);
        let deadline = tokio::time::Instant::now() + drain_time;
        while tokio::time::Instant::now() < deadline && running.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while tokio::time::Instant::now() < deadline {
            match drain_writer.stored().await {
                Ok(0) | Err(_) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        drop(drain_writer);
        let _ = stop_tx.send(true);
    }))
}

/// Wait (at most 30 s) for the outbox writer thread. Every writer handle is gone once the
/// tasks are: the thread commits what it has and ends.
pub(super) async fn join_writer(writer_thread: std::thread::JoinHandle<()>) {
    let joined = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || writer_thread.join()),
    )
    .await;
    if !matches!(joined, Ok(Ok(Ok(())))) {
        tracing::warn!(
            "the outbox writer did not stop within 30 s; committed data is safe, the rest was never acknowledged"
        );
    }
}
