use std::fmt;

use crate::{Category, DeviceId, PersonRef, RecordId, Timestamp};

/// Whether an alarm condition started or ended (alarms are edge-triggered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmState {
    /// The condition started.
    Raised,
    /// The condition ended.
    Cleared,
}

impl AlarmState {
    /// `raised` / `cleared`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlarmState::Raised => "raised",
            AlarmState::Cleared => "cleared",
        }
    }
}

/// What a safety alarm is about (REQUIREMENTS 001 2.3 seed examples, B8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AlarmKind {
    /// Alarm button / SOS press.
    Emergency,
    /// Fall detected.
    Fall,
    /// Smoke or fire.
    Smoke,
    /// Gas.
    Gas,
    /// Carbon monoxide.
    CarbonMonoxide,
    /// Water leak.
    WaterLeak,
    /// Tampering with a sensor.
    Tamper,
    /// Door opened when it should not be (service rule).
    DoorOpen,
    /// No return to bed in time (service rule).
    NoBedReturn,
    /// A kind named by a rule or external driver.
    Other(String),
}

impl AlarmKind {
    /// Stable snake_case name.
    pub fn as_str(&self) -> &str {
        match self {
            AlarmKind::Emergency => "emergency",
            AlarmKind::Fall => "fall",
            AlarmKind::Smoke => "smoke",
            AlarmKind::Gas => "gas",
            AlarmKind::CarbonMonoxide => "carbon_monoxide",
            AlarmKind::WaterLeak => "water_leak",
            AlarmKind::Tamper => "tamper",
            AlarmKind::DoorOpen => "door_open",
            AlarmKind::NoBedReturn => "no_bed_return",
            AlarmKind::Other(s) => s,
        }
    }

    /// The inverse of [`AlarmKind::as_str`]; unknown names become `Other`.
    pub fn from_name(s: &str) -> Self {
        match s {
            "emergency" => AlarmKind::Emergency,
            "fall" => AlarmKind::Fall,
            "smoke" => AlarmKind::Smoke,
            "gas" => AlarmKind::Gas,
            "carbon_monoxide" => AlarmKind::CarbonMonoxide,
            "water_leak" => AlarmKind::WaterLeak,
            "tamper" => AlarmKind::Tamper,
            "door_open" => AlarmKind::DoorOpen,
            "no_bed_return" => AlarmKind::NoBedReturn,
            other => AlarmKind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A safety alarm from a sensor: goes in the alarm lane and is never dropped (invariants 3, 4).
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// Deterministic identifier (device + kind + state + event time + sequence).
    pub id: RecordId,
    /// The sensor.
    pub device: DeviceId,
    /// What happened.
    pub kind: AlarmKind,
    /// Started or ended.
    pub state: AlarmState,
    /// When it happened (sensor time, or receipt time when the sensor gives none).
    pub at: Timestamp,
    /// When hearth received it.
    pub received_at: Timestamp,
    /// Data category (safety alarms are health data when part of the emergency service).
    pub category: Category,
    /// The person, from configuration.
    pub person: Option<PersonRef>,
    /// The sensor's own sequence or message id, when it has one.
    pub sequence: Option<u64>,
}

impl Alarm {
    /// Build an alarm, deriving its identifier.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        device: DeviceId,
        kind: AlarmKind,
        state: AlarmState,
        at: Timestamp,
        received_at: Timestamp,
        category: Category,
        person: Option<PersonRef>,
        sequence: Option<u64>,
    ) -> Self {
        let seq = sequence.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let id = RecordId::derive(&[
            "alarm",
            device.as_str(),
            kind.as_str(),
            state.as_str(),
            &at.unix_millis().to_string(),
            &seq,
        ]);
        Self {
            id,
            device,
            kind,
            state,
            at,
            received_at,
            category,
            person,
            sequence,
        }
    }
}

/// How serious a technical alarm is (X.733-style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Service is affected now (e.g. storage lost, alarms cannot be delivered).
    Critical,
    /// Service will be affected soon.
    Major,
    /// Degraded, not yet affecting service.
    Minor,
    /// Worth knowing.
    Warning,
}

impl Severity {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Minor => "minor",
            Severity::Warning => "warning",
        }
    }
}

/// What a technical alarm is about. Includes the five conditions of A7 (poor coverage, power
/// loss, low battery, charging fault, critical functional fault) and hearth's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TechnicalKind {
    /// A7: poor mobile coverage.
    PoorCoverage,
    /// A7: mains power lost.
    PowerLoss,
    /// A3/A7: a device's battery is low.
    LowBattery,
    /// A7: charging fault.
    ChargingFault,
    /// A device has not been seen for longer than configured.
    DeviceOffline,
    /// The outbox database was corrupt and was moved aside.
    StorageCorrupt,
    /// The disk is full: new data cannot be stored.
    DiskFull,
    /// The outbox reached its cap and dropped data (never alarms).
    DataDropped,
    /// Data expired before any receiver took it.
    DataExpired,
    /// A receiver rejected data permanently (dead letters).
    DeliveryRejected,
    /// A receiver refuses a whole route (credentials, rights, the patient or organisation the
    /// route references, its profile): the route pauses and keeps its records.
    RouteRefused,
    /// A supervised task keeps crashing.
    TaskCrashLoop,
    /// Input that could not be understood (dead-lettered).
    MalformedInput,
    /// A kind named by a driver or by management.
    Other(String),
}

impl TechnicalKind {
    /// Stable snake_case name.
    pub fn as_str(&self) -> &str {
        match self {
            TechnicalKind::PoorCoverage => "poor_coverage",
            TechnicalKind::PowerLoss => "power_loss",
            TechnicalKind::LowBattery => "low_battery",
            TechnicalKind::ChargingFault => "charging_fault",
            TechnicalKind::DeviceOffline => "device_offline",
            TechnicalKind::StorageCorrupt => "storage_corrupt",
            TechnicalKind::DiskFull => "disk_full",
            TechnicalKind::DataDropped => "data_dropped",
            TechnicalKind::DataExpired => "data_expired",
            TechnicalKind::DeliveryRejected => "delivery_rejected",
            TechnicalKind::RouteRefused => "route_refused",
            TechnicalKind::TaskCrashLoop => "task_crash_loop",
            TechnicalKind::MalformedInput => "malformed_input",
            TechnicalKind::Other(s) => s,
        }
    }

    /// The inverse of [`TechnicalKind::as_str`]; unknown names become `Other`.
    pub fn from_name(s: &str) -> Self {
        const KNOWN: [TechnicalKind; 13] = [
            TechnicalKind::PoorCoverage,
            TechnicalKind::PowerLoss,
            TechnicalKind::LowBattery,
            TechnicalKind::ChargingFault,
            TechnicalKind::DeviceOffline,
            TechnicalKind::StorageCorrupt,
            TechnicalKind::DiskFull,
            TechnicalKind::DataDropped,
            TechnicalKind::DataExpired,
            TechnicalKind::DeliveryRejected,
            TechnicalKind::RouteRefused,
            TechnicalKind::TaskCrashLoop,
            TechnicalKind::MalformedInput,
        ];
        KNOWN
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or_else(|| TechnicalKind::Other(s.to_owned()))
    }
}

/// A technical alarm about the gateway or a device (A7): goes in the technical lane.
///
/// `message` is for operators and must never contain health values or personal identifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct TechnicalAlarm {
    /// Deterministic identifier (source + kind + state + time).
    pub id: RecordId,
    /// What raised it: a component (`outbox`, `supervisor/ble`) or a device id.
    pub source: String,
    /// What it is about.
    pub kind: TechnicalKind,
    /// How serious.
    pub severity: Severity,
    /// Started or ended.
    pub state: AlarmState,
    /// Operator text: what happened and what to do.
    pub message: String,
    /// When it was raised or cleared.
    pub at: Timestamp,
}

impl TechnicalAlarm {
    /// Build a technical alarm, deriving its identifier.
    pub fn new(
        source: impl Into<String>,
        kind: TechnicalKind,
        severity: Severity,
        state: AlarmState,
        message: impl Into<String>,
        at: Timestamp,
    ) -> Self {
        let source = source.into();
        let id = RecordId::derive(&[
            "technical",
            &source,
            kind.as_str(),
            state.as_str(),
            &at.unix_millis().to_string(),
        ]);
        Self {
            id,
            source,
            kind,
            severity,
            state,
            message: message.into(),
            at,
        }
    }

    /// Technical alarms are operations data: category administrative.
    pub const fn category(&self) -> Category {
        Category::Administrative
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for k in ["fall", "water_leak", "carbon_monoxide", "custom_thing"] {
            assert_eq!(AlarmKind::from_name(k).as_str(), k);
        }
        for k in ["low_battery", "storage_corrupt", "vendor_specific"] {
            assert_eq!(TechnicalKind::from_name(k).as_str(), k);
        }
    }

    #[test]
    fn raise_and_clear_have_different_ids() {
        let d = DeviceId::new("z2m", "0x1").unwrap();
        let t = Timestamp::from_unix_millis(5);
        let mk = |s| {
            Alarm::new(
                d.clone(),
                AlarmKind::Fall,
                s,
                t,
                t,
                Category::Health,
                None,
                None,
            )
        };
        assert_ne!(mk(AlarmState::Raised).id, mk(AlarmState::Cleared).id);
    }
}
