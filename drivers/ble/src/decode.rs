//! What every decoder returns, and the byte reader they share.
//!
//! A decoder is a pure function `&[u8] → Result<Decoded, DecodeError>`. It checks before it
//! reads: a value that ends too early is [`DecodeErrorKind::Incomplete`] (with how many bytes
//! were needed), a value whose bytes say something impossible is
//! [`DecodeErrorKind::Malformed`]; both name the offending byte offset. No decoder panics on any
//! input (fuzzed in `tests/fuzz.rs`).

use std::fmt;

use hearth_ieee11073::{Number, Special, float, sfloat};
use hearth_model::{Mdc, Ucum, Value};

/// A device-local date and time without a zone (GATT Date Time 0x2A08). Fields the device did
/// not know are `None` (year 0, month 0, day 0 on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalDateTime {
    /// 1582…9999, or `None` when unknown.
    pub year: Option<u16>,
    /// 1…12, or `None` when unknown.
    pub month: Option<u8>,
    /// 1…31, or `None` when unknown.
    pub day: Option<u8>,
    /// 0…23.
    pub hour: u8,
    /// 0…59.
    pub minute: u8,
    /// 0…59.
    pub second: u8,
}

impl LocalDateTime {
    /// Whether year, month and day are all known (a clock that was never set reports zeros).
    pub fn is_complete(&self) -> bool {
        self.year.is_some() && self.month.is_some() && self.day.is_some()
    }

    /// This time plus `minutes` (Glucose time offset), if the date is complete.
    pub fn plus_minutes(&self, minutes: i64) -> Option<LocalDateTime> {
        let (y, mo, d) = (
            i64::from(self.year?),
            i64::from(self.month?),
            i64::from(self.day?),
        );
        let days = days_from_civil(y, mo, d);
        let mut total = days * 1440 + i64::from(self.hour) * 60 + i64::from(self.minute) + minutes;
        let day = total.div_euclid(1440);
        total = total.rem_euclid(1440);
        let (y, mo, d) = civil_from_days(day);
        Some(LocalDateTime {
            year: u16::try_from(y).ok(),
            month: Some(mo as u8),
            day: Some(d as u8),
            hour: (total / 60) as u8,
            minute: (total % 60) as u8,
            second: self.second,
        })
    }
}

impl fmt::Display for LocalDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt =
            |v: Option<u16>, w: usize| v.map_or_else(|| "?".repeat(w), |v| format!("{v:0w$}"));
        write!(
            f,
            "{}-{}-{}T{:02}:{:02}:{:02}",
            opt(self.year, 4),
            opt(self.month.map(u16::from), 2),
            opt(self.day.map(u16::from), 2),
            self.hour,
            self.minute,
            self.second
        )
    }
}

// Howard Hinnant's civil-date algorithms (public domain), days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// When the device says a value was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceTime {
    /// Local wall-clock time without a zone: the session converts it with the box's zone.
    Local(LocalDateTime),
    /// Already UTC (GHS time stamps with the UTC flag), milliseconds since the Unix epoch.
    Utc(i64),
    /// A relative time: milliseconds on the device's tick counter or since a session start.
    Relative(i64),
}

/// One measured value, before it is tied to a device and a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// What was measured (MDC code; for compound values the compound's code, e.g. 150020).
    pub mdc: Mdc,
    /// The value; compound components carry their own MDC codes.
    pub value: Value,
    /// UCUM unit of a numeric value (of all components of a compound value).
    pub unit: Option<Ucum>,
    /// Time stamp, if the measurement carried one.
    pub time: Option<DeviceTime>,
    /// The device's record sequence number (Glucose, CGM time offset, GHS record number).
    pub sequence: Option<u64>,
    /// User index on multi-user devices (0xFF = unknown user is mapped to `None`).
    pub user: Option<u8>,
}

impl Observation {
    /// A value with a unit and no time, sequence or user.
    pub fn new(mdc: u32, value: Value, unit: Option<&str>) -> Self {
        Self {
            mdc: Mdc(mdc),
            value,
            unit: unit.map(Ucum::new),
            time: None,
            sequence: None,
            user: None,
        }
    }
}

/// Facts about the device that come with measurements or from informational characteristics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceFacts {
    /// Manufacturer name (0x2A29).
    pub manufacturer: Option<String>,
    /// Model number (0x2A24).
    pub model: Option<String>,
    /// Serial number (0x2A25).
    pub serial: Option<String>,
    /// Firmware revision (0x2A26).
    pub firmware: Option<String>,
    /// Hardware revision (0x2A27).
    pub hardware: Option<String>,
    /// Software revision (0x2A28).
    pub software: Option<String>,
    /// EUI-64 from the System ID (0x2A23), 16 lowercase hex digits, most significant first.
    pub eui64: Option<String>,
    /// Battery level in percent (0x2A19).
    pub battery_percent: Option<u8>,
    /// The device reported that its clock is not set.
    pub clock_unset: bool,
    /// The device's current time (0x2A2B), when read.
    pub current_time: Option<LocalDateTime>,
    /// UTC milliseconds of a CGM session start (0x2AAA), to place relative times.
    pub session_start_utc_ms: Option<i64>,
}

/// What one characteristic value decoded to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// Measured values.
    pub observations: Vec<Observation>,
    /// Device facts carried by this value.
    pub facts: DeviceFacts,
    /// Control-point and record-access answers (RACP, GHS control point).
    pub control: Option<crate::control::RacpResponse>,
    /// More packets of the same measurement follow (Body Composition multi-packet, GHS
    /// segmentation); the session joins them.
    pub more_follows: bool,
}

/// What is wrong with a characteristic value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The value ended at byte `at` but `needed` bytes in total were required.
    Incomplete {
        /// Bytes required for the fields the flags announce.
        needed: usize,
    },
    /// The byte at `at` holds an impossible value.
    Malformed {
        /// What is impossible about it.
        what: String,
    },
    /// This characteristic is not one hearth decodes.
    Unsupported,
}

/// A decoding failure, naming the characteristic and the offending byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    /// 16-bit characteristic UUID.
    pub characteristic: u16,
    /// Byte offset of the problem.
    pub at: usize,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = crate::characteristic_name(self.characteristic);
        match &self.kind {
            DecodeErrorKind::Incomplete { needed } => write!(
                f,
                "{name} (0x{:04X}): value ends at byte {} but its flags announce {needed} bytes; the notification was truncated or the device is not following the profile",
                self.characteristic, self.at
            ),
            DecodeErrorKind::Malformed { what } => {
                write!(
                    f,
                    "{name} (0x{:04X}): byte {}: {what}",
                    self.characteristic, self.at
                )
            }
            DecodeErrorKind::Unsupported => write!(
                f,
                "characteristic 0x{:04X} is not a health characteristic hearth decodes; see `hearth ble decode --help` for the list",
                self.characteristic
            ),
        }
    }
}

/// A bounds-checked little-endian reader that names offsets in its errors.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    characteristic: u16,
}

impl<'a> Reader<'a> {
    /// Read `bytes` of characteristic `characteristic`.
    pub fn new(characteristic: u16, bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            characteristic,
        }
    }

    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }

    /// An error at the current offset.
    pub fn malformed(&self, what: impl Into<String>) -> DecodeError {
        self.malformed_at(self.pos, what)
    }

    /// An error at a given offset.
    pub fn malformed_at(&self, at: usize, what: impl Into<String>) -> DecodeError {
        DecodeError {
            characteristic: self.characteristic,
            at,
            kind: DecodeErrorKind::Malformed { what: what.into() },
        }
    }

    /// Fail unless `n` more bytes are there.
    pub fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError {
                characteristic: self.characteristic,
                at: self.bytes.len(),
                kind: DecodeErrorKind::Incomplete {
                    needed: self.pos + n,
                },
            });
        }
        Ok(())
    }

    /// Take `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.need(n)?;
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Little-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// Little-endian i16.
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(self.u16()? as i16)
    }

    /// Little-endian u24.
    pub fn u24(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(3)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    /// Little-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Little-endian u48.
    pub fn u48(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(6)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], 0, 0,
        ]))
    }

    /// An SFLOAT as number or special value.
    pub fn sfloat(&mut self) -> Result<Result<Number, Special>, DecodeError> {
        Ok(sfloat::decode(self.u16()?))
    }

    /// An SFLOAT as a model value (special values become absent).
    pub fn sfloat_value(&mut self) -> Result<Value, DecodeError> {
        Ok(hearth_ieee11073::value_of(self.sfloat()?))
    }

    /// A FLOAT as number or special value.
    pub fn float(&mut self) -> Result<Result<Number, Special>, DecodeError> {
        Ok(float::decode(self.u32()?))
    }

    /// A FLOAT as a model value.
    pub fn float_value(&mut self) -> Result<Value, DecodeError> {
        Ok(hearth_ieee11073::value_of(self.float()?))
    }

    /// A GATT Date Time (7 bytes), validated field by field.
    pub fn date_time(&mut self) -> Result<LocalDateTime, DecodeError> {
        let start = self.pos;
        self.need(7)?;
        let year = self.u16()?;
        let month = self.u8()?;
        let day = self.u8()?;
        let (hour, minute, second) = (self.u8()?, self.u8()?, self.u8()?);
        if year != 0 && !(1582..=9999).contains(&year) {
            return Err(self.malformed_at(
                start,
                format!("year {year} is outside 1582…9999 (0 = unknown)"),
            ));
        }
        if month > 12 {
            return Err(self.malformed_at(
                start + 2,
                format!("month {month} is outside 1…12 (0 = unknown)"),
            ));
        }
        if day > 31 {
            return Err(self.malformed_at(
                start + 3,
                format!("day {day} is outside 1…31 (0 = unknown)"),
            ));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(self.malformed_at(
                start + 4,
                format!("time {hour:02}:{minute:02}:{second:02} is not a valid time of day"),
            ));
        }
        Ok(LocalDateTime {
            year: (year != 0).then_some(year),
            month: (month != 0).then_some(month),
            day: (day != 0).then_some(day),
            hour,
            minute,
            second,
        })
    }

    /// Fail if bytes are left over that the flags did not announce.
    pub fn finish(&self) -> Result<(), DecodeError> {
        // Trailing bytes are tolerated: later profile versions append fields (GSS: "RFU").
        Ok(())
    }
}

/// The length a value's flags announce: `base` plus the size of each optional field whose flag
/// bit is set. Decoders check it before reading, so a truncated value names the total needed.
pub fn announced_len(flags: u8, base: usize, optional: &[(u8, usize)]) -> usize {
    base + optional
        .iter()
        .filter(|(flag, _)| flags & flag != 0)
        .map(|(_, len)| len)
        .sum::<usize>()
}

/// A fixed-point field: `raw × numerator / 10^scale`, exact in decimal.
pub fn fixed(raw: i64, numerator: i64, scale: u8) -> Value {
    let v = (raw * numerator) as f64 / 10f64.powi(i32::from(scale));
    Value::numeric_with_decimals(v, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_names_offsets() {
        let mut r = Reader::new(0x2A35, &[1, 2, 3]);
        assert_eq!(r.u16().unwrap(), 0x0201);
        let e = r.u16().unwrap_err();
        assert_eq!(e.at, 3);
        assert_eq!(e.kind, DecodeErrorKind::Incomplete { needed: 4 });
    }

    #[test]
    fn date_time_reference_vector() {
        let mut r = Reader::new(0x2A08, &[0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09]);
        let t = r.date_time().unwrap();
        assert_eq!(t.to_string(), "2025-03-14T07:05:09");
        let bad = Reader::new(0x2A08, &[0xE9, 0x07, 13, 1, 0, 0, 0])
            .date_time()
            .unwrap_err();
        assert_eq!(bad.at, 2);
    }

    #[test]
    fn minutes_offset_crosses_days_and_years() {
        let t = LocalDateTime {
            year: Some(2025),
            month: Some(12),
            day: Some(31),
            hour: 23,
            minute: 50,
            second: 7,
        };
        let u = t.plus_minutes(15).unwrap();
        assert_eq!(u.to_string(), "2026-01-01T00:05:07");
        assert_eq!(u.plus_minutes(-15).unwrap(), t);
    }

    #[test]
    fn announced_len_adds_the_flagged_fields() {
        assert_eq!(
            announced_len(0b101, 4, &[(0b001, 7), (0b010, 2), (0b100, 1)]),
            12
        );
        assert_eq!(announced_len(0, 4, &[(0b001, 7)]), 4);
    }

    #[test]
    fn fixed_point_keeps_decimals() {
        assert_eq!(fixed(14490, 5, 3), Value::numeric_with_decimals(72.45, 3));
    }
}
