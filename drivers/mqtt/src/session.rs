//! The rumqttc session: a persistent QoS 1 subscription with manual acknowledgements.
//!
//! Two tasks surround the processor (`source.rs`):
//! - the event-loop task only polls rumqttc and forwards publishes; it never waits for the
//!   processor's commits, so keep-alive pings flow while SQLite is busy;
//! - the ack task sends the PUBACKs (and error replies) the processor hands it, in order, after
//!   the commit. An ack of a message from an earlier connection is dropped: the broker redelivers
//!   that message with DUP set and the ledger acknowledges the redelivery instead (STYLE rule 3:
//!   no ack carried over a reconnect).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hearth_config::MqttConfig;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, Transport};
use tokio::sync::mpsc;

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
    let files = hearth_uplink::tls::TlsFiles {
        ca_file: cfg.ca_file.clone(),
        client_cert: cfg.client_cert.clone(),
        client_key: cfg.client_key.clone(),
    };
    hearth_uplink::tls::client_config(&files, "mqtt").map_err(|e| MqttError::Config {
        what: e.to_string(),
    })
}

/// Connects and runs the two tasks. Returns the link events; the tasks end when `events` is
/// dropped (the event loop) and when `acks` closes (the ack task).
pub(crate) fn start(
    options: MqttOptions,
    subscriptions: Vec<String>,
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

async fn poll_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    subscriptions: Vec<String>,
    tx: mpsc::Sender<LinkEvent>,
    generation: Arc<AtomicU64>,
    (initial, max): (Duration, Duration),
) {
    let mut delay = initial;
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
                if !ack.session_present {
                    // A new session: subscribe (the broker keeps subscriptions of a persistent
                    // session, and subscribing again would replay every retained message).
                    for topic in &subscriptions {
                        if let Err(e) = client.subscribe(topic.clone(), QoS::AtLeastOnce).await {
                            tracing::warn!(topic, error = %e, "cannot queue the MQTT subscription");
                        }
                    }
                }
                tx.send(LinkEvent::Connected {
                    session_present: ack.session_present,
                })
                .await
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
