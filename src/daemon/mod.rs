//! Wiring: configuration → outbox, writer, drivers, route senders, supervisor, watchdog.
//!
//! Used by `hearth run` and `hearth demo` alike, so the demo shows the real path. [`run`] reads
//! as the sequence of steps; each concern lives in its own module, where a new capability
//! (SCAIP alarms, voice, connectivity, remote management) plugs in:
//!
//! - [`storage`]: identity, outbox, writer with its disk-full reserve, device registry, ingest;
//! - [`settings`]: THE place where configuration becomes a driver's settings;
//! - [`sources`]: one supervised task per source, one function per source kind;
//! - [`routes`]: uplinks and route senders;
//! - [`alarms`]: alarm routes and who hears their events, e.g. [`receipt`] (the receipt signal);
//! - [`maintenance`]: expiry, systemd status, alarms about supervised tasks;
//! - [`shutdown`]: the two-phase shutdown.

mod alarms;
mod maintenance;
mod receipt;
mod routes;
pub mod settings;
mod shutdown;
mod sources;
mod storage;

use std::future::Future;
use std::sync::Arc;

use hearth_config::Config;
use hearth_driver_api::DriverContext;
use hearth_runtime::watchdog::{self, SystemdNotifier};
use hearth_runtime::{RestartPolicy, Supervisor, SupervisorEvent};
use hearth_uplink::SenderEvent;
use hearth_uplink::loopback::Received;
use tokio::sync::mpsc;

pub use storage::outbox_path;

/// Optional observers, used by the demo to show what flows.
#[derive(Default)]
pub struct Observers {
    /// How many stored records the simulated glucose meter holds (demo, tests).
    pub simulated_glucose_records: u16,
    /// Every record a loopback receiver got.
    pub received: Option<mpsc::Sender<Received>>,
    /// Route sender events.
    pub sender: Option<mpsc::Sender<SenderEvent>>,
    /// What alarm routes report (attempts, handled, failing).
    pub alarm: Option<mpsc::Sender<hearth_uplink_scaip::AlarmEvent>>,
    /// Each receipt signal shown in the home, described (the demo).
    pub receipt: Option<mpsc::Sender<String>>,
}

/// What the daemon did, for the caller's final words.
#[derive(Debug)]
pub struct RunSummary {
    /// Tasks aborted after the shutdown grace period.
    pub aborted: Vec<String>,
}

/// Run the daemon until `shutdown` resolves (or a fatal error).
pub async fn run(
    mut config: Config,
    observers: Observers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunSummary> {
    // Open storage (this resolves the box's identity into `config`).
    let storage = storage::open(&mut config).await?;
    let (mut supervisor, events_rx) = supervisor(&config.supervisor);
    let phases = shutdown::Phases::new(&config.supervisor);
    let (ingest, technical) = storage.ingest(&phases.sources_stop);
    let stall = config.supervisor.stall_timeout.get();

    // Start sources.
    sources::start(
        &config,
        &observers,
        &mut supervisor,
        &sources::SourceWiring {
            ctx: DriverContext::new(
                ingest.clone(),
                technical.clone(),
                phases.sources_stop.clone(),
            ),
            running: phases.sources_running.clone(),
        },
    )?;

    // Start routes.
    routes::start(
        &config,
        &observers,
        &mut supervisor,
        &routes::RouteWiring {
            writer: storage.writer.clone(),
            devices: storage.devices.clone(),
            technical: technical.clone(),
            stop: phases.stop.clone(),
            stall,
            alarm_listeners: alarms::listeners(&config, &observers)?,
        },
    )?;

    // Maintenance.
    maintenance::start_expiry(&mut supervisor, &storage.writer, &phases.stop, stall)?;

    // Supervise.
    let monitor = supervisor.monitor();
    let notifier = Arc::new(SystemdNotifier::new());
    tokio::spawn(maintenance::alarm_supervisor_events(
        events_rx,
        technical.clone(),
        phases.stop.clone(),
    ));
    let run = shutdown::supervise(
        supervisor,
        phases,
        shutdown,
        notifier.clone(),
        storage.writer.clone(),
    );
    monitor.started().await;
    watchdog::ready(&*notifier, &monitor.health().status_line());
    tracing::info!(gateway = %config.gateway.id, data_dir = %config.gateway.data_dir.display(), "hearth is running");
    if let Some(interval) = watchdog::watchdog_interval() {
        tokio::spawn(watchdog::run_watchdog(
            monitor.clone(),
            notifier.clone(),
            interval,
            monitor.shutdown_started(),
        ));
    }
    tokio::spawn(maintenance::status_updates(
        storage.writer.clone(),
        notifier.clone(),
        monitor.clone(),
    ));

    // Shut down: once the supervisor is done, the last writer handles go.
    let outcome = run.await?;
    drop(ingest);
    drop(technical);
    let storage::Storage {
        writer,
        writer_thread,
        ..
    } = storage;
    drop(writer);
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e) => return Err(anyhow::Error::new(e).context("hearth stopped on a fatal error")),
    };
    shutdown::join_writer(writer_thread).await;
    Ok(RunSummary {
        aborted: summary.aborted().into_iter().map(str::to_owned).collect(),
    })
}

/// The supervisor with the configured restart policy and grace period, and its events.
fn supervisor(
    config: &hearth_config::SupervisorConfig,
) -> (Supervisor, mpsc::Receiver<SupervisorEvent>) {
    let policy = RestartPolicy {
        initial: config.restart_initial.get(),
        max: config.restart_max.get(),
        crash_loop_restarts: config.crash_loop_restarts,
        crash_loop_window: config.crash_loop_window.get(),
    };
    let (events_tx, events_rx) = mpsc::channel(256);
    let supervisor =
        Supervisor::new(policy, events_tx).with_grace_period(config.shutdown_grace.get());
    (supervisor, events_rx)
}
