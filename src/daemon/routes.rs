//! Routes: uplink construction (loopback, FHIR, PCD-01 over MLLP, their TLS files) and one
//! supervised route sender per enabled route, with its `route_refused` alarm.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hearth_config::{Config, UplinkKind};
use hearth_driver_api::TechnicalAlarms;
use hearth_model::{Severity, TechnicalKind};
use hearth_outbox::OutboxWriter;
use hearth_runtime::{Supervisor, TaskError, TaskSpec};
use hearth_uplink::loopback::LoopbackUplink;
use hearth_uplink::{RouteSender, RouteStatus, Uplink};
use tokio::sync::watch;

use super::storage::retry_policy;
use super::{Observers, alarms};

/// What every route sender shares.
pub(super) struct RouteWiring {
    pub writer: OutboxWriter,
    pub devices: hearth_model::DeviceRegistry,
    pub technical: TechnicalAlarms,
    /// Turns true in the second phase of the shutdown: senders stop.
    pub stop: watch::Receiver<bool>,
    pub stall: Duration,
    /// Who hears what alarm routes report (event log, receipt signal, observers).
    pub alarm_listeners: Vec<tokio::sync::mpsc::Sender<hearth_uplink_scaip::AlarmEvent>>,
}

/// Add a sender task for every enabled route. Each route's first uplink is built now, so a bad
/// path or setting fails start-up, not a restart loop.
pub(super) fn start(
    config: &Config,
    observers: &Observers,
    supervisor: &mut Supervisor,
    wiring: &RouteWiring,
) -> anyhow::Result<()> {
    for route in config.routes.iter().filter(|r| r.enabled) {
        supervisor.add(sender(config, route, observers, wiring)?)?;
    }
    Ok(())
}

/// The supervised sender of one route.
fn sender(
    config: &Config,
    route: &hearth_config::RouteConfig,
    observers: &Observers,
    wiring: &RouteWiring,
) -> anyhow::Result<TaskSpec> {
    let RouteWiring {
        writer,
        devices,
        technical,
        stop: stop_rx,
        stall,
        alarm_listeners,
    } = wiring;
    let mut retry = retry_policy(&config.retry_for(route));
    // An alarm route's receivers are built once and shared by its connections and restarts
    // (one SIP registration per receiver); an alarm is retried within half a minute unless
    // the route says otherwise.
    let alarm = if alarms::is_alarm_route(route) {
        let a = alarms::AlarmRoute::build(route, alarm_listeners.clone(), writer)?;
        a.spawn_heartbeat(route, technical.clone(), stop_rx.clone());
        if route.retry.as_ref().is_none_or(|r| r.max.is_none()) {
            retry.max = retry.max.min(alarms::ALARM_RETRY_MAX);
            retry.initial = retry.initial.min(retry.max);
        }
        Some(a)
    } else {
        None
    };
    let batch = route.batch_size as usize;
    let name = route.name.clone();
    let writer = writer.clone();
    let sender_events = observers.sender.clone();
    // Build the uplink now so that a bad path fails start-up, not a restart loop.
    let first = make_uplink(config, route, observers, devices, alarm.as_ref())?;
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
    Ok(TaskSpec::new(format!("route/{name}"), true, move |task| {
        let reused = first.lock().ok().and_then(|mut g| g.take());
        let observers = Observers {
            received: received.clone(),
            ..Observers::default()
        };
        let uplink = match reused {
            Some(u) => Ok(u),
            None => make_uplink(&config_c, &route_c, &observers, &devices_c, alarm.as_ref()),
        };
        // One uplink per connection; the first was checked at start-up.
        let more: anyhow::Result<Vec<Box<dyn Uplink>>> = (1..route_c.connections())
            .map(|_| make_uplink(&config_c, &route_c, &observers, &devices_c, alarm.as_ref()))
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
    .with_stall_timeout(*stall))
}

/// Build a route's uplink from its configuration.
fn make_uplink(
    config: &Config,
    route: &hearth_config::RouteConfig,
    observers: &Observers,
    devices: &hearth_model::DeviceRegistry,
    alarm: Option<&Arc<alarms::AlarmRoute>>,
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
        UplinkKind::Scaip => match alarm {
            Some(a) => Ok(Box::new(a.uplink())),
            None => bail!("route {:?}: alarm route without its receivers", route.name),
        },
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
