//! The sans-I/O engine: a message or a tick in, records and state changes out.

use std::collections::{BTreeMap, BTreeSet};
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
use crate::rules::{self, Rule, kind_of};

/// How a source runs the engine.
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
    /// "no longer set"); every key starts with [`Engine::state_prefix`].
    pub state: Vec<(String, i64)>,
    /// Parts of the message that were skipped (the caller dead-letters the payload with them).
    /// Never contain payload values.
    pub problems: Vec<String>,
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

/// Kinds of persisted state; the first part of a state key after the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Slot {
    /// A condition active since (ms); name `<emit>.<type>.<property>`.
    Cond,
    /// An alarm raised (1); name `<emit>.<type>`.
    Raised,
    /// A raised alarm's condition inactive since (ms), clear pending; name `<emit>.<type>`.
    Clear,
    /// A momentary alarm last raised (ms); name `<emit>.<type>`.
    Moment,
    /// Hash of the last observed value; name `<type>.<property>`.
    Last,
    /// Last heard of (ms), for `offline_after`; name empty.
    Seen,
}

impl Slot {
    const ALL: [Slot; 6] = [
        Slot::Cond,
        Slot::Raised,
        Slot::Clear,
        Slot::Moment,
        Slot::Last,
        Slot::Seen,
    ];
    const fn as_str(self) -> &'static str {
        match self {
            Slot::Cond => "cond",
            Slot::Raised => "raised",
            Slot::Clear => "clear",
            Slot::Moment => "moment",
            Slot::Last => "last",
            Slot::Seen => "seen",
        }
    }
}

/// (slot, device key, name). The device key is a device id (`zigbee:…`, never whitespace) or
/// `bridge`.
type Key = (Slot, String, String);

const BRIDGE: &str = "bridge";
const OFFLINE: &str = "technical.device_offline";

/// Who a device is, for rules and sensor configuration.
#[derive(Debug, Clone)]
struct Who {
    key: String,
    id: DeviceId,
    name: Option<String>,
    ieee: Option<String>,
}

/// The zigbee2mqtt engine of one source (see the crate doc).
#[derive(Debug)]
pub struct Engine {
    source: String,
    base: String,
    category: Category,
    tz: TimeZone,
    rules: Arc<[Rule]>,
    debounce: Duration,
    offline_after: Duration,
    sensors: Vec<SensorConfig>,
    /// friendly name → IEEE (16 lowercase hex digits).
    names: BTreeMap<String, String>,
    state: BTreeMap<Key, i64>,
    dirty: BTreeMap<Key, i64>,
    /// In memory only: the property and value behind a pending timer, for its event.
    context: BTreeMap<(String, String), (String, Json)>,
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

/// 16 lowercase hex digits of an IEEE address (`0x00158D…` or bare hex), if it is one.
fn ieee_hex(s: &str) -> Option<String> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    (h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
}

/// Percent-escapes everything but `[A-Za-z0-9._/-]`.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// FNV-1a of a value's JSON text, never 0 (0 means "none" in state).
fn value_hash(v: &Json) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let h = i64::from_ne_bytes(h.to_ne_bytes());
    if h == 0 { 1 } else { h }
}

/// `last_seen` as zigbee2mqtt writes it: epoch ms or ISO 8601.
fn device_time(obj: &Map<String, Json>) -> Result<Option<Timestamp>, String> {
    match obj.get("last_seen") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => n
            .as_i64()
            .filter(|m| (0..=253_402_300_799_999).contains(m))
            .map(|m| Some(Timestamp::from_unix_millis(m)))
            .ok_or_else(|| "last_seen is not epoch milliseconds; used the receipt time".into()),
        Some(Json::String(s)) => s
            .parse::<jiff::Timestamp>()
            .map(|t| Some(Timestamp::from_unix_millis(t.as_millisecond())))
            .map_err(|_| {
                "last_seen is not an ISO 8601 time with offset; used the receipt time".into()
            }),
        Some(other) => Err(format!(
            "last_seen is {}; expected epoch milliseconds or ISO 8601",
            kind_of(other)
        )),
    }
}

fn state_word(payload: &[u8]) -> Option<bool> {
    let text = std::str::from_utf8(payload).ok()?.trim();
    let word = match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(o)) => match o.get("state") {
            Some(Json::String(s)) => s.clone(),
            _ => return None,
        },
        Ok(Json::String(s)) => s,
        _ => text.to_owned(),
    };
    match word.to_ascii_lowercase().as_str() {
        "online" => Some(true),
        "offline" => Some(false),
        _ => None,
    }
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
        Ok(Engine {
            source: settings.source,
            base,
            category: settings.category,
            tz: settings.time_zone,
            rules: compiled.into(),
            debounce: c.debounce.get(),
            offline_after: c.offline_after.get(),
            sensors: c.devices.clone(),
            names: BTreeMap::new(),
            state: BTreeMap::new(),
            dirty: BTreeMap::new(),
            context: BTreeMap::new(),
        })
    }

    /// Every state key starts with this: `z2m:<source>:`.
    pub fn state_prefix(&self) -> String {
        format!("z2m:{}:", self.source)
    }

    /// The MQTT subscriptions: `<base>/#`.
    pub fn subscriptions(&self) -> Vec<String> {
        vec![format!("{}/#", self.base)]
    }

    fn key_text(&self, k: &Key) -> String {
        let (slot, device, name) = k;
        format!(
            "{}{}:{} {}",
            self.state_prefix(),
            slot.as_str(),
            device,
            name
        )
    }

    /// Restores state committed from earlier [`Output::state`]s (other keys are ignored).
    pub fn restore(&mut self, state: impl IntoIterator<Item = (String, i64)>) {
        let prefix = self.state_prefix();
        for (k, v) in state {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let Some((slot, rest)) = rest.split_once(':') else {
                continue;
            };
            let Some(slot) = Slot::ALL.into_iter().find(|s| s.as_str() == slot) else {
                tracing::debug!(key = %k, "unknown zigbee2mqtt state key ignored");
                continue;
            };
            let (device, name) = rest.split_once(' ').unwrap_or((rest, ""));
            let key = (slot, device.to_owned(), name.to_owned());
            if v == 0 {
                self.state.remove(&key);
            } else {
                self.state.insert(key, v);
            }
        }
    }

    fn get(&self, slot: Slot, device: &str, name: &str) -> Option<i64> {
        self.state
            .get(&(slot, device.to_owned(), name.to_owned()))
            .copied()
    }

    fn set(&mut self, slot: Slot, device: &str, name: &str, v: Option<i64>) {
        let key = (slot, device.to_owned(), name.to_owned());
        let v = v.filter(|v| *v != 0);
        if self.state.get(&key).copied() == v {
            return;
        }
        match v {
            Some(v) => self.state.insert(key.clone(), v),
            None => self.state.remove(&key),
        };
        self.dirty.insert(key, v.unwrap_or(0));
    }

    fn finish(&mut self, mut out: Output) -> Output {
        let dirty = std::mem::take(&mut self.dirty);
        out.state = dirty.iter().map(|(k, v)| (self.key_text(k), *v)).collect();
        let mut ids = BTreeSet::new();
        out.events.retain(|e| ids.insert(e.record.id()));
        out
    }

    // --- devices ---

    fn who_by_name(&self, name: &str) -> Result<Who, String> {
        let ieee = self.names.get(name).cloned().or_else(|| ieee_hex(name));
        let (key, ieee) = match ieee {
            Some(h) => (format!("zigbee:{h}"), Some(format!("0x{h}"))),
            None => (format!("zigbee:name:{}", escape(name)), None),
        };
        let id = DeviceId::parse(&key).map_err(|e| e.to_string())?;
        Ok(Who {
            key,
            id,
            name: Some(name.to_owned()),
            ieee,
        })
    }

    fn who_by_key(&self, key: &str) -> Option<Who> {
        let id = DeviceId::parse(key).ok()?;
        let value = key.strip_prefix("zigbee:")?;
        let (name, ieee) = match value.strip_prefix("name:") {
            Some(esc) => (Some(unescape(esc)), None),
            None => {
                let name = self
                    .names
                    .iter()
                    .find(|(_, h)| *h == value)
                    .map(|(n, _)| n.clone());
                (name, Some(format!("0x{value}")))
            }
        };
        Some(Who {
            key: key.to_owned(),
            id,
            name,
            ieee,
        })
    }

    fn matches(who: &Who, wanted: &str) -> bool {
        who.name.as_deref() == Some(wanted)
            || match (&who.ieee, ieee_hex(wanted)) {
                (Some(i), Some(w)) => i.get(2..) == Some(w.as_str()),
                _ => false,
            }
    }

    fn sensor(&self, who: &Who) -> Option<&SensorConfig> {
        self.sensors.iter().find(|s| Self::matches(who, &s.name))
    }

    fn applies(rule: &Rule, who: &Who) -> bool {
        rule.device.as_deref().is_none_or(|d| Self::matches(who, d))
    }

    /// Splits `<name>[/<suffix>]`, preferring the longest known friendly name.
    fn split_device<'t>(&self, rest: &'t str) -> (&'t str, &'t str) {
        let known = self
            .names
            .keys()
            .filter(|n| {
                rest == n.as_str()
                    || (rest.starts_with(n.as_str()) && rest.as_bytes().get(n.len()) == Some(&b'/'))
            })
            .max_by_key(|n| n.len());
        if let Some(n) = known {
            let suffix = rest.get(n.len() + 1..).unwrap_or("");
            return (&rest[..n.len()], suffix);
        }
        if let Some(name) = rest.strip_suffix("/availability") {
            return (name, "availability");
        }
        let mut at = 0;
        for seg in rest.split('/') {
            if at > 0 && (seg == "set" || seg == "get") {
                return (&rest[..at - 1], &rest[at..]);
            }
            at += seg.len() + 1;
        }
        (rest, "")
    }

    // --- input ---

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

    fn bridge_state(
        &mut self,
        msg: &Message<'_>,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<(), InputError> {
        let online = state_word(msg.payload).ok_or_else(|| {
            input_error(
                msg.topic,
                "expected {\"state\":\"online\"|\"offline\"} or online/offline",
            )
        })?;
        let raised = self.get(Slot::Raised, BRIDGE, OFFLINE).is_some();
        if online == raised {
            let state = if online {
                AlarmState::Cleared
            } else {
                AlarmState::Raised
            };
            let message = if online {
                format!(
                    "The zigbee2mqtt bridge of source {} is online again.",
                    self.source
                )
            } else {
                format!(
                    "The zigbee2mqtt bridge of source {} is offline: no Zigbee sensor data and no \
                     Zigbee safety alarms arrive. Check the zigbee2mqtt service and its Zigbee \
                     adapter.",
                    self.source
                )
            };
            let record = TechnicalAlarm::new(
                format!("zigbee2mqtt:{}:{BRIDGE}", self.source),
                TechnicalKind::DeviceOffline,
                Severity::Critical,
                state,
                message,
                now,
            );
            out.events.push(Event {
                kind: EventKind::Technical,
                event_type: "device_offline".into(),
                device: None,
                property: Some("state".into()),
                value: Json::String(if online { "online" } else { "offline" }.into()),
                record: Record::Technical(record),
            });
            self.set(Slot::Raised, BRIDGE, OFFLINE, (!online).then_some(1));
        }
        Ok(())
    }

    fn bridge_devices(
        &mut self,
        msg: &Message<'_>,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<(), InputError> {
        let list = match serde_json::from_slice::<Json>(msg.payload) {
            Ok(Json::Array(a)) => a,
            Ok(other) => {
                return Err(input_error(
                    msg.topic,
                    format!(
                        "bridge/devices is {}; expected a JSON array of devices",
                        kind_of(&other)
                    ),
                ));
            }
            Err(e) => {
                return Err(input_error(
                    msg.topic,
                    format!("the payload is not JSON: {e}"),
                ));
            }
        };
        let mut names = BTreeMap::new();
        let mut tracked = BTreeSet::new();
        for (i, d) in list.iter().enumerate() {
            let Some(d) = d.as_object() else {
                out.problems
                    .push(format!("bridge/devices[{i}] is not an object; skipped"));
                continue;
            };
            let Some(ieee) = d
                .get("ieee_address")
                .and_then(Json::as_str)
                .and_then(ieee_hex)
            else {
                out.problems.push(format!(
                    "bridge/devices[{i}] has no ieee_address of 16 hex digits; skipped"
                ));
                continue;
            };
            if d.get("type").and_then(Json::as_str) == Some("Coordinator") {
                continue;
            }
            if let Some(name) = d.get("friendly_name").and_then(Json::as_str) {
                names.insert(name.to_owned(), ieee.clone());
            }
            if d.get("disabled").and_then(Json::as_bool) != Some(true) {
                tracked.insert(format!("zigbee:{ieee}"));
            }
        }
        self.names = names;
        self.migrate_fallback_ids();
        // Offline tracking follows the list: start the clock of new devices, stop that of
        // removed ones.
        let seen: Vec<String> = self
            .state
            .keys()
            .filter(|(s, d, _)| {
                *s == Slot::Seen && ieee_hex(d.strip_prefix("zigbee:").unwrap_or("")).is_some()
            })
            .map(|(_, d, _)| d.clone())
            .collect();
        for d in seen {
            if !tracked.contains(&d) {
                self.set(Slot::Seen, &d, "", None);
                if self.get(Slot::Raised, &d, OFFLINE).is_some() {
                    if let Some(who) = self.who_by_key(&d) {
                        self.offline_event(&who, AlarmState::Cleared, now, None, out);
                    }
                    self.set(Slot::Raised, &d, OFFLINE, None);
                }
            }
        }
        for d in tracked {
            if self.get(Slot::Seen, &d, "").is_none() {
                self.set(Slot::Seen, &d, "", Some(ms(now)));
            }
        }
        Ok(())
    }

    /// Moves the state of devices known only by friendly name to their IEEE id.
    fn migrate_fallback_ids(&mut self) {
        let moves: Vec<(Key, i64)> = self
            .state
            .iter()
            .filter(|((_, d, _), _)| d.starts_with("zigbee:name:"))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for ((slot, d, name), v) in moves {
            let Some(esc) = d.strip_prefix("zigbee:name:") else {
                continue;
            };
            let Some(ieee) = self.names.get(&unescape(esc)).cloned() else {
                continue;
            };
            let new = format!("zigbee:{ieee}");
            self.set(slot, &d, &name, None);
            if self.get(slot, &new, &name).is_none() {
                self.set(slot, &new, &name, Some(v));
            }
            if let Some(c) = self.context.remove(&(d.clone(), name.clone())) {
                self.context.insert((new, name), c);
            }
        }
    }

    fn availability(
        &mut self,
        msg: &Message<'_>,
        name: &str,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<(), InputError> {
        let online = state_word(msg.payload).ok_or_else(|| {
            input_error(
                msg.topic,
                "expected {\"state\":\"online\"|\"offline\"} or online/offline",
            )
        })?;
        let who = self
            .who_by_name(name)
            .map_err(|e| input_error(msg.topic, e))?;
        let raised = self.get(Slot::Raised, &who.key, OFFLINE).is_some();
        if online {
            self.set(Slot::Seen, &who.key, "", Some(ms(now)));
        }
        if online == raised {
            let state = if online {
                AlarmState::Cleared
            } else {
                AlarmState::Raised
            };
            let value = Json::String(if online { "online" } else { "offline" }.into());
            self.offline_event(&who, state, now, Some(("availability", value)), out);
            self.set(Slot::Raised, &who.key, OFFLINE, (!online).then_some(1));
        }
        Ok(())
    }

    fn offline_event(
        &self,
        who: &Who,
        state: AlarmState,
        at: Timestamp,
        cause: Option<(&str, Json)>,
        out: &mut Output,
    ) {
        let id = who.id.as_str();
        let message = match (state, &cause) {
            (AlarmState::Cleared, _) => format!("Zigbee device {id} is reachable again."),
            (AlarmState::Raised, Some(_)) => format!(
                "zigbee2mqtt reports Zigbee device {id} offline: check its battery or power and \
                 that it is within range of the Zigbee network."
            ),
            (AlarmState::Raised, None) => format!(
                "Zigbee device {id} has sent nothing for {}: check its battery or power and that \
                 it is within range of the Zigbee network.",
                hearth_config::ConfigDuration::new(self.offline_after)
            ),
        };
        let (property, value) = cause.map_or((None, Json::Null), |(p, v)| (Some(p.to_owned()), v));
        out.events.push(Event {
            kind: EventKind::Technical,
            event_type: "device_offline".into(),
            device: Some(who.id.clone()),
            property,
            value,
            record: Record::Technical(TechnicalAlarm::new(
                format!("zigbee2mqtt:{}:{id}", self.source),
                TechnicalKind::DeviceOffline,
                self.group_severity(who, OFFLINE),
                state,
                message,
                at,
            )),
        });
    }

    fn device_state(
        &mut self,
        topic: &str,
        name: &str,
        obj: &Map<String, Json>,
        msg: &Message<'_>,
        now: Timestamp,
        out: &mut Output,
    ) -> Result<(), InputError> {
        let who = self.who_by_name(name).map_err(|e| input_error(topic, e))?;
        // Heard of: live messages refresh the offline clock and clear device_offline;
        // a retained replay only starts the clock of a device not tracked yet.
        if msg.retained {
            if self.get(Slot::Seen, &who.key, "").is_none() {
                self.set(Slot::Seen, &who.key, "", Some(ms(now)));
            }
        } else {
            self.set(Slot::Seen, &who.key, "", Some(ms(now)));
            if self.get(Slot::Raised, &who.key, OFFLINE).is_some() {
                self.offline_event(&who, AlarmState::Cleared, now, None, out);
                self.set(Slot::Raised, &who.key, OFFLINE, None);
            }
        }
        let device_time = match device_time(obj) {
            Ok(t) => t,
            Err(p) => {
                out.problems.push(p);
                None
            }
        };
        let sensor = self.sensor(&who).cloned();
        let rules = Arc::clone(&self.rules);
        let mut mdcs = BTreeSet::new();
        // Rule order, not payload order: the first rule of a type or code wins.
        let mut stopped: BTreeSet<&str> = BTreeSet::new();
        let mut done: BTreeSet<(&str, &str, &str)> = BTreeSet::new();
        let mut ruled: BTreeSet<&str> = BTreeSet::new();
        for rule in rules.iter().filter(|r| Self::applies(r, &who)) {
            let property = rule.property.as_str();
            let Some(value) = obj.get(property) else {
                continue;
            };
            ruled.insert(property);
            if value.is_null() || stopped.contains(property) {
                continue;
            }
            if rule.emit == RuleEmit::Ignore {
                stopped.insert(property);
                continue;
            }
            if !done.insert((property, rule.emit.as_str(), rule.event_type.as_str())) {
                continue; // an earlier rule of this property and type replaces it
            }
            let ctx = Ctx {
                who: &who,
                sensor: sensor.as_ref(),
                seq: msg.sequence,
                at: device_time.unwrap_or(now),
                device_time,
                now,
            };
            if rule.emit == RuleEmit::Observation {
                self.observe(rule, &ctx, value, msg.retained, &mut mdcs, out);
            } else {
                self.condition(rule, &ctx, value, msg.retained, out);
            }
        }
        for property in obj.keys().filter(|p| !ruled.contains(p.as_str())) {
            tracing::debug!(property = %property, device = %who.key, "no zigbee2mqtt rule for property");
        }
        self.advance(now, out);
        Ok(())
    }

    fn observe(
        &mut self,
        rule: &Rule,
        ctx: &Ctx<'_>,
        value: &Json,
        retained: bool,
        mdcs: &mut BTreeSet<u32>,
        out: &mut Output,
    ) {
        let v = match rules::observation_value(rule, value) {
            Ok(v) => v,
            Err(why) => {
                out.problems.push(format!(
                    "property \"{}\" of {}: {why}; observation {} skipped",
                    rule.property, ctx.who.key, rule.event_type
                ));
                return;
            }
        };
        let last_name = format!("{}.{}", rule.event_type, rule.property);
        if rule.on_change {
            let h = value_hash(value);
            let unchanged = self.get(Slot::Last, &ctx.who.key, &last_name) == Some(h);
            self.set(Slot::Last, &ctx.who.key, &last_name, Some(h));
            if unchanged {
                return;
            }
        }
        if retained {
            return;
        }
        if !mdcs.insert(rule.mdc.0) {
            tracing::debug!(property = %rule.property, "second observation with the same code in one message; skipped");
            return;
        }
        let category = ctx.sensor.and_then(|s| s.category).unwrap_or(self.category);
        let mut b = Reading::builder(ctx.who.id.clone(), rule.mdc, v)
            .sequence(ctx.seq)
            .category(category);
        if let Some(u) = &rule.unit {
            if matches!(value, Json::Number(_)) {
                b = b.unit(u.clone());
            }
        }
        if let Some(t) = ctx.device_time {
            b = b.device_time(t);
        }
        if let Some(p) = ctx.sensor.and_then(|s| s.person.as_ref()) {
            b = b.person(PersonRef::new(p.clone()));
        }
        out.events.push(Event {
            kind: EventKind::Observation,
            event_type: rule.event_type.clone(),
            device: Some(ctx.who.id.clone()),
            property: Some(rule.property.clone()),
            value: value.clone(),
            record: Record::Reading(b.build(ctx.now)),
        });
    }

    fn condition(
        &mut self,
        rule: &Rule,
        ctx: &Ctx<'_>,
        value: &Json,
        retained: bool,
        out: &mut Output,
    ) {
        let active = match rule.condition.test(value) {
            Ok(a) => a,
            Err(expected) => {
                out.problems.push(format!(
                    "property \"{}\" of {} is {}; the {} rule {} expects {expected}; skipped",
                    rule.property,
                    ctx.who.key,
                    kind_of(value),
                    rule.emit,
                    rule.event_type
                ));
                return;
            }
        };
        let dev = ctx.who.key.as_str();
        let group = rule.group_key();
        let now = ms(ctx.now);
        if rule.momentary {
            if !active || retained || !self.in_hours(rule, now) {
                return;
            }
            let debounce = dur_ms(rule.debounce);
            if self
                .get(Slot::Moment, dev, &group)
                .is_some_and(|last| now.saturating_sub(last) < debounce)
            {
                return;
            }
            self.set(Slot::Moment, dev, &group, Some(now));
            let ev = self.condition_event(
                rule,
                ctx.who,
                AlarmState::Raised,
                ctx.at,
                ctx.now,
                Some(ctx.seq),
                Some(&rule.property),
                value.clone(),
            );
            out.events.push(ev);
            return;
        }
        let cond = rule.cond_key();
        if active {
            if self.get(Slot::Cond, dev, &cond).is_none() {
                self.set(Slot::Cond, dev, &cond, Some(now));
            }
            self.context.insert(
                (dev.to_owned(), group.clone()),
                (rule.property.clone(), value.clone()),
            );
            self.set(Slot::Clear, dev, &group, None);
            let raised = self.get(Slot::Raised, dev, &group).is_some();
            if !raised && rule.for_.is_zero() && self.in_hours(rule, now) {
                let ev = self.condition_event(
                    rule,
                    ctx.who,
                    AlarmState::Raised,
                    ctx.at,
                    ctx.now,
                    Some(ctx.seq),
                    Some(&rule.property),
                    value.clone(),
                );
                out.events.push(ev);
                self.set(Slot::Raised, dev, &group, Some(1));
            }
        } else {
            self.set(Slot::Cond, dev, &cond, None);
            let raised = self.get(Slot::Raised, dev, &group).is_some();
            let others = self.group_active(dev, rule.emit, &rule.event_type);
            if raised && !others && self.get(Slot::Clear, dev, &group).is_none() {
                self.set(Slot::Clear, dev, &group, Some(now));
                self.context.insert(
                    (dev.to_owned(), group.clone()),
                    (rule.property.clone(), value.clone()),
                );
            }
        }
    }

    /// Whether any condition of the group is active for the device.
    fn group_active(&self, dev: &str, emit: RuleEmit, event_type: &str) -> bool {
        let prefix = format!("{}.{}.", emit.as_str(), event_type);
        self.state
            .range((Slot::Cond, dev.to_owned(), String::new())..)
            .take_while(|((s, d, _), _)| *s == Slot::Cond && d == dev)
            .any(|((_, _, n), _)| n.starts_with(&prefix))
    }

    fn group_rule(&self, who: &Who, group: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.is_condition() && r.group_key() == group && Self::applies(r, who))
    }

    fn group_severity(&self, who: &Who, group: &str) -> Severity {
        match (self.group_rule(who, group), group == OFFLINE) {
            (Some(r), _) => r.severity,
            (None, true) => Severity::Major,
            (None, false) => Severity::Minor,
        }
    }

    fn group_debounce(&self, who: &Who, group: &str) -> Duration {
        self.rules
            .iter()
            .filter(|r| r.is_condition() && r.group_key() == group && Self::applies(r, who))
            .map(|r| r.debounce)
            .max()
            .unwrap_or(self.debounce)
    }

    #[allow(clippy::too_many_arguments)]
    fn condition_event(
        &self,
        rule: &Rule,
        who: &Who,
        state: AlarmState,
        at: Timestamp,
        now: Timestamp,
        seq: Option<u64>,
        property: Option<&str>,
        value: Json,
    ) -> Event {
        self.group_event(
            rule.emit,
            &rule.event_type,
            rule.severity,
            who,
            state,
            at,
            now,
            seq,
            property,
            value,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn group_event(
        &self,
        emit: RuleEmit,
        event_type: &str,
        severity: Severity,
        who: &Who,
        state: AlarmState,
        at: Timestamp,
        now: Timestamp,
        seq: Option<u64>,
        property: Option<&str>,
        value: Json,
    ) -> Event {
        let sensor = self.sensor(who);
        let (kind, record) = if emit == RuleEmit::Alarm {
            let person = sensor.and_then(|s| s.person.clone()).map(PersonRef::new);
            (
                EventKind::Alarm,
                Record::Alarm(Alarm::new(
                    who.id.clone(),
                    AlarmKind::from_name(event_type),
                    state,
                    at,
                    now,
                    Category::Health,
                    person,
                    seq,
                )),
            )
        } else {
            let id = who.id.as_str();
            let message = match (event_type, state) {
                ("low_battery", AlarmState::Raised) => {
                    format!("The battery of Zigbee device {id} is low: replace it soon.")
                }
                ("low_battery", AlarmState::Cleared) => {
                    format!("The battery of Zigbee device {id} is no longer low.")
                }
                (t, AlarmState::Raised) => format!(
                    "Zigbee device {id}: {t} started (property {}).",
                    property.unwrap_or("-")
                ),
                (t, AlarmState::Cleared) => format!("Zigbee device {id}: {t} ended."),
            };
            (
                EventKind::Technical,
                Record::Technical(TechnicalAlarm::new(
                    format!("zigbee2mqtt:{}:{id}", self.source),
                    TechnicalKind::from_name(event_type),
                    severity,
                    state,
                    message,
                    at,
                )),
            )
        };
        Event {
            kind,
            event_type: event_type.to_owned(),
            device: Some(who.id.clone()),
            property: property.map(str::to_owned),
            value,
            record,
        }
    }

    // --- time ---

    fn local(&self, t: i64) -> Option<jiff::Zoned> {
        jiff::Timestamp::from_millisecond(t)
            .ok()
            .map(|t| t.to_zoned(self.tz.clone()))
    }

    fn in_hours(&self, rule: &Rule, t: i64) -> bool {
        let Some(h) = rule.hours else {
            return true;
        };
        self.local(t).is_some_and(|z| {
            let m =
                u16::try_from(z.hour()).unwrap_or(0) * 60 + u16::try_from(z.minute()).unwrap_or(0);
            h.contains(m)
        })
    }

    /// The instant of local `minute` on `date`.
    fn at_local(&self, date: jiff::civil::Date, minute: u16) -> Option<i64> {
        let h = i8::try_from(minute / 60).ok()?;
        let m = i8::try_from(minute % 60).ok()?;
        date.at(h, m, 0, 0)
            .to_zoned(self.tz.clone())
            .ok()
            .map(|z| z.timestamp().as_millisecond())
    }

    /// The first local `minute` strictly after `t` (or at/before, with `after = false`).
    fn boundary(&self, t: i64, minute: u16, after: bool) -> Option<i64> {
        let date = self.local(t)?.date();
        let today = self.at_local(date, minute)?;
        if after {
            if today > t {
                Some(today)
            } else {
                self.at_local(date.tomorrow().ok()?, minute)
            }
        } else if today <= t {
            Some(today)
        } else {
            self.at_local(date.yesterday().ok()?, minute)
        }
    }

    /// When a condition active since `since` has lasted `for` within `hours`.
    fn due(&self, rule: &Rule, since: i64) -> Option<i64> {
        let f = dur_ms(rule.for_);
        let Some(h) = rule.hours else {
            return Some(since.saturating_add(f));
        };
        let mut t = since;
        for _ in 0..4 {
            let start = if self.in_hours(rule, t) {
                self.boundary(t, h.start, false)?
            } else {
                self.boundary(t, h.start, true)?
            };
            let end = self.boundary(start, h.end, true)?;
            let candidate = since.max(start).saturating_add(f);
            if candidate < end {
                return Some(candidate);
            }
            t = end;
        }
        None
    }

    /// Runs the timers: `for` rules, debounced clears, `offline_after`.
    pub fn tick(&mut self, now: Timestamp) -> Output {
        self.dirty.clear();
        let mut out = Output::default();
        self.advance(now, &mut out);
        self.finish(out)
    }

    fn timers(&self) -> Vec<(i64, Timer)> {
        let mut timers = Vec::new();
        for ((slot, dev, name), v) in &self.state {
            match slot {
                Slot::Clear => {
                    let Some(who) = self.who_by_key(dev) else {
                        continue;
                    };
                    let d = dur_ms(self.group_debounce(&who, name));
                    timers.push((v.saturating_add(d), Timer::Clear(dev.clone(), name.clone())));
                }
                Slot::Cond => {
                    let Some(who) = self.who_by_key(dev) else {
                        continue;
                    };
                    let Some(rule) = self.rules.iter().find(|r| {
                        r.is_condition()
                            && !r.momentary
                            && r.cond_key() == *name
                            && Self::applies(r, &who)
                    }) else {
                        continue;
                    };
                    if self.get(Slot::Raised, dev, &rule.group_key()).is_some() {
                        continue;
                    }
                    if let Some(due) = self.due(rule, *v) {
                        timers.push((due, Timer::Raise(dev.clone(), name.clone())));
                    }
                }
                Slot::Seen
                    if self.get(Slot::Raised, dev, OFFLINE).is_none()
                        && !self.offline_after.is_zero() =>
                {
                    timers.push((
                        v.saturating_add(dur_ms(self.offline_after)),
                        Timer::Offline(dev.clone()),
                    ));
                }
                _ => {}
            }
        }
        timers
    }

    fn advance(&mut self, now: Timestamp, out: &mut Output) {
        let mut due: Vec<(i64, Timer)> = self
            .timers()
            .into_iter()
            .filter(|(t, _)| *t <= ms(now))
            .collect();
        due.sort();
        for (t, timer) in due {
            let at = Timestamp::from_unix_millis(t);
            match timer {
                Timer::Clear(dev, group) => {
                    let Some(who) = self.who_by_key(&dev) else {
                        continue;
                    };
                    let since = self.get(Slot::Clear, &dev, &group);
                    self.set(Slot::Clear, &dev, &group, None);
                    if self.get(Slot::Raised, &dev, &group).is_none() {
                        continue;
                    }
                    let Some((emit, event_type)) = group.split_once('.') else {
                        continue;
                    };
                    let emit = if emit == "alarm" {
                        RuleEmit::Alarm
                    } else {
                        RuleEmit::Technical
                    };
                    if self.group_active(&dev, emit, event_type) {
                        continue;
                    }
                    let (property, value) = self
                        .context
                        .remove(&(dev.clone(), group.clone()))
                        .map_or((None, Json::Null), |(p, v)| (Some(p), v));
                    let severity = self.group_severity(&who, &group);
                    let cleared_at = since.map_or(at, Timestamp::from_unix_millis);
                    out.events.push(self.group_event(
                        emit,
                        event_type,
                        severity,
                        &who,
                        AlarmState::Cleared,
                        cleared_at,
                        now,
                        None,
                        property.as_deref(),
                        value,
                    ));
                    self.set(Slot::Raised, &dev, &group, None);
                }
                Timer::Raise(dev, cond) => {
                    let Some(who) = self.who_by_key(&dev) else {
                        continue;
                    };
                    let Some(rule) = self
                        .rules
                        .iter()
                        .find(|r| {
                            r.is_condition() && r.cond_key() == cond && Self::applies(r, &who)
                        })
                        .cloned()
                    else {
                        continue;
                    };
                    let group = rule.group_key();
                    if self.get(Slot::Raised, &dev, &group).is_some() {
                        continue;
                    }
                    let (property, value) = self
                        .context
                        .get(&(dev.clone(), group.clone()))
                        .cloned()
                        .map_or((rule.property.clone(), Json::Null), |(p, v)| (p, v));
                    out.events.push(self.condition_event(
                        &rule,
                        &who,
                        AlarmState::Raised,
                        at,
                        now,
                        None,
                        Some(&property),
                        value,
                    ));
                    self.set(Slot::Raised, &dev, &group, Some(1));
                }
                Timer::Offline(dev) => {
                    let Some(who) = self.who_by_key(&dev) else {
                        continue;
                    };
                    if self.get(Slot::Raised, &dev, OFFLINE).is_some() {
                        continue;
                    }
                    self.offline_event(&who, AlarmState::Raised, at, None, out);
                    self.set(Slot::Raised, &dev, OFFLINE, Some(1));
                }
            }
        }
    }

    /// The earliest time [`Engine::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.timers()
            .into_iter()
            .map(|(t, _)| t)
            .min()
            .map(Timestamp::from_unix_millis)
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
    sensor: Option<&'a SensorConfig>,
    seq: u64,
    at: Timestamp,
    device_time: Option<Timestamp>,
    now: Timestamp,
}
