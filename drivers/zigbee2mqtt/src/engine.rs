//! The sans-I/O engine: a message or a tick in, records and state changes out.

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
    /// The settings of a configured `kind = "zigbee2mqtt"` source (its table or the defaults),
    /// with the gateway's time zone.
    pub fn from_source(source: &hearth_config::SourceConfig, time_zone: TimeZone) -> Self {
        Self {
            source: source.name.clone(),
            config: source.zigbee2mqtt_settings(),
            category: source.category,
            time_zone,
        }
    }

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

/// The state of one device key: the persisted slots and the in-memory context of its timers.
#[derive(Debug, Default)]
struct DevState {
    /// The `seen` slot (empty name), exact, in ms; 0 = unset.
    seen: i64,
    /// The `seen` value last written to [`Output::state`] (or restored); 0 = none.
    seen_saved: i64,
    /// Every other slot: (slot, name, value ≠ 0), unordered.
    slots: Vec<(Slot, String, i64)>,
    /// In memory only: group → the property and value behind a pending timer, for its event.
    context: Vec<(String, String, Json)>,
}

/// What [`DevState::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Nothing: the slot already had the value.
    None,
    /// Changed in memory only (a `seen` within its step of the persisted value).
    Silent,
    /// Changed; the caller writes the state entry.
    Write,
}

impl DevState {
    fn get(&self, slot: Slot, name: &str) -> Option<i64> {
        if slot == Slot::Seen && name.is_empty() {
            return (self.seen != 0).then_some(self.seen);
        }
        self.slots
            .iter()
            .find(|(s, n, _)| *s == slot && n == name)
            .map(|e| e.2)
    }

    /// Sets a slot (`v` never `Some(0)`); `seen` is written only when it is first set, unset,
    /// moved back, or moved at least `step` ms since the value last written.
    fn put(&mut self, slot: Slot, name: &str, v: Option<i64>, step: i64) -> Change {
        if slot == Slot::Seen && name.is_empty() {
            let new = v.unwrap_or(0);
            if new == self.seen {
                return Change::None;
            }
            self.seen = new;
            let write = match v {
                None => true,
                Some(t) => {
                    self.seen_saved == 0
                        || t < self.seen_saved
                        || t.saturating_sub(self.seen_saved) >= step
                }
            };
            if write {
                self.seen_saved = new;
                return Change::Write;
            }
            return Change::Silent;
        }
        let pos = self
            .slots
            .iter()
            .position(|(s, n, _)| *s == slot && n == name);
        match (pos, v) {
            (Some(i), Some(v)) => match self.slots.get_mut(i) {
                Some(e) if e.2 != v => {
                    e.2 = v;
                    Change::Write
                }
                _ => Change::None,
            },
            (Some(i), None) => {
                self.slots.swap_remove(i);
                Change::Write
            }
            (None, Some(v)) => {
                self.slots.push((slot, name.to_owned(), v));
                Change::Write
            }
            (None, None) => Change::None,
        }
    }

    /// A restored value: in memory and as persisted.
    fn restore(&mut self, slot: Slot, name: &str, v: i64) {
        if slot == Slot::Seen && name.is_empty() {
            self.seen = v;
            self.seen_saved = v;
        } else {
            self.put(slot, name, (v != 0).then_some(v), 0);
        }
    }

    /// The persisted slots, `seen` included: (slot, name, value).
    fn entries(&self) -> impl Iterator<Item = (Slot, &str, i64)> {
        (self.seen != 0)
            .then_some((Slot::Seen, "", self.seen))
            .into_iter()
            .chain(self.slots.iter().map(|(s, n, v)| (*s, n.as_str(), *v)))
    }

    fn is_empty(&self) -> bool {
        self.seen == 0 && self.slots.is_empty() && self.context.is_empty()
    }

    fn context(&self, group: &str) -> Option<&(String, String, Json)> {
        self.context.iter().find(|c| c.0 == group)
    }

    fn set_context(&mut self, group: &str, property: &str, value: &Json) {
        match self.context.iter_mut().find(|c| c.0 == group) {
            Some(c) => {
                if c.1 != property {
                    property.clone_into(&mut c.1);
                }
                c.2.clone_from(value);
            }
            None => self
                .context
                .push((group.to_owned(), property.to_owned(), value.clone())),
        }
    }

    fn take_context(&mut self, group: &str) -> Option<(String, Json)> {
        let i = self.context.iter().position(|c| c.0 == group)?;
        let (_, p, v) = self.context.swap_remove(i);
        Some((p, v))
    }
}

/// The rules of one payload property.
#[derive(Debug, Default)]
struct PropertyRules {
    /// The rules (rule order, no `ignore`) that may take effect: each with the earlier rules
    /// of the property that skip it when they apply to the device (an `ignore`, or one of the
    /// same emit and type). Rules such an earlier rule without `device` always skips are left
    /// out.
    live: Vec<(usize, Vec<usize>)>,
    /// Every rule of the property, for the "no rule" debug log.
    all: Vec<usize>,
    /// Some rule of the property has no `device`.
    any_global: bool,
}

/// Rule indices by property (see [`PropertyRules`]). Its keys are fixed by the rules, so a
/// fast hash (FNV-1a) is safe for the lookups of payload properties.
type RuleIndex = HashMap<String, PropertyRules, std::hash::BuildHasherDefault<FnvHasher>>;

/// FNV-1a as a [`std::hash::Hasher`].
#[derive(Debug, Clone, Copy)]
struct FnvHasher(Fnv);

impl Default for FnvHasher {
    fn default() -> Self {
        FnvHasher(Fnv::new())
    }
}

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.add(bytes);
    }
}

/// Rule indices by property (see [`PropertyRules`]).
fn index_rules(rules: &[Rule]) -> RuleIndex {
    let mut map = RuleIndex::default();
    for (i, r) in rules.iter().enumerate() {
        let pr = map.entry(r.property.clone()).or_default();
        pr.all.push(i);
        pr.any_global |= r.device.is_none();
        if r.emit == RuleEmit::Ignore {
            continue;
        }
        let blockers: Vec<usize> = rules
            .iter()
            .take(i)
            .enumerate()
            .filter(|(_, e)| {
                e.property == r.property
                    && (e.emit == RuleEmit::Ignore
                        || (e.emit == r.emit && e.event_type == r.event_type))
            })
            .map(|(j, _)| j)
            .collect();
        if blockers
            .iter()
            .any(|j| rules.get(*j).is_some_and(|e| e.device.is_none()))
        {
            continue;
        }
        pr.live.push((i, blockers));
    }
    map
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

/// FNV-1a over bytes written to it.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl std::io::Write for Fnv {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.add(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// FNV-1a of a value's JSON text (as `to_string` prints it), never 0 (0 means "none" in
/// state).
fn value_hash(v: &Json) -> i64 {
    let mut h = Fnv::new();
    if serde_json::to_writer(&mut h, v).is_err() {
        h = Fnv::new();
        h.add(v.to_string().as_bytes());
    }
    let h = i64::from_ne_bytes(h.0.to_ne_bytes());
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

    fn key_text(&self, slot: Slot, device: &str, name: &str) -> String {
        format!("{}{}:{} {}", self.prefix, slot.as_str(), device, name)
    }

    /// Restores state committed from earlier [`Output::state`]s (other keys are ignored).
    pub fn restore(&mut self, state: impl IntoIterator<Item = (String, i64)>) {
        let prefix = self.prefix.clone();
        self.horizon = i64::MIN;
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
            match self.devices.get_mut(device) {
                Some(d) => {
                    d.restore(slot, name, v);
                    if d.is_empty() {
                        self.devices.remove(device);
                    }
                }
                None if v == 0 => {}
                None => {
                    let mut d = DevState::default();
                    d.restore(slot, name, v);
                    self.devices.insert(device.to_owned(), d);
                }
            }
        }
    }

    fn get(&self, slot: Slot, device: &str, name: &str) -> Option<i64> {
        self.devices.get(device).and_then(|d| d.get(slot, name))
    }

    /// Sets a slot and records the state entry to write. `seen` (empty name) is exact in
    /// memory but written only when first set, unset, moved back, or moved at least
    /// `seen_step` since the value last written: a restored `seen` is then at most that much
    /// older than the truth, which can only make offline detection earlier.
    fn set(&mut self, slot: Slot, device: &str, name: &str, v: Option<i64>) {
        let v = v.filter(|v| *v != 0);
        let step = self.seen_step;
        let change = match self.devices.get_mut(device) {
            Some(d) => {
                let change = d.put(slot, name, v, step);
                if d.is_empty() {
                    self.devices.remove(device);
                }
                change
            }
            None if v.is_none() => Change::None,
            None => {
                let mut d = DevState::default();
                let change = d.put(slot, name, v, step);
                self.devices.insert(device.to_owned(), d);
                change
            }
        };
        if change == Change::None {
            return;
        }
        // Keep `horizon` a lower bound of the timers (see `timers`).
        match (slot, v) {
            (Slot::Raised, None) => self.horizon = i64::MIN,
            (Slot::Cond | Slot::Clear, Some(t)) => self.horizon = self.horizon.min(t),
            (Slot::Seen, Some(t)) if !self.offline_after.is_zero() => {
                self.horizon = self
                    .horizon
                    .min(t.saturating_add(dur_ms(self.offline_after)));
            }
            _ => {}
        }
        if change == Change::Write {
            self.dirty
                .push((slot, device.to_owned(), name.to_owned(), v.unwrap_or(0)));
        }
    }

    /// Every persisted slot, in key order.
    fn entries(&self) -> Vec<(Key, i64)> {
        let mut all: Vec<(Key, i64)> = self
            .devices
            .iter()
            .flat_map(|(dev, d)| {
                d.entries()
                    .map(move |(s, n, v)| ((s, dev.clone(), n.to_owned()), v))
            })
            .collect();
        all.sort();
        all
    }

    fn set_context(&mut self, device: &str, group: &str, property: &str, value: &Json) {
        if !self.devices.contains_key(device) {
            self.devices.insert(device.to_owned(), DevState::default());
        }
        if let Some(d) = self.devices.get_mut(device) {
            d.set_context(group, property, value);
        }
    }

    fn take_context(&mut self, device: &str, group: &str) -> Option<(String, Json)> {
        let d = self.devices.get_mut(device)?;
        let c = d.take_context(group);
        if d.is_empty() {
            self.devices.remove(device);
        }
        c
    }

    fn finish(&mut self, mut out: Output) -> Output {
        if !self.dirty.is_empty() {
            let mut dirty = std::mem::take(&mut self.dirty);
            // Key order; the last write of a key wins.
            dirty.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
            let mut state = Vec::with_capacity(dirty.len());
            for (i, (slot, dev, name, v)) in dirty.iter().enumerate() {
                let next_same = dirty
                    .get(i + 1)
                    .is_some_and(|n| n.0 == *slot && n.1 == *dev && n.2 == *name);
                if !next_same {
                    state.push((self.key_text(*slot, dev, name), *v));
                }
            }
            out.state = state;
            dirty.clear();
            self.dirty = dirty;
        }
        if out.events.len() > 1 {
            let mut ids = BTreeSet::new();
            out.events.retain(|e| ids.insert(e.record.id()));
        }
        out
    }

    // --- devices ---

    fn who_by_name(&mut self, name: &str) -> Result<Arc<Who>, String> {
        if let Some(w) = self.whos.get(name) {
            return Ok(Arc::clone(w));
        }
        let ieee = self.names.get(name).cloned().or_else(|| ieee_hex(name));
        let (key, ieee) = match ieee {
            Some(h) => (format!("zigbee:{h}"), Some(format!("0x{h}"))),
            None => (format!("zigbee:name:{}", escape(name)), None),
        };
        let id = DeviceId::parse(&key).map_err(|e| e.to_string())?;
        let mut who = Who {
            key,
            id,
            name: Some(name.to_owned()),
            ieee,
            sensor: None,
        };
        who.sensor = self.sensor_index(&who);
        let who = Arc::new(who);
        if self.whos.len() >= WHO_CACHE {
            self.whos.clear();
        }
        self.whos.insert(name.to_owned(), Arc::clone(&who));
        Ok(who)
    }

    fn who_by_key(&self, key: &str) -> Option<Who> {
        let id = DeviceId::parse(key).ok()?;
        let value = key.strip_prefix("zigbee:")?;
        let (name, ieee) = match value.strip_prefix("name:") {
            Some(esc) => (Some(unescape(esc)), None),
            None => {
                let name = self.by_ieee.get(value).cloned();
                (name, Some(format!("0x{value}")))
            }
        };
        let mut who = Who {
            key: key.to_owned(),
            id,
            name,
            ieee,
            sensor: None,
        };
        who.sensor = self.sensor_index(&who);
        Some(who)
    }

    /// Whether `wanted` (a friendly name or IEEE address; `wanted_ieee` its 16 hex digits, if
    /// it is one) names the device.
    fn matches(who: &Who, wanted: &str, wanted_ieee: Option<&str>) -> bool {
        who.name.as_deref() == Some(wanted)
            || match (&who.ieee, wanted_ieee) {
                (Some(i), Some(w)) => i.get(2..) == Some(w),
                _ => false,
            }
    }

    fn sensor_index(&self, who: &Who) -> Option<usize> {
        self.sensors
            .iter()
            .zip(&self.sensor_ieee)
            .position(|(s, ieee)| Self::matches(who, &s.name, ieee.as_deref()))
    }

    fn sensor(&self, who: &Who) -> Option<&SensorConfig> {
        who.sensor.and_then(|i| self.sensors.get(i))
    }

    fn applies(rule: &Rule, who: &Who) -> bool {
        rule.device
            .as_deref()
            .is_none_or(|d| Self::matches(who, d, rule.device_ieee.as_deref()))
    }

    /// Splits `<name>[/<suffix>]`, preferring the longest known friendly name.
    fn split_device<'t>(&self, rest: &'t str) -> (&'t str, &'t str) {
        // Candidates, longest first: the whole topic rest, then its parts before each `/`.
        if !self.names.is_empty() {
            if self.names.contains_key(rest) {
                return (rest, "");
            }
            let cuts = rest.match_indices('/').map(|(i, _)| i).rev();
            for i in cuts {
                if let (Some(name), Some(suffix)) = (rest.get(..i), rest.get(i + 1..)) {
                    if self.names.contains_key(name) {
                        return (name, suffix);
                    }
                }
            }
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
            if let Some(facts) = device_facts(d, &ieee) {
                out.devices.push(facts);
            }
            if let Some(name) = d.get("friendly_name").and_then(Json::as_str) {
                names.insert(name.to_owned(), ieee.clone());
            }
            if d.get("disabled").and_then(Json::as_bool) != Some(true) {
                tracked.insert(format!("zigbee:{ieee}"));
            }
        }
        self.by_ieee.clear();
        for (name, ieee) in &names {
            if !self.by_ieee.contains_key(ieee) {
                self.by_ieee.insert(ieee.clone(), name.clone());
            }
        }
        self.names = names;
        self.whos.clear();
        // Who a device is decides which rules apply, so every timer may have moved.
        self.horizon = i64::MIN;
        self.migrate_fallback_ids();
        // Offline tracking follows the list: start the clock of new devices, stop that of
        // removed ones.
        let seen: Vec<String> = self
            .entries()
            .into_iter()
            .filter(|((s, d, _), _)| {
                *s == Slot::Seen && ieee_hex(d.strip_prefix("zigbee:").unwrap_or("")).is_some()
            })
            .map(|((_, d, _), _)| d)
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
            .entries()
            .into_iter()
            .filter(|((_, d, _), _)| d.starts_with("zigbee:name:"))
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
            if let Some((p, v)) = self.take_context(&d, &name) {
                self.set_context(&new, &name, &p, &v);
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
        let rules = Arc::clone(&self.rules);
        // The rules that take effect for this device and payload: every applying rule of a
        // present, non-null property, except one that an earlier applying rule of the same
        // property and type replaces, or that an earlier applying `ignore` stops.
        let mut run = std::mem::take(&mut self.scratch);
        run.clear();
        for (property, value) in obj {
            if value.is_null() {
                continue;
            }
            let Some(pr) = self.by_property.get(property.as_str()) else {
                continue;
            };
            for (i, blockers) in &pr.live {
                let applies = |j: &usize| rules.get(*j).is_some_and(|r| Self::applies(r, &who));
                if applies(i) && !blockers.iter().any(applies) {
                    run.push(*i);
                }
            }
        }
        // Rule order, not payload order: the first rule of a type or code wins.
        run.sort_unstable();
        self.mdcs.clear();
        let ctx = Ctx {
            who: &who,
            seq: msg.sequence,
            at: device_time.unwrap_or(now),
            device_time,
            now,
        };
        for i in &run {
            let Some(rule) = rules.get(*i) else {
                continue;
            };
            let Some(value) = obj.get(rule.property.as_str()) else {
                continue;
            };
            if rule.emit == RuleEmit::Observation {
                self.observe(rule, &ctx, value, msg.retained, out);
            } else {
                self.condition(rule, &ctx, value, msg.retained, out);
            }
        }
        self.scratch = run;
        if tracing::enabled!(tracing::Level::DEBUG) {
            for property in obj.keys() {
                let ruled = self.by_property.get(property.as_str()).is_some_and(|pr| {
                    pr.any_global
                        || pr
                            .all
                            .iter()
                            .any(|j| rules.get(*j).is_some_and(|r| Self::applies(r, &who)))
                });
                if !ruled {
                    tracing::debug!(property = %property, device = %who.key, "no zigbee2mqtt rule for property");
                }
            }
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
        if rule.on_change {
            let last_name = rule.last_key();
            let h = value_hash(value);
            let unchanged = self.get(Slot::Last, &ctx.who.key, last_name) == Some(h);
            self.set(Slot::Last, &ctx.who.key, last_name, Some(h));
            if unchanged {
                return;
            }
        }
        if retained {
            return;
        }
        if self.mdcs.contains(&rule.mdc.0) {
            tracing::debug!(property = %rule.property, "second observation with the same code in one message; skipped");
            return;
        }
        self.mdcs.push(rule.mdc.0);
        let sensor = self.sensor(ctx.who);
        let category = sensor.and_then(|s| s.category).unwrap_or(self.category);
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
        if let Some(p) = sensor.and_then(|s| s.person.as_ref()) {
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
                .get(Slot::Moment, dev, group)
                .is_some_and(|last| now.saturating_sub(last) < debounce)
            {
                return;
            }
            self.set(Slot::Moment, dev, group, Some(now));
            let ev = self.raised_by(rule, ctx, value);
            out.events.push(ev);
            return;
        }
        let cond = rule.cond_key();
        if active {
            if self.get(Slot::Cond, dev, cond).is_none() {
                self.set(Slot::Cond, dev, cond, Some(now));
            }
            self.set_context(dev, group, &rule.property, value);
            self.set(Slot::Clear, dev, group, None);
            let raised = self.get(Slot::Raised, dev, group).is_some();
            if !raised && rule.for_.is_zero() && self.in_hours(rule, now) {
                let ev = self.raised_by(rule, ctx, value);
                out.events.push(ev);
                self.set(Slot::Raised, dev, group, Some(1));
            }
        } else {
            self.set(Slot::Cond, dev, cond, None);
            let raised = self.get(Slot::Raised, dev, group).is_some();
            if !raised {
                return;
            }
            let others = self.group_active(dev, rule.emit.as_str(), &rule.event_type);
            if !others && self.get(Slot::Clear, dev, group).is_none() {
                self.set(Slot::Clear, dev, group, Some(now));
                self.set_context(dev, group, &rule.property, value);
            }
        }
    }

    /// Whether any condition of the group `<emit>.<event_type>` is active for the device.
    fn group_active(&self, dev: &str, emit: &str, event_type: &str) -> bool {
        // Names starting with `<emit>.<event_type>.`.
        let is_of_group = |n: &str| {
            n.strip_prefix(emit)
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_prefix(event_type))
                .is_some_and(|n| n.starts_with('.'))
        };
        self.devices.get(dev).is_some_and(|d| {
            d.slots
                .iter()
                .any(|(s, n, _)| *s == Slot::Cond && is_of_group(n))
        })
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

    /// The raise event of a condition `rule` that this message's `value` set off.
    fn raised_by(&self, rule: &Rule, ctx: &Ctx<'_>, value: &Json) -> Event {
        self.condition_event(
            rule,
            ctx.who,
            AlarmState::Raised,
            ctx.at,
            ctx.now,
            Some(ctx.seq),
            Some(&rule.property),
            value.clone(),
        )
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

    /// Calls `f(due, slot, device, name)` for every timer (in no order): a pending clear
    /// (slot `clear`), a `for` rule to raise (`cond`), a silent device (`seen`).
    ///
    /// `horizon` stays at most the earliest of them: only a `clear` or `cond` set (at or
    /// after its value), a `seen` set (due `offline_after` later) or an alarm no longer
    /// raised (any) can add an earlier timer; `Engine::set` lowers it then, and
    /// `bridge/devices`, `restore` and firing timers reset it.
    fn for_each_timer(&self, mut f: impl FnMut(i64, Slot, &str, &str)) {
        for (dev, d) in &self.devices {
            let mut who: Option<Option<Who>> = None;
            for (slot, name, v) in d.entries() {
                match slot {
                    Slot::Clear => {
                        let Some(who) = who.get_or_insert_with(|| self.who_by_key(dev)) else {
                            continue;
                        };
                        let dl = dur_ms(self.group_debounce(who, name));
                        f(v.saturating_add(dl), slot, dev, name);
                    }
                    Slot::Cond => {
                        let Some(who) = who.get_or_insert_with(|| self.who_by_key(dev)) else {
                            continue;
                        };
                        let Some(rule) = self.rules.iter().find(|r| {
                            r.is_condition()
                                && !r.momentary
                                && r.cond_key() == name
                                && Self::applies(r, who)
                        }) else {
                            continue;
                        };
                        if d.get(Slot::Raised, rule.group_key()).is_some() {
                            continue;
                        }
                        if let Some(due) = self.due(rule, v) {
                            f(due, slot, dev, name);
                        }
                    }
                    Slot::Seen
                        if d.get(Slot::Raised, OFFLINE).is_none()
                            && !self.offline_after.is_zero() =>
                    {
                        f(
                            v.saturating_add(dur_ms(self.offline_after)),
                            slot,
                            dev,
                            name,
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    fn advance(&mut self, now: Timestamp, out: &mut Output) {
        let now_ms = ms(now);
        if now_ms < self.horizon {
            return;
        }
        let mut due: Vec<(i64, Timer)> = Vec::new();
        let mut next = i64::MAX;
        self.for_each_timer(|t, slot, dev, name| {
            if t > now_ms {
                next = next.min(t);
                return;
            }
            let timer = match slot {
                Slot::Clear => Timer::Clear(dev.to_owned(), name.to_owned()),
                Slot::Cond => Timer::Raise(dev.to_owned(), name.to_owned()),
                _ => Timer::Offline(dev.to_owned()),
            };
            due.push((t, timer));
        });
        self.horizon = next;
        if due.is_empty() {
            return;
        }
        due.sort();
        // What fired may have left or added timers: look again next time.
        self.horizon = i64::MIN;
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
                    if self.group_active(&dev, emit.as_str(), event_type) {
                        continue;
                    }
                    let (property, value) = self
                        .take_context(&dev, &group)
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
                    if self.get(Slot::Raised, &dev, group).is_some() {
                        continue;
                    }
                    let (property, value) = self
                        .devices
                        .get(&dev)
                        .and_then(|d| d.context(group))
                        .map_or((rule.property.clone(), Json::Null), |(_, p, v)| {
                            (p.clone(), v.clone())
                        });
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
                    self.set(Slot::Raised, &dev, group, Some(1));
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
        let mut next: Option<i64> = None;
        self.for_each_timer(|t, _, _, _| next = Some(next.map_or(t, |n| n.min(t))));
        next.map(Timestamp::from_unix_millis)
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

/// The facts of one `bridge/devices` entry: `definition.vendor` and `definition.model`,
/// `software_build_id`, the IEEE address. `None` when it tells none of the first three.
fn device_facts(d: &serde_json::Map<String, Json>, ieee: &str) -> Option<hearth_model::Device> {
    let text = |v: Option<&Json>| {
        v.and_then(Json::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let def = d.get("definition");
    let manufacturer = text(def.and_then(|x| x.get("vendor")));
    let model = text(def.and_then(|x| x.get("model")));
    let firmware = text(d.get("software_build_id"));
    if manufacturer.is_none() && model.is_none() && firmware.is_none() {
        return None;
    }
    Some(hearth_model::Device {
        id: hearth_model::DeviceId::new("zigbee", ieee).ok(),
        manufacturer,
        model,
        firmware,
        eui64: Some(ieee.to_owned()),
        ..hearth_model::Device::default()
    })
}
