//! Wiring: configuration → outbox, writer, drivers, route senders, supervisor, watchdog.
//!
//! Used by `hearth run` and `hearth demo` alike, so the demo shows the real path.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hearth_config::{Config, SourceKind, UplinkKind};
use hearth_driver_api::{Driver, DriverContext, Ingest, TechnicalAlarms};
use hearth_driver_simulated::{Simulated, SimulatedSettings};
use hearth_model::{Severity, TechnicalKind};
use hearth_outbox::{
    IntegrityCheck, Outbox, OutboxOptions, OutboxWriter, Retention, RetryPolicy, RouteSpec,
};
use hearth_runtime::watchdog::{self, Notifier, SystemdNotifier};
use hearth_runtime::{RestartPolicy, Supervisor, SupervisorEvent, TaskError, TaskSpec};
use hearth_uplink::loopback::{LoopbackUplink, Received};
use hearth_uplink::{RouteSender, RouteStatus, SenderEvent, Uplink};
use tokio::sync::{mpsc, watch};

/// The outbox file inside the data directory.
pub fn outbox_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("outbox.db")
}

/// Build a BLE source's driver settings from its configuration.
fn ble_settings(
    config: &Config,
    source: &hearth_config::SourceConfig,
) -> anyhow::Result<hearth_driver_ble::driver::BleSettings> {
    use hearth_driver_ble::backend::Address;
    use hearth_driver_ble::driver::{BleSettings, DeviceEntry};
    let ble = source.ble_settings();
    let time_zone = config
        .gateway
        .time_zone()
        .map_err(|e| anyhow::anyhow!("gateway.time_zone: {e}"))?;
    let mut devices = Vec::new();
    for d in &ble.devices {
        let address = Address::parse(&d.address).with_context(|| {
            format!(
                "source {:?}: device address {:?} is not AA:BB:CC:DD:EE:FF",
                source.name, d.address
            )
        })?;
        // The stable id: the configured System ID (EUI-64) if given, else the address.
        let id_value = d
            .system_id
            .as_ref()
            .map_or_else(|| address.compact(), |s| s.to_ascii_lowercase());
        devices.push(DeviceEntry {
            address,
            id: hearth_model::DeviceId::new("ble", &id_value)?,
            person: d.person.clone().map(hearth_model::PersonRef::new),
            category: d.category_or(source.category),
        });
    }
    if devices.is_empty() && matches!(ble.backend, hearth_config::BleBackendKind::Simulated) {
        devices = hearth_driver_ble::sim::scripted_allow_list(source.category);
    }
    Ok(BleSettings {
        name: source.name.clone(),
        devices,
        offline_after: ble.offline_after.get(),
        low_battery_percent: ble.low_battery_percent,
        clock_tolerance: ble.clock_tolerance.get(),
        time_zone,
        idle_timeout: ble.idle_timeout.get(),
        reconnect_initial: ble.reconnect_initial.get(),
        reconnect_max: ble.reconnect_max.get(),
        commit_chunk: usize::try_from(ble.commit_chunk).unwrap_or(100),
    })
}

/// Optional observers, used by the demo to show what flows.
#[derive(Default)]
pub struct Observers {
    /// How many stored records the simulated glucose meter holds (demo, tests).
    pub simulated_glucose_records: u16,
    /// Every record a loopback receiver got.
    pub received: Option<mpsc::Sender<Received>>,
    /// Route sender events.
    pub sender: Option<mpsc::Sender<SenderEvent>>,
}

/// What the daemon did, for the caller's final words.
#[derive(Debug)]
pub struct RunSummary {
    /// Tasks aborted after the shutdown grace period.
    pub aborted: Vec<String>,
}

fn retry_policy(r: &hearth_config::RetryConfig) -> RetryPolicy {
    RetryPolicy {
        initial: r.initial.get(),
        max: r.max.get(),
        jitter: r.jitter,
    }
}

fn outbox_options(config: &Config) -> OutboxOptions {
    let routes = config
        .routes
        .iter()
        .filter(|r| r.enabled)
        .map(|r| RouteSpec {
            name: r.name.clone(),
            categories: r.categories.clone(),
            retry: retry_policy(&config.retry_for(r)),
            // FHIR and PCD-01 carry measurements; alarms go to alarm receivers (SCAIP).
            readings_only: matches!(r.uplink, UplinkKind::Fhir | UplinkKind::Pcd01),
        })
        .collect();
    let mut opts = OutboxOptions::new(outbox_path(&config.gateway.data_dir), routes);
    opts.max_bytes = config.outbox.max_bytes.bytes();
    opts.max_rows = config.outbox.max_rows;
    opts.dead_letter_alarm = true;
    opts.retention = Retention {
        health: config.outbox.retention.health.get(),
        welfare: config.outbox.retention.welfare.get(),
        administrative: config.outbox.retention.administrative.get(),
    };
    opts.integrity = match config.outbox.integrity_check {
        hearth_config::IntegrityCheck::Quick => IntegrityCheck::Quick,
        hearth_config::IntegrityCheck::Full => IntegrityCheck::Full,
        hearth_config::IntegrityCheck::Off => IntegrityCheck::Off,
    };
    opts
}

/// Build a route's uplink from its configuration.
fn make_uplink(
    config: &Config,
    route: &hearth_config::RouteConfig,
    observers: &Observers,
    devices: &hearth_model::DeviceRegistry,
) -> anyhow::Result<Box<dyn Uplink>> {
    match route.uplink {
        UplinkKind::Loopback => {
            let path = config.resolve_path(&route.loopback_path());
            let mut up = LoopbackUplink::open(&route.name, &path)?;
            if let Some(obs) = &observers.received {
                up = up.with_observer(obs.clone());
            }
            Ok(Box::new(up))
        }
        UplinkKind::Fhir => Ok(Box::new(
            fhir_uplink(config, route)?.with_device_registry(devices.clone()),
        )),
        UplinkKind::Pcd01 => Ok(Box::new(pcd01_uplink(config, route)?)),
        other => bail!(
            "route {:?}: uplink {other} is not available in this build",
            route.name
        ),
    }
}

fn tls_files(route: &hearth_config::RouteConfig) -> hearth_tls::TlsFiles {
    let t = route.tls.clone().unwrap_or_default();
    hearth_tls::TlsFiles {
        ca_file: t.ca_file,
        client_cert: t.client_cert,
        client_key: t.client_key,
    }
}

fn fhir_uplink(
    config: &Config,
    route: &hearth_config::RouteConfig,
) -> anyhow::Result<hearth_uplink_net::FhirUplink> {
    use hearth_config::{FhirAuthKind, FhirProfile};
    use hearth_uplink_fhir::{Context, Gateway, PatientRef, Profile};
    let Some(f) = &route.fhir else {
        bail!(
            "route {:?}: uplink = \"fhir\" needs [route.fhir]",
            route.name
        );
    };
    let mut gateway = Gateway::new(hearth_model::DeviceId::new("hearth", &config.gateway.id)?);
    gateway.eui64 = config.gateway.eui64.clone();
    gateway.manufacturer = Some("hearth".into());
    gateway.model = Some("hearth home gateway".into());
    gateway.software_version = Some(env!("CARGO_PKG_VERSION").into());
    let patient = match &f.patient {
        Some(p) => Some(
            PatientRef::from_person(&hearth_model::PersonRef::new(p.clone())).map_err(|_| {
                anyhow::anyhow!(
                    "route {:?}: fhir.patient is neither Patient/<id> nor <system>|<value>",
                    route.name
                )
            })?,
        ),
        None => None,
    };
    let mut context = Context::new(gateway, patient);
    if let Some(system) = &f.device_id_system {
        context.device_id_system = system.clone();
    }
    context.options.unsupported = hearth_uplink_fhir::Unsupported::Skip;
    context.national.organization = f
        .organization
        .clone()
        .map(|orgnr| hearth_uplink_fhir::Organization { orgnr, name: None });
    context.national.municipality = f
        .municipality
        .clone()
        .map(|number| hearth_uplink_fhir::Municipality { number, name: None });
    let a = &f.auth;
    let auth = match a.kind {
        FhirAuthKind::None => hearth_uplink_net::Auth::None,
        FhirAuthKind::Bearer => {
            let file = a.token_file.clone().unwrap_or_default();
            let token = std::fs::read_to_string(&file).with_context(|| {
                format!(
                    "route {:?}: cannot read fhir.auth.token_file {}",
                    route.name,
                    file.display()
                )
            })?;
            hearth_uplink_net::Auth::Bearer(token.lines().next().unwrap_or("").trim().to_owned())
        }
        FhirAuthKind::Oauth2 => {
            hearth_uplink_net::Auth::OAuth2ClientCredentials(hearth_uplink_net::OAuth2 {
                token_url: a.token_url.clone().unwrap_or_default(),
                client_id: a.client_id.clone().unwrap_or_default(),
                scope: a.scope.clone(),
                key_file: a.private_key.clone().unwrap_or_default(),
                kid: a.key_id.clone(),
                tls: None,
            })
        }
    };
    let profile = match f.profile {
        FhirProfile::Phd => Profile::Phd,
        FhirProfile::Vkp => Profile::Vkp,
        FhirProfile::Pmd => Profile::Pmd,
    };
    hearth_uplink_net::FhirUplink::new(hearth_uplink_net::FhirSettings {
        base_url: f.url.clone(),
        tls: tls_files(route),
        timeout: f.timeout.get(),
        profile,
        context,
        auth,
    })
    .map(|u| u.skip_unsupported(f.unsupported == hearth_config::FhirUnsupported::Skip))
    .map_err(|e| anyhow::anyhow!("route {:?}: {e}", route.name))
}

fn pcd01_uplink(
    config: &Config,
    route: &hearth_config::RouteConfig,
) -> anyhow::Result<hearth_uplink_net::MllpUplink> {
    let Some(m) = &route.pcd01 else {
        bail!(
            "route {:?}: uplink = \"pcd01\" needs [route.pcd01]",
            route.name
        );
    };
    let mut context = hearth_uplink_pcd01::Context::new("HEARTH", hearth_model::Timestamp::now());
    context.sending_facility = Some(config.gateway.id.clone());
    context.gateway_eui64 = config
        .gateway
        .eui64
        .as_deref()
        .map(|e| hearth_model::GatewayId::parse(e).map(|g| g.compact()))
        .transpose()?;
    context.patient = m.patient.clone().map(hearth_model::PersonRef::new);
    context.receiving_application = m.receiving_application.clone();
    context.receiving_facility = m.receiving_facility.clone();
    context.ack_request = match m.ack_mode {
        hearth_config::Pcd01AckMode::Accept => hearth_uplink_pcd01::AckRequest::AcceptAlways,
        hearth_config::Pcd01AckMode::Application => {
            hearth_uplink_pcd01::AckRequest::ApplicationAlways
        }
    };
    context.processing_id = match m.processing_id {
        hearth_config::Pcd01ProcessingId::P => hearth_uplink_pcd01::ProcessingId::Production,
        hearth_config::Pcd01ProcessingId::T => hearth_uplink_pcd01::ProcessingId::Training,
        hearth_config::Pcd01ProcessingId::D => hearth_uplink_pcd01::ProcessingId::Debugging,
    };
    // Components as configured (validated: 1..=4 and 1..=3); the encoder escapes each one.
    let part = |v: &str, n: usize| v.split('^').nth(n).unwrap_or("").to_owned();
    if let Some(v) = &m.profile {
        context.profile = hearth_uplink_pcd01::Coded {
            code: part(v, 0),
            text: part(v, 1),
            system: part(v, 2),
            system_type: part(v, 3),
        };
    }
    if let Some(v) = &m.universal_service {
        context.universal_service = hearth_uplink_pcd01::Coded {
            code: part(v, 0),
            text: part(v, 1),
            system: part(v, 2),
            system_type: String::new(),
        };
    }
    context.non_readings = hearth_uplink_pcd01::NonReadings::Skip;
    hearth_uplink_net::MllpUplink::new(hearth_uplink_net::MllpSettings {
        host: m.host.clone(),
        port: m.port,
        tls: m.tls.then(|| tls_files(route)),
        server_name: m.server_name.clone(),
        timeout: m.timeout.get(),
        in_flight: usize::try_from(m.in_flight).unwrap_or(hearth_uplink_net::DEFAULT_IN_FLIGHT),
        context,
    })
    .map_err(|e| anyhow::anyhow!("route {:?}: {e}", route.name))
}

/// Run the daemon until `shutdown` resolves (or a fatal error).
pub async fn run(
    mut config: Config,
    observers: Observers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunSummary> {
    let data_dir = config.gateway.data_dir.clone();
    std::fs::create_dir_all(&data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}; create it or set gateway.data_dir",
            data_dir.display()
        )
    })?;
    // The box's identity, before anything is stored or sent: record ids and device
    // identifiers are scoped to it (issue 13). Resolved once into the config that the rest of
    // the wiring reads.
    let gateway = crate::identity::resolve(&config)?;
    config.gateway.eui64 = Some(gateway.to_string());
    let mut opts = outbox_options(&config);
    opts.gateway = Some(gateway);
    let (outbox, report) = tokio::task::spawn_blocking(move || Outbox::open(opts)).await??;
    if let Some(moved) = &report.quarantined {
        tracing::error!(moved_to = %moved.display(), "the outbox was corrupt and was moved aside; a critical technical alarm is queued");
    }
    tracing::info!(
        path = %outbox.path().display(),
        created = report.created,
        records = outbox.len(),
        recovered_in_flight = report.recovered_in_flight,
        schema = report.schema_version,
        "outbox open"
    );
    let group_commit = usize::try_from(config.outbox.group_commit_max).unwrap_or(1024);
    // A reserve file next to the outbox keeps room for alarms when the disk fills (issue 6).
    let (writer, writer_thread) = OutboxWriter::spawn_with_reserve(
        outbox,
        group_commit,
        hearth_outbox::DEFAULT_RESERVE_BYTES,
    )?;
    // Device facts (issue 6): what devices told about themselves, kept in the outbox, updated
    // by drivers through `Ingest::device_facts`, read by the FHIR uplinks (PhdDevice).
    let devices = hearth_model::DeviceRegistry::new();
    for d in writer.devices().await? {
        devices.upsert(d);
    }
    let sup_cfg = &config.supervisor;
    let policy = RestartPolicy {
        initial: sup_cfg.restart_initial.get(),
        max: sup_cfg.restart_max.get(),
        crash_loop_restarts: sup_cfg.crash_loop_restarts,
        crash_loop_window: sup_cfg.crash_loop_window.get(),
    };
    let (events_tx, events_rx) = mpsc::channel(256);
    let mut supervisor =
        Supervisor::new(policy, events_tx).with_grace_period(sup_cfg.shutdown_grace.get());
    // Shutdown is two-phase: sources stop first, then the senders get a bounded time to deliver
    // what the sources committed last, then they stop (a receiver that is down costs only that
    // bounded wait; everything undelivered stays in the outbox for the next start).
    let (sources_stop_tx, sources_stop) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    // A full disk is a state, not a crash: submissions wait it out (retried every 250 ms) until
    // the sources stop, instead of failing their driver into a crash loop.
    let ingest =
        Ingest::with_devices(writer.clone(), devices.clone()).retrying_until(sources_stop.clone());
    let technical = TechnicalAlarms::new(ingest.clone());
    let drain_time = (sup_cfg.shutdown_grace.get() / 2).min(Duration::from_secs(5));
    // Sources still inside a submission; the drain waits for them before it counts the backlog.
    let sources_running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stall = sup_cfg.stall_timeout.get();

    for source in config.sources.iter().filter(|s| s.enabled) {
        match source.kind {
            SourceKind::Simulated => {
                let sim = source.simulated_settings();
                let settings = SimulatedSettings {
                    name: source.name.clone(),
                    devices: sim.devices,
                    interval: sim.interval.get(),
                    alarm_every: sim.alarm_every,
                    category: source.category,
                    max_rounds: None,
                };
                let ctx =
                    DriverContext::new(ingest.clone(), technical.clone(), sources_stop.clone());
                supervisor.add(source_task(
                    &source.name,
                    ctx,
                    sources_running.clone(),
                    move || {
                        Simulated::new(settings.clone())
                            .map(|d| Box::new(d) as Box<dyn Driver>)
                            .map_err(|e| e.to_string())
                    },
                ))?;
            }
            SourceKind::Ble => {
                let settings = ble_settings(&config, source)?;
                let ble = source.ble_settings();
                let ctx =
                    DriverContext::new(ingest.clone(), technical.clone(), sources_stop.clone());
                let running = sources_running.clone();
                let simulated = matches!(ble.backend, hearth_config::BleBackendKind::Simulated);
                let adapter = ble.adapter.clone();
                let glucose_records = observers.simulated_glucose_records;
                supervisor.add(TaskSpec::new(
                    format!("source/{}", source.name),
                    true,
                    move |task| {
                        let settings = settings.clone();
                        let ctx = ctx.clone();
                        let running = running.clone();
                        let adapter = adapter.clone();
                        async move {
                            running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let result = if simulated {
                                let mut devices =
                                    hearth_driver_ble::sim::scripted_devices(glucose_records);
                                devices.extend(hearth_driver_ble::sim::more_scripted_devices(600));
                                // Keep the stored-record devices' memories demo-sized.
                                for d in &mut devices {
                                    let keep: std::collections::BTreeMap<u16, Vec<u8>> = d
                                        .stored
                                        .iter()
                                        .take(30)
                                        .map(|(k, v)| (*k, v.clone()))
                                        .collect();
                                    d.stored = keep;
                                }
                                let backend = hearth_driver_ble::sim::SimBackend::new(
                                    devices,
                                    Duration::from_millis(700),
                                );
                                hearth_driver_ble::driver::BleDriver::new(settings, backend)
                                    .run(&ctx)
                                    .await
                            } else {
                                match hearth_driver_ble::bluez::BluezBackend::open(&adapter).await {
                                    Ok(backend) => {
                                        hearth_driver_ble::driver::BleDriver::new(settings, backend)
                                            .run(&ctx)
                                            .await
                                    }
                                    Err(e) => {
                                        Err(hearth_driver_api::DriverError::Link(e.to_string()))
                                    }
                                }
                            };
                            running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                            result.map_err(TaskError::new)?;
                            task.shutdown_requested().await;
                            Ok(())
                        }
                    },
                ))?;
            }
            SourceKind::Zigbee2mqtt | SourceKind::External => {
                let plan = mqtt_plan(&config, source)?;
                let ctx =
                    DriverContext::new(ingest.clone(), technical.clone(), sources_stop.clone());
                supervisor.add(source_task(
                    &source.name,
                    ctx,
                    sources_running.clone(),
                    move || plan.source().map(|d| Box::new(d) as Box<dyn Driver>),
                ))?;
            }
        }
    }

    for route in config.routes.iter().filter(|r| r.enabled) {
        let retry = retry_policy(&config.retry_for(route));
        let batch = route.batch_size as usize;
        let name = route.name.clone();
        let writer = writer.clone();
        let sender_events = observers.sender.clone();
        // Build the uplink now so that a bad path fails start-up, not a restart loop.
        let first = make_uplink(&config, route, &observers, &devices)?;
        let devices_c = devices.clone();
        let first = Arc::new(std::sync::Mutex::new(Some(first)));
        let config_c = config.clone();
        let route_c = route.clone();
        let received = observers.received.clone();
        let stop_rx = stop_rx.clone();
        // The route's refused/open state outlives sender restarts; changes become the
        // `route_refused` technical alarm.
        let (status_tx, status_rx) = watch::channel(RouteStatus::Open);
        tokio::spawn(alarm_route_status(
            name.clone(),
            status_rx,
            technical.clone(),
        ));
        supervisor.add(
            TaskSpec::new(format!("route/{name}"), true, move |task| {
                let reused = first.lock().ok().and_then(|mut g| g.take());
                let observers = Observers {
                    received: received.clone(),
                    ..Observers::default()
                };
                let uplink = match reused {
                    Some(u) => Ok(u),
                    None => make_uplink(&config_c, &route_c, &observers, &devices_c),
                };
                // One uplink per connection; the first was checked at start-up.
                let more: anyhow::Result<Vec<Box<dyn Uplink>>> = (1..route_c.connections())
                    .map(|_| make_uplink(&config_c, &route_c, &observers, &devices_c))
                    .collect();
                let writer = writer.clone();
                let name = name.clone();
                let stop = stop_rx.clone();
                let events = sender_events.clone();
                let status = status_tx.clone();
                async move {
                    let uplink = uplink.map_err(TaskError::new)?;
                    let more = more.map_err(TaskError::new)?;
                    let mut sender = RouteSender::new(&name, writer, uplink, batch, retry)
                        .map_err(TaskError::fatal)?
                        .with_more_uplinks(more)
                        .with_status(status);
                    if let Some(events) = events {
                        sender = sender.with_events(events);
                    }
                    sender
                        .run(stop, || task.progress())
                        .await
                        .map_err(TaskError::new)
                }
            })
            .with_stall_timeout(stall),
        )?;
    }

    {
        let writer = writer.clone();
        let stop = stop_rx.clone();
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
    }

    let monitor = supervisor.monitor();
    let notifier = Arc::new(SystemdNotifier::new());
    tokio::spawn(alarm_supervisor_events(
        events_rx,
        technical.clone(),
        stop_rx.clone(),
    ));

    let stop_notifier = notifier.clone();
    let drain_writer = writer.clone();
    let running = sources_running.clone();
    let run = tokio::spawn(supervisor.run(async move {
        shutdown.await;
        tracing::info!(
            "shutting down: sources stop, senders deliver what they can, the outbox commits"
        );
        watchdog::stopping(&*stop_notifier);
        let _ = sources_stop_tx.send(true);
        let deadline = tokio::time::Instant::now() + drain_time;
        while tokio::time::Instant::now() < deadline
            && running.load(std::sync::atomic::Ordering::SeqCst) > 0
        {
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
    }));
    monitor.started().await;
    watchdog::ready(&*notifier, &monitor.health().status_line());
    tracing::info!(gateway = %config.gateway.id, data_dir = %data_dir.display(), "hearth is running");
    if let Some(interval) = watchdog::watchdog_interval() {
        tokio::spawn(watchdog::run_watchdog(
            monitor.clone(),
            notifier.clone(),
            interval,
            monitor.shutdown_started(),
        ));
    }
    tokio::spawn(status_updates(
        writer.clone(),
        notifier.clone(),
        monitor.clone(),
    ));

    let outcome = run.await?;
    drop(ingest);
    drop(technical);
    drop(writer);
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e) => return Err(anyhow::Error::new(e).context("hearth stopped on a fatal error")),
    };
    // Every writer handle is gone once the tasks are: the thread commits what it has and ends.
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
    Ok(RunSummary {
        aborted: summary.aborted().into_iter().map(str::to_owned).collect(),
    })
}

/// Crash loops become technical alarms (A7: critical functional faults). An alarm that cannot
/// be stored is tried again every second until it is (or hearth stops), never forgotten.
async fn alarm_supervisor_events(
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
                    if matches!(e, hearth_outbox::WriterError::Stopped) || *stop.borrow() {
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
) -> Result<bool, hearth_outbox::WriterError> {
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

/// A route its receiver refuses becomes a `route_refused` technical alarm: raised once when the
/// refusals start, cleared when the route delivers again.
async fn alarm_route_status(
    route: String,
    mut status: watch::Receiver<RouteStatus>,
    technical: TechnicalAlarms,
) {
    let source = format!("route/{route}");
    while status.changed().await.is_ok() {
        let current = status.borrow_and_update().clone();
        let result =
            match current {
                RouteStatus::Refused { reason } => technical
                    .raise(
                        &source,
                        TechnicalKind::RouteRefused,
                        Severity::Major,
                        format!(
                            "the receiver of route {route} refuses the route itself ({reason}); \
                             its records are kept and retried every few minutes. Check the \
                             route's patient, organization, profile and credentials"
                        ),
                    )
                    .await,
                RouteStatus::Open => {
                    technical
                        .clear(
                            &source,
                            TechnicalKind::RouteRefused,
                            format!("route {route} delivers again"),
                        )
                        .await
                }
            };
        if let Err(e) = result {
            tracing::error!(route = %route, error = %e, "cannot store the technical alarm about a refused route");
        }
    }
}

/// systemd STATUS= shows the backlog and task health (`systemctl status hearth`).
async fn status_updates(
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

/// What an MQTT source is made of; rebuilt on every (re)start of its task.
#[derive(Clone)]
struct MqttPlan {
    name: String,
    transport: hearth_driver_mqtt::Transport,
    handler: HandlerPlan,
}

#[derive(Clone)]
enum HandlerPlan {
    Zigbee2mqtt(hearth_driver_zigbee2mqtt::Settings),
    External(hearth_driver_mqtt::handlers::ExternalSettings),
}

impl MqttPlan {
    fn source(&self) -> Result<hearth_driver_mqtt::MqttSource, String> {
        let handler: Box<dyn hearth_driver_mqtt::Handler> = match &self.handler {
            HandlerPlan::Zigbee2mqtt(s) => hearth_driver_mqtt::handlers::zigbee2mqtt(s.clone())?,
            HandlerPlan::External(s) => hearth_driver_mqtt::handlers::external(s.clone())?,
        };
        Ok(hearth_driver_mqtt::MqttSource::new(
            &self.name,
            self.transport.clone(),
            handler,
        ))
    }
}

/// The transport and handler of a zigbee2mqtt or external source; the rules are compiled here
/// once, so a bad rule stops start-up instead of a restart loop.
fn mqtt_plan(config: &Config, source: &hearth_config::SourceConfig) -> anyhow::Result<MqttPlan> {
    let broker = hearth_driver_mqtt::Transport::Broker(config.mqtt.clone());
    let (transport, handler) = match source.kind {
        SourceKind::Zigbee2mqtt => {
            let z = source.zigbee2mqtt_settings();
            let time_zone = config
                .gateway
                .time_zone()
                .map_err(|e| anyhow::anyhow!("gateway.time_zone: {e}"))?;
            let transport = match z.backend {
                hearth_config::Zigbee2mqttBackendKind::Mqtt => broker,
                hearth_config::Zigbee2mqttBackendKind::Simulated => {
                    hearth_driver_mqtt::Transport::Simulated {
                        script: hearth_driver_mqtt::handlers::zigbee2mqtt_script(),
                        period: Some(Duration::from_secs(20)),
                    }
                }
            };
            let settings = hearth_driver_zigbee2mqtt::Settings::from_source(source, time_zone);
            // Compile once now: a rule that cannot work stops start-up with its message.
            hearth_driver_mqtt::handlers::zigbee2mqtt(settings.clone())
                .map_err(|e| anyhow::anyhow!("source {:?}: {e}", source.name))?;
            (transport, HandlerPlan::Zigbee2mqtt(settings))
        }
        _ => {
            let settings = hearth_driver_mqtt::handlers::ExternalSettings {
                source: source.name.clone(),
                config: source.external_settings(),
                category: source.category,
            };
            (broker, HandlerPlan::External(settings))
        }
    };
    Ok(MqttPlan {
        name: source.name.clone(),
        transport,
        handler,
    })
}

/// A supervised source: `make` builds the driver on every (re)start (an error there is fatal:
/// the configuration cannot work); the task counts itself in `running` while the driver runs,
/// and once the driver returned (sources stop first in the two-phase shutdown) it stays
/// "running" until the supervisor's own shutdown, so that is no unexpected exit.
fn source_task<M>(
    name: &str,
    ctx: DriverContext,
    running: Arc<std::sync::atomic::AtomicUsize>,
    make: M,
) -> TaskSpec
where
    M: Fn() -> Result<Box<dyn Driver>, String> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    TaskSpec::new(format!("source/{name}"), true, move |task| {
        let ctx = ctx.clone();
        let running = running.clone();
        let make = make.clone();
        async move {
            let mut driver = make().map_err(TaskError::fatal)?;
            running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let result = driver.run(&ctx).await;
            running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            result.map_err(TaskError::new)?;
            task.shutdown_requested().await;
            Ok(())
        }
    })
}
