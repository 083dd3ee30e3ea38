//! The rumqttc session: a persistent QoS 1 subscription with manual acknowledgements.
//!
//! Two tasks surround the processor (`source.rs`):
//! - the event-loop task only polls rumqttc and forwards publishes; it never waits for the
//!   processor's commits, so keep-alive pings flow while SQLite is busy;
//! - the ack task sends the PUBACKs (and error replies) the processor hands it, in order, after
//!   the commit. An ack of a message from an earlier connection is dropped: the broker redelivers
//!   that message with DUP set and the ledger acknowledges the redelivery instead (STYLE rule 3:
//!   no ack carried over a reconnect).
//!
//! On connect the event-loop task brings the broker's subscriptions of the persistent session
//! in line with the handler's filters ([`crate::subscriptions`]) and, once the broker confirmed
//! every SUBSCRIBE and UNSUBSCRIBE, hands the new set to the processor to record.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hearth_config::MqttConfig;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode, Transport,
};
use tokio::sync::mpsc;

use crate::subscriptions::{self, Plan};
use crate::{Incoming, MqttError};

/// What the processor asks the ack task to do.
#[derive(Debug)]
pub(crate) enum AckCmd {
    /// Acknowledge this publish if its connection is still the current one.
    Ack(Box<rumqttc::Publish>, u64),
    /// Publish a reply (QoS 1, not retained).
    Reply(String, Vec<u8>),
}

/// Link events for the processor (technical alarms, logs).
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// A publish.
    Message(Incoming),
    /// Connected; `session_present` says whether the broker kept our session.
    Connected { session_present: bool },
    /// The broker confirmed that the session subscribes exactly these filters: record them.
    Subscribed(Vec<String>),
    /// The connection failed or dropped.
    Lost(String),
}

/// The largest message accepted: zigbee2mqtt's `bridge/devices` lists every device with its
/// exposes and easily reaches hundreds of kilobytes.
const MAX_INCOMING: usize = 4 << 20;

/// Builds the rumqttc options for source `source` from `[mqtt]`.
pub(crate) fn options(cfg: &MqttConfig, source: &str) -> Result<MqttOptions, MqttError> {
    let client_id = format!("{}-{source}", cfg.client_id);
    let mut o = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
    o.set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(cfg.keep_alive.get())
        .set_max_packet_size(MAX_INCOMING, 256 << 10)
        .set_request_channel_capacity(usize::try_from(cfg.max_pending).unwrap_or(1000) + 16);
    if let Some(user) = &cfg.username {
        let password = match &cfg.password_file {
            Some(p) => read_password(p)?,
            None => String::new(),
        };
        o.set_credentials(user.clone(), password);
    }
    if cfg.tls {
        let tls = tls_config(cfg)?;
        o.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(tls)),
        ));
    }
    Ok(o)
}

fn read_password(p: &Path) -> Result<String, MqttError> {
    let text = std::fs::read_to_string(p).map_err(|e| MqttError::Config {
        what: format!(
            "cannot read mqtt.password_file {}: {e}; make it readable by the hearth user",
            p.display()
        ),
    })?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// rustls client config for `[mqtt]` (crates/uplink's one TLS setup).
pub(crate) fn tls_config(cfg: &MqttConfig) -> Result<rustls::ClientConfig, MqttError> {
    let files = hearth_tls::TlsFiles {
        ca_file: cfg.ca_file.clone(),
        client_cert: cfg.client_cert.clone(),
        client_key: cfg.client_key.clone(),
    };
    hearth_tls::client_config(&files, "mqtt").map_err(|e| MqttError::Config {
        what: e.to_string(),
    })
}

/// The filters a session subscribes: those configured now and those the broker confirmed last
/// (`recorded`, `None` when unknown).
#[derive(Debug, Clone)]
pub(crate) struct Filters {
    pub configured: Vec<String>,
    pub recorded: Option<Vec<String>>,
}

/// Connects and runs the two tasks. Returns the link events; the tasks end when `events` is
/// dropped (the event loop) and when `acks` closes (the ack task).
pub(crate) fn start(
    options: MqttOptions,
    subscriptions: Filters,
    reconnect: (Duration, Duration),
    capacity: usize,
) -> (
    mpsc::Receiver<LinkEvent>,
    mpsc::UnboundedSender<AckCmd>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (client, eventloop) = AsyncClient::new(options, capacity + 16);
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let generation = Arc::new(AtomicU64::new(0));
    let poll = tokio::spawn(poll_loop(
        eventloop,
        client.clone(),
        subscriptions,
        tx,
        generation.clone(),
        reconnect,
    ));
    let acks = tokio::spawn(ack_loop(client, ack_rx, generation));
    (rx, ack_tx, vec![poll, acks])
}

/// The SUBSCRIBEs and UNSUBSCRIBEs of one connect that the broker has not confirmed yet.
#[derive(Debug)]
struct Pending {
    acks_left: usize,
    /// A filter was refused or could not be queued: the set is not recorded, so the next
    /// connect asks again.
    incomplete: bool,
}

/// Queues the plan's packets; the [`Pending`] confirmations, or `None` when there is nothing to
/// ask.
async fn ask(client: &AsyncClient, plan: &Plan) -> Option<Pending> {
    if plan.acks() == 0 {
        return None;
    }
    let mut pending = Pending {
        acks_left: plan.acks(),
        incomplete: false,
    };
    for topic in &plan.unsubscribe {
        tracing::info!(
            topic,
            "unsubscribing an MQTT filter that is no longer configured"
        );
        if let Err(e) = client.unsubscribe(topic.clone()).await {
            tracing::warn!(topic, error = %e, "cannot queue the MQTT unsubscription");
            pending.acks_left = pending.acks_left.saturating_sub(1);
            pending.incomplete = true;
        }
    }
    for topic in &plan.subscribe {
        if let Err(e) = client.subscribe(topic.clone(), QoS::AtLeastOnce).await {
            tracing::warn!(topic, error = %e, "cannot queue the MQTT subscription");
            pending.acks_left = pending.acks_left.saturating_sub(1);
            pending.incomplete = true;
        }
    }
    Some(pending)
}

/// Counts one SUBACK or UNSUBACK; returns the filters to record once the last one arrived.
fn confirmed(
    pending: &mut Option<Pending>,
    refused: bool,
    configured: &[String],
) -> Option<Vec<String>> {
    let p = pending.as_mut()?;
    p.acks_left = p.acks_left.saturating_sub(1);
    p.incomplete |= refused;
    if p.acks_left > 0 {
        return None;
    }
    let complete = !p.incomplete;
    *pending = None;
    complete.then(|| configured.to_vec())
}

async fn poll_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    Filters {
        configured,
        mut recorded,
    }: Filters,
    tx: mpsc::Sender<LinkEvent>,
    generation: Arc<AtomicU64>,
    (initial, max): (Duration, Duration),
) {
    let mut delay = initial;
    let mut pending: Option<Pending> = None;
    loop {
        let event = eventloop.poll().await;
        let sent = match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let g = generation.load(Ordering::SeqCst);
                tx.send(LinkEvent::Message(Incoming::from_publish(p, g)))
                    .await
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                delay = initial;
                generation.fetch_add(1, Ordering::SeqCst);
                // The broker keeps the subscriptions of a persistent session and subscribing
                // again would replay every retained message: ask only for the difference
                // between what is configured and what the broker holds.
                let plan =
                    subscriptions::plan(&configured, recorded.as_deref(), ack.session_present);
                if recorded.is_none() && ack.session_present {
                    tracing::info!(
                        "no record of this session's subscriptions; subscribing to every \
                         configured filter (filters of an earlier configuration stay until the \
                         broker drops the session)"
                    );
                }
                pending = ask(&client, &plan).await;
                tx.send(LinkEvent::Connected {
                    session_present: ack.session_present,
                })
                .await
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure));
                if refused {
                    tracing::warn!(
                        "the MQTT broker refused a subscription; check its ACL for this client"
                    );
                }
                record(&mut pending, refused, &configured, &mut recorded, &tx).await
            }
            Ok(Event::Incoming(Packet::UnsubAck(_))) => {
                record(&mut pending, false, &configured, &mut recorded, &tx).await
            }
            Ok(_) => Ok(()),
            Err(e) => {
                let msg = e.to_string();
                let r = tx.send(LinkEvent::Lost(msg)).await;
                tokio::time::sleep(with_jitter(delay)).await;
                delay = (delay * 2).min(max);
                r
            }
        };
        if sent.is_err() {
            return; // the processor is gone
        }
    }
}

/// Counts a confirmation; after the last one, the broker holds `configured`: remember it here
/// (for reconnects) and hand it to the processor to commit (for restarts).
async fn record(
    pending: &mut Option<Pending>,
    refused: bool,
    configured: &[String],
    recorded: &mut Option<Vec<String>>,
    tx: &mpsc::Sender<LinkEvent>,
) -> Result<(), mpsc::error::SendError<LinkEvent>> {
    match confirmed(pending, refused, configured) {
        Some(filters) => {
            *recorded = Some(filters.clone());
            tx.send(LinkEvent::Subscribed(filters)).await
        }
        None => Ok(()),
    }
}

fn with_jitter(d: Duration) -> Duration {
    d.mul_f64(0.75 + fastrand::f64() * 0.5)
}

async fn ack_loop(
    client: AsyncClient,
    mut rx: mpsc::UnboundedReceiver<AckCmd>,
    generation: Arc<AtomicU64>,
) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            AckCmd::Ack(publish, g) => {
                if g != generation.load(Ordering::SeqCst) {
                    tracing::debug!(
                        pkid = publish.pkid,
                        "not acknowledging a message of an earlier connection; the broker \
                         redelivers it and the redelivery is acknowledged"
                    );
                    continue;
                }
                if let Err(e) = client.ack(&publish).await {
                    tracing::warn!(error = %e, "cannot send PUBACK; the broker will redeliver");
                }
            }
            AckCmd::Reply(topic, payload) => {
                if let Err(e) = client
                    .publish(topic.clone(), QoS::AtLeastOnce, false, payload)
                    .await
                {
                    tracing::warn!(topic, error = %e, "cannot publish the error reply");
                }
            }
        }
    }
}
