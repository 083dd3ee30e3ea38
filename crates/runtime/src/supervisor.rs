//! The supervisor: starts every task, restarts failed ones under the
//! [`RestartPolicy`], reports failures and crash loops as events, and shuts
//! everything down within a grace period.
//!
//! The loop is plain tokio: one `JoinSet` holds the running attempts, and one
//! `select!` waits for the shutdown future, the next task exit, or the next
//! timer (a restart that is due, or a crash loop that has lasted long enough
//! to count as recovered).
//! The loop is separate from OS signals: the caller passes the shutdown
//! future, so tests drive it with a channel and virtual time.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::{Instant, sleep_until};

use crate::error::{SupervisorError, TaskError};
use crate::exit::{ExitOutcome, ExitSummary, TaskExit};
use crate::health::{HealthMonitor, Shared, TaskCell, TaskState, lock};
use crate::policy::RestartPolicy;
use crate::task::{TaskContext, TaskFactory, TaskSpec};

/// The default time tasks get to finish after shutdown begins.
/// Keep it well below systemd's `TimeoutStopSec`.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);

/// How long aborted tasks get to unwind (run their destructors) before the
/// supervisor returns anyway; a task stuck in blocking code cannot be
/// aborted, and must not hold the process open.
const ABORT_DRAIN: Duration = Duration::from_secs(1);

/// Why an attempt of a task ended while the supervisor was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The task returned [`TaskError::Failed`].
    Error,
    /// The task (or its factory) panicked.
    Panic,
    /// The task returned `Ok(())` although no shutdown was requested;
    /// long-running tasks never end on their own.
    UnexpectedExit,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Panic => "panic",
            Self::UnexpectedExit => "unexpected exit",
        })
    }
}

/// Something the binary may want to act on (log, count, raise a technical
/// alarm).
/// Sent with `try_send`: when the channel is full the event is dropped and
/// counted in [`HealthSnapshot::dropped_events`](crate::HealthSnapshot), so
/// a slow consumer never stalls supervision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupervisorEvent {
    /// An attempt of a task failed; it will be restarted.
    TaskFailed {
        /// The task's name.
        task: String,
        /// Whether the task is critical.
        critical: bool,
        /// The attempt that failed (0 is the first run).
        attempt: u32,
        /// What kind of failure it was.
        kind: FailureKind,
        /// The task's message, or the panic message.
        error: String,
        /// The backoff before the next attempt.
        next_restart_in: Duration,
    },
    /// A task failed `restarts` times within `window`.
    /// Sent once per crash loop; the task keeps being restarted at maximum
    /// backoff.
    CrashLoop {
        /// The task's name.
        task: String,
        /// Whether the task is critical.
        critical: bool,
        /// Failures counted inside the window.
        restarts: u32,
        /// The policy's crash-loop window.
        window: Duration,
        /// The latest failure's message.
        last_error: String,
    },
    /// A task that was in a crash loop has run for a whole crash-loop window
    /// without failing.
    Recovered {
        /// The task's name.
        task: String,
    },
}

/// Starts, restarts and stops a fixed set of tasks.
///
/// Build it, [`add`](Self::add) tasks, take a [`monitor`](Self::monitor) for
/// the watchdog and `STATUS=`, then [`run`](Self::run) it until the shutdown
/// future resolves.
pub struct Supervisor {
    policy: RestartPolicy,
    events: mpsc::Sender<SupervisorEvent>,
    grace: Duration,
    shared: Arc<Shared>,
    slots: Vec<Slot>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("policy", &self.policy)
            .field("grace", &self.grace)
            .field("tasks", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    /// A supervisor with no tasks, restarting under `policy` and reporting on
    /// `events` (a bounded channel; see [`SupervisorEvent`]).
    pub fn new(policy: RestartPolicy, events: mpsc::Sender<SupervisorEvent>) -> Self {
        Self {
            policy,
            events,
            grace: DEFAULT_GRACE_PERIOD,
            shared: Arc::new(Shared::new()),
            slots: Vec::new(),
        }
    }

    /// How long tasks get to finish after shutdown begins before they are
    /// aborted ([`DEFAULT_GRACE_PERIOD`] unless set).
    #[must_use]
    pub fn with_grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Registers a task; it starts when [`run`](Self::run) starts.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::DuplicateTask`] if the name is taken.
    pub fn add(&mut self, spec: TaskSpec) -> Result<(), SupervisorError> {
        let TaskSpec {
            name,
            critical,
            stall_timeout,
            factory,
        } = spec;
        if self.slots.iter().any(|slot| *slot.cell.name == *name) {
            return Err(SupervisorError::DuplicateTask { name });
        }
        let cell = Arc::new(TaskCell::new(name.into(), critical, stall_timeout));
        lock(&self.shared.tasks).push(Arc::clone(&cell));
        self.slots.push(Slot::new(cell, factory));
        Ok(())
    }

    /// A reader of every task's health, valid before, during and after
    /// [`run`](Self::run).
    pub fn monitor(&self) -> HealthMonitor {
        HealthMonitor {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Runs every task until `shutdown` resolves or a task fails fatally,
    /// then asks all tasks to stop, waits up to the grace period, and aborts
    /// the rest.
    ///
    /// Must be called inside a Tokio runtime; tasks are spawned on it.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::Fatal`] if a task returned [`TaskError::Fatal`].
    /// Restartable failures never end the supervisor.
    pub async fn run<S>(self, shutdown: S) -> Result<ExitSummary, SupervisorError>
    where
        S: Future<Output = ()>,
    {
        let Self {
            policy,
            events,
            grace,
            shared,
            slots,
        } = self;
        // Declared first so it is dropped last: if this future is dropped
        // mid-run, the JoinSet aborts the tasks and the guard marks them
        // stopped, so a monitor never reports a dead supervisor as healthy.
        let _guard = StopGuard(Arc::clone(&shared));
        let mut core = Core {
            policy,
            events,
            shared,
            slots,
            running: JoinSet::new(),
            ids: HashMap::new(),
        };
        let end = core.supervise(shutdown).await;
        let summary = core.drain(grace, end.fatal_task()).await;
        match end {
            End::Requested => Ok(summary),
            End::Fatal { task, message } => Err(SupervisorError::Fatal {
                task: core.slots[task].cell.name.to_string(),
                message,
                summary,
            }),
        }
    }
}

/// Why the supervision loop ended.
enum End {
    Requested,
    Fatal { task: usize, message: String },
}

impl End {
    fn fatal_task(&self) -> Option<(usize, &str)> {
        match self {
            Self::Requested => None,
            Self::Fatal { task, message } => Some((*task, message)),
        }
    }
}

/// Marks everything stopped when the supervisor ends, however it ends.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.begin_shutdown();
        for cell in lock(&self.0.tasks).iter() {
            cell.update(|record| record.state = TaskState::Stopped);
        }
    }
}

/// The supervisor's private bookkeeping for one task.
struct Slot {
    cell: Arc<TaskCell>,
    factory: TaskFactory,
    state: TaskState,
    /// Attempts started so far; the next attempt's number.
    attempts: u32,
    /// Failures in a row, reset by a healthy run; drives the backoff.
    consecutive_failures: u32,
    /// Times of recent failures, oldest first, for crash-loop detection.
    recent_failures: VecDeque<Instant>,
    crash_loop: bool,
    started_at: Instant,
    restart_at: Option<Instant>,
}

impl Slot {
    fn new(cell: Arc<TaskCell>, factory: TaskFactory) -> Self {
        Self {
            cell,
            factory,
            state: TaskState::Starting,
            attempts: 0,
            consecutive_failures: 0,
            recent_failures: VecDeque::new(),
            crash_loop: false,
            started_at: Instant::now(),
            restart_at: None,
        }
    }

    /// When this slot next needs the loop's attention.
    fn deadline(&self, policy: &RestartPolicy) -> Option<Instant> {
        match self.state {
            TaskState::BackingOff => self.restart_at,
            TaskState::Running if self.crash_loop => {
                self.started_at.checked_add(policy.crash_loop_window)
            }
            _ => None,
        }
    }
}

/// The running supervisor.
struct Core {
    policy: RestartPolicy,
    events: mpsc::Sender<SupervisorEvent>,
    shared: Arc<Shared>,
    slots: Vec<Slot>,
    running: JoinSet<Result<(), TaskError>>,
    /// Which slot each running attempt belongs to.
    ids: HashMap<Id, usize>,
}

impl Core {
    async fn supervise<S: Future<Output = ()>>(&mut self, shutdown: S) -> End {
        let mut shutdown = std::pin::pin!(shutdown);
        for index in 0..self.slots.len() {
            self.start(index);
        }
        self.shared.set_running();
        loop {
            let next = self
                .slots
                .iter()
                .filter_map(|slot| slot.deadline(&self.policy))
                .min();
            tokio::select! {
                biased;
                () = &mut shutdown => return End::Requested,
                Some(joined) = self.running.join_next_with_id() => {
                    if let Some(end) = self.on_exit(joined) {
                        return end;
                    }
                }
                () = sleep_until_or_never(next) => self.on_timers(),
            }
        }
    }

    /// Starts the next attempt of slot `index`.
    fn start(&mut self, index: usize) {
        let epoch = self.shared.epoch;
        let shutdown = self.shared.phase.subscribe();
        let slot = &mut self.slots[index];
        let attempt = slot.attempts;
        slot.attempts = slot.attempts.saturating_add(1);
        slot.started_at = Instant::now();
        slot.restart_at = None;
        let context = TaskContext::new(Arc::clone(&slot.cell), epoch, attempt, shutdown);
        // The factory runs here, in the supervisor; a panic in it must not
        // take the supervisor down, so it counts as a failed attempt.
        let factory = &mut slot.factory;
        match std::panic::catch_unwind(AssertUnwindSafe(|| factory(context))) {
            Ok(future) => {
                let handle = self.running.spawn(future);
                self.ids.insert(handle.id(), index);
                slot.state = TaskState::Running;
                let started_at = slot.started_at;
                slot.cell.update(|record| {
                    record.state = TaskState::Running;
                    record.restarts = attempt;
                    record.started_at = Some(started_at);
                });
            }
            Err(payload) => {
                let message = format!("factory panicked: {}", panic_message(payload.as_ref()));
                self.on_failure(index, attempt, FailureKind::Panic, message);
            }
        }
    }

    /// Handles the end of a running attempt; returns `Some` if the
    /// supervisor must stop.
    fn on_exit(&mut self, joined: Result<(Id, Result<(), TaskError>), JoinError>) -> Option<End> {
        let (id, kind, message) = match joined {
            Ok((id, Ok(()))) => (
                id,
                FailureKind::UnexpectedExit,
                "returned without being asked to shut down".to_owned(),
            ),
            Ok((id, Err(TaskError::Failed(message)))) => (id, FailureKind::Error, message),
            Ok((id, Err(TaskError::Fatal(message)))) => {
                let task = self.ids.remove(&id)?;
                self.slots[task]
                    .cell
                    .update(|record| record.last_error = Some(format!("fatal: {message}")));
                tracing::error!(
                    task = %self.slots[task].cell.name,
                    error = %message,
                    "task failed fatally; stopping all tasks"
                );
                return Some(End::Fatal { task, message });
            }
            Err(error) => {
                let id = error.id();
                if error.is_panic() {
                    let payload = error.into_panic();
                    let message = format!("panicked: {}", panic_message(payload.as_ref()));
                    (id, FailureKind::Panic, message)
                } else {
                    // Only the drain aborts attempts, so this is not expected.
                    (id, FailureKind::Error, format!("task ended: {error}"))
                }
            }
        };
        let Some(index) = self.ids.remove(&id) else {
            tracing::debug!(?id, "exit of an unknown task attempt ignored");
            return None;
        };
        let attempt = self.slots[index].attempts.saturating_sub(1);
        self.on_failure(index, attempt, kind, message);
        None
    }

    /// Records a failure of slot `index` and schedules its restart.
    fn on_failure(&mut self, index: usize, attempt: u32, kind: FailureKind, message: String) {
        let policy = self.policy;
        let now = Instant::now();
        let slot = &mut self.slots[index];

        if now.saturating_duration_since(slot.started_at) > policy.max {
            slot.consecutive_failures = 0;
        }
        slot.consecutive_failures = slot.consecutive_failures.saturating_add(1);

        slot.recent_failures.push_back(now);
        while slot
            .recent_failures
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) > policy.crash_loop_window)
        {
            slot.recent_failures.pop_front();
        }
        let restarts = u32::try_from(slot.recent_failures.len()).unwrap_or(u32::MAX);
        let entering_crash_loop = !slot.crash_loop
            && policy.crash_loop_restarts > 0
            && restarts >= policy.crash_loop_restarts;
        if entering_crash_loop {
            slot.crash_loop = true;
        }

        let base = if slot.crash_loop {
            policy.max
        } else {
            policy.backoff(slot.consecutive_failures)
        };
        let delay = policy.jitter(base, fastrand::f64());
        slot.state = TaskState::BackingOff;
        slot.restart_at = Some(now + delay);

        let crash_loop = slot.crash_loop;
        let critical = slot.cell.critical;
        let name = slot.cell.name.to_string();
        slot.cell.update(|record| {
            record.state = TaskState::BackingOff;
            record.restarts = attempt;
            record.crash_loop = crash_loop;
            record.last_error = Some(message.clone());
        });

        if crash_loop {
            tracing::error!(
                task = %name, critical, attempt, %kind, error = %message,
                next_restart_in = ?delay, "task in a crash loop failed again"
            );
        } else {
            tracing::warn!(
                task = %name, critical, attempt, %kind, error = %message,
                next_restart_in = ?delay, "task failed; restarting after backoff"
            );
        }
        self.emit(SupervisorEvent::TaskFailed {
            task: name.clone(),
            critical,
            attempt,
            kind,
            error: message.clone(),
            next_restart_in: delay,
        });
        if entering_crash_loop {
            tracing::error!(
                task = %name, critical, restarts, window = ?policy.crash_loop_window,
                error = %message, "task is in a crash loop; restarting at maximum backoff"
            );
            self.emit(SupervisorEvent::CrashLoop {
                task: name,
                critical,
                restarts,
                window: policy.crash_loop_window,
                last_error: message,
            });
        }
    }

    /// Restarts tasks whose backoff is over and reports recoveries.
    fn on_timers(&mut self) {
        let now = Instant::now();
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if slot.deadline(&self.policy).is_none_or(|at| at > now) {
                continue;
            }
            match slot.state {
                TaskState::BackingOff => self.start(index),
                TaskState::Running => {
                    slot.crash_loop = false;
                    slot.consecutive_failures = 0;
                    slot.recent_failures.clear();
                    slot.cell.update(|record| record.crash_loop = false);
                    let task = slot.cell.name.to_string();
                    tracing::info!(task = %task, "task recovered from its crash loop");
                    self.emit(SupervisorEvent::Recovered { task });
                }
                TaskState::Starting | TaskState::Stopped => {}
            }
        }
    }

    /// Asks every task to stop, waits up to `grace`, aborts the rest.
    async fn drain(&mut self, grace: Duration, fatal: Option<(usize, &str)>) -> ExitSummary {
        self.shared.begin_shutdown();
        let mut outcomes: Vec<Option<ExitOutcome>> = vec![None; self.slots.len()];
        if let Some((task, message)) = fatal {
            outcomes[task] = Some(ExitOutcome::Failed(format!("fatal: {message}")));
            self.stopped(task);
        }
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.state != TaskState::Running && outcomes[index].is_none() {
                outcomes[index] = Some(ExitOutcome::NotRunning);
            }
        }
        for index in 0..self.slots.len() {
            if self.slots[index].state != TaskState::Running {
                self.stopped(index);
            }
        }
        tracing::info!(
            running = self.ids.len(),
            grace = ?grace,
            "shutting down; waiting for tasks to finish"
        );

        let deadline = Instant::now() + grace;
        loop {
            let joined = tokio::select! {
                biased;
                joined = self.running.join_next_with_id() => joined,
                () = sleep_until(deadline) => break,
            };
            let Some(joined) = joined else { break };
            let (id, outcome) = match joined {
                Ok((id, Ok(()))) => (id, ExitOutcome::Finished),
                Ok((id, Err(error))) => (id, ExitOutcome::Failed(error.to_string())),
                Err(error) if error.is_panic() => {
                    let id = error.id();
                    let payload = error.into_panic();
                    let message = format!("panicked: {}", panic_message(payload.as_ref()));
                    (id, ExitOutcome::Failed(message))
                }
                Err(error) => (error.id(), ExitOutcome::Failed(error.to_string())),
            };
            if let Some(index) = self.ids.remove(&id) {
                let task = &self.slots[index].cell.name;
                match &outcome {
                    ExitOutcome::Failed(error) => {
                        tracing::warn!(task = %task, %error, "task failed while shutting down");
                    }
                    _ => tracing::debug!(task = %task, "task finished"),
                }
                outcomes[index] = Some(outcome);
                self.stopped(index);
            }
        }

        let stubborn: Vec<usize> = self.ids.drain().map(|(_, index)| index).collect();
        for index in stubborn {
            tracing::warn!(
                task = %self.slots[index].cell.name,
                grace = ?grace,
                "task did not finish within the grace period; aborting it"
            );
            outcomes[index] = Some(ExitOutcome::Aborted);
            self.stopped(index);
        }
        self.running.abort_all();
        let unwound = tokio::time::timeout(ABORT_DRAIN, async {
            while self.running.join_next().await.is_some() {}
        })
        .await;
        if unwound.is_err() {
            tracing::warn!("some aborted tasks are stuck in blocking code; leaving them behind");
            self.running.detach_all();
        }

        let tasks = self
            .slots
            .iter()
            .zip(outcomes)
            .map(|(slot, outcome)| TaskExit {
                name: slot.cell.name.to_string(),
                outcome: outcome.unwrap_or(ExitOutcome::NotRunning),
            })
            .collect();
        ExitSummary {
            tasks,
            dropped_events: self.shared.dropped_events.load(Ordering::Relaxed),
        }
    }

    fn stopped(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.state = TaskState::Stopped;
        slot.restart_at = None;
        slot.cell.update(|record| record.state = TaskState::Stopped);
    }

    /// Sends without ever waiting; counts what could not be sent.
    fn emit(&self, event: SupervisorEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                self.shared.dropped_events.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(?event, "supervisor event channel full; event dropped");
            }
            Err(TrySendError::Closed(event)) => {
                self.shared.dropped_events.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(?event, "supervisor event channel closed; event dropped");
            }
        }
    }
}

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The text of a panic payload (`panic!` with a literal or with formatting).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
