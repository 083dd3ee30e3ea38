//! hearth's process runtime: it keeps the daemon's long-running tasks alive
//! and tells systemd the truth about them.
//!
//! A [`Supervisor`] starts every task from a rebuildable factory, restarts
//! failed, panicked or unexpectedly finished tasks under a [`RestartPolicy`]
//! (exponential backoff with jitter, crash-loop detection), and on shutdown
//! asks every task to drain, waits a grace period, and aborts the rest.
//! The [`watchdog`] module sends `READY=1`, `STATUS=`, `STOPPING=1`, and a
//! `WATCHDOG=1` that is gated on every critical task being alive and making
//! progress.
//! [`shutdown_signal`] turns `SIGTERM`/`SIGINT` into the supervisor's
//! shutdown future.
//!
//! It deliberately is not an actor framework, a scheduler or a message bus:
//! tasks own their channels and state, and the supervisor only sees how each
//! attempt ends and when it last made progress.
//! It does not restart a stalled task itself (a task stuck in blocking code
//! cannot be aborted); it withholds the watchdog ping and lets systemd restart
//! the process.
//! It does not parse configuration, install a tracing subscriber, or exit the
//! process; the binary does.
//!
//! In the data flow, the runtime sits under everything: the binary registers
//! ingest, outbox, uplink and management tasks with it, reads its health for
//! `STATUS=` and the watchdog, and turns [`SupervisorEvent::CrashLoop`] into a
//! technical alarm.
//!
//! # Invariants
//!
//! - A failed task is restarted after a delay that doubles from
//!   `initial` and never exceeds `max`
//!   (`tests/supervisor.rs: a_failing_task_is_restarted_with_growing_bounded_backoff`),
//!   and the backoff starts over after an attempt ran longer than `max`
//!   (`backoff_resets_after_a_task_ran_healthily_for_longer_than_max`).
//! - A panic is contained to its task: the task is restarted and the panic
//!   message is reported
//!   (`a_panicking_task_is_restarted_and_the_panic_message_is_in_the_task_failed_event`,
//!   `a_panicking_factory_is_treated_as_a_failed_attempt`).
//! - A task that returns `Ok(())` while no shutdown was requested is a
//!   failure and is restarted
//!   (`a_task_that_returns_ok_unexpectedly_is_restarted`).
//! - A crash loop is reported exactly once, the task keeps being restarted
//!   at maximum backoff, and recovery is reported
//!   (`a_crash_loop_emits_exactly_one_crash_loop_event_after_n_restarts_inside_the_window`,
//!   `a_task_in_a_crash_loop_that_then_runs_for_a_window_is_reported_recovered`,
//!   `failures_spread_wider_than_the_window_are_not_a_crash_loop`).
//! - [`TaskError::Fatal`] stops every task and makes [`Supervisor::run`]
//!   return an error (`a_fatal_error_stops_the_supervisor_with_an_error`).
//! - Shutdown is bounded: tasks see [`TaskContext::shutdown_requested`] and
//!   finish; a task still running after the grace period is aborted and
//!   named in the [`ExitSummary`]
//!   (`on_shutdown_tasks_see_shutdown_requested_and_finish`,
//!   `a_task_that_ignores_shutdown_is_aborted_after_the_grace_period_and_reported`).
//! - The supervisor never waits on its event channel; events it cannot send
//!   are dropped and counted
//!   (`a_full_event_channel_drops_and_counts_events_without_blocking_the_supervisor`).
//! - `WATCHDOG=1` is sent only while every critical task is running and, if
//!   it has a stall timeout, made progress within it; a non-critical task
//!   never withholds it
//!   (`src/watchdog.rs: the_watchdog_pings_while_all_critical_tasks_make_progress`,
//!   `a_stalled_critical_task_stops_the_watchdog_pings`,
//!   `a_dead_critical_task_stops_the_watchdog_pings_until_it_is_back`,
//!   `a_dead_non_critical_task_does_not_stop_the_watchdog_pings`).
//! - A supervisor that has ended never looks healthy: its tasks read as
//!   stopped (`health_reports_every_task_stopped_once_the_supervisor_ends`).
//!
//! Per-task crash isolation relies on unwinding; the workspace's release
//! profile keeps `panic = "unwind"`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use hearth_runtime::{RestartPolicy, Supervisor, TaskError, TaskSpec};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Builder::new_current_thread()
//!     .enable_time()
//!     .build()?;
//! runtime.block_on(async {
//!     let (events, _events_rx) = tokio::sync::mpsc::channel(64);
//!     let mut supervisor = Supervisor::new(RestartPolicy::default(), events)
//!         .with_grace_period(Duration::from_secs(5));
//!     supervisor.add(
//!         TaskSpec::new("heartbeat", true, |ctx| async move {
//!             loop {
//!                 tokio::select! {
//!                     () = ctx.shutdown_requested() => return Ok::<(), TaskError>(()),
//!                     () = tokio::time::sleep(Duration::from_millis(5)) => ctx.progress(),
//!                 }
//!             }
//!         })
//!         .with_stall_timeout(Duration::from_secs(30)),
//!     )?;
//!     let monitor = supervisor.monitor();
//!     // In the daemon the shutdown future is `shutdown_signal()?`.
//!     let stop = tokio::time::sleep(Duration::from_millis(20));
//!     let run = supervisor.run(stop);
//!     let summary = run.await?;
//!     assert!(summary.is_clean());
//!     assert!(monitor.health().shutting_down);
//!     Ok(())
//! })
//! # }
//! ```

#![forbid(unsafe_code)]

mod error;
mod exit;
mod health;
mod policy;
mod signal;
mod supervisor;
mod task;
pub mod watchdog;

pub use error::{SupervisorError, TaskError};
pub use exit::{ExitOutcome, ExitSummary, TaskExit};
pub use health::{HealthMonitor, HealthSnapshot, HealthSource, TaskState, TaskStatus};
pub use policy::{JITTER, MIN_BACKOFF, RestartPolicy};
pub use signal::{ShutdownSignal, ShutdownSignals, shutdown_signal};
pub use supervisor::{DEFAULT_GRACE_PERIOD, FailureKind, Supervisor, SupervisorEvent};
pub use task::{TaskContext, TaskFactory, TaskFuture, TaskSpec};
