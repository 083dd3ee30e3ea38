//! Maintenance: what runs beside the sources and senders for as long as hearth does — expiry
//! of records past their retention, systemd STATUS= updates, and technical alarms about
//! supervised tasks that crash-loop.

use std::sync::Arc;
use std::time::Duration;

use hearth_driver_api::TechnicalAlarms;
use hearth_model::{Severity, TechnicalKind};
use hearth_outbox::OutboxWriter;
use hearth_runtime::watchdog::{self, Notifier, SystemdNotifier};
use hearth_runtime::{Supervisor, SupervisorEvent, TaskError, TaskSpec};
use tokio::sync::{mpsc, watch};

/// The outbox maintenance task: every minute, drop the records past their retention
/// (undelivered, with a warning).
pub(super) fn start_expiry(
    supervisor: &mut Supervisor,
    writer: &OutboxWriter,
    stop: &watch::Receiver<bool>,
    stall: Duration,
) -> anyhow::Result<()> {
    let writer = writer.clone();
    let stop = stop.clone();
    supervisor.add(
        TaskSpec::new("outbox/maintenance", true, move |task| {
            let writer = writer.clone();
            let mut stop = stop.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return Ok(()),
                        _ = tick.tick() => {}
                    }
                    let expired = writer.expire().await.map_err(TaskError::new)?;
                    if expired.iter().sum::<u64>() > 0 {
                        tracing::warn!(
                            ?expired,
                            "records past their retention were dropped undelivered"
                        );
                    }
                    task.progress();
                }
            }
        })
        .with_stall_timeout(Duration::from_secs(180).max(stall)),
    )?;
    Ok(())
}

/// systemd STATUS= shows the backlog and task health (`systemctl status hearth`).
pub(super) async fn status_updates(
    writer: OutboxWriter,
    notifier: Arc<SystemdNotifier>,
    monitor: hearth_runtime::HealthMonitor,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let shutdown = monitor.shutdown_started();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        // A failed read only skips this update; the next tick tries again.
        let Ok(stats) = writer.stats().await else {
            continue;
        };
        let line = format!(
            "backlog {} records; {}",
            stats.records(),
            monitor.health().status_line()
        );
        notifier.notify(&[watchdog::Notification::Status(&line)]);
    }
}

/// Crash loops become technical alarms (A7: critical functional faults). An alarm that cannot
/// be stored is tried again every second until it is (or hearth stops), never forgotten.
pub(super) async fn alarm_supervisor_events(
    mut events: mpsc::Receiver<SupervisorEvent>,
    technical: TechnicalAlarms,
    mut stop: watch::Receiver<bool>,
) {
    while let Some(event) = events.recv().await {
        let mut logged = false;
        loop {
            match store_supervisor_event(&event, &technical).await {
                Ok(_) => break,
                Err(e) => {
                    if !logged {
                        tracing::error!(error = %e, "cannot store a technical alarm about a supervised task yet; retrying every second");
                        logged = true;
                    }
                    if matches!(e, hearth_driver_api::IngestError::Stopped) || *stop.borrow() {
                        break;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                }
            }
        }
    }
}

/// Store the technical alarm of one supervisor event (if it has one).
async fn store_supervisor_event(
    event: &SupervisorEvent,
    technical: &TechnicalAlarms,
) -> Result<bool, hearth_driver_api::IngestError> {
    match event {
        SupervisorEvent::CrashLoop {
            task,
            restarts,
            window,
            last_error,
            ..
        } => technical
            .raise(
                &format!("supervisor/{task}"),
                TechnicalKind::TaskCrashLoop,
                Severity::Critical,
                format!(
                    "task {task} restarted {restarts} times within {}s; last error: {last_error}. \
                             hearth keeps restarting it; check the logs (journalctl -u hearth)",
                    window.as_secs()
                ),
            )
            .await,
        SupervisorEvent::Recovered { task } => {
            technical
                .clear(
                    &format!("supervisor/{task}"),
                    TechnicalKind::TaskCrashLoop,
                    format!("task {task} runs steadily again"),
                )
                .await
        }
        _ => Ok(false),
    }
}
