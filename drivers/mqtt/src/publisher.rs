//! A small MQTT publisher for hearth's own messages to devices (the receipt signal on
//! zigbee2mqtt sirens and lights, A2): its own client id `<client_id>-<name>`, a clean session,
//! QoS 1, never retained, reconnecting with the `[mqtt]` back-off.
//!
//! Publishing never waits: [`Publisher::publish`] puts the message in a bounded queue and
//! returns; when the queue is full (the broker is gone for long) the message is dropped and
//! counted ([`Publisher::dropped`]). Messages queued while the broker is away go out after the
//! reconnect; one that was in flight when the connection dropped is lost (a clean session keeps
//! nothing), which suits a signal that is only worth showing now.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hearth_config::MqttConfig;
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Packet, QoS};

use crate::MqttError;

/// Messages waiting for the broker, per publisher.
pub const QUEUE: usize = 64;

/// Publishes QoS 1 messages without ever blocking the caller. Cheap to clone; the connection
/// ends when the last clone is dropped.
#[derive(Clone)]
pub struct Publisher {
    client: AsyncClient,
    name: Arc<str>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("name", &self.name)
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl Publisher {
    /// Connects to the `[mqtt]` broker as `<client_id>-<name>` (TLS and credentials as the
    /// sources use them) and keeps reconnecting until the last clone is dropped. Must be called
    /// within a tokio runtime. Fails only on configuration (unreadable password or TLS files).
    pub fn start(cfg: &MqttConfig, name: &str) -> Result<Self, MqttError> {
        let mut options = crate::session::options(cfg, name)?;
        options
            .set_clean_session(true)
            .set_manual_acks(false)
            .set_max_packet_size(64 << 10, 64 << 10)
            .set_request_channel_capacity(QUEUE);
        let (client, eventloop) = AsyncClient::new(options, QUEUE);
        tokio::spawn(poll(
            eventloop,
            Arc::from(name),
            (cfg.reconnect_initial.get(), cfg.reconnect_max.get()),
        ));
        Ok(Publisher {
            client,
            name: Arc::from(name),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues `payload` for `topic` (QoS 1, not retained). Returns false, and counts, when it
    /// was dropped: the queue is full or the topic is not a valid topic name.
    pub fn publish(&self, topic: &str, payload: Vec<u8>) -> bool {
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
        {
            Ok(()) => true,
            Err(e) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(publisher = %self.name, topic, dropped = n, error = %e,
                    "MQTT message dropped: the broker is not taking messages fast enough (queue full)");
                false
            }
        }
    }

    /// How many messages were dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Drives the connection: reconnects with back-off, logs the first failure of each outage and
/// the reconnect, ends when every [`Publisher`] clone is gone.
async fn poll(mut eventloop: EventLoop, name: Arc<str>, (initial, max): (Duration, Duration)) {
    let mut delay = initial;
    let mut connected = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                delay = initial;
                connected = true;
                tracing::info!(publisher = %name, "MQTT publisher connected");
            }
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => return,
            Err(e) => {
                if connected || delay == initial {
                    tracing::warn!(publisher = %name, error = %e,
                        "MQTT publisher cannot reach the broker; retrying");
                }
                connected = false;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(max);
            }
        }
    }
}
