//! Current Time Service (0x1805): Current Time (0x2A2B).
//!
//! Layout (SIG XML `current_time`, `exact_time_256`, `day_date_time`, `day_of_week`):
//!
//! ```text
//! Date Time (7) | day of week u8 (1 Monday … 7 Sunday, 0 unknown, 8–255 RFU)
//!   | fractions256 u8 (1/256 s) | adjust reason u8
//! adjust reason: b0 manual time update, b1 external reference time update, b2 change of time
//!   zone, b3 change of DST, b4–b7 RFU
//! ```
//!
//! [`current_time`] puts the device's clock into [`DeviceFacts::current_time`]; a clock that
//! reports an unknown date (year, month or day 0) also sets [`DeviceFacts::clock_unset`]. A day
//! of week above 7 is malformed (the value is not a Current Time). [`encode_current_time`]
//! builds the 10 octets hearth writes to set a device clock.

use crate::decode::{DecodeError, Decoded, DeviceFacts, LocalDateTime, Reader, days_from_civil};

/// Current Time service.
pub const SERVICE: u16 = 0x1805;
/// Current Time (Read, Notify, optionally Write).
pub const CURRENT_TIME: u16 = 0x2A2B;

/// Adjust reason b0: manual time update.
pub const ADJUST_MANUAL: u8 = 0x01;
/// Adjust reason b1: external reference time update.
pub const ADJUST_EXTERNAL_REFERENCE: u8 = 0x02;
/// Adjust reason b2: change of time zone.
pub const ADJUST_TIME_ZONE: u8 = 0x04;
/// Adjust reason b3: change of DST.
pub const ADJUST_DST: u8 = 0x08;

/// A Current Time value, field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentTime {
    /// Date and time (device-local).
    pub time: LocalDateTime,
    /// 1 Monday … 7 Sunday; 0 unknown.
    pub day_of_week: u8,
    /// 1/256 s.
    pub fractions256: u8,
    /// Adjust reason bits (RFU bits cleared).
    pub adjust_reason: u8,
}

/// Decode a Current Time (0x2A2B) into its fields.
pub fn parse_current_time(bytes: &[u8]) -> Result<CurrentTime, DecodeError> {
    let mut r = Reader::new(CURRENT_TIME, bytes);
    r.need(10)?;
    let time = r.date_time()?;
    let day_of_week = r.u8()?;
    if day_of_week > 7 {
        return Err(r.malformed_at(
            7,
            format!("day of week {day_of_week} is outside 1…7 (0 = unknown)"),
        ));
    }
    let fractions256 = r.u8()?;
    let adjust_reason = r.u8()? & 0x0F;
    r.finish()?;
    Ok(CurrentTime {
        time,
        day_of_week,
        fractions256,
        adjust_reason,
    })
}

/// Decode a Current Time (0x2A2B) into `facts.current_time` (and `facts.clock_unset` when the
/// device does not know the date).
pub fn current_time(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let ct = parse_current_time(bytes)?;
    Ok(Decoded {
        facts: DeviceFacts {
            current_time: Some(ct.time),
            clock_unset: !ct.time.is_complete(),
            ..DeviceFacts::default()
        },
        ..Decoded::default()
    })
}

/// The Current Time day of week of a date (1 Monday … 7 Sunday), 0 if the date is incomplete.
pub fn day_of_week(t: &LocalDateTime) -> u8 {
    match (t.year, t.month, t.day) {
        (Some(y), Some(m), Some(d)) => {
            // 1970-01-01 was a Thursday (4).
            let days = days_from_civil(i64::from(y), i64::from(m), i64::from(d));
            (days + 3).rem_euclid(7) as u8 + 1
        }
        _ => 0,
    }
}

/// The 10 octets of a Current Time write: `t` (unknown fields as 0), `day_of_week`
/// (see [`day_of_week`]), fractions256 = 0, `adjust_reason` (e.g. [`ADJUST_MANUAL`] |
/// [`ADJUST_EXTERNAL_REFERENCE`]).
pub fn encode_current_time(t: &LocalDateTime, day_of_week: u8, adjust_reason: u8) -> [u8; 10] {
    let [y0, y1] = t.year.unwrap_or(0).to_le_bytes();
    [
        y0,
        y1,
        t.month.unwrap_or(0),
        t.day.unwrap_or(0),
        t.hour,
        t.minute,
        t.second,
        day_of_week,
        0,
        adjust_reason,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodeErrorKind;

    fn t(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> LocalDateTime {
        LocalDateTime {
            year: Some(y),
            month: Some(mo),
            day: Some(d),
            hour: h,
            minute: mi,
            second: s,
        }
    }

    #[test]
    fn decodes() {
        // 2025-03-14 07:05:09, Friday, 128/256 s, manual + external reference.
        let bytes = [0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x05, 0x80, 0x03];
        let ct = parse_current_time(&bytes).unwrap();
        assert_eq!(
            ct,
            CurrentTime {
                time: t(2025, 3, 14, 7, 5, 9),
                day_of_week: 5,
                fractions256: 128,
                adjust_reason: 3
            }
        );
        let d = current_time(&bytes).unwrap();
        assert_eq!(d.facts.current_time, Some(t(2025, 3, 14, 7, 5, 9)));
        assert!(!d.facts.clock_unset);
        assert!(d.observations.is_empty());
    }

    #[test]
    fn unknown_date_means_unset_clock() {
        let d = current_time(&[0, 0, 0, 0, 0, 1, 2, 0, 0, 0]).unwrap();
        assert!(d.facts.clock_unset);
        assert_eq!(d.facts.current_time.map(|t| t.year), Some(None));
    }

    #[test]
    fn errors() {
        let e = current_time(&[0xE9, 0x07, 0x03]).unwrap_err();
        assert_eq!(
            (e.characteristic, e.at, e.kind),
            (0x2A2B, 3, DecodeErrorKind::Incomplete { needed: 10 })
        );
        let e = current_time(&[0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x08, 0x00, 0x00])
            .unwrap_err();
        assert_eq!(e.at, 7);
        assert!(matches!(e.kind, DecodeErrorKind::Malformed { .. }));
        let e = current_time(&[0xE9, 0x07, 0x03, 0x0E, 0x18, 0x05, 0x09, 0x05, 0x00, 0x00])
            .unwrap_err();
        assert_eq!(e.at, 4);
    }

    #[test]
    fn encode_round_trips() {
        let now = t(2025, 3, 14, 7, 5, 9);
        let dow = day_of_week(&now);
        assert_eq!(dow, 5);
        let bytes = encode_current_time(&now, dow, ADJUST_MANUAL | ADJUST_EXTERNAL_REFERENCE);
        assert_eq!(
            bytes,
            [0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x05, 0x00, 0x03]
        );
        let back = parse_current_time(&bytes).unwrap();
        assert_eq!((back.time, back.day_of_week), (now, 5));
        assert_eq!(day_of_week(&t(2000, 1, 1, 0, 0, 0)), 6); // Saturday
        assert_eq!(day_of_week(&t(2024, 12, 30, 0, 0, 0)), 1); // Monday
        assert_eq!(day_of_week(&t(2026, 3, 1, 0, 0, 0)), 7); // Sunday
        let unknown = LocalDateTime {
            year: None,
            month: None,
            day: None,
            hour: 1,
            minute: 2,
            second: 3,
        };
        assert_eq!(day_of_week(&unknown), 0);
        assert_eq!(
            encode_current_time(&unknown, 0, 0),
            [0, 0, 0, 0, 1, 2, 3, 0, 0, 0]
        );
    }
}
