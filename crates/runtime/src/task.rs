//! What a supervised task is: a named, rebuildable factory of futures, and
//! the context each attempt receives.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::TaskError;
use crate::health::{Phase, TaskCell, wait_for_shutdown};

/// The future of one attempt of a task.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send + 'static>>;

/// Builds a fresh future for each attempt; the supervisor calls it again on
/// every restart, so no state of a failed attempt leaks into the next one.
pub type TaskFactory = Box<dyn FnMut(TaskContext) -> TaskFuture + Send + 'static>;

/// A task to supervise.
pub struct TaskSpec {
    /// Unique name, used in logs, events, health and alarms.
    pub name: String,
    /// Whether the systemd watchdog depends on this task being alive.
    /// A dead or stalled critical task stops `WATCHDOG=1`, so systemd
    /// restarts the whole daemon; a non-critical one only shows in health.
    pub critical: bool,
    /// If set, the task counts as stalled when it has not called
    /// [`TaskContext::progress`] for this long (a fresh attempt gets this
    /// long from its start).
    pub stall_timeout: Option<Duration>,
    /// Builds each attempt.
    pub factory: TaskFactory,
}

impl TaskSpec {
    /// A task named `name` whose attempts are built by `factory`, usually an
    /// `async move` closure:
    ///
    /// ```
    /// # use hearth_runtime::{TaskSpec, TaskError};
    /// let spec = TaskSpec::new("uplink", true, |ctx| async move {
    ///     ctx.shutdown_requested().await;
    ///     Ok::<(), TaskError>(())
    /// });
    /// assert_eq!(spec.name, "uplink");
    /// ```
    pub fn new<F, Fut>(name: impl Into<String>, critical: bool, mut factory: F) -> Self
    where
        F: FnMut(TaskContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), TaskError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            critical,
            stall_timeout: None,
            factory: Box::new(move |ctx| Box::pin(factory(ctx))),
        }
    }

    /// Sets [`TaskSpec::stall_timeout`].
    #[must_use]
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = Some(timeout);
        self
    }
}

impl fmt::Debug for TaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSpec")
            .field("name", &self.name)
            .field("critical", &self.critical)
            .field("stall_timeout", &self.stall_timeout)
            .finish_non_exhaustive()
    }
}

/// What one attempt of a task gets from the supervisor.
///
/// Cloning is cheap; clones share the progress record and the shutdown
/// signal, so a task may hand them to helpers it spawns itself.
#[derive(Debug, Clone)]
pub struct TaskContext {
    cell: Arc<TaskCell>,
    epoch: Instant,
    attempt: u32,
    shutdown: watch::Receiver<Phase>,
}

impl TaskContext {
    pub(crate) fn new(
        cell: Arc<TaskCell>,
        epoch: Instant,
        attempt: u32,
        shutdown: watch::Receiver<Phase>,
    ) -> Self {
        Self {
            cell,
            epoch,
            attempt,
            shutdown,
        }
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.cell.name
    }

    /// How many times the task was restarted before this attempt (0 on the
    /// first run).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Records that the task made progress now (handled a message, finished
    /// a poll cycle, got an ack).
    /// One atomic store; call it as often as useful.
    /// Call it where work actually completes, not from a timer, or the
    /// watchdog only proves that a timer is running.
    pub fn progress(&self) {
        self.cell.progress(self.epoch);
    }

    /// Resolves when the supervisor begins shutting down; the task should
    /// then flush what it holds and return `Ok(())` within the grace period.
    ///
    /// Cancel-safe: each call watches the signal afresh, so it can sit in a
    /// `select!` loop, and it resolves immediately if shutdown has already
    /// begun.
    pub fn shutdown_requested(&self) -> impl Future<Output = ()> + Send + 'static {
        wait_for_shutdown(self.shutdown.clone())
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow() == Phase::ShuttingDown
    }
}
