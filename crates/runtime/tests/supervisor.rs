//! Black-box tests of the supervisor, on virtual time (`start_paused`): no
//! test sleeps for real, and every test is bounded by a timeout, so a
//! supervisor that hangs fails the test instead of hanging it.

// A failed expectation in a test should panic with its message.
#![allow(clippy::expect_used)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_runtime::{
    ExitOutcome, ExitSummary, FailureKind, HealthMonitor, HealthSnapshot, RestartPolicy,
    Supervisor, SupervisorError, SupervisorEvent, TaskContext, TaskError, TaskSpec, TaskState,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// Generous virtual-time bound for a whole test.
const LIMIT: Duration = Duration::from_secs(24 * 3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Runs `test` under the time limit.
async fn bounded(test: impl Future<Output = ()>) {
    assert!(
        timeout(LIMIT, test).await.is_ok(),
        "test hit its time limit"
    );
}

/// A supervisor running in the background, with its event receiver.
struct Harness {
    events: mpsc::Receiver<SupervisorEvent>,
    monitor: HealthMonitor,
    stop: oneshot::Sender<()>,
    run: JoinHandle<Result<ExitSummary, SupervisorError>>,
}

fn start(policy: RestartPolicy, grace: Duration, tasks: Vec<TaskSpec>) -> Harness {
    start_with_capacity(policy, grace, tasks, 256)
}

fn start_with_capacity(
    policy: RestartPolicy,
    grace: Duration,
    tasks: Vec<TaskSpec>,
    capacity: usize,
) -> Harness {
    let (supervisor, events) = new_supervisor(policy, tasks, capacity);
    run_in_background(supervisor.with_grace_period(grace), events)
}

/// A supervisor of `tasks` sending its events to a channel of `capacity`, and that channel.
fn new_supervisor(
    policy: RestartPolicy,
    tasks: Vec<TaskSpec>,
    capacity: usize,
) -> (Supervisor, mpsc::Receiver<SupervisorEvent>) {
    let (events_tx, events) = mpsc::channel(capacity);
    let mut supervisor = Supervisor::new(policy, events_tx);
    for task in tasks {
        supervisor.add(task).expect("task names are unique");
    }
    (supervisor, events)
}

/// Runs `supervisor` in the background until the harness is shut down.
fn run_in_background(supervisor: Supervisor, events: mpsc::Receiver<SupervisorEvent>) -> Harness {
    let monitor = supervisor.monitor();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(supervisor.run(async {
        let _ = stopped.await;
    }));
    Harness {
        events,
        monitor,
        stop,
        run,
    }
}

impl Harness {
    async fn next_event(&mut self) -> SupervisorEvent {
        self.events
            .recv()
            .await
            .expect("the supervisor keeps its event sender while running")
    }

    /// The next `count` `TaskFailed` events, as (attempt, kind, error, delay).
    async fn failures(&mut self, count: usize) -> Vec<(u32, FailureKind, String, Duration)> {
        let mut failures = Vec::new();
        while failures.len() < count {
            if let SupervisorEvent::TaskFailed {
                attempt,
                kind,
                error,
                next_restart_in,
                ..
            } = self.next_event().await
            {
                failures.push((attempt, kind, error, next_restart_in));
            }
        }
        failures
    }

    async fn wait_for_health(&self, condition: impl Fn(&HealthSnapshot) -> bool) {
        while !condition(&self.monitor.health()) {
            sleep(ms(10)).await;
        }
    }

    async fn shutdown(
        self,
    ) -> (
        Result<ExitSummary, SupervisorError>,
        mpsc::Receiver<SupervisorEvent>,
    ) {
        let _ = self.stop.send(());
        let result = self.run.await.expect("the supervisor does not panic");
        (result, self.events)
    }

    /// Shuts down and returns the exit summary, which must not be a fatal error.
    async fn summary(self) -> ExitSummary {
        let (result, _) = self.shutdown().await;
        result.expect("no fatal error")
    }
}

/// A task that waits for shutdown and then finishes cleanly.
fn polite(name: &str) -> TaskSpec {
    TaskSpec::new(name, true, |ctx| async move {
        ctx.shutdown_requested().await;
        Ok(())
    })
}

/// Reports progress every second until shutdown is requested.
async fn progress_every_second_until_shutdown(ctx: &TaskContext) {
    loop {
        tokio::select! {
            () = ctx.shutdown_requested() => return,
            () = sleep(secs(1)) => ctx.progress(),
        }
    }
}

/// A task that fails immediately on every attempt, recording when each
/// attempt started.
fn always_failing(name: &str, starts: Arc<Mutex<Vec<Instant>>>) -> TaskSpec {
    TaskSpec::new(name, true, move |ctx| {
        let starts = Arc::clone(&starts);
        async move {
            starts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Instant::now());
            Err(TaskError::new(format!(
                "connection refused (attempt {})",
                ctx.attempt()
            )))
        }
    })
}

fn no_crash_loops(initial: Duration, max: Duration) -> RestartPolicy {
    RestartPolicy {
        initial,
        max,
        crash_loop_restarts: 0,
        ..RestartPolicy::default()
    }
}

/// Restarts after 100 ms, doubling up to 1 s; three restarts within `window` are a crash loop.
fn crash_loop_after_3(window: Duration) -> RestartPolicy {
    RestartPolicy {
        initial: ms(100),
        max: secs(1),
        crash_loop_restarts: 3,
        crash_loop_window: window,
    }
}

/// `delay` is `base` ± 20 %, and never above `max`.
fn assert_jittered(delay: Duration, base: Duration, max: Duration) {
    assert!(delay <= max, "{delay:?} exceeds max {max:?}");
    assert!(
        delay >= base.mul_f64(0.8) && delay <= base.mul_f64(1.2).min(max),
        "{delay:?} is not {base:?} ± 20 %"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_task_is_restarted_with_growing_bounded_backoff() {
    bounded(async {
        let starts = Arc::new(Mutex::new(Vec::new()));
        let policy = RestartPolicy {
            crash_loop_restarts: 0,
            ..RestartPolicy::default()
        };
        let mut harness = start(
            policy,
            secs(1),
            vec![always_failing("uplink", Arc::clone(&starts))],
        );

        let failures = harness.failures(10).await;
        let base_ms = [
            500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000,
        ];
        for (n, (attempt, kind, error, delay)) in failures.iter().enumerate() {
            assert_eq!(*attempt as usize, n);
            assert_eq!(*kind, FailureKind::Error);
            assert_eq!(*error, format!("connection refused (attempt {n})"));
            assert_jittered(*delay, ms(base_ms[n]), policy.max);
        }

        // The announced delay is the delay actually waited (timers have
        // millisecond resolution).
        let starts = starts.lock().expect("not poisoned").clone();
        for (n, pair) in starts.windows(2).enumerate() {
            let waited = pair[1] - pair[0];
            let announced = failures[n].3;
            assert!(waited >= announced && waited <= announced + ms(2));
        }

        let summary = harness.summary().await;
        assert_eq!(summary.outcome("uplink"), Some(&ExitOutcome::NotRunning));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn backoff_resets_after_a_task_ran_healthily_for_longer_than_max() {
    bounded(async {
        let policy = no_crash_loops(secs(1), secs(10));
        let task = TaskSpec::new("ingest", true, |ctx| async move {
            if ctx.attempt() == 3 {
                // Healthy for longer than `max`, then a new incident.
                sleep(secs(20)).await;
            }
            Err(TaskError::new("broker went away"))
        });
        let mut harness = start(policy, secs(1), vec![task]);

        let delays: Vec<Duration> = harness
            .failures(5)
            .await
            .into_iter()
            .map(|failure| failure.3)
            .collect();
        for (delay, base) in delays.iter().zip([1, 2, 4, 1, 2]) {
            assert_jittered(*delay, secs(base), policy.max);
        }
        let (result, _) = harness.shutdown().await;
        assert!(result.is_ok());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_is_restarted_and_the_panic_message_is_in_the_task_failed_event() {
    bounded(async {
        let task = TaskSpec::new("decoder", true, |ctx| async move {
            match ctx.attempt() {
                0 => panic!("sensor table corrupt at row {}", 7),
                1 => panic!("literal boom"),
                _ => {
                    ctx.shutdown_requested().await;
                    Ok(())
                }
            }
        });
        let mut harness = start(RestartPolicy::default(), secs(1), vec![task]);

        let failures = harness.failures(2).await;
        assert_eq!(failures[0].0, 0);
        assert_eq!(failures[0].1, FailureKind::Panic);
        assert!(failures[0].2.contains("sensor table corrupt at row 7"));
        assert_eq!(failures[1].1, FailureKind::Panic);
        assert!(failures[1].2.contains("literal boom"));

        harness
            .wait_for_health(|health| {
                health.tasks[0].state == TaskState::Running && health.tasks[0].restarts == 2
            })
            .await;
        let summary = harness.summary().await;
        assert_eq!(summary.outcome("decoder"), Some(&ExitOutcome::Finished));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_factory_is_treated_as_a_failed_attempt() {
    bounded(async {
        let task = TaskSpec::new("uplink", true, |ctx| {
            assert!(ctx.attempt() > 0, "cannot build the client");
            async move {
                ctx.shutdown_requested().await;
                Ok(())
            }
        });
        let mut harness = start(RestartPolicy::default(), secs(1), vec![task]);

        let failures = harness.failures(1).await;
        assert_eq!(failures[0].1, FailureKind::Panic);
        assert!(
            failures[0]
                .2
                .contains("factory panicked: cannot build the client")
        );
        harness
            .wait_for_health(|health| health.tasks[0].state == TaskState::Running)
            .await;
        assert!(harness.summary().await.is_clean());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_task_that_returns_ok_unexpectedly_is_restarted() {
    bounded(async {
        let task = TaskSpec::new("outbox", true, |ctx| async move {
            if ctx.attempt() == 0 {
                return Ok(());
            }
            ctx.shutdown_requested().await;
            Ok(())
        });
        let mut harness = start(RestartPolicy::default(), secs(1), vec![task]);

        let failures = harness.failures(1).await;
        assert_eq!(failures[0].0, 0);
        assert_eq!(failures[0].1, FailureKind::UnexpectedExit);
        harness
            .wait_for_health(|health| {
                let task = &health.tasks[0];
                task.state == TaskState::Running && task.restarts == 1
            })
            .await;
        let summary = harness.summary().await;
        assert_eq!(summary.outcome("outbox"), Some(&ExitOutcome::Finished));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_loop_emits_exactly_one_crash_loop_event_after_n_restarts_inside_the_window() {
    bounded(async {
        let policy = crash_loop_after_3(secs(60));
        let starts = Arc::new(Mutex::new(Vec::new()));
        let mut harness = start(policy, secs(1), vec![always_failing("uplink", starts)]);

        let mut events = Vec::new();
        while events
            .iter()
            .filter(|event| matches!(event, SupervisorEvent::TaskFailed { .. }))
            .count()
            < 12
        {
            events.push(harness.next_event().await);
        }

        let crash_loops: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, event)| matches!(event, SupervisorEvent::CrashLoop { .. }))
            .map(|(index, _)| index)
            .collect();
        assert_eq!(crash_loops, vec![3], "right after the third failure, once");
        assert_eq!(
            events[3],
            SupervisorEvent::CrashLoop {
                task: "uplink".to_owned(),
                critical: true,
                restarts: 3,
                window: secs(60),
                last_error: "connection refused (attempt 2)".to_owned(),
            }
        );
        // From the crash loop on, the task keeps being restarted at max
        // backoff.
        for event in &events[2..] {
            if let SupervisorEvent::TaskFailed {
                next_restart_in, ..
            } = event
            {
                assert_jittered(*next_restart_in, policy.max, policy.max);
            }
        }
        let health = harness.monitor.health();
        assert!(health.tasks[0].crash_loop);
        assert!(!health.all_critical_alive());

        let (result, _) = harness.shutdown().await;
        assert!(result.is_ok());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_task_in_a_crash_loop_that_then_runs_for_a_window_is_reported_recovered() {
    bounded(async {
        let policy = crash_loop_after_3(secs(60));
        let healthy_since = Arc::new(Mutex::new(None));
        let task = {
            let healthy_since = Arc::clone(&healthy_since);
            TaskSpec::new("uplink", true, move |ctx| {
                let healthy_since = Arc::clone(&healthy_since);
                async move {
                    if ctx.attempt() < 4 {
                        return Err(TaskError::new("tls handshake failed"));
                    }
                    *healthy_since.lock().expect("not poisoned") = Some(Instant::now());
                    ctx.shutdown_requested().await;
                    Ok(())
                }
            })
        };
        let mut harness = start(policy, secs(1), vec![task]);

        let mut kinds = Vec::new();
        loop {
            let event = harness.next_event().await;
            let recovered = matches!(event, SupervisorEvent::Recovered { .. });
            kinds.push(match event {
                SupervisorEvent::TaskFailed { .. } => "failed",
                SupervisorEvent::CrashLoop { .. } => "crash loop",
                SupervisorEvent::Recovered { .. } => "recovered",
                _ => "other",
            });
            if recovered {
                break;
            }
        }
        assert_eq!(
            kinds,
            [
                "failed",
                "failed",
                "failed",
                "crash loop",
                "failed",
                "recovered"
            ]
        );
        let since = healthy_since
            .lock()
            .expect("not poisoned")
            .expect("the healthy attempt ran");
        let waited = Instant::now() - since;
        assert!(waited >= secs(60) && waited <= secs(60) + ms(2));
        let health = harness.monitor.health();
        assert!(!health.tasks[0].crash_loop);
        assert!(health.all_critical_alive());

        let (result, _) = harness.shutdown().await;
        assert!(result.is_ok());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn failures_spread_wider_than_the_window_are_not_a_crash_loop() {
    bounded(async {
        let policy = crash_loop_after_3(secs(10));
        let task = TaskSpec::new("ble", false, |_ctx| async move {
            sleep(secs(6)).await;
            Err(TaskError::new("adapter reset"))
        });
        let mut harness = start(policy, secs(1), vec![task]);

        let mut failed = 0;
        while failed < 8 {
            match harness.next_event().await {
                SupervisorEvent::TaskFailed { .. } => failed += 1,
                other => panic!("unexpected event {other:?}"),
            }
        }
        let (result, _) = harness.shutdown().await;
        assert!(result.is_ok());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_fatal_error_stops_the_supervisor_with_an_error() {
    bounded(async {
        let uplink_saw_shutdown = Arc::new(AtomicBool::new(false));
        let config = TaskSpec::new("config-watch", true, |_ctx| async move {
            sleep(secs(1)).await;
            Err(TaskError::fatal("unknown key `uplink.fhir.urll`"))
        });
        let uplink = {
            let saw = Arc::clone(&uplink_saw_shutdown);
            TaskSpec::new("uplink", true, move |ctx| {
                let saw = Arc::clone(&saw);
                async move {
                    ctx.shutdown_requested().await;
                    saw.store(ctx.is_shutting_down(), Ordering::SeqCst);
                    Ok(())
                }
            })
        };
        let (supervisor, mut events) =
            new_supervisor(RestartPolicy::default(), vec![config, uplink], 16);

        // The shutdown future never resolves: only the fatal error ends it.
        let result = supervisor.run(std::future::pending()).await;

        let Err(SupervisorError::Fatal {
            task,
            message,
            summary,
        }) = result
        else {
            panic!("expected a fatal error, got {result:?}");
        };
        assert_eq!(task, "config-watch");
        assert_eq!(message, "unknown key `uplink.fhir.urll`");
        assert_eq!(
            summary.outcome("config-watch"),
            Some(&ExitOutcome::Failed(
                "fatal: unknown key `uplink.fhir.urll`".to_owned()
            ))
        );
        assert_eq!(summary.outcome("uplink"), Some(&ExitOutcome::Finished));
        assert!(uplink_saw_shutdown.load(Ordering::SeqCst));
        assert!(
            events.try_recv().is_err(),
            "a fatal error is not a restart, so no TaskFailed"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn on_shutdown_tasks_see_shutdown_requested_and_finish() {
    bounded(async {
        let flushed = Arc::new(AtomicBool::new(false));
        let outbox = {
            let flushed = Arc::clone(&flushed);
            TaskSpec::new("outbox", true, move |ctx| {
                let flushed = Arc::clone(&flushed);
                async move {
                    progress_every_second_until_shutdown(&ctx).await;
                    // Draining takes a while, but less than the grace period.
                    sleep(secs(2)).await;
                    flushed.store(true, Ordering::SeqCst);
                    Ok(())
                }
            })
        };
        let harness = start(
            RestartPolicy::default(),
            secs(5),
            vec![outbox, polite("ingest")],
        );
        let started = Instant::now();
        sleep(secs(10)).await;
        let (result, mut events) = harness.shutdown().await;

        let summary = result.expect("no fatal error");
        assert!(summary.is_clean());
        assert!(summary.aborted().is_empty());
        assert_eq!(summary.outcome("outbox"), Some(&ExitOutcome::Finished));
        assert_eq!(summary.outcome("ingest"), Some(&ExitOutcome::Finished));
        assert!(flushed.load(Ordering::SeqCst));
        let took = Instant::now() - started;
        assert!(took >= secs(12) && took < secs(12) + ms(5), "took {took:?}");
        assert!(
            events.try_recv().is_err(),
            "a requested stop is not a failure"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ignores_shutdown_is_aborted_after_the_grace_period_and_reported() {
    bounded(async {
        /// Sets its flag when dropped, which is what an abort does to the
        /// task's future.
        struct DropFlag(Arc<AtomicBool>);
        impl Drop for DropFlag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }

        let dropped = Arc::new(AtomicBool::new(false));
        let stubborn = {
            let dropped = Arc::clone(&dropped);
            TaskSpec::new("stubborn", false, move |_ctx| {
                let flag = DropFlag(Arc::clone(&dropped));
                async move {
                    let _flag = flag;
                    std::future::pending::<()>().await;
                    Ok(())
                }
            })
        };
        let flaky = TaskSpec::new("flaky", false, |_ctx| async move {
            Err::<(), _>(TaskError::new("always"))
        });
        let policy = no_crash_loops(secs(30), secs(60));
        let harness = start(policy, secs(5), vec![polite("ingest"), stubborn, flaky]);
        let started = Instant::now();
        sleep(secs(10)).await;
        let (result, _) = harness.shutdown().await;

        let summary = result.expect("no fatal error");
        assert_eq!(summary.aborted(), vec!["stubborn"]);
        assert!(!summary.is_clean());
        assert_eq!(summary.outcome("ingest"), Some(&ExitOutcome::Finished));
        assert_eq!(summary.outcome("flaky"), Some(&ExitOutcome::NotRunning));
        assert!(
            dropped.load(Ordering::SeqCst),
            "the aborted future was dropped"
        );
        let took = Instant::now() - started;
        assert!(took >= secs(15) && took < secs(15) + ms(5), "took {took:?}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_full_event_channel_drops_and_counts_events_without_blocking_the_supervisor() {
    bounded(async {
        let policy = no_crash_loops(ms(10), ms(10));
        let starts = Arc::new(Mutex::new(Vec::new()));
        // Capacity 1 and nobody reads: every event after the first is dropped.
        let harness =
            start_with_capacity(policy, secs(1), vec![always_failing("uplink", starts)], 1);
        harness
            .wait_for_health(|health| health.tasks[0].restarts >= 50)
            .await;
        let health = harness.monitor.health();
        assert!(health.dropped_events >= 49, "{health:?}");

        let (result, mut events) = harness.shutdown().await;
        let summary = result.expect("no fatal error");
        assert!(summary.dropped_events >= health.dropped_events);
        assert!(matches!(
            events.try_recv(),
            Ok(SupervisorEvent::TaskFailed { attempt: 0, .. })
        ));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn health_reports_state_restarts_progress_and_last_error() {
    bounded(async {
        let task = TaskSpec::new("uplink", true, |ctx| async move {
            if ctx.attempt() == 0 {
                return Err(TaskError::new("timeout"));
            }
            progress_every_second_until_shutdown(&ctx).await;
            Ok(())
        })
        .with_stall_timeout(secs(5));
        let mut harness = start(RestartPolicy::default(), secs(1), vec![task]);

        let _ = harness.failures(1).await;
        let backing_off = harness.monitor.health();
        assert_eq!(backing_off.tasks[0].state, TaskState::BackingOff);
        assert_eq!(backing_off.tasks[0].last_error.as_deref(), Some("timeout"));
        assert!(backing_off.status_line().contains("uplink: restarting"));

        sleep(ms(3_500)).await;
        let running = harness.monitor.health();
        let task = &running.tasks[0];
        assert_eq!(task.state, TaskState::Running);
        assert_eq!(task.restarts, 1);
        // It reports progress every second (timers have millisecond resolution).
        assert!(task.last_progress.is_some_and(|age| age <= ms(1_002)));
        assert!(!task.stalled);
        assert_eq!(task.last_error.as_deref(), Some("timeout"));
        assert_eq!(running.status_line(), "1/1 tasks running");

        let (result, _) = harness.shutdown().await;
        assert!(result.is_ok());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn health_reports_every_task_stopped_once_the_supervisor_ends() {
    bounded(async {
        let (supervisor, _rx) =
            new_supervisor(RestartPolicy::default(), vec![polite("ingest")], 16);
        let monitor = supervisor.monitor();

        // Dropping the run future mid-way (as a panicking caller would)
        // still leaves no task looking alive.
        tokio::select! {
            _ = supervisor.run(std::future::pending()) => panic!("run ended on its own"),
            () = sleep(secs(1)) => {}
        }
        let health = monitor.health();
        assert!(health.shutting_down);
        assert_eq!(health.tasks[0].state, TaskState::Stopped);
        assert!(!health.all_critical_alive());
        // Anyone waiting for shutdown is released.
        monitor.shutdown_started().await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn started_resolves_once_every_task_has_been_started() {
    bounded(async {
        let tasks = vec![polite("ingest"), polite("uplink")];
        let (supervisor, events) = new_supervisor(RestartPolicy::default(), tasks, 16);
        let monitor = supervisor.monitor();
        assert!(timeout(secs(1), monitor.started()).await.is_err());
        assert!(!monitor.health().all_critical_alive(), "not started yet");

        let harness = run_in_background(supervisor, events);
        monitor.started().await;
        let health = monitor.health();
        assert!(health.all_critical_alive());
        assert!(!health.shutting_down);

        assert!(harness.summary().await.is_clean());
    })
    .await;
}

#[test]
fn a_duplicate_task_name_is_refused() {
    let (mut supervisor, _rx) = new_supervisor(RestartPolicy::default(), vec![], 1);
    assert!(supervisor.add(polite("uplink")).is_ok());
    let error = supervisor.add(polite("uplink"));
    assert!(matches!(
        error,
        Err(SupervisorError::DuplicateTask { ref name }) if name == "uplink"
    ));
}
