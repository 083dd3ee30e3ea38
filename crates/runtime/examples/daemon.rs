//! How the hearth binary wires the runtime: supervisor, READY, watchdog,
//! signals, STOPPING and the exit summary.
//!
//! Run it with `cargo run -p hearth-runtime --example daemon` and stop it
//! with Ctrl-C.

use std::time::Duration;

use hearth_runtime::watchdog::{self, SystemdNotifier};
use hearth_runtime::{RestartPolicy, Supervisor, SupervisorEvent, TaskError, TaskSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let signal = hearth_runtime::shutdown_signal()?;
    let (events_tx, mut events) = tokio::sync::mpsc::channel(64);
    let mut supervisor = Supervisor::new(RestartPolicy::default(), events_tx)
        .with_grace_period(Duration::from_secs(10));
    supervisor.add(
        TaskSpec::new("uplink", true, |ctx| async move {
            loop {
                tokio::select! {
                    () = ctx.shutdown_requested() => return Ok::<(), TaskError>(()),
                    () = tokio::time::sleep(Duration::from_secs(1)) => ctx.progress(),
                }
            }
        })
        .with_stall_timeout(Duration::from_secs(60)),
    )?;
    let monitor = supervisor.monitor();
    let notifier = SystemdNotifier::new();

    // Alarms: a crash loop becomes a technical alarm in the real binary.
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let SupervisorEvent::CrashLoop { task, .. } = &event {
                eprintln!("technical alarm: {task} is crash-looping");
            }
        }
    });

    let run = tokio::spawn(supervisor.run(async move {
        let which = signal.await;
        eprintln!("{which} received; shutting down");
        watchdog::stopping(&notifier);
    }));
    monitor.started().await;
    watchdog::ready(&notifier, &monitor.health().status_line());
    if let Some(interval) = watchdog::watchdog_interval() {
        tokio::spawn(watchdog::run_watchdog(
            monitor.clone(),
            notifier,
            interval,
            monitor.shutdown_started(),
        ));
    }

    let summary = run.await??;
    if !summary.aborted().is_empty() {
        eprintln!("aborted after the grace period: {:?}", summary.aborted());
    }
    Ok(())
}
