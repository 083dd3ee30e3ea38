//! From our records to SCAIP requests: which device type, component, status code and location
//! an alarm or technical alarm is, and the event's `ref`.
//!
//! The role of a device comes from configuration ([`DeviceProfile`] keyed by our device id),
//! never from what its payload happens to say; a device without a profile gets the defaults
//! of its alarm kind. Codes follow the SS 91100 annexes as listed in
//! `../shared/reference/scaip.md` ("Codes").

use std::collections::HashMap;

use hearth_model::{Alarm, AlarmKind, AlarmState, Record, RecordId, TechnicalAlarm};

use crate::xml::{Mrq, Ref};

/// SCAIP device types (`dty`) hearth uses by default.
pub mod dty {
    /// The local unit controller itself (hearth).
    pub const LOCAL_UNIT: u16 = 2;
    /// A personal trigger (a pendant, a wrist button).
    pub const PERSONAL_TRIGGER: u16 = 3;
    /// A fixed trigger (a wall button, a pull cord).
    pub const FIXED_TRIGGER: u16 = 4;
    /// A fall detector.
    pub const FALL_DETECTOR: u16 = 5;
    /// A panic button.
    pub const PANIC_BUTTON: u16 = 7;
    /// An activity / presence sensor (bed, movement).
    pub const ACTIVITY: u16 = 10;
    /// A door sensor.
    pub const DOOR: u16 = 14;
    /// A smoke detector.
    pub const SMOKE: u16 = 23;
    /// The communication link monitor.
    pub const LINK_MONITOR: u16 = 32;
}

/// SCAIP status codes (`stc`) hearth uses by default.
pub mod stc {
    /// Alarm, raised automatically (a detector).
    pub const ALARM_AUTOMATIC: u16 = 9;
    /// Alarm, raised by a person (a button).
    pub const ALARM_MANUAL: u16 = 10;
    /// Battery failure.
    pub const BATTERY_FAILURE: u16 = 14;
    /// Low battery.
    pub const LOW_BATTERY: u16 = 16;
    /// Cancel.
    pub const CANCEL: u16 = 19;
    /// IP link failure.
    pub const IP_LINK_FAILURE: u16 = 23;
    /// Mobile link failure.
    pub const MOBILE_LINK_FAILURE: u16 = 24;
    /// Mains power failure.
    pub const MAINS_FAILURE: u16 = 85;
    /// Mains power restored.
    pub const MAINS_RESTORED: u16 = 86;
    /// Restoral (a condition ended).
    pub const RESTORAL: u16 = 94;
    /// Test transmission.
    pub const TEST: u16 = 102;
    /// IP link re-established.
    pub const IP_LINK_RESTORED: u16 = 112;
    /// Mobile link re-established.
    pub const MOBILE_LINK_RESTORED: u16 = 113;
    /// Tamper.
    pub const TAMPER: u16 = 125;
}

/// What one device is, for the centre (`[[route.scaip.device]]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceProfile {
    /// `dty`: what kind of device (e.g. 3 personal trigger). `None`: from the alarm kind.
    pub device_type: Option<u16>,
    /// `dco`: which component (button 1–5 = 2–6).
    pub component: Option<u16>,
    /// `lco`: where in the home (e.g. 21 kitchen).
    pub location: Option<u16>,
    /// `did`: the id the centre knows the device by; default the last 16 characters of
    /// our device id (for zigbee: its IEEE address).
    pub device_id: Option<String>,
    /// `dte`: a short text (≤ 32 characters) the operator sees, e.g. "Trygghetsknapp".
    pub text: Option<String>,
    /// `pri`: priority 0–9.
    pub priority: Option<u8>,
    /// This device's receivers in order, by name (S6: per device); `None`: the route's order.
    pub receivers: Option<Vec<String>>,
}

/// The raise and clear codes of one technical alarm kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TechnicalCodes {
    /// `stc` when the condition starts.
    pub raised: u16,
    /// `stc` when it ends; `None`: the end is not sent.
    pub cleared: Option<u16>,
}

/// How a route turns records into requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// `cid`: the home's account number at the centre (1–32 digits).
    pub account: String,
    /// `crd`: how the centre reaches the home for voice (`sip:…`, `gsm:+47…`); empty: omitted
    /// (the centre uses the SIP address the alarm came from).
    pub callers: Vec<String>,
    /// Profiles by our device id (`zigbee:<IEEE>`, `ble:…`, an external driver's id).
    pub devices: HashMap<String, DeviceProfile>,
    /// Which technical alarms go to the centre, by kind name (`low_battery`, `power_loss`, …);
    /// others are skipped by this route (counted, logged), never dropped elsewhere.
    pub technical: HashMap<String, TechnicalCodes>,
    /// Offer the centre to set the heartbeat interval (`hbo`=001).
    pub heartbeat_offer: bool,
}

impl Mapping {
    /// A mapping with the default technical codes (S2/A7: low battery, power, coverage,
    /// tamper) and no device profiles.
    pub fn new(account: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            callers: Vec::new(),
            devices: HashMap::new(),
            technical: default_technical_codes(),
            heartbeat_offer: true,
        }
    }

    /// The request for a record, or why this route does not carry it (a reading; a
    /// technical alarm kind not configured for the centre).
    pub fn request_for(&self, record: &Record) -> Result<Mrq, NotForTheCentre> {
        match record {
            Record::Alarm(a) => Ok(self.alarm_request(a)),
            Record::Technical(t) => self.technical_request(t),
            Record::Reading(_) => Err(NotForTheCentre(
                "a reading; SCAIP routes carry alarms and technical alarms".into(),
            )),
        }
    }

    fn alarm_request(&self, a: &Alarm) -> Mrq {
        let profile = self.devices.get(a.device.as_str());
        let (default_type, raised) = kind_defaults(&a.kind);
        let status = match a.state {
            AlarmState::Raised => raised,
            AlarmState::Cleared => stc::RESTORAL,
        };
        let text = profile
            .and_then(|p| p.text.clone())
            .or_else(|| (default_type == dty::LOCAL_UNIT).then(|| a.kind.as_str().to_owned()));
        Mrq {
            reference: Some(reference_for(&a.id)),
            caller_id: self.account.clone(),
            heartbeat_offer: false,
            device_type: profile.and_then(|p| p.device_type).unwrap_or(default_type),
            device_id: Some(
                profile
                    .and_then(|p| p.device_id.clone())
                    .unwrap_or_else(|| default_device_id(a.device.as_str())),
            ),
            component: profile.and_then(|p| p.component),
            device_text: text,
            callers: self.callers.clone(),
            status: Some(status),
            priority: profile.and_then(|p| p.priority),
            location: profile.and_then(|p| p.location),
            ..Mrq::default()
        }
    }

    fn technical_request(&self, t: &TechnicalAlarm) -> Result<Mrq, NotForTheCentre> {
        let codes = self.technical.get(t.kind.as_str()).ok_or_else(|| {
            NotForTheCentre(format!(
                "technical alarm {} is not configured for the centre ([route.scaip] technical)",
                t.kind.as_str()
            ))
        })?;
        let status = match t.state {
            AlarmState::Raised => codes.raised,
            AlarmState::Cleared => codes.cleared.ok_or_else(|| {
                NotForTheCentre(format!(
                    "the end of {} is not sent to the centre",
                    t.kind.as_str()
                ))
            })?,
        };
        // A technical alarm about a device carries that device; one about the box itself
        // (outbox, supervisor, links) is the local unit's.
        let profile = self.devices.get(t.source.as_str());
        let about_a_device = profile.is_some() || t.source.contains(':');
        Ok(Mrq {
            reference: Some(reference_for(&t.id)),
            caller_id: self.account.clone(),
            device_type: profile
                .and_then(|p| p.device_type)
                .unwrap_or(dty::LOCAL_UNIT),
            device_id: about_a_device.then(|| {
                profile
                    .and_then(|p| p.device_id.clone())
                    .unwrap_or_else(|| default_device_id(&t.source))
            }),
            component: profile.and_then(|p| p.component),
            location: profile.and_then(|p| p.location),
            device_text: profile.and_then(|p| p.text.clone()),
            status: Some(status),
            ..Mrq::default()
        })
    }

    /// The receivers' order for a record: the device's own list when it has one (S6),
    /// otherwise `None` (the route's order).
    pub fn receivers_for(&self, record: &Record) -> Option<&[String]> {
        let device = match record {
            Record::Alarm(a) => a.device.as_str(),
            Record::Technical(t) => t.source.as_str(),
            Record::Reading(_) => return None,
        };
        self.devices.get(device)?.receivers.as_deref()
    }

    /// A heartbeat (`mty=PI`) with a fresh reference.
    pub fn heartbeat(&self, reference: Ref) -> Mrq {
        Mrq {
            reference: Some(reference),
            message_type: crate::MessageType::Heartbeat,
            heartbeat_offer: self.heartbeat_offer,
            caller_id: self.account.clone(),
            device_type: dty::LOCAL_UNIT,
            ..Mrq::default()
        }
    }
}

/// A record this route does not carry, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not for the response centre: {0}")]
pub struct NotForTheCentre(pub String);

/// The device type and raise code of an alarm kind when the device has no profile.
fn kind_defaults(kind: &AlarmKind) -> (u16, u16) {
    match kind {
        AlarmKind::Emergency => (dty::PERSONAL_TRIGGER, stc::ALARM_MANUAL),
        AlarmKind::Fall => (dty::FALL_DETECTOR, stc::ALARM_AUTOMATIC),
        AlarmKind::Smoke => (dty::SMOKE, stc::ALARM_AUTOMATIC),
        AlarmKind::DoorOpen => (dty::DOOR, stc::ALARM_AUTOMATIC),
        AlarmKind::NoBedReturn => (dty::ACTIVITY, stc::ALARM_AUTOMATIC),
        AlarmKind::Tamper => (dty::LOCAL_UNIT, stc::TAMPER),
        // Gas, CO, water and kinds named by rules: the local unit raises them, with the kind's
        // name as text so the operator sees what it is.
        _ => (dty::LOCAL_UNIT, stc::ALARM_AUTOMATIC),
    }
}

/// The technical alarms sent to the centre unless configured otherwise.
pub fn default_technical_codes() -> HashMap<String, TechnicalCodes> {
    let mut m = HashMap::new();
    m.insert(
        "low_battery".into(),
        TechnicalCodes {
            raised: stc::LOW_BATTERY,
            cleared: Some(stc::RESTORAL),
        },
    );
    m.insert(
        "power_loss".into(),
        TechnicalCodes {
            raised: stc::MAINS_FAILURE,
            cleared: Some(stc::MAINS_RESTORED),
        },
    );
    m.insert(
        "poor_coverage".into(),
        TechnicalCodes {
            raised: stc::MOBILE_LINK_FAILURE,
            cleared: Some(stc::MOBILE_LINK_RESTORED),
        },
    );
    m.insert(
        "link_failure".into(),
        TechnicalCodes {
            raised: stc::IP_LINK_FAILURE,
            cleared: Some(stc::IP_LINK_RESTORED),
        },
    );
    m.insert(
        "tamper".into(),
        TechnicalCodes {
            raised: stc::TAMPER,
            cleared: Some(stc::RESTORAL),
        },
    );
    m
}

/// `did` when configuration names none: the last 16 printable ASCII characters of our id (for
/// `zigbee:00158d0001a2b3c4` the IEEE address's 16 hex digits).
fn default_device_id(id: &str) -> String {
    let ascii: Vec<char> = id.chars().filter(|c| c.is_ascii_graphic()).collect();
    ascii[ascii.len().saturating_sub(16)..].iter().collect()
}

/// The event's `ref`: 16 base-62 characters from the first 12 bytes of the record id, so every
/// resend — also after a restart or on the alternative receiver — carries the same `ref`, and
/// two records never share one (95 bits).
pub fn reference_for(id: &RecordId) -> Ref {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let bytes = id.as_bytes();
    let mut n = bytes[..12]
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let mut out = [b'0'; 16];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    // 16 characters of [0-9A-Za-z]: a valid reference by construction.
    Ref::trusted(out.iter().map(|b| char::from(*b)).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hearth_model::{Category, DeviceId, Severity, TechnicalKind, Timestamp};

    fn sos(device: &str) -> Record {
        Record::Alarm(Alarm::new(
            DeviceId::parse(device).unwrap(),
            AlarmKind::Emergency,
            AlarmState::Raised,
            Timestamp::from_unix_millis(1_700_000_000_000),
            Timestamp::from_unix_millis(1_700_000_000_100),
            Category::Health,
            None,
            None,
        ))
    }

    #[test]
    fn the_ref_is_derived_from_the_record_id() {
        let r = sos("zigbee:0x00158d0001a2b3c4");
        let a = reference_for(&r.id());
        assert_eq!(a, reference_for(&r.id()));
        assert_eq!(a.as_str().len(), 16);
        assert_ne!(a, reference_for(&sos("zigbee:0x00158d0001a2b3c5").id()));
    }

    #[test]
    fn the_role_comes_from_configuration() {
        let mut m = Mapping::new("12345");
        let plain = m.request_for(&sos("zigbee:0x00158d0001a2b3c4")).unwrap();
        assert_eq!(plain.device_type, dty::PERSONAL_TRIGGER);
        assert_eq!(plain.status, Some(stc::ALARM_MANUAL));
        assert_eq!(plain.device_id.as_deref(), Some("00158d0001a2b3c4"));
        m.devices.insert(
            "zigbee:0x00158d0001a2b3c4".into(),
            DeviceProfile {
                device_type: Some(dty::FIXED_TRIGGER),
                component: Some(2),
                location: Some(21),
                text: Some("Kjøkken".into()),
                ..DeviceProfile::default()
            },
        );
        let xml = m
            .request_for(&sos("zigbee:0x00158d0001a2b3c4"))
            .unwrap()
            .to_xml()
            .unwrap();
        assert!(xml.contains("<dty>0004</dty><did>00158d0001a2b3c4</did><dco>002</dco><dte>Kjøkken</dte><stc>010</stc><lco>021</lco>"), "{xml}");
    }

    #[test]
    fn technical_alarms_go_only_when_configured() {
        let m = Mapping::new("12345");
        let t = |kind, state| {
            Record::Technical(TechnicalAlarm::new(
                "hub",
                kind,
                Severity::Major,
                state,
                "m",
                Timestamp::from_unix_millis(1),
            ))
        };
        let raised = m
            .request_for(&t(TechnicalKind::PowerLoss, AlarmState::Raised))
            .unwrap();
        assert_eq!(raised.status, Some(stc::MAINS_FAILURE));
        assert_eq!(raised.device_type, dty::LOCAL_UNIT);
        assert_eq!(raised.device_id, None);
        let cleared = m
            .request_for(&t(TechnicalKind::PowerLoss, AlarmState::Cleared))
            .unwrap();
        assert_eq!(cleared.status, Some(stc::MAINS_RESTORED));
        assert!(
            m.request_for(&t(TechnicalKind::DiskFull, AlarmState::Raised))
                .is_err()
        );
    }
}
