//! systemd integration: `READY=1`, `STATUS=`, `STOPPING=1`, and a
//! `WATCHDOG=1` that is sent only while every critical task is alive.
//!
//! The watchdog runs in-process and asks the supervisor's
//! [`HealthSnapshot`](crate::HealthSnapshot) before every ping, so systemd
//! restarts hearth when a critical task is dead, restarting, or stalled, not
//! only when the process hangs.
//! A standalone timer that pings regardless would only prove that a timer is
//! running.
//!
//! Notifying is best effort: without `NOTIFY_SOCKET` (run by hand, in tests)
//! nothing is sent, and a failed send is logged at debug level and never
//! stops the daemon.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::health::HealthSource;

/// The shortest ping period [`run_watchdog`] accepts, so that a bogus
/// interval cannot make it spin.
pub const MIN_PING_INTERVAL: Duration = Duration::from_millis(10);

/// One line of an `sd_notify` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification<'a> {
    /// `READY=1`: startup is complete.
    Ready,
    /// `STATUS=…`: what the daemon is doing, shown by `systemctl status`.
    /// Line breaks are replaced by spaces, because the protocol is
    /// line-based.
    Status(&'a str),
    /// `WATCHDOG=1`: the daemon is healthy.
    Watchdog,
    /// `STOPPING=1`: shutdown has begun (systemd stops expecting watchdog
    /// pings).
    Stopping,
}

impl fmt::Display for Notification<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready => f.write_str("READY=1"),
            Self::Watchdog => f.write_str("WATCHDOG=1"),
            Self::Stopping => f.write_str("STOPPING=1"),
            Self::Status(text) => {
                f.write_str("STATUS=")?;
                for part in text.split(['\n', '\r']).enumerate() {
                    if part.0 > 0 {
                        f.write_str(" ")?;
                    }
                    f.write_str(part.1)?;
                }
                Ok(())
            }
        }
    }
}

/// Where notifications go: systemd in production, a recorder in tests.
pub trait Notifier: Send + Sync {
    /// Sends `states` as one message. Never fails: delivery problems are the
    /// notifier's to log.
    fn notify(&self, states: &[Notification<'_>]);
}

impl<T: Notifier + ?Sized> Notifier for Arc<T> {
    fn notify(&self, states: &[Notification<'_>]) {
        (**self).notify(states);
    }
}

impl<T: Notifier + ?Sized> Notifier for &T {
    fn notify(&self, states: &[Notification<'_>]) {
        (**self).notify(states);
    }
}

/// Sends notifications to systemd's `NOTIFY_SOCKET` with the `sd-notify`
/// crate; does nothing when the variable is unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemdNotifier;

impl SystemdNotifier {
    /// A notifier for the socket named by `NOTIFY_SOCKET` at each send.
    pub fn new() -> Self {
        Self
    }
}

impl Notifier for SystemdNotifier {
    fn notify(&self, states: &[Notification<'_>]) {
        // Format once with our Display (which sanitises STATUS) and pass the
        // lines through verbatim.
        let lines: Vec<String> = states.iter().map(ToString::to_string).collect();
        let raw: Vec<sd_notify::NotifyState<'_>> = lines
            .iter()
            .map(|line| sd_notify::NotifyState::Custom(line))
            .collect();
        if let Err(error) = sd_notify::notify(&raw) {
            tracing::debug!(%error, message = ?lines, "sd_notify failed; continuing");
        }
    }
}

/// Records every message instead of sending it, for tests.
#[cfg(any(test, feature = "test-helpers"))]
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    messages: std::sync::Mutex<Vec<Vec<String>>>,
}

#[cfg(any(test, feature = "test-helpers"))]
impl RecordingNotifier {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message so far, each as its lines (`"READY=1"`, …).
    pub fn messages(&self) -> Vec<Vec<String>> {
        crate::health::lock(&self.messages).clone()
    }

    /// How many lines equal `line` across all messages.
    pub fn count(&self, line: &str) -> usize {
        crate::health::lock(&self.messages)
            .iter()
            .flatten()
            .filter(|sent| *sent == line)
            .count()
    }

    /// How many `WATCHDOG=1` pings were sent.
    pub fn watchdog_pings(&self) -> usize {
        self.count("WATCHDOG=1")
    }
}

#[cfg(any(test, feature = "test-helpers"))]
impl Notifier for RecordingNotifier {
    fn notify(&self, states: &[Notification<'_>]) {
        let lines = states.iter().map(ToString::to_string).collect();
        crate::health::lock(&self.messages).push(lines);
    }
}

/// The ping period for systemd's watchdog, if it is enabled for this process
/// (`WATCHDOG_USEC`, and `WATCHDOG_PID` if set matches): half the timeout, as
/// `sd_watchdog_enabled(3)` recommends.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().and_then(ping_interval)
}

/// Half of `timeout`, or `None` if that is zero.
pub fn ping_interval(timeout: Duration) -> Option<Duration> {
    let half = timeout / 2;
    (!half.is_zero()).then_some(half)
}

/// Sends `READY=1` with a status line.
/// Call it once config is validated, storage is recovered and the
/// supervisor's tasks are running
/// ([`HealthMonitor::started`](crate::HealthMonitor::started)), not when the
/// process starts.
pub fn ready<N: Notifier + ?Sized>(notifier: &N, status: &str) {
    notifier.notify(&[Notification::Ready, Notification::Status(status)]);
}

/// Sends `STATUS=…`.
pub fn status<N: Notifier + ?Sized>(notifier: &N, status: &str) {
    notifier.notify(&[Notification::Status(status)]);
}

/// Sends `STOPPING=1`; call it as soon as shutdown begins.
pub fn stopping<N: Notifier + ?Sized>(notifier: &N) {
    notifier.notify(&[Notification::Stopping]);
}

/// Pings `WATCHDOG=1` every `interval` while
/// [`all_critical_alive`](crate::HealthSnapshot::all_critical_alive) holds.
///
/// While it does not, no ping is sent and a warning names the dead or
/// stalled tasks (once per change of that set), so systemd restarts hearth
/// when `WatchdogSec` runs out.
/// Returns when `shutdown` resolves or the health source reports shutting
/// down; send [`stopping`] then, which tells systemd to stop expecting pings.
///
/// The first check is immediate.
pub async fn run_watchdog<H, N, S>(health: H, notifier: N, interval: Duration, shutdown: S)
where
    H: HealthSource,
    N: Notifier,
    S: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval.max(MIN_PING_INTERVAL));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut shutdown = std::pin::pin!(shutdown);
    // Names of the critical tasks that were not alive at the last check;
    // `None` while everything was alive.
    let mut unhealthy: Option<Vec<String>> = None;
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            _ = ticks.tick() => {}
        }
        let snapshot = health.health();
        if snapshot.shutting_down {
            tracing::debug!("supervisor is shutting down; watchdog stops");
            return;
        }
        if snapshot.all_critical_alive() {
            notifier.notify(&[Notification::Watchdog]);
            if unhealthy.take().is_some() {
                tracing::info!("all critical tasks alive again; watchdog pings resumed");
            }
            continue;
        }
        let names: Vec<String> = snapshot
            .unhealthy_critical()
            .map(|task| task.name.clone())
            .collect();
        if unhealthy.as_ref() != Some(&names) {
            let problems: Vec<String> = snapshot
                .unhealthy_critical()
                .map(|task| format!("{}: {}", task.name, task.problem().unwrap_or_default()))
                .collect();
            tracing::warn!(
                tasks = %problems.join("; "),
                "critical tasks are not alive; withholding WATCHDOG=1 so systemd restarts hearth if this persists"
            );
        }
        unhealthy = Some(names);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{HealthSnapshot, TaskState, TaskStatus};
    use crate::{RestartPolicy, Supervisor, TaskError, TaskSpec};
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::sync::{mpsc, oneshot};
    use tokio::time::{sleep, timeout};

    const LIMIT: Duration = Duration::from_secs(3600);
    const SECOND: Duration = Duration::from_secs(1);

    /// A critical task that reports progress every second, forever.
    fn busy(name: &str) -> TaskSpec {
        TaskSpec::new(name, true, |ctx| async move {
            loop {
                sleep(SECOND).await;
                ctx.progress();
            }
        })
        .with_stall_timeout(Duration::from_secs(5))
    }

    struct Rig {
        notifier: Arc<RecordingNotifier>,
        stop: oneshot::Sender<()>,
        supervisor: tokio::task::JoinHandle<Result<crate::ExitSummary, crate::SupervisorError>>,
        watchdog: tokio::task::JoinHandle<()>,
    }

    fn start(tasks: Vec<TaskSpec>) -> Rig {
        start_with(RestartPolicy::default(), tasks)
    }

    fn start_with(policy: RestartPolicy, tasks: Vec<TaskSpec>) -> Rig {
        let (events, _) = mpsc::channel(64);
        let mut supervisor = Supervisor::new(policy, events);
        for task in tasks {
            assert!(supervisor.add(task).is_ok());
        }
        let monitor = supervisor.monitor();
        let notifier = Arc::new(RecordingNotifier::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let supervisor = tokio::spawn(supervisor.run(async {
            let _ = stopped.await;
        }));
        let watchdog = tokio::spawn(run_watchdog(
            monitor.clone(),
            Arc::clone(&notifier),
            SECOND,
            monitor.shutdown_started(),
        ));
        Rig {
            notifier,
            stop,
            supervisor,
            watchdog,
        }
    }

    impl Rig {
        async fn finish(self) {
            let _ = self.stop.send(());
            assert!(matches!(self.supervisor.await, Ok(Ok(_))));
            // The watchdog ends by itself once the supervisor shuts down.
            assert!(self.watchdog.await.is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_pings_while_all_critical_tasks_make_progress() {
        let test = async {
            let rig = start(vec![busy("ingest"), busy("uplink")]);
            sleep(Duration::from_millis(30_500)).await;
            // One immediate check, then one per second.
            assert_eq!(rig.notifier.watchdog_pings(), 31);
            rig.finish().await;
        };
        assert!(timeout(LIMIT, test).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_critical_task_stops_the_watchdog_pings() {
        let test = async {
            let stall = TaskSpec::new("uplink", true, |ctx| async move {
                for _ in 0..10 {
                    sleep(SECOND).await;
                    ctx.progress();
                }
                // Stuck: alive as far as tokio can tell, but doing nothing.
                std::future::pending::<()>().await;
                Ok(())
            })
            .with_stall_timeout(Duration::from_secs(5));
            let rig = start(vec![busy("ingest"), stall]);

            sleep(Duration::from_millis(14_500)).await;
            let before_stall = rig.notifier.watchdog_pings();
            assert_eq!(before_stall, 15, "pings at t = 0..=14 s");

            sleep(Duration::from_secs(60)).await;
            // Last progress at t = 10 s; stalled from just after t = 15 s.
            assert_eq!(rig.notifier.watchdog_pings(), before_stall + 1);
            rig.finish().await;
        };
        assert!(timeout(LIMIT, test).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_critical_task_stops_the_watchdog_pings_until_it_is_back() {
        let test = async {
            let fails_once = TaskSpec::new("uplink", true, |ctx| async move {
                if ctx.attempt() == 0 {
                    sleep(Duration::from_millis(2_500)).await;
                    return Err(TaskError::new("connection refused"));
                }
                ctx.shutdown_requested().await;
                Ok(())
            });
            let policy = RestartPolicy {
                initial: Duration::from_secs(2),
                ..RestartPolicy::default()
            };
            let rig = start_with(policy, vec![busy("ingest"), fails_once]);
            // Fails at 2.5 s and restarts 1.6..2.4 s later (2 s ± 20 %), so
            // the checks at 3 and 4 s see it backing off, the one at 5 s
            // sees it running again.
            sleep(Duration::from_millis(6_500)).await;
            assert_eq!(rig.notifier.watchdog_pings(), 5, "pings at 0, 1, 2, 5, 6 s");
            rig.finish().await;
        };
        assert!(timeout(LIMIT, test).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_non_critical_task_does_not_stop_the_watchdog_pings() {
        let test = async {
            let broken = TaskSpec::new("ble-scan", false, |_ctx| async move {
                Err::<(), _>(TaskError::new("adapter missing"))
            });
            let rig = start(vec![busy("ingest"), broken]);
            sleep(Duration::from_millis(20_500)).await;
            assert_eq!(rig.notifier.watchdog_pings(), 21);
            rig.finish().await;
        };
        assert!(timeout(LIMIT, test).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_stops_when_its_shutdown_future_resolves() {
        let test = async {
            let notifier = RecordingNotifier::new();
            let healthy = || HealthSnapshot {
                tasks: Vec::new(),
                shutting_down: false,
                dropped_events: 0,
            };
            run_watchdog(
                healthy,
                &notifier,
                SECOND,
                sleep(Duration::from_millis(2_500)),
            )
            .await;
            assert_eq!(notifier.watchdog_pings(), 3);
        };
        assert!(timeout(LIMIT, test).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_resumes_pinging_when_a_source_turns_healthy_again() {
        let test = async {
            let notifier = RecordingNotifier::new();
            let alive = Arc::new(AtomicBool::new(false));
            let source = {
                let alive = Arc::clone(&alive);
                move || HealthSnapshot {
                    tasks: vec![TaskStatus {
                        name: "uplink".to_owned(),
                        critical: true,
                        state: if alive.load(Ordering::Relaxed) {
                            TaskState::Running
                        } else {
                            TaskState::BackingOff
                        },
                        restarts: 1,
                        last_progress: None,
                        stall_timeout: None,
                        stalled: false,
                        crash_loop: false,
                        last_error: Some("timeout".to_owned()),
                    }],
                    shutting_down: false,
                    dropped_events: 0,
                }
            };
            let flip = async {
                sleep(Duration::from_millis(3_500)).await;
                alive.store(true, Ordering::Relaxed);
                sleep(Duration::from_secs(2)).await;
            };
            run_watchdog(source, &notifier, SECOND, flip).await;
            assert_eq!(notifier.watchdog_pings(), 2, "pings at 4 and 5 s only");
        };
        assert!(timeout(LIMIT, test).await.is_ok());
    }

    #[test]
    fn notifications_use_the_sd_notify_wire_format() {
        let notifier = RecordingNotifier::new();
        ready(&notifier, "2 routes up");
        status(&notifier, "line one\nline two");
        stopping(&notifier);
        assert_eq!(
            notifier.messages(),
            vec![
                vec!["READY=1".to_owned(), "STATUS=2 routes up".to_owned()],
                vec!["STATUS=line one line two".to_owned()],
                vec!["STOPPING=1".to_owned()],
            ]
        );
    }

    #[test]
    fn the_ping_interval_is_half_the_watchdog_timeout() {
        assert_eq!(
            ping_interval(Duration::from_secs(30)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(ping_interval(Duration::ZERO), None);
        assert_eq!(ping_interval(Duration::from_nanos(1)), None);
    }
}
