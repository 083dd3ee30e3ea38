//! What the supervisor knows about each task, shared with the watchdog and
//! with `STATUS=` reporting.
//!
//! The supervisor loop is the only writer of task states.
//! Tasks write only their progress timestamp, with one atomic store, so
//! [`TaskContext::progress`](crate::TaskContext::progress) is cheap enough to
//! call for every message.
//! Readers take a [`HealthSnapshot`], a copy with ages computed at the time it
//! was taken.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Where a task is in its life cycle, as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Registered, not yet started by the supervisor.
    Starting,
    /// Its future is spawned and has neither returned nor panicked.
    Running,
    /// It failed and waits for its restart.
    BackingOff,
    /// It ended during shutdown (finished, failed or aborted), or the
    /// supervisor is gone.
    Stopped,
}

/// One task's health at the time of a [`HealthSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    /// The task's unique name.
    pub name: String,
    /// Whether the watchdog depends on this task.
    pub critical: bool,
    /// Life-cycle state.
    pub state: TaskState,
    /// How many times the task was restarted (0 while on its first run).
    pub restarts: u32,
    /// Time since the task last called
    /// [`TaskContext::progress`](crate::TaskContext::progress), in any
    /// attempt; `None` if it never did.
    pub last_progress: Option<Duration>,
    /// The stall timeout from the task's spec.
    pub stall_timeout: Option<Duration>,
    /// Running with a stall timeout, and neither its last progress nor the
    /// start of its current attempt is more recent than the timeout.
    /// A freshly (re)started task gets one full timeout to report progress.
    pub stalled: bool,
    /// Whether the task is in a crash loop (see
    /// [`RestartPolicy`](crate::RestartPolicy)).
    pub crash_loop: bool,
    /// The message of its latest failure, kept after it recovers so the
    /// operator can see what happened.
    pub last_error: Option<String>,
}

impl TaskStatus {
    /// Running and, if it has a stall timeout, not stalled.
    pub fn is_alive(&self) -> bool {
        self.state == TaskState::Running && !self.stalled
    }

    /// A short explanation of why the task is not alive, for logs and
    /// `STATUS=`; `None` when it is alive.
    pub fn problem(&self) -> Option<String> {
        match self.state {
            TaskState::Running if self.stalled => {
                let since = match self.last_progress {
                    Some(age) => format!("no progress for {}s", age.as_secs()),
                    None => "no progress since it started".to_owned(),
                };
                let timeout = self.stall_timeout.unwrap_or_default().as_secs();
                Some(format!("{since} (stall timeout {timeout}s)"))
            }
            TaskState::Running => None,
            TaskState::Starting => Some("not started yet".to_owned()),
            TaskState::BackingOff => {
                let mut text = format!("restarting after {} restarts", self.restarts);
                if self.crash_loop {
                    text.push_str(", crash loop");
                }
                if let Some(error) = &self.last_error {
                    let _ = write!(text, ": {error}");
                }
                Some(text)
            }
            TaskState::Stopped => Some("stopped".to_owned()),
        }
    }
}

/// The supervisor's view of every task at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSnapshot {
    /// One entry per task, in the order they were added.
    pub tasks: Vec<TaskStatus>,
    /// Shutdown has begun (or the supervisor has ended); tasks are draining.
    pub shutting_down: bool,
    /// Supervisor events dropped because the event channel was full or
    /// closed.
    pub dropped_events: u64,
}

impl HealthSnapshot {
    /// Every critical task is [`Running`](TaskState::Running) and, if it has
    /// a stall timeout, made progress within it.
    /// This is the condition for sending `WATCHDOG=1`.
    pub fn all_critical_alive(&self) -> bool {
        self.tasks
            .iter()
            .filter(|task| task.critical)
            .all(TaskStatus::is_alive)
    }

    /// The critical tasks that are not alive.
    pub fn unhealthy_critical(&self) -> impl Iterator<Item = &TaskStatus> {
        self.tasks
            .iter()
            .filter(|task| task.critical && !task.is_alive())
    }

    /// A one-line summary for `STATUS=`, such as `"4/4 tasks running"` or
    /// `"3/4 tasks running; uplink: restarting after 2 restarts: timeout"`.
    pub fn status_line(&self) -> String {
        let alive = self.tasks.iter().filter(|task| task.is_alive()).count();
        let mut line = format!("{alive}/{} tasks running", self.tasks.len());
        if self.shutting_down {
            line.push_str(", shutting down");
        }
        for task in &self.tasks {
            if let Some(problem) = task.problem() {
                let _ = write!(line, "; {}: {problem}", task.name);
            }
        }
        line
    }
}

/// Anything that can report a [`HealthSnapshot`]: the supervisor's
/// [`HealthMonitor`], or a closure in tests.
pub trait HealthSource: Send + Sync {
    /// The current health.
    fn health(&self) -> HealthSnapshot;
}

impl<F> HealthSource for F
where
    F: Fn() -> HealthSnapshot + Send + Sync,
{
    fn health(&self) -> HealthSnapshot {
        self()
    }
}

/// A cheap, cloneable reader of the supervisor's health, obtained from
/// [`Supervisor::monitor`](crate::Supervisor::monitor) before the supervisor
/// runs.
#[derive(Debug, Clone)]
pub struct HealthMonitor {
    pub(crate) shared: Arc<Shared>,
}

impl HealthMonitor {
    /// The current health of every task.
    pub fn health(&self) -> HealthSnapshot {
        self.shared.snapshot()
    }

    /// Resolves once [`Supervisor::run`](crate::Supervisor::run) has
    /// started the first attempt of every task (or has already ended).
    /// Await it before sending `READY=1`. Cancel-safe.
    pub fn started(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shared.phase.subscribe();
        async move {
            let _ = rx.wait_for(|phase| *phase >= Phase::Running).await;
        }
    }

    /// Resolves once the supervisor begins shutting down, for whatever
    /// reason (requested, fatal error, or the supervisor was dropped).
    /// Cancel-safe.
    pub fn shutdown_started(&self) -> impl Future<Output = ()> + Send + 'static {
        wait_for_shutdown(self.shared.phase.subscribe())
    }
}

impl HealthSource for HealthMonitor {
    fn health(&self) -> HealthSnapshot {
        self.shared.snapshot()
    }
}

/// The supervisor's life cycle, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Built, tasks being added; `run` not yet called.
    Idle,
    /// `run` has started every task.
    Running,
    /// Shutdown has begun, or the supervisor has ended.
    ShuttingDown,
}

/// Resolves when `rx` reaches [`Phase::ShuttingDown`], or when its sender is
/// gone (a supervisor that no longer exists has certainly stopped).
pub(crate) async fn wait_for_shutdown(mut rx: watch::Receiver<Phase>) {
    let _ = rx.wait_for(|phase| *phase == Phase::ShuttingDown).await;
}

/// Mutex access that survives poisoning: every critical section here only
/// stores plain values, so a panic while holding the lock cannot leave the
/// data half-updated in a way that matters.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State shared by the supervisor loop, its tasks' contexts and monitors.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The origin of progress timestamps, so one `AtomicU64` holds one.
    pub(crate) epoch: Instant,
    /// Every registered task, in order.
    pub(crate) tasks: Mutex<Vec<Arc<TaskCell>>>,
    /// Where the supervisor is; tasks and monitors subscribe to it to learn
    /// that shutdown has begun.
    pub(crate) phase: watch::Sender<Phase>,
    /// Count of events that `try_send` could not deliver.
    pub(crate) dropped_events: AtomicU64,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            tasks: Mutex::new(Vec::new()),
            phase: watch::Sender::new(Phase::Idle),
            dropped_events: AtomicU64::new(0),
        }
    }

    pub(crate) fn snapshot(&self) -> HealthSnapshot {
        let now = Instant::now();
        let tasks = lock(&self.tasks)
            .iter()
            .map(|cell| cell.status(self.epoch, now))
            .collect();
        HealthSnapshot {
            tasks,
            shutting_down: *self.phase.borrow() == Phase::ShuttingDown,
            dropped_events: self.dropped_events.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn set_running(&self) {
        self.phase.send_if_modified(|phase| {
            let starting = *phase == Phase::Idle;
            if starting {
                *phase = Phase::Running;
            }
            starting
        });
    }

    pub(crate) fn begin_shutdown(&self) {
        self.phase.send_replace(Phase::ShuttingDown);
    }
}

/// One task's shared record.
#[derive(Debug)]
pub(crate) struct TaskCell {
    pub(crate) name: Arc<str>,
    pub(crate) critical: bool,
    pub(crate) stall_timeout: Option<Duration>,
    /// Nanoseconds since `Shared::epoch` of the last progress, plus one;
    /// 0 means "never".
    progress: AtomicU64,
    /// Written only by the supervisor loop.
    pub(crate) record: Mutex<TaskRecord>,
}

/// The supervisor-owned part of a task's health.
#[derive(Debug, Clone)]
pub(crate) struct TaskRecord {
    pub(crate) state: TaskState,
    pub(crate) restarts: u32,
    pub(crate) started_at: Option<Instant>,
    pub(crate) crash_loop: bool,
    pub(crate) last_error: Option<String>,
}

impl TaskCell {
    pub(crate) fn new(name: Arc<str>, critical: bool, stall_timeout: Option<Duration>) -> Self {
        Self {
            name,
            critical,
            stall_timeout,
            progress: AtomicU64::new(0),
            record: Mutex::new(TaskRecord {
                state: TaskState::Starting,
                restarts: 0,
                started_at: None,
                crash_loop: false,
                last_error: None,
            }),
        }
    }

    /// Records progress now.
    pub(crate) fn progress(&self, epoch: Instant) {
        let nanos = Instant::now().saturating_duration_since(epoch).as_nanos();
        let stamp = u64::try_from(nanos).unwrap_or(u64::MAX).saturating_add(1);
        self.progress.store(stamp, Ordering::Relaxed);
    }

    fn last_progress_at(&self, epoch: Instant) -> Option<Instant> {
        match self.progress.load(Ordering::Relaxed) {
            0 => None,
            stamp => epoch.checked_add(Duration::from_nanos(stamp - 1)),
        }
    }

    pub(crate) fn update(&self, change: impl FnOnce(&mut TaskRecord)) {
        change(&mut lock(&self.record));
    }

    fn status(&self, epoch: Instant, now: Instant) -> TaskStatus {
        let record = lock(&self.record).clone();
        let last_progress_at = self.last_progress_at(epoch);
        // A new attempt gets a full stall timeout from its start, even if an
        // earlier attempt made progress long ago.
        let reference = match (last_progress_at, record.started_at) {
            (Some(progress), Some(started)) => Some(progress.max(started)),
            (progress, started) => progress.or(started),
        };
        let stalled = record.state == TaskState::Running
            && match (self.stall_timeout, reference) {
                (Some(timeout), Some(reference)) => {
                    now.saturating_duration_since(reference) > timeout
                }
                _ => false,
            };
        TaskStatus {
            name: self.name.to_string(),
            critical: self.critical,
            state: record.state,
            restarts: record.restarts,
            last_progress: last_progress_at.map(|at| now.saturating_duration_since(at)),
            stall_timeout: self.stall_timeout,
            stalled,
            crash_loop: record.crash_loop,
            last_error: record.last_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: TaskState, critical: bool, stalled: bool) -> TaskStatus {
        TaskStatus {
            name: "t".to_owned(),
            critical,
            state,
            restarts: 0,
            last_progress: None,
            stall_timeout: None,
            stalled,
            crash_loop: false,
            last_error: None,
        }
    }

    fn snapshot(tasks: Vec<TaskStatus>) -> HealthSnapshot {
        HealthSnapshot {
            tasks,
            shutting_down: false,
            dropped_events: 0,
        }
    }

    #[test]
    fn all_critical_alive_ignores_non_critical_tasks() {
        let health = snapshot(vec![
            status(TaskState::Running, true, false),
            status(TaskState::BackingOff, false, false),
        ]);
        assert!(health.all_critical_alive());
    }

    #[test]
    fn a_stalled_or_restarting_critical_task_is_not_alive() {
        for task in [
            status(TaskState::Running, true, true),
            status(TaskState::BackingOff, true, false),
            status(TaskState::Starting, true, false),
            status(TaskState::Stopped, true, false),
        ] {
            let health = snapshot(vec![status(TaskState::Running, true, false), task]);
            assert!(!health.all_critical_alive());
            assert_eq!(health.unhealthy_critical().count(), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_task_gets_a_full_stall_timeout_before_it_counts_as_stalled() {
        let epoch = Instant::now();
        let cell = TaskCell::new("t".into(), true, Some(Duration::from_secs(5)));
        cell.progress(epoch);
        tokio::time::advance(Duration::from_secs(60)).await;
        cell.update(|r| {
            r.state = TaskState::Running;
            r.started_at = Some(Instant::now());
        });
        tokio::time::advance(Duration::from_secs(4)).await;
        let status = cell.status(epoch, Instant::now());
        assert!(!status.stalled);
        assert_eq!(status.last_progress, Some(Duration::from_secs(64)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(cell.status(epoch, Instant::now()).stalled);
    }
}
