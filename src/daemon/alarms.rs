//! Alarm routes (`uplink = "scaip"`): the receivers of each route built once and shared by its
//! connections (one SIP registration per receiver, not per connection), the mapping and
//! session timing from `[route.scaip]`, the heartbeat with its technical alarm, and where the
//! route's alarm events go (log, observers; the event log and the receipt signal).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hearth_config::{
    Config, RouteConfig, ScaipProtocol, ScaipReceiverConfig, ScaipRouteConfig, SipTransportKind,
};
use hearth_driver_api::TechnicalAlarms;
use hearth_model::{Severity, TechnicalKind};
use hearth_outbox::{AlarmLogEntry, OutboxWriter};
use hearth_uplink_scaip::heartbeat::{self, Beat};
use hearth_uplink_scaip::session::AttemptResult;
use hearth_uplink_scaip::{
    AlarmEvent, AlarmObserver, AlarmProtocol, DeviceProfile, Mapping, Receiver, ScaipUplink,
    SessionPolicy, TechnicalCodes,
};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};

/// The technical alarm raised while the first receiver does not answer heartbeats.
pub const RECEIVER_UNREACHABLE: &str = "alarm_receiver_unreachable";

/// One alarm route's shared parts.
pub(super) struct AlarmRoute {
    receivers: Vec<Receiver>,
    /// Shared by the route's uplinks and its heartbeat.
    mapping: Arc<Mapping>,
    policy: SessionPolicy,
    observer: AlarmObserver,
}

impl AlarmRoute {
    /// Build the route's receivers, mapping and timing. Secrets are read now, so a missing
    /// password file fails start-up with its path.
    pub(super) fn build(
        route: &RouteConfig,
        mut listeners: Vec<mpsc::Sender<AlarmEvent>>,
        writer: &OutboxWriter,
    ) -> anyhow::Result<Arc<Self>> {
        listeners.push(spawn_event_log(route.name.clone(), writer.clone()));
        let Some(s) = &route.scaip else {
            bail!(
                "route {:?}: uplink = \"scaip\" needs [route.scaip]",
                route.name
            );
        };
        let receivers = s
            .receivers
            .iter()
            .map(|r| receiver(route, r))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let name = route.name.clone();
        let observer: AlarmObserver = Arc::new(move |event: &AlarmEvent| {
            log_event(&name, event);
            for tx in &listeners {
                // A listener must never slow an alarm down: a full channel skips this event
                // for that listener (each listener counts what it missed).
                let _ = tx.try_send(event.clone());
            }
        });
        Ok(Arc::new(Self {
            receivers,
            mapping: Arc::new(mapping(s)),
            policy: policy(s),
            observer,
        }))
    }

    /// An uplink for one of the route's connections; all share the receivers.
    pub(super) fn uplink(&self) -> ScaipUplink {
        ScaipUplink::new(
            self.receivers.clone(),
            Arc::clone(&self.mapping),
            self.policy,
            Arc::clone(&self.observer),
        )
    }

    /// The heartbeat to the first receiver, with a technical alarm while it goes unanswered.
    pub(super) fn spawn_heartbeat(
        &self,
        route: &RouteConfig,
        technical: TechnicalAlarms,
        stop: watch::Receiver<bool>,
    ) {
        let (Some(s), Some(first)) = (&route.scaip, self.receivers.first()) else {
            return;
        };
        let interval = s.heartbeat.get();
        if interval.is_zero() {
            return;
        }
        let (beats_tx, beats_rx) = mpsc::channel(8);
        tokio::spawn(heartbeat::run(
            first.clone(),
            Arc::clone(&self.mapping),
            interval,
            self.policy.answer_timeout,
            stop,
            move |beat: &Beat| {
                let _ = beats_tx.try_send(beat.clone());
            },
        ));
        tokio::spawn(heartbeat_alarm(
            route.name.clone(),
            first.name.clone(),
            beats_rx,
            technical,
        ));
    }
}

/// The listeners of every alarm route: the caller's observer (demo, tests), and the daemon's
/// own (the event log, the receipt signal), each on its own task.
pub(super) fn listeners(
    config: &Config,
    observers: &super::Observers,
) -> anyhow::Result<Vec<mpsc::Sender<AlarmEvent>>> {
    let mut out = Vec::new();
    if let Some(tx) = &observers.alarm {
        out.push(tx.clone());
    }
    if let Some(tx) = super::receipt::listener(config, observers.receipt.clone())? {
        out.push(tx);
    }
    Ok(out)
}

/// The device id as drivers write it: zigbee2mqtt's IEEE addresses are shown with `0x` in its
/// frontend, hearth's ids have none; both are accepted in configuration.
fn device_key(id: &str) -> String {
    match id.strip_prefix("zigbee:0x") {
        Some(ieee) => format!("zigbee:{ieee}"),
        None => id.to_owned(),
    }
}

fn policy(s: &ScaipRouteConfig) -> SessionPolicy {
    SessionPolicy {
        answer_timeout: s.answer_timeout.get(),
        resend_every: s.resend_every.get(),
        hold_interval: s.hold_interval.get(),
        hold_budget: s.hold_budget.get(),
    }
}

fn mapping(s: &ScaipRouteConfig) -> Mapping {
    let mut m = Mapping::new(s.account.trim());
    m.callers = s.callers.clone();
    m.heartbeat_offer = s.heartbeat_offer;
    for d in &s.devices {
        m.devices.insert(
            device_key(&d.id),
            DeviceProfile {
                device_type: d.device_type,
                component: d.component,
                location: d.location,
                device_id: d.did.clone(),
                text: d.text.clone(),
                priority: d.priority,
                receivers: d.receivers.clone(),
            },
        );
    }
    for t in &s.technical {
        match (t.send, t.raised) {
            (true, Some(raised)) => {
                m.technical.insert(
                    t.kind.clone(),
                    TechnicalCodes {
                        raised,
                        cleared: t.cleared,
                    },
                );
            }
            _ => {
                m.technical.remove(&t.kind);
            }
        }
    }
    m
}

/// One receiver's protocol.
fn receiver(route: &RouteConfig, r: &ScaipReceiverConfig) -> anyhow::Result<Receiver> {
    let protocol: Arc<dyn AlarmProtocol> = match r.protocol {
        ScaipProtocol::Sip => Arc::new(sip_receiver(route, r)?),
        ScaipProtocol::Https => Arc::new(https_receiver(route, r)?),
    };
    Ok(Receiver {
        name: r.name.clone(),
        protocol,
    })
}

fn tls_files(route: &RouteConfig, r: &ScaipReceiverConfig) -> hearth_tls::TlsFiles {
    let t = r
        .tls
        .clone()
        .or_else(|| route.tls.clone())
        .unwrap_or_default();
    hearth_tls::TlsFiles {
        ca_file: t.ca_file,
        client_cert: t.client_cert,
        client_key: t.client_key,
    }
}

fn read_secret(route: &RouteConfig, r: &ScaipReceiverConfig, key: &str) -> anyhow::Result<String> {
    let file = match key {
        "password_file" => r.password_file.clone(),
        _ => r.token_file.clone(),
    }
    .unwrap_or_default();
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "route {:?}: receiver {:?}: cannot read {key} {}; write the secret on its first \
             line, readable by hearth only",
            route.name,
            r.name,
            file.display()
        )
    })?;
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

fn sip_receiver(
    route: &RouteConfig,
    r: &ScaipReceiverConfig,
) -> anyhow::Result<hearth_uplink_net::ScaipSip> {
    use hearth_sip::{SipSettings, Transport};
    let registrar = r.registrar.clone().unwrap_or_default();
    let domain = r.domain.clone().unwrap_or_else(|| host_of(&registrar));
    let transport = match r.transport {
        SipTransportKind::Tls => Transport::Tls,
        SipTransportKind::Tcp => Transport::Tcp,
        SipTransportKind::Udp => Transport::Udp,
    };
    let password = read_secret(route, r, "password_file")?;
    let mut settings = SipSettings::new(
        transport,
        registrar,
        domain,
        r.user.clone().unwrap_or_default(),
        password,
    );
    settings.auth_user = r.auth_user.clone();
    settings.register_expires = r.register_expires.get();
    if transport == Transport::Tls {
        settings.tls = Some(tls_files(route, r));
    }
    if let Some(local) = &r.local_address {
        settings.local_bind = Some(local.parse().with_context(|| {
            format!(
                "route {:?}: receiver {:?}: local_address {local:?} is not ip:port",
                route.name, r.name
            )
        })?);
    }
    Ok(hearth_uplink_net::ScaipSip::new(
        settings,
        r.to.clone().unwrap_or_default(),
    ))
}

fn https_receiver(
    route: &RouteConfig,
    r: &ScaipReceiverConfig,
) -> anyhow::Result<hearth_uplink_net::ScaipHttps> {
    let mut settings =
        hearth_uplink_net::ScaipHttpsSettings::new(r.url.clone().unwrap_or_default());
    if r.token_file.is_some() {
        settings.token = Some(read_secret(route, r, "token_file")?);
    }
    settings.tls = tls_files(route, r);
    if let Some(s) = &route.scaip {
        // The centre's answer is awaited as long as the session lets a receiver stay silent.
        settings.answer_timeout = s.answer_timeout.get();
    }
    hearth_uplink_net::ScaipHttps::new(settings)
        .map_err(|e| anyhow::anyhow!("route {:?}: receiver {:?}: {e}", route.name, r.name))
}

fn host_of(registrar: &str) -> String {
    let r = registrar.trim();
    if let Some(rest) = r.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_owned();
    }
    match r.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h.to_owned(),
        _ => r.to_owned(),
    }
}

fn log_event(route: &str, event: &AlarmEvent) {
    match event {
        AlarmEvent::Handled {
            record,
            reference,
            receiver,
            answer,
            ..
        } => tracing::info!(route, %record, %reference, receiver = %receiver,
            voice = answer.voice.is_some(), "alarm handled by the response centre"),
        AlarmEvent::Failing {
            record, reference, ..
        } => tracing::error!(route, %record, %reference,
            "no response centre handled the alarm yet; it is sent again"),
        AlarmEvent::Attempt { .. } => {}
    }
}

/// The route's durable event log (S3; `hearth alarms log`): every attempt, reset, answer and
/// outcome, written in batches by its own task so an alarm never waits for it.
fn spawn_event_log(route: String, writer: OutboxWriter) -> mpsc::Sender<AlarmEvent> {
    let (tx, mut rx) = mpsc::channel::<AlarmEvent>(1024);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![log_entry(&route, &first)];
            while batch.len() < 256 {
                match rx.try_recv() {
                    Ok(more) => batch.push(log_entry(&route, &more)),
                    Err(_) => break,
                }
            }
            loop {
                match writer.log_alarm_events(batch.clone()).await {
                    Ok(()) => break,
                    Err(e) if e.is_transient() => {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => {
                        tracing::error!(route = %route, error = %e, entries = batch.len(),
                            "cannot write the alarm event log; these entries are lost (the alarms are not)");
                        break;
                    }
                }
            }
        }
    });
    tx
}

/// One event as a log entry. `detail` names kinds, devices, codes and the centre's words —
/// never a health value.
fn log_entry(route: &str, event: &AlarmEvent) -> AlarmLogEntry {
    let mut detail = Map::new();
    let (at, record, reference, name, receiver) = match event {
        AlarmEvent::Attempt {
            record,
            reference,
            attempt,
        } => {
            detail.insert("mty".into(), json!(attempt.message_type.code()));
            detail.insert("receiver_index".into(), json!(attempt.receiver_index));
            let (name, result) = match &attempt.result {
                AttemptResult::Answer(v) => ("attempt", v.name()),
                AttemptResult::Failed(e) => ("attempt", e.to_string()),
                AttemptResult::ResetSent => ("reset", "sent".to_owned()),
            };
            detail.insert("result".into(), json!(result));
            if let Some(r) = &attempt.reason {
                detail.insert(
                    "reason".into(),
                    json!(r.chars().take(128).collect::<String>()),
                );
            }
            (
                attempt.at,
                record,
                reference,
                name,
                Some(attempt.receiver.clone()),
            )
        }
        AlarmEvent::Handled {
            record,
            alarm,
            reference,
            receiver,
            answer,
            at,
        } => {
            describe_alarm(&mut detail, alarm.as_deref());
            if let Some(v) = &answer.voice {
                detail.insert("voice_mode".into(), json!(v.mode));
                detail.insert("voice_call".into(), json!(format!("{:?}", v.call)));
            }
            (*at, record, reference, "handled", Some(receiver.clone()))
        }
        AlarmEvent::Failing {
            record,
            alarm,
            reference,
            at,
        } => {
            describe_alarm(&mut detail, alarm.as_deref());
            (*at, record, reference, "failing", None)
        }
    };
    let mut entry = AlarmLogEntry::new(at, route, name);
    entry.record = Some(*record);
    entry.reference = Some(reference.to_string());
    entry.receiver = receiver;
    entry.detail = detail;
    entry
}

fn describe_alarm(detail: &mut Map<String, Value>, alarm: Option<&hearth_model::Alarm>) {
    match alarm {
        Some(a) => {
            detail.insert("kind".into(), json!(a.kind.as_str()));
            detail.insert("state".into(), json!(a.state.as_str()));
            detail.insert("device".into(), json!(a.device.as_str()));
            detail.insert("criticality".into(), json!("alarm"));
        }
        None => {
            detail.insert("criticality".into(), json!("technical"));
        }
    }
}

/// Beats become the `alarm_receiver_unreachable` technical alarm: raised once after two
/// failed heartbeats in a row, cleared on the next answer.
async fn heartbeat_alarm(
    route: String,
    receiver: String,
    mut beats: mpsc::Receiver<Beat>,
    technical: TechnicalAlarms,
) {
    let source = format!("route/{route}/{receiver}");
    let kind = TechnicalKind::Other(RECEIVER_UNREACHABLE.to_owned());
    let mut failures = 0u32;
    while let Some(beat) = beats.recv().await {
        let result = match beat {
            Beat::Answered { .. } => {
                failures = 0;
                technical
                    .clear(
                        &source,
                        kind.clone(),
                        format!("response centre {receiver} answers heartbeats again"),
                    )
                    .await
            }
            Beat::Failed { reason } => {
                failures += 1;
                tracing::warn!(route = %route, receiver = %receiver, %reason, failures, "heartbeat unanswered");
                if failures < 2 {
                    continue;
                }
                technical
                    .raise(
                        &source,
                        kind.clone(),
                        Severity::Critical,
                        format!(
                            "response centre {receiver} of route {route} does not answer \
                             heartbeats ({reason}); alarms go to the alternative receivers. \
                             Check the link and the centre's account"
                        ),
                    )
                    .await
            }
        };
        if let Err(e) = result {
            tracing::error!(route = %route, error = %e, "cannot store the heartbeat technical alarm");
        }
    }
}

/// How long an alarm waits between rounds when no centre handled it: an alarm is retried
/// within half a minute, whatever the global `[retry] max` says, unless the route overrides
/// it.
pub(super) const ALARM_RETRY_MAX: Duration = Duration::from_secs(30);

/// Whether a route is an alarm route.
pub(super) fn is_alarm_route(route: &RouteConfig) -> bool {
    route.uplink == hearth_config::UplinkKind::Scaip
}
