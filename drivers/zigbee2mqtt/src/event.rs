//! What the engine produces: records with the facts the CLI shows.

use hearth_model::{AlarmState, DeviceId, Record};
use serde_json::{Value as Json, json};

/// Which lane of hearth an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A safety alarm ([`hearth_model::Alarm`]).
    Alarm,
    /// A technical alarm ([`hearth_model::TechnicalAlarm`]).
    Technical,
    /// An observation ([`hearth_model::Reading`]).
    Observation,
}

impl EventKind {
    /// `alarm`, `technical`, `observation`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Alarm => "alarm",
            EventKind::Technical => "technical",
            EventKind::Observation => "observation",
        }
    }
}

/// One record and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The lane.
    pub kind: EventKind,
    /// The alarm kind, technical kind or observation name (`water_leak`, `low_battery`,
    /// `temperature` …).
    pub event_type: String,
    /// The device; `None` for the zigbee2mqtt bridge itself.
    pub device: Option<DeviceId>,
    /// The payload property that caused it; `None` for timers (silence) and the bridge.
    pub property: Option<String>,
    /// The property's value in the payload (`null` when none).
    pub value: Json,
    /// The record to store.
    pub record: Record,
}

impl Event {
    /// Raised or cleared, for alarms and technical alarms.
    pub fn state(&self) -> Option<AlarmState> {
        match &self.record {
            Record::Alarm(a) => Some(a.state),
            Record::Technical(t) => Some(t.state),
            Record::Reading(_) => None,
        }
    }

    /// The JSON shape of `hearth zigbee2mqtt classify`:
    /// alarm `{"kind","type","state","device","property","value"}`,
    /// technical `{"kind","type","state","severity","device","property","value","message"}`,
    /// observation `{"kind","type","property","value","unit","mdc","device"}`. `value` is the
    /// payload's value (a boolean stays a boolean; the stored reading has its word, e.g.
    /// `closed`).
    pub fn to_json(&self) -> Json {
        let device = self.device.as_ref().map(|d| d.as_str().to_owned());
        match &self.record {
            Record::Alarm(a) => json!({
                "kind": self.kind.as_str(),
                "type": self.event_type,
                "state": a.state.as_str(),
                "device": device,
                "property": self.property,
                "value": self.value,
            }),
            Record::Technical(t) => json!({
                "kind": self.kind.as_str(),
                "type": self.event_type,
                "state": t.state.as_str(),
                "severity": t.severity.as_str(),
                "device": device,
                "property": self.property,
                "value": self.value,
                "message": t.message,
            }),
            Record::Reading(r) => json!({
                "kind": self.kind.as_str(),
                "type": self.event_type,
                "property": self.property,
                "value": self.value,
                "unit": r.unit.as_ref().map(|u| u.as_str().to_owned()),
                "mdc": r.mdc.0,
                "device": device,
            }),
        }
    }
}
