//! The MQTT side of the schema: the box's local broker (`[mqtt]`), zigbee2mqtt sources
//! (`[source.zigbee2mqtt]` with declarative rules) and external vendor drivers
//! (`[source.external]`).

use std::fmt;
use std::path::PathBuf;

use hearth_model::Category;
use serde::{Deserialize, Serialize};

use crate::units::{ConfigDuration, category};

/// `[mqtt]`: the broker that zigbee2mqtt and external drivers publish to (usually the box's own
/// mosquitto). Every MQTT source opens its own persistent session on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address. Default `"localhost"`.
    pub host: String,
    /// Broker port, 1..=65535. Default 1883 (8883 is usual with `tls = true`).
    pub port: u16,
    /// Prefix of the MQTT client id; each source connects as `<client_id>-<source name>`, a
    /// stable id, so the broker keeps the session (and queued messages) while hearth restarts.
    /// `[A-Za-z0-9._-]{1,40}`. Default `"hearth"`.
    pub client_id: String,
    /// User name for the broker, if it requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A file holding the broker password (first line); requires `username`. Kept out of the
    /// config file so the config can be shown and logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Connect with TLS (rustls, TLS 1.2+). Default false: the broker is on the box itself.
    pub tls: bool,
    /// PEM file with the CA certificates that sign the broker's certificate; with `tls = true`.
    /// Default: the system's trust store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS; with `client_key` and `tls = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// MQTT keep-alive; 5 s..=65535 s. Default 30 s.
    pub keep_alive: ConfigDuration,
    /// First reconnect delay after the broker was lost (doubles up to `reconnect_max`); > 0.
    /// Default 1 s.
    pub reconnect_initial: ConfigDuration,
    /// Longest reconnect delay; >= `reconnect_initial`. Default 30 s.
    pub reconnect_max: ConfigDuration,
    /// Messages received but not yet committed and acknowledged, per source; 1..=65535.
    /// Acknowledgements are sent only after the commit (DESIGN invariant 1), so this bounds the
    /// work lost to a crash and the memory used. Default 1000.
    pub max_pending: u32,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            host: "localhost".into(),
            port: 1883,
            client_id: "hearth".into(),
            username: None,
            password_file: None,
            tls: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
            keep_alive: ConfigDuration::from_secs(30),
            reconnect_initial: ConfigDuration::from_secs(1),
            reconnect_max: ConfigDuration::from_secs(30),
            max_pending: 1000,
        }
    }
}

/// `[source.zigbee2mqtt]`: smart-home and safety sensors through zigbee2mqtt (issue 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Zigbee2mqttConfig {
    /// Where the messages come from. Default [`Zigbee2mqttBackendKind::Mqtt`].
    pub backend: Zigbee2mqttBackendKind,
    /// zigbee2mqtt's `mqtt.base_topic`; no wildcards, no leading or trailing `/`.
    /// Default `"zigbee2mqtt"`.
    pub base_topic: String,
    /// A device that has sent nothing for this long raises `device_offline` (A7), as does an
    /// `availability` message saying `offline`; > 0. Default 25 h (zigbee2mqtt's own passive
    /// timeout for battery devices).
    pub offline_after: ConfigDuration,
    /// A `battery` percentage below this raises `low_battery` (A3); 0..=100 (0 = never).
    /// Default 20.
    pub low_battery_percent: u8,
    /// An alarm condition that ends is cleared only after it stayed ended this long, and a
    /// momentary alarm (a button's `action`) repeated within it is one alarm. Alarms are raised
    /// at once. Default 2 s.
    pub debounce: ConfigDuration,
    /// Use the shipped rules (`drivers/zigbee2mqtt/rules/default.toml`) after the rules of this
    /// file. Default true.
    pub default_rules: bool,
    /// `[[source.zigbee2mqtt.rule]]`: rules of the municipality or installer (S4), checked
    /// before the shipped ones.
    #[serde(rename = "rule", skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleConfig>,
    /// `[[source.zigbee2mqtt.device]]`: who a sensor belongs to and its category.
    #[serde(rename = "device", skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<SensorConfig>,
}

impl Default for Zigbee2mqttConfig {
    fn default() -> Self {
        Zigbee2mqttConfig {
            backend: Zigbee2mqttBackendKind::Mqtt,
            base_topic: "zigbee2mqtt".into(),
            offline_after: ConfigDuration::from_secs(25 * 3_600),
            low_battery_percent: 20,
            debounce: ConfigDuration::from_secs(2),
            default_rules: true,
            rules: Vec::new(),
            devices: Vec::new(),
        }
    }
}

/// `source.zigbee2mqtt.backend`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Zigbee2mqttBackendKind {
    /// The broker of `[mqtt]`.
    #[default]
    Mqtt,
    /// Scripted zigbee2mqtt messages of real device models, replayed in-process without a
    /// broker (demos, installer training).
    Simulated,
}

impl Zigbee2mqttBackendKind {
    /// The name in config files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Zigbee2mqttBackendKind::Mqtt => "mqtt",
            Zigbee2mqttBackendKind::Simulated => "simulated",
        }
    }
}

impl fmt::Display for Zigbee2mqttBackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[source.zigbee2mqtt.device]]`: one sensor, by friendly name or IEEE address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorConfig {
    /// Required: the zigbee2mqtt friendly name (e.g. `"bathroom/leak"`) or IEEE address
    /// (`"0x00158d0001a2b3c4"`); unique within the source.
    pub name: String,
    /// Who the sensor watches over: a FHIR reference or an identifier key. Personal data: never
    /// logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// The category of this sensor's observations. Default: the source's `category`. Safety
    /// alarms and technical alarms keep their own lanes whatever the category.
    #[serde(
        default,
        with = "category::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub category: Option<Category>,
    /// Free text for operators (e.g. "Smoke detector, kitchen"). Not used by hearth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What the device is for (issue 15): `none` (default), or a safety role — `sos_button`,
    /// `fall_detector`, `smoke_detector`, `water_leak`. A safety device is received on the
    /// source's second MQTT session (its alarms never wait behind sensor traffic) and gets the
    /// role's alarm rule without a `[[source.zigbee2mqtt.rule]]`; `name` must then be the
    /// friendly name its topics use (no `+` or `#`).
    #[serde(default, skip_serializing_if = "SensorRole::is_none")]
    pub role: SensorRole,
}

impl SensorConfig {
    /// A sensor with only its name (for code and tests).
    pub fn new(name: impl Into<String>) -> Self {
        SensorConfig {
            name: name.into(),
            person: None,
            category: None,
            label: None,
            role: SensorRole::None,
        }
    }
}

/// `device.role`: what a zigbee2mqtt device is for. The role comes from the config, never from
/// the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SensorRole {
    /// An ordinary sensor: the source's main session and the rules only.
    #[default]
    None,
    /// A personal alarm button: any non-empty `action` (`single`, `emergency`, `hold` …, as a
    /// frient SBTZB-110 sends) is an `emergency` alarm (momentary).
    SosButton,
    /// A fall sensor: `fall` true is a `fall` alarm (the shipped rules know more exposes).
    FallDetector,
    /// A smoke alarm: `smoke` true is a `smoke` alarm.
    SmokeDetector,
    /// A water leak sensor: `water_leak` true is a `water_leak` alarm.
    WaterLeak,
}

impl SensorRole {
    /// Every role, as config files name them.
    pub const ALL: [SensorRole; 5] = [
        SensorRole::None,
        SensorRole::SosButton,
        SensorRole::FallDetector,
        SensorRole::SmokeDetector,
        SensorRole::WaterLeak,
    ];

    /// The name in config files.
    pub const fn as_str(self) -> &'static str {
        match self {
            SensorRole::None => "none",
            SensorRole::SosButton => "sos_button",
            SensorRole::FallDetector => "fall_detector",
            SensorRole::SmokeDetector => "smoke_detector",
            SensorRole::WaterLeak => "water_leak",
        }
    }

    /// `none`.
    pub fn is_none(&self) -> bool {
        *self == SensorRole::None
    }

    /// A safety role: the device goes on the safety session.
    pub fn is_safety(self) -> bool {
        self != SensorRole::None
    }
}

impl fmt::Display for SensorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[source.zigbee2mqtt.rule]]`: what one payload property means.
///
/// A rule matches a message when the payload has `property` (and, with `device`, the message is
/// from that device). Rules are checked in order, the file's before the shipped ones; every
/// matching rule applies, and an `ignore` rule stops the rules after it for that property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Required: the top-level payload key, e.g. `"water_leak"`, `"action"`, `"temperature"`.
    pub property: String,
    /// Required: what the property becomes.
    pub emit: RuleEmit,
    /// The event type: the alarm kind (`water_leak`, `smoke`, `emergency`, `fall`, `door_open`,
    /// `no_bed_return`, … or a new snake_case name), the technical kind (`low_battery`,
    /// `device_offline`, …) or the observation name (`temperature`, …). Required except for
    /// `emit = "ignore"`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The value(s) that make the condition active: a boolean, a number, a string or a list of
    /// strings (e.g. `["emergency", "sos"]` for an `action`). Default `true` for alarm and
    /// technical rules without `below`/`above`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<RuleValue>,
    /// Active while the numeric value is below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Active while the numeric value is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// The value is an event, not a state (a button press): each matching message raises the
    /// alarm (repeats within `debounce` count once) and nothing clears it. Default false.
    #[serde(default)]
    pub momentary: bool,
    /// Only for this sensor (friendly name or IEEE address). Default: every sensor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The condition must last this long before the alarm is raised (service rules such as
    /// "no return to bed within 30 min"). Default: raised at once.
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_: Option<ConfigDuration>,
    /// Only active within these local hours (`gateway.time_zone`), `"HH:MM-HH:MM"`; may wrap
    /// midnight (`"22:00-07:00"`). Default: all day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<String>,
    /// Overrides the source's `debounce` for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce: Option<ConfigDuration>,
    /// Observation: the MDC code (partition × 65536 + term). Default: the code of the
    /// observation name in the shipped table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdc: Option<u32>,
    /// Observation: the UCUM unit of a numeric value (e.g. `"Cel"`, `"%"`, `"lx"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Observation: store it only when the value changed since the sensor's last message
    /// (for states such as `contact`), not on every report. Default false.
    #[serde(default)]
    pub on_change: bool,
    /// Technical alarm severity: `critical`, `major`, `minor` or `warning`. Default `minor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

impl RuleConfig {
    /// A rule with only the required keys (for code and tests).
    pub fn new(property: impl Into<String>, emit: RuleEmit, event_type: Option<&str>) -> Self {
        RuleConfig {
            property: property.into(),
            emit,
            event_type: event_type.map(str::to_owned),
            when: None,
            below: None,
            above: None,
            momentary: false,
            device: None,
            for_: None,
            hours: None,
            debounce: None,
            mdc: None,
            unit: None,
            on_change: false,
            severity: None,
        }
    }
}

/// `rule.emit`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleEmit {
    /// A safety alarm (alarm lane), edge-triggered.
    Alarm,
    /// A technical alarm (A3/A7), edge-triggered.
    Technical,
    /// A welfare observation (a reading).
    Observation,
    /// Nothing; later rules for the property are not checked.
    Ignore,
}

impl RuleEmit {
    /// The name in config files.
    pub const fn as_str(self) -> &'static str {
        match self {
            RuleEmit::Alarm => "alarm",
            RuleEmit::Technical => "technical",
            RuleEmit::Observation => "observation",
            RuleEmit::Ignore => "ignore",
        }
    }
}

impl fmt::Display for RuleEmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `rule.when`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RuleValue {
    /// `when = true`
    Bool(bool),
    /// `when = 3`
    Number(f64),
    /// `when = "emergency"`
    Text(String),
    /// `when = ["emergency", "sos"]`
    AnyOf(Vec<String>),
}

/// `[source.external]`: vendors' own programs publishing readings and alarms over MQTT in
/// hearth's JSON contract (`docs/drivers/external.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalConfig {
    /// Topic prefix of the contract; drivers publish to `<prefix>/<driver>/in` and get errors on
    /// `<prefix>/<driver>/error`. No wildcards. Default `"hearth/v1/driver"`.
    pub topic_prefix: String,
    /// The driver ids allowed to publish (`[a-z0-9_-]{1,32}`); messages of others are
    /// dead-lettered with an error reply. Empty = any driver. Default empty.
    pub drivers: Vec<String>,
}

impl Default for ExternalConfig {
    fn default() -> Self {
        ExternalConfig {
            topic_prefix: "hearth/v1/driver".into(),
            drivers: Vec::new(),
        }
    }
}

/// A daily window of local time, from `rule.hours` (`"22:00-07:00"`): minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hours {
    /// Start, minutes after local midnight (inclusive).
    pub start: u16,
    /// End, minutes after local midnight (exclusive); before `start` when the window wraps.
    pub end: u16,
}

impl Hours {
    /// Parses `"HH:MM-HH:MM"`; the message says what is wrong and what to write.
    pub fn parse(s: &str) -> Result<Hours, String> {
        let bad = || {
            format!(
                "hours \"{s}\" is not a daily window; write \"HH:MM-HH:MM\" in 24-hour local \
                 time, e.g. \"22:00-07:00\""
            )
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let minutes = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
        if start == end {
            return Err(format!(
                "hours \"{s}\" starts and ends at the same time; leave `hours` out for all day"
            ));
        }
        Ok(Hours { start, end })
    }

    /// Whether `minute` (after local midnight) is inside the window.
    pub fn contains(&self, minute: u16) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

/// Technical alarm severities accepted by `rule.severity`.
pub const SEVERITIES: [&str; 4] = ["critical", "major", "minor", "warning"];
