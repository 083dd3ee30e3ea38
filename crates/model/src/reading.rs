use std::fmt;

use crate::{Category, DeviceId, RecordId, Timestamp, Value};

/// An IEEE 11073-10101 (MDC) nomenclature code: partition × 65536 + term code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mdc(pub u32);

impl Mdc {
    /// The partition (upper 16 bits).
    pub const fn partition(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The term code (lower 16 bits).
    pub const fn term(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

impl fmt::Display for Mdc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A UCUM unit code, e.g. `mm[Hg]`, `Cel`, `kg`, `%`, `/min`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ucum(String);

impl Ucum {
    /// Wrap a UCUM code. The ieee11073 crate owns the MDC ↔ UCUM table; this type only carries it.
    pub fn new(code: impl Into<String>) -> Self {
        Self(code.into())
    }

    /// The UCUM code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a reading is about, as configured for the device (never sent by the device itself).
///
/// Personal identifiers are never logged at info level; this type's `Debug` hides the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonRef(String);

impl PersonRef {
    /// A configured reference, e.g. `Patient/123` or an identifier key from config.
    pub fn new(r: impl Into<String>) -> Self {
        Self(r.into())
    }

    /// The reference text (for uplinks only).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PersonRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonRef(<redacted>)")
    }
}

/// Facts about how a reading was taken that receivers need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadingFlags {
    /// The device's clock was not set, so `device_time` may be on a wrong timeline.
    pub device_clock_unset: bool,
    /// The reading came from the device's memory (RACP, stored data), not live.
    pub stored_record: bool,
}

/// One measured value from one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Deterministic identifier (device + kind + device time + sequence).
    pub id: RecordId,
    /// The device that measured.
    pub device: DeviceId,
    /// What was measured (MDC code; for compound values the compound code, e.g. 150020).
    pub mdc: Mdc,
    /// The value.
    pub value: Value,
    /// The unit of a numeric value (compound components share it).
    pub unit: Option<Ucum>,
    /// When the device says it measured, converted to UTC by the driver.
    pub device_time: Option<Timestamp>,
    /// When hearth received it.
    pub received_at: Timestamp,
    /// The device's record sequence number, when it has one (RACP, GHS).
    pub sequence: Option<u64>,
    /// Which category of data this is; decides the routes (invariant 5).
    pub category: Category,
    /// The person it is about, from the device's configuration.
    pub person: Option<PersonRef>,
    /// How it was taken.
    pub flags: ReadingFlags,
}

impl Reading {
    /// Start building a reading.
    pub fn builder(device: DeviceId, mdc: Mdc, value: Value) -> ReadingBuilder {
        ReadingBuilder {
            device,
            mdc,
            value,
            unit: None,
            device_time: None,
            sequence: None,
            category: Category::Health,
            person: None,
            flags: ReadingFlags::default(),
        }
    }

    /// The identifier for a reading with these parts. When the device gives neither a time nor a
    /// sequence number, the receipt time stands in, so two distinct readings never share an id.
    pub fn derive_id(
        device: &DeviceId,
        mdc: Mdc,
        device_time: Option<Timestamp>,
        sequence: Option<u64>,
        received_at: Timestamp,
    ) -> RecordId {
        let time = match (device_time, sequence) {
            (Some(t), _) => t.unix_millis().to_string(),
            (None, Some(_)) => "-".to_owned(),
            (None, None) => format!("rx{}", received_at.unix_millis()),
        };
        let seq = sequence.map_or_else(|| "-".to_owned(), |s| s.to_string());
        RecordId::derive(&["reading", device.as_str(), &mdc.0.to_string(), &time, &seq])
    }
}

/// Builder for [`Reading`]; `build` derives the identifier.
#[derive(Debug, Clone)]
pub struct ReadingBuilder {
    device: DeviceId,
    mdc: Mdc,
    value: Value,
    unit: Option<Ucum>,
    device_time: Option<Timestamp>,
    sequence: Option<u64>,
    category: Category,
    person: Option<PersonRef>,
    flags: ReadingFlags,
}

impl ReadingBuilder {
    /// The unit of the value.
    pub fn unit(mut self, unit: Ucum) -> Self {
        self.unit = Some(unit);
        self
    }
    /// When the device measured (UTC).
    pub fn device_time(mut self, t: Timestamp) -> Self {
        self.device_time = Some(t);
        self
    }
    /// The device's sequence number.
    pub fn sequence(mut self, s: u64) -> Self {
        self.sequence = Some(s);
        self
    }
    /// The data category (default health).
    pub fn category(mut self, c: Category) -> Self {
        self.category = c;
        self
    }
    /// The person, from configuration.
    pub fn person(mut self, p: PersonRef) -> Self {
        self.person = Some(p);
        self
    }
    /// How the reading was taken.
    pub fn flags(mut self, f: ReadingFlags) -> Self {
        self.flags = f;
        self
    }
    /// Finish, stamping the receipt time and deriving the identifier.
    pub fn build(self, received_at: Timestamp) -> Reading {
        let id = Reading::derive_id(
            &self.device,
            self.mdc,
            self.device_time,
            self.sequence,
            received_at,
        );
        Reading {
            id,
            device: self.device,
            mdc: self.mdc,
            value: self.value,
            unit: self.unit,
            device_time: self.device_time,
            received_at,
            sequence: self.sequence,
            category: self.category,
            person: self.person,
            flags: self.flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_is_redacted_in_debug_output() {
        let p = PersonRef::new("Patient/12345678901");
        assert!(!format!("{p:?}").contains("1234"));
    }

    #[test]
    fn readings_without_time_or_sequence_stay_distinct() {
        let d = DeviceId::new("sim", "a").unwrap();
        let a = Reading::builder(d.clone(), Mdc(1), Value::numeric(1.0))
            .build(Timestamp::from_unix_millis(1));
        let b =
            Reading::builder(d, Mdc(1), Value::numeric(1.0)).build(Timestamp::from_unix_millis(2));
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn mdc_splits_partition_and_term() {
        assert_eq!(Mdc(150021).partition(), 2);
        assert_eq!(u32::from(Mdc(150021).term()), 150_021 - 2 * 65_536);
    }
}
