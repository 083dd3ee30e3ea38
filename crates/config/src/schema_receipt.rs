//! `[receipt]`: the receipt signal in the home (A2) — light and sound once the response centre
//! has the alarm (`snu`=0), and a different signal while delivery is failing; strength and
//! duration per person. docs/alarms.md "Receipt signal" explains it.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::units::ConfigDuration;

/// `[receipt]`. Without `[[receipt.indicator]]` there is no signal (and no MQTT connection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptConfig {
    /// How strong the signal is, unless the alarm's person has an entry. Default `medium`.
    pub strength: ReceiptStrength,
    /// How long the signal lasts, unless the alarm's person has an entry; 1 s..=10 min.
    /// Default 10 s.
    pub duration: ConfigDuration,
    /// `[[receipt.indicator]]`: what shows the signal (sirens, lights, commands).
    #[serde(rename = "indicator", skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<IndicatorConfig>,
    /// `[[receipt.person]]`: strength and duration for one person's alarms.
    #[serde(rename = "person", skip_serializing_if = "Vec::is_empty")]
    pub persons: Vec<ReceiptPersonConfig>,
}

impl Default for ReceiptConfig {
    fn default() -> Self {
        ReceiptConfig {
            strength: ReceiptStrength::Medium,
            duration: ConfigDuration::from_secs(10),
            indicators: Vec::new(),
            persons: Vec::new(),
        }
    }
}

impl ReceiptConfig {
    /// Whether a signal is configured at all.
    pub fn is_active(&self) -> bool {
        !self.indicators.is_empty()
    }

    /// Strength and duration for an alarm of `person` (the person's entry, else the defaults;
    /// a key the entry leaves out comes from the defaults).
    pub fn level_for(&self, person: Option<&str>) -> (ReceiptStrength, ConfigDuration) {
        let entry = person.and_then(|p| self.persons.iter().find(|e| e.person == p));
        match entry {
            Some(e) => (
                e.strength.unwrap_or(self.strength),
                e.duration.unwrap_or(self.duration),
            ),
            None => (self.strength, self.duration),
        }
    }
}

/// `receipt.strength`: how loud and bright the signal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStrength {
    /// Quiet and dim.
    Low,
    /// The default.
    #[default]
    Medium,
    /// Loud and bright.
    High,
    /// As loud and bright as the indicator goes.
    VeryHigh,
}

impl ReceiptStrength {
    /// The name in config files (also zigbee2mqtt's siren `level` names).
    pub const fn as_str(self) -> &'static str {
        match self {
            ReceiptStrength::Low => "low",
            ReceiptStrength::Medium => "medium",
            ReceiptStrength::High => "high",
            ReceiptStrength::VeryHigh => "very_high",
        }
    }
}

impl fmt::Display for ReceiptStrength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `receipt.indicator.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndicatorKind {
    /// A zigbee2mqtt siren or bell (IAS WD `warning`).
    Siren,
    /// A zigbee2mqtt light (colour and brightness).
    Light,
    /// A program run with arguments (vibration pads, other buses).
    Command,
}

impl IndicatorKind {
    /// The name in config files.
    pub const fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::Siren => "siren",
            IndicatorKind::Light => "light",
            IndicatorKind::Command => "command",
        }
    }
}

impl fmt::Display for IndicatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[receipt.indicator]]`: one thing that shows the signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorConfig {
    /// Required: `siren`, `light` or `command`.
    pub kind: IndicatorKind,
    /// siren/light: required, the zigbee2mqtt friendly name; the signal is published to
    /// `<base_topic>/<device>/set`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// siren/light: zigbee2mqtt's `mqtt.base_topic`. Default `"zigbee2mqtt"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_topic: Option<String>,
    /// siren/light: a JSON object published instead of the built-in confirmed signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_payload: Option<String>,
    /// siren/light: a JSON object published instead of the built-in failing signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_payload: Option<String>,
    /// command: required, the program's absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<PathBuf>,
    /// command: the arguments when the centre confirmed; `{strength}` and `{duration}`
    /// (whole seconds) are replaced. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirmed_args: Vec<String>,
    /// command: the arguments while delivery is failing; placeholders as `confirmed_args`.
    /// Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_args: Vec<String>,
}

impl IndicatorConfig {
    /// The default of `base_topic`.
    pub const DEFAULT_BASE_TOPIC: &'static str = "zigbee2mqtt";

    /// `base_topic` or its default.
    pub fn base_topic(&self) -> &str {
        self.base_topic
            .as_deref()
            .unwrap_or(Self::DEFAULT_BASE_TOPIC)
    }

    /// What logs call this indicator: `siren <device>`, `command <program>`.
    pub fn describe(&self) -> String {
        match (&self.device, &self.program) {
            (Some(d), _) => format!("{} {d}", self.kind),
            (None, Some(p)) => format!("{} {}", self.kind, p.display()),
            (None, None) => self.kind.to_string(),
        }
    }
}

/// `[[receipt.person]]`: one person's signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptPersonConfig {
    /// Required: the person as the sources name them (`person` of a sensor, e.g.
    /// `"Patient/123"`); unique. Personal data: never logged.
    pub person: String,
    /// This person's strength. Default: `receipt.strength`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<ReceiptStrength>,
    /// This person's duration. Default: `receipt.duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<ConfigDuration>,
}
