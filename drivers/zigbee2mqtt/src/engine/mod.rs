//! The sans-I/O engine: a message or a tick in, records and state changes out.
//!
//! One concern per module, all of them `impl Engine` blocks or the types they keep:
//! - this file: the public API ([`Engine::new`], [`Engine::handle`]) and dispatch by topic;
//! - `topics`: who a device is (friendly names, IEEE addresses, renames), bridge messages,
//!   availability and the offline event;
//! - `conditions`: device state messages → observations, alarm conditions raised and cleared;
//! - `timers`: local hours, due times, and what a tick fires;
//! - `state`: the persisted slots per device key and what changed since the last message;
//! - `rule_index`, `hashing`: the compiled rules per property and FNV-1a.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hearth_config::{RuleEmit, SensorConfig, Zigbee2mqttConfig};
use hearth_model::{
    Alarm, AlarmKind, AlarmState, Category, DeviceId, PersonRef, Reading, Record, Severity,
    TechnicalAlarm, TechnicalKind, Timestamp,
};
use jiff::tz::TimeZone;
use serde_json::{Map, Value as Json};

use crate::event::{Event, EventKind};
use crate::rules::{self, Rule, ieee_hex, kind_of};

mod conditions;
mod hashing;
mod rule_index;
mod state;
mod timers;
mod topics;

use self::hashing::*;
use self::rule_index::*;
use self::state::*;
use self::topics::*;

/// The largest device message (state, availability) taken: a sensor's state is a few hundred
/// bytes; anything this large is a fault, refused before it is parsed (issue 13: zigbee2mqtt
/// payloads had no size limit, and one faulty publisher could fill the partition).
pub const MAX_DEVICE_PAYLOAD: usize = 64 * 1024;

/// The largest `bridge/*` message taken: `bridge/devices` lists every device with its
/// definition and exposes (a few kB each), so it is allowed far more.
pub const MAX_BRIDGE_PAYLOAD: usize = 8 * 1024 * 1024;

/// Refuse a payload over `limit` bytes, naming its size (never its content).
fn check_size(topic: &str, payload: &[u8], limit: usize) -> Result<(), InputError> {
    if payload.len() > limit {
        return Err(input_error(
            topic,
            format!(
                "the payload is {} bytes, more than the limit of {limit} for this topic; \
                 check the publisher (it is dead-lettered, only a prefix is kept)",
                payload.len()
            ),
        ));
    }
    Ok(())
}

/// How a source runs the engine. hearth builds these from a source's configuration in one place,
/// its daemon's `settings` module (`src/daemon/settings.rs`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The source's name in the config (`[source.<name>]`); part of every state key.
    pub source: String,
    /// The source's zigbee2mqtt settings and rules.
    pub config: Zigbee2mqttConfig,
    /// The source's category: the category of observations of sensors without their own.
    pub category: Category,
    /// `gateway.time_zone`: the zone `rule.hours` are local to.
    pub time_zone: TimeZone,
}

impl Settings {
    /// Default zigbee2mqtt settings (shipped rules, base topic `zigbee2mqtt`), category
    /// health, UTC.
    pub fn new(source: impl Into<String>) -> Self {
        Settings {
            source: source.into(),
            config: Zigbee2mqttConfig::default(),
            category: Category::Health,
            time_zone: TimeZone::UTC,
        }
    }
}

/// One MQTT message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The topic, e.g. `zigbee2mqtt/bathroom/leak`.
    pub topic: &'a str,
    /// The payload bytes.
    pub payload: &'a [u8],
    /// The broker replayed a retained message (a past state).
    pub retained: bool,
    /// Unique per message of the source, assigned durably by the transport; the sequence of the
    /// message's records (so a redelivered message gives the same record ids).
    pub sequence: u64,
}

/// What one message or tick produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Records to store, in order.
    pub events: Vec<Event>,
    /// State to commit in the same transaction as the records (key → value; value 0 means
    /// "no longer set"); every key starts with [`Engine::state_prefix`]. `seen` is written
    /// coarsely (see the crate doc, State).
    pub state: Vec<(String, i64)>,
    /// Parts of the message that were skipped (the caller dead-letters the payload with them).
    /// Never contain payload values.
    pub problems: Vec<String>,
    /// What `bridge/devices` tells about each device (vendor, model, software build, IEEE
    /// address), for the equipment register and the FHIR PhdDevice (`Ingest::device_facts`).
    pub devices: Vec<hearth_model::Device>,
}

/// The settings cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// A rule cannot be compiled.
    #[error("{origin}: rule {index} (property \"{property}\"): {why}")]
    Rule {
        /// `config` or the shipped rules file.
        origin: String,
        /// 1-based position in its list.
        index: usize,
        /// The rule's property.
        property: String,
        /// What is wrong and what to write.
        why: String,
    },
    /// The shipped rules file does not parse (a build defect).
    #[error("the shipped zigbee2mqtt rules do not parse: {0}; report this as a bug")]
    DefaultRules(String),
    /// The source name or base topic cannot be used.
    #[error("{0}")]
    Settings(String),
}

/// A message that cannot be understood at all; the caller dead-letters it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("zigbee2mqtt message on topic \"{topic}\": {reason}")]
pub struct InputError {
    /// The message's topic.
    pub topic: String,
    /// What is wrong.
    pub reason: String,
}

fn input_error(topic: &str, reason: impl Into<String>) -> InputError {
    InputError {
        topic: topic.to_owned(),
        reason: reason.into(),
    }
}

const BRIDGE: &str = "bridge";
const OFFLINE: &str = "technical.device_offline";
/// The coarsest step of the persisted `seen` slot (see [`Engine::set`]).
const SEEN_STEP_MAX: Duration = Duration::from_secs(5 * 60);
/// Devices whose [`Who`] is kept between messages (the cache is emptied when it is full).
const WHO_CACHE: usize = 4_096;

/// Who a device is, for rules and sensor configuration.
#[derive(Debug, Clone)]
struct Who {
    key: String,
    id: DeviceId,
    name: Option<String>,
    ieee: Option<String>,
    /// Index of its `[[source.zigbee2mqtt.device]]` entry.
    sensor: Option<usize>,
}

/// The zigbee2mqtt engine of one source (see the crate doc).
#[derive(Debug)]
pub struct Engine {
    source: String,
    base: String,
    category: Category,
    tz: TimeZone,
    rules: Arc<[Rule]>,
    /// property → its rules.
    by_property: RuleIndex,
    debounce: Duration,
    offline_after: Duration,
    /// The step of the persisted `seen` (ms): min(offline_after / 100, 5 min).
    seen_step: i64,
    sensors: Vec<SensorConfig>,
    /// Each sensor's name as an IEEE address (16 lowercase hex digits), when it is one.
    sensor_ieee: Vec<Option<String>>,
    /// friendly name → IEEE (16 lowercase hex digits).
    names: BTreeMap<String, String>,
    /// IEEE → the first friendly name (in name order) with it.
    by_ieee: HashMap<String, String>,
    /// friendly name → who, for the current `names`.
    whos: HashMap<String, Arc<Who>>,
    /// device key → its state.
    devices: HashMap<String, DevState>,
    /// State entries written since the last [`Engine::finish`], in order of writing.
    dirty: Vec<(Slot, String, String, i64)>,
    /// No timer is due before this (ms); a lower bound, `i64::MIN` when unknown.
    horizon: i64,
    /// [`Engine::state_prefix`].
    prefix: String,
    /// Reused per message: the rules to run.
    scratch: Vec<usize>,
    /// Reused per message: the codes of the observations so far.
    mdcs: Vec<u32>,
}

/// The shipped rules (`rules/default.toml`); empty (and an error logged) if they do not
/// parse, which the unit test `shipped_rules_parse` rules out.
pub fn default_rules() -> Vec<hearth_config::RuleConfig> {
    match rules::try_default_rules() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "shipped zigbee2mqtt rules");
            Vec::new()
        }
    }
}

fn ms(t: Timestamp) -> i64 {
    t.unix_millis()
}

fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Engine {
    /// Compiles the rules: the config's first, then the shipped ones when
    /// `config.default_rules`.
    pub fn new(settings: Settings) -> Result<Engine, EngineError> {
        let c = &settings.config;
        if settings.source.is_empty() || settings.source.contains(char::is_whitespace) {
            return Err(EngineError::Settings(format!(
                "source name \"{}\" must be non-empty without whitespace",
                settings.source
            )));
        }
        let base = c.base_topic.trim_matches('/').to_owned();
        if base.is_empty() || base.contains(['#', '+']) {
            return Err(EngineError::Settings(format!(
                "base_topic \"{}\" must be a topic without wildcards, e.g. \"zigbee2mqtt\"",
                c.base_topic
            )));
        }
        let pct = c.low_battery_percent;
        let mut compiled = Vec::new();
        for (i, r) in c.rules.iter().enumerate() {
            compiled.push(rules::compile(r, "config", i + 1, c.debounce.get(), pct)?);
        }
        // The roles' implicit rules (issue 15): after the operator's, before the shipped ones,
        // so a config rule of the same property and type still replaces them.
        for (i, d) in c.devices.iter().enumerate() {
            compiled.extend(rules::role_rules(d, i + 1, c.debounce.get(), pct)?);
        }
        if c.default_rules {
            for (i, r) in rules::try_default_rules()?.iter().enumerate() {
                compiled.push(rules::compile(
                    r,
                    "rules/default.toml",
                    i + 1,
                    c.debounce.get(),
                    pct,
                )?);
            }
        }
        let offline_after = c.offline_after.get();
        let seen_step = dur_ms((offline_after / 100).min(SEEN_STEP_MAX));
        let prefix = format!("z2m:{}:", settings.source);
        Ok(Engine {
            source: settings.source,
            base,
            category: settings.category,
            tz: settings.time_zone,
            by_property: index_rules(&compiled),
            rules: compiled.into(),
            debounce: c.debounce.get(),
            offline_after,
            seen_step,
            sensor_ieee: c.devices.iter().map(|s| ieee_hex(&s.name)).collect(),
            sensors: c.devices.clone(),
            names: BTreeMap::new(),
            by_ieee: HashMap::new(),
            whos: HashMap::new(),
            devices: HashMap::new(),
            dirty: Vec::new(),
            horizon: i64::MIN,
            prefix,
            scratch: Vec::new(),
            mdcs: Vec::new(),
        })
    }

    /// Every state key starts with this: `z2m:<source>:`.
    pub fn state_prefix(&self) -> String {
        self.prefix.clone()
    }

    /// The MQTT subscriptions: `<base>/#`.
    pub fn subscriptions(&self) -> Vec<String> {
        vec![format!("{}/#", self.base)]
    }

    /// The topic filters of the devices with a safety role (`[[source.zigbee2mqtt.device]]`
    /// `role`), for the source's safety session: `<base>/<name>` (device state) and
    /// `<base>/<name>/+` (availability, `output: attribute`), in config order. Empty when no
    /// device has a safety role.
    pub fn safety_subscriptions(&self) -> Vec<String> {
        let mut filters = Vec::new();
        for d in self.sensors.iter().filter(|d| d.role.is_safety()) {
            let name = d.name.trim_matches('/');
            if name.is_empty() || name.contains(['+', '#']) {
                continue; // refused by the config check; never a wildcard here
            }
            filters.push(format!("{}/{name}", self.base));
            filters.push(format!("{}/{name}/+", self.base));
        }
        filters
    }

    /// Turns one message into events and state changes.
    pub fn handle(&mut self, msg: &Message<'_>, now: Timestamp) -> Result<Output, InputError> {
        self.dirty.clear();
        let mut out = Output::default();
        let result = self.dispatch(msg, now, &mut out);
        let out = self.finish(out);
        result.map(|()| out)
    }

    fn dispatch(
        &mut self,
        msg: &Message<'_>,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<(), InputError> {
        let topic = msg.topic;
        let Some(rest) = topic
            .strip_prefix(self.base.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            tracing::debug!(topic, "not under the zigbee2mqtt base topic; ignored");
            return Ok(());
        };
        if rest.is_empty() || rest == BRIDGE {
            return Ok(());
        }
        if let Some(b) = rest.strip_prefix("bridge/") {
            check_size(topic, msg.payload, MAX_BRIDGE_PAYLOAD)?;
            return match b {
                "devices" => self.bridge_devices(msg, now, out),
                "state" => self.bridge_state(msg, now, out),
                _ => Ok(()),
            };
        }
        let (name, suffix) = self.split_device(rest);
        if name.is_empty() {
            return Ok(());
        }
        check_size(topic, msg.payload, MAX_DEVICE_PAYLOAD)?;
        match suffix {
            "" => {
                if msg.payload.iter().all(u8::is_ascii_whitespace) {
                    return Ok(()); // a retained message being deleted
                }
                let obj = match serde_json::from_slice::<Json>(msg.payload) {
                    Ok(Json::Object(o)) => o,
                    Ok(other) => {
                        return Err(input_error(
                            topic,
                            format!(
                                "the device state is {}; expected a JSON object",
                                kind_of(&other)
                            ),
                        ));
                    }
                    Err(e) => {
                        return Err(input_error(topic, format!("the payload is not JSON: {e}")));
                    }
                };
                self.device_state(topic, name, &obj, msg, now, out)
            }
            "availability" => self.availability(msg, name, now, out),
            s if s.starts_with("set") || s.starts_with("get") => Ok(()),
            attr if !attr.contains('/') && self.names.contains_key(name) => {
                // `output: attribute`: <name>/<attribute> with the bare value.
                let value = serde_json::from_slice::<Json>(msg.payload).unwrap_or_else(|_| {
                    Json::String(String::from_utf8_lossy(msg.payload).into_owned())
                });
                let mut obj = Map::new();
                obj.insert(attr.to_owned(), value);
                self.device_state(topic, name, &obj, msg, now, out)
            }
            _ => {
                tracing::debug!(topic, "zigbee2mqtt topic not understood; ignored");
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Clear(String, String),
    Raise(String, String),
    Offline(String),
}

struct Ctx<'a> {
    who: &'a Who,
    seq: u64,
    at: Timestamp,
    device_time: Option<Timestamp>,
    now: Timestamp,
}
