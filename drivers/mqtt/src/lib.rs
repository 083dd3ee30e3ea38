//! # hearth-driver-mqtt
//!
//! MQTT sources of hearth (interface A): zigbee2mqtt sensors and vendors' external drivers,
//! both reached through the box's MQTT broker.
//!
//! The crate owns the MQTT *session* and the *commit-then-ack* discipline; what a message means
//! belongs to a [`Handler`]: [`handlers::Zigbee2mqtt`] (rules engine of
//! `hearth-driver-zigbee2mqtt`) and [`handlers::External`] (the contract of
//! `hearth-driver-external`). It must not know a payload format itself, and it never touches
//! the outbox except through `hearth-driver-api`'s `Ingest`.
//!
//! How a message travels: rumqttc event loop → bounded channel (`[mqtt] max_pending`) →
//! processor: the [`ledger::Ledger`] decides store-or-ack-only, the handler turns the message
//! into records and state → one commit per batch (records, handler state, packet-id entries and
//! the sequence number together) → PUBACKs in arrival order.
//!
//! ## The safety session (issue 15)
//! A handler may name [`Handler::safety_subscriptions`] (zigbee2mqtt: the devices with a safety
//! `role`). The source then opens a second persistent session, client id
//! `<client_id>-<source>-safety`, with its own ledger (`mqtt:<source>/safety`), sequence cursor,
//! subscriptions record and ack task, and the same commit-then-ack rule. One processor task
//! handles both sessions with the one handler (so its state stays one state), the safety
//! session first, also while it waits for room for a bulk commit; the committer commits safety
//! batches before waiting bulk ones unless they share a handler-state key (then in the order
//! they were made). The main session acknowledges messages matching the safety filters without
//! storing them once those filters were recorded in an earlier run (the first run with a new
//! role stores both; the engine's edges and debounce absorb the repeat). Safety sequences have
//! bit 62 set so record ids never collide. Tests: `tests/safety.rs`.
//!
//! ## Invariants
//! - A message is acknowledged (PUBACK) only after the records it produced are committed
//!   (DESIGN invariant 1). Tests: `tests/mosquitto.rs` (root crate)
//!   `a_message_is_acknowledged_only_after_its_commit`, and the kill -9 crash test
//!   `tests/mqtt_crash.rs` (0 lost, 0 duplicated of 10 000 messages).
//! - A redelivered message (DUP, same packet id and content, committed before) is acknowledged
//!   and not stored again. Tests: `ledger::tests::*`, the crash test.
//! - Input never panics the source: undecodable messages are dead-lettered with the handler's
//!   error, counted, acknowledged, and (for external drivers) answered on their error topic.
//!   Test: `tests/mosquitto.rs` `malformed_messages_are_dead_lettered_and_acknowledged`.
//! - The persistent session subscribes exactly the handler's filters: on connect, filters no
//!   longer configured are unsubscribed and new ones subscribed, from the set the broker last
//!   confirmed (recorded in the outbox journal `mqtt:<source>:subscriptions`); a filter the
//!   session holds is not subscribed again (no retained replay). Tests:
//!   `subscriptions::tests::*`, `tests/session.rs`
//!   `issue_6_a_changed_filter_replaces_the_old_one_in_the_kept_session`.
#![forbid(unsafe_code)]

pub mod handlers;
pub mod ledger;
pub mod publisher;
mod session;
mod simulated;
mod source;
mod subscriptions;

use hearth_model::{Record, Timestamp};

pub use publisher::Publisher;
pub use source::{CommitObserver, CommittedBatch, MqttSource, Transport};

/// A message as the processor sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Topic name.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// The broker replayed a retained message (a past state, e.g. after subscribing).
    pub retained: bool,
    /// The broker marked it as a redelivery.
    pub dup: bool,
    /// Packet id (0 for QoS 0: nothing to acknowledge).
    pub pkid: u16,
    /// Which connection it came on (acks of earlier connections are dropped).
    pub generation: u64,
    /// When hearth took it from the connection.
    pub arrived: std::time::Instant,
    /// The rumqttc packet to acknowledge (None for the simulated transport and QoS 0).
    pub(crate) ack: Option<Box<rumqttc::Publish>>,
}

impl Incoming {
    pub(crate) fn from_publish(p: rumqttc::Publish, generation: u64) -> Self {
        let qos1 = p.qos != rumqttc::QoS::AtMostOnce;
        let mut token = p.clone();
        token.payload = Default::default();
        Incoming {
            topic: p.topic,
            payload: p.payload.to_vec(),
            retained: p.retain,
            dup: p.dup,
            pkid: if qos1 { p.pkid } else { 0 },
            generation,
            arrived: std::time::Instant::now(),
            ack: qos1.then(|| Box::new(token)),
        }
    }

    /// A message of the simulated transport (nothing to acknowledge).
    pub fn simulated(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Incoming {
            topic: topic.into(),
            payload: payload.into(),
            retained: false,
            dup: false,
            pkid: 0,
            generation: 0,
            arrived: std::time::Instant::now(),
            ack: None,
        }
    }
}

/// What a handler made of one message (or of a timer tick).
#[derive(Debug, Default)]
pub struct Handled {
    /// Records to store.
    pub records: Vec<Record>,
    /// Handler state to commit with them (cursor key → value), restored at the next start.
    pub state: Vec<(String, i64)>,
    /// The message (or part of it) could not be understood: keep the raw payload with this
    /// error in the dead-letter table.
    pub dead_letter: Option<String>,
    /// A reply to publish after the commit (topic, payload), e.g. an external driver's error.
    pub reply: Option<(String, Vec<u8>)>,
    /// What devices told about themselves (zigbee2mqtt `bridge/devices`), stored after the
    /// commit with `Ingest::device_facts`.
    pub devices: Vec<hearth_model::Device>,
}

/// Turns the messages of one source into records. Sans-I/O: no waiting, no network.
pub trait Handler: Send + Sync {
    /// Topic filters to subscribe to (QoS 1).
    fn subscriptions(&self) -> Vec<String>;
    /// Topic filters of the safety session (issue 15): messages of devices whose alarms must
    /// not wait behind other traffic. The main session acknowledges such messages without
    /// storing them once the safety session holds the filter. Default: none (no safety
    /// session).
    fn safety_subscriptions(&self) -> Vec<String> {
        Vec::new()
    }
    /// The prefix of every state key this handler commits (its state is restored from it).
    fn state_prefix(&self) -> String;
    /// Restore committed state at start-up.
    fn restore(&mut self, state: Vec<(String, i64)>);
    /// One message; `sequence` is unique per source and stable across redeliveries.
    fn handle(&mut self, msg: &Incoming, sequence: u64, now: Timestamp) -> Handled;
    /// Timers (service rules, offline detection).
    fn tick(&mut self, now: Timestamp) -> Handled;
    /// When `tick` next has work.
    fn next_deadline(&self) -> Option<Timestamp>;
}

/// Errors of the MQTT source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttError {
    /// The configuration cannot work (unreadable TLS or password files …).
    #[error("MQTT configuration: {what}")]
    Config {
        /// What is wrong and what to do.
        what: String,
    },
}
