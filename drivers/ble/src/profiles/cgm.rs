//! Continuous Glucose Monitoring Service (0x181F): CGM Measurement (0x2AA7), CGM Feature
//! (0x2AA8), CGM Status (0x2AA9) and CGM Session Start Time (0x2AAA), with E2E-CRC.
//!
//! ```text
//! 0x2AA7  one or more records, each:
//!         size u8 | flags u8 | glucose SFLOAT mg/dL | time offset u16 min
//!         | [warning u8] | [cal/temp u8] | [status u8] | [trend SFLOAT mg/dL/min]
//!         | [quality SFLOAT %] | [E2E-CRC u16]
//! 0x2AA8  features u24 | type (low nibble) / sample location (high nibble) u8 | E2E-CRC u16
//! 0x2AA9  time offset u16 | status u8 | cal/temp u8 | warning u8 | [E2E-CRC u16]
//! 0x2AAA  DateTime(7) | time zone sint8 (15 min) | DST offset u8 | [E2E-CRC u16]
//! ```
//!
//! **Size** counts the whole record including the size octet itself and the CRC (SIG GATT XML
//! `org.bluetooth.characteristic.cgm_measurement`: "The Size Field itself is included"), so a
//! record carries an E2E-CRC exactly when `size = fields + 2`. The CRC covers every preceding
//! octet of the record (size … quality) and is CRC-16/MCRF4XX (reflected CCITT polynomial
//! 0x1021, seed 0xFFFF, no final XOR; check value of `"123456789"` = 0x6F91), appended LE.
//!
//! **Sensor Status Annunciation.** The SIG definition numbers the 24 annunciation bits LSO
//! first: bits 0–7 the *Status* octet (session stopped, battery low, wrong sensor type, sensor
//! malfunction, device-specific alert, general fault), bits 8–15 the *Cal/Temp* octet, bits
//! 16–23 the *Warning* octet (result below/above patient low/high, hypo, hyper, rate of
//! decrease/increase, below/above what the device can process). Flags b5/b6/b7 announce the
//! Warning/Cal-Temp/Status octets, and in a measurement record they appear in flag order —
//! Warning, Cal/Temp, Status — as encoded by Nordic (nRF5 SDK / nRF Connect SDK
//! `cgms_meas_encode`) and RivieraWaves (`cgms_meas_value_cmd_handler`). Note:
//! `ble-health-gatt.md` §11 (copying the Nordic Android parser) attributes the session-stopped
//! bits to the Warning octet and the patient-level bits to the Status octet; that contradicts
//! the SIG bit table and the octet names used by Nordic's own C headers, RivieraWaves and
//! nRF Toolbox for iOS, so the specification is followed here. The combined value reported is
//! `status | cal_temp << 8 | warning << 16` (the CGM Status characteristic layout).

use hearth_ieee11073::{Number, Special};
use hearth_model::{Enumerated, Value};

use crate::decode::{
    DecodeError, DecodeErrorKind, Decoded, DeviceTime, LocalDateTime, Observation, Reader,
    days_from_civil,
};

/// Continuous Glucose Monitoring service.
pub const SERVICE: u16 = 0x181F;
/// CGM Measurement (Notify).
pub const MEASUREMENT: u16 = 0x2AA7;
/// CGM Feature (Read).
pub const FEATURE: u16 = 0x2AA8;
/// CGM Status (Read).
pub const STATUS: u16 = 0x2AA9;
/// CGM Session Start Time (Read/Write).
pub const SESSION_START_TIME: u16 = 0x2AAA;
/// CGM Session Run Time (Read).
pub const SESSION_RUN_TIME: u16 = 0x2AAB;
/// CGM Specific Ops Control Point (Write/Indicate).
pub const SPECIFIC_OPS_CONTROL_POINT: u16 = 0x2AAC;
/// Record Access Control Point, see [`crate::profiles::racp`].
pub const RACP: u16 = crate::profiles::racp::UUID;

/// MDC_CONC_GLU_ISF (T2, PH): CGM glucose.
pub const MDC_GLU_ISF: u32 = 160_212;
/// MDC_CONC_GLU_TREND (T1 — unverified in mdc-codes.md).
pub const MDC_GLU_TREND: u32 = 8_418_008;
/// MDC_CGM_DEV_STAT (T1 — unverified in mdc-codes.md), 24-bit BITs in SIG bit numbering.
pub const MDC_CGM_DEV_STAT: u32 = 8_418_060;

/// Minimum record size: size, flags, glucose, time offset.
const MIN_RECORD: usize = 6;
/// Feature bit: E2E-CRC supported.
const FEATURE_E2E_CRC: u32 = 1 << 12;

/// CRC-16/MCRF4XX: reflected polynomial 0x1021 (0x8408), init 0xFFFF, no final XOR.
pub fn crc16_mcrf4xx(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn crc_mismatch(characteristic: u16, at: usize, expected: u16, found: u16) -> DecodeError {
    DecodeError {
        characteristic,
        at,
        kind: DecodeErrorKind::Malformed {
            what: format!(
                "E2E-CRC mismatch: expected 0x{expected:04X} (computed), found 0x{found:04X}"
            ),
        },
    }
}

/// One CGM Measurement record.
#[derive(Debug, Clone, PartialEq)]
pub struct CgmRecord {
    /// Byte offset of the record's size octet in the notification.
    pub offset: usize,
    /// The size octet.
    pub size: u8,
    /// The flags octet.
    pub flags: u8,
    /// Glucose in mg/dL as sent.
    pub glucose: Result<Number, Special>,
    /// Minutes since the session start.
    pub time_offset: u16,
    /// Warning octet (flag b5): annunciation bits 16–23.
    pub warning: Option<u8>,
    /// Cal/Temp octet (flag b6): annunciation bits 8–15.
    pub cal_temp: Option<u8>,
    /// Status octet (flag b7): annunciation bits 0–7.
    pub status: Option<u8>,
    /// Trend in (mg/dL)/min (flag b0).
    pub trend: Option<Result<Number, Special>>,
    /// Quality in % (flag b1).
    pub quality: Option<Result<Number, Special>>,
    /// The E2E-CRC, when present (already verified).
    pub crc: Option<u16>,
}

impl CgmRecord {
    /// The 24-bit Sensor Status Annunciation (`status | cal_temp << 8 | warning << 16`), if any
    /// octet was present; absent octets count as zero.
    pub fn annunciation(&self) -> Option<u32> {
        if self.warning.is_none() && self.cal_temp.is_none() && self.status.is_none() {
            return None;
        }
        let w = u32::from(self.warning.unwrap_or(0));
        let c = u32::from(self.cal_temp.unwrap_or(0));
        let s = u32::from(self.status.unwrap_or(0));
        Some(s | (c << 8) | (w << 16))
    }

    /// The observations of this record: glucose (MDC_CONC_GLU_ISF, `mg/dL`), trend
    /// (MDC_CONC_GLU_TREND, `mg/dL/min`) and the annunciation (MDC_CGM_DEV_STAT, 24-bit BITs).
    /// Quality has no MDC code in mdc-codes.md and is only available on the record.
    /// Each carries `sequence` = time offset and `time` = `Relative(offset × 60 000 ms)` (since
    /// the session start; the session converts it with [`SessionStartTime`]).
    pub fn observations(&self) -> Vec<Observation> {
        let time = Some(DeviceTime::Relative(i64::from(self.time_offset) * 60_000));
        let sequence = Some(u64::from(self.time_offset));
        let stamp = |mut o: Observation| {
            o.time = time;
            o.sequence = sequence;
            o
        };
        let mut out = vec![stamp(Observation::new(
            MDC_GLU_ISF,
            hearth_ieee11073::value_of(self.glucose),
            Some("mg/dL"),
        ))];
        if let Some(trend) = self.trend {
            out.push(stamp(Observation::new(
                MDC_GLU_TREND,
                hearth_ieee11073::value_of(trend),
                Some("mg/dL/min"),
            )));
        }
        if let Some(bits) = self.annunciation() {
            out.push(stamp(Observation::new(
                MDC_CGM_DEV_STAT,
                Value::Enumerated(Enumerated::Bits { bits, width: 24 }),
                None,
            )));
        }
        out
    }
}

/// Decode every record of a CGM Measurement notification. A record with `size = fields + 2`
/// carries an E2E-CRC, which is verified; with `crc_required` (the CGM Feature announces
/// E2E-CRC support) a record without one is an error.
pub fn records(bytes: &[u8], crc_required: bool) -> Result<Vec<CgmRecord>, DecodeError> {
    let mut out = Vec::new();
    let mut start = 0usize;
    loop {
        let mut head = Reader::new(MEASUREMENT, bytes);
        head.take(start)?;
        let size = head.u8()?;
        if usize::from(size) < MIN_RECORD {
            return Err(head.malformed_at(
                start,
                format!("record size {size} is below the minimum of {MIN_RECORD}"),
            ));
        }
        let end = start + usize::from(size);
        head.need(usize::from(size) - 1)?;
        let Some(record_bytes) = bytes.get(..end) else {
            return Err(head.malformed_at(start, "record runs past the value"));
        };
        out.push(record(record_bytes, start, crc_required)?);
        start = end;
        if start >= bytes.len() {
            return Ok(out);
        }
    }
}

/// Decode one record occupying `bytes[start..]` (`bytes` ends where the record ends).
fn record(bytes: &[u8], start: usize, crc_required: bool) -> Result<CgmRecord, DecodeError> {
    let mut r = Reader::new(MEASUREMENT, bytes);
    r.take(start)?;
    let size = r.u8()?;
    let flags = r.u8()?;
    let fields = MIN_RECORD
        + usize::from(flags & 0x20 != 0)
        + usize::from(flags & 0x40 != 0)
        + usize::from(flags & 0x80 != 0)
        + if flags & 0x01 != 0 { 2 } else { 0 }
        + if flags & 0x02 != 0 { 2 } else { 0 };
    let has_crc = match usize::from(size) {
        s if s == fields => false,
        s if s == fields + 2 => true,
        s => {
            return Err(r.malformed_at(
                start,
                format!("record size {s} does not match its flags 0x{flags:02X}: {fields} octets, or {} with E2E-CRC", fields + 2),
            ));
        }
    };
    if crc_required && !has_crc {
        return Err(r.malformed_at(
            start + fields,
            format!("record has no E2E-CRC although the CGM Feature announces E2E-CRC support (size {size} = fields only)"),
        ));
    }
    let glucose = r.sfloat()?;
    let time_offset = r.u16()?;
    let warning = if flags & 0x20 != 0 {
        Some(r.u8()?)
    } else {
        None
    };
    let cal_temp = if flags & 0x40 != 0 {
        Some(r.u8()?)
    } else {
        None
    };
    let status = if flags & 0x80 != 0 {
        Some(r.u8()?)
    } else {
        None
    };
    let trend = if flags & 0x01 != 0 {
        Some(r.sfloat()?)
    } else {
        None
    };
    let quality = if flags & 0x02 != 0 {
        Some(r.sfloat()?)
    } else {
        None
    };
    let crc = if has_crc {
        let at = r.pos();
        let found = r.u16()?;
        let covered = bytes.get(start..at).unwrap_or_default();
        let expected = crc16_mcrf4xx(covered);
        if expected != found {
            return Err(crc_mismatch(MEASUREMENT, at, expected, found));
        }
        Some(found)
    } else {
        None
    };
    Ok(CgmRecord {
        offset: start,
        size,
        flags,
        glucose,
        time_offset,
        warning,
        cal_temp,
        status,
        trend,
        quality,
        crc,
    })
}

/// Decode a CGM Measurement notification (E2E-CRC verified when present, not required).
pub fn measurement(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    measurement_with_crc_required(bytes, false)
}

/// Decode a CGM Measurement notification; with `crc_required` (CGM Feature bit 12) every record
/// must carry a valid E2E-CRC. One set of observations per record, see
/// [`CgmRecord::observations`].
pub fn measurement_with_crc_required(
    bytes: &[u8],
    crc_required: bool,
) -> Result<Decoded, DecodeError> {
    let observations = records(bytes, crc_required)?
        .iter()
        .flat_map(CgmRecord::observations)
        .collect();
    Ok(Decoded {
        observations,
        ..Decoded::default()
    })
}

/// CGM Feature (0x2AA8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgmFeature {
    /// The 24 feature bits (b0 calibration … b12 E2E-CRC, b13 multiple bond, b14 multiple
    /// sessions, b15 trend, b16 quality).
    pub bits: u32,
    /// CGM type nibble (9 = interstitial fluid).
    pub sample_type: u8,
    /// Sample location nibble (5 = subcutaneous tissue, 15 = not available).
    pub sample_location: u8,
    /// The E2E-CRC field (0xFFFF when E2E-CRC is not supported).
    pub crc: u16,
}

impl CgmFeature {
    /// b12: records, status and session start time carry an E2E-CRC.
    pub fn e2e_crc(&self) -> bool {
        self.bits & FEATURE_E2E_CRC != 0
    }
    /// b15: CGM trend information supported.
    pub fn trend(&self) -> bool {
        self.bits & (1 << 15) != 0
    }
    /// b16: CGM quality supported.
    pub fn quality(&self) -> bool {
        self.bits & (1 << 16) != 0
    }
    /// b13: multiple bonds supported.
    pub fn multiple_bond(&self) -> bool {
        self.bits & (1 << 13) != 0
    }
    /// b14: multiple sessions supported.
    pub fn multiple_sessions(&self) -> bool {
        self.bits & (1 << 14) != 0
    }
}

/// Decode the CGM Feature (0x2AA8). The E2E-CRC field is mandatory: with E2E-CRC support it
/// must match the CRC of the first four octets; without it the specification requires 0xFFFF
/// (a correct CRC is tolerated too); anything else is Malformed.
pub fn feature(bytes: &[u8]) -> Result<CgmFeature, DecodeError> {
    let mut r = Reader::new(FEATURE, bytes);
    let bits = r.u24()?;
    let type_location = r.u8()?;
    let at = r.pos();
    let crc = r.u16()?;
    r.finish()?;
    let expected = crc16_mcrf4xx(bytes.get(..at).unwrap_or_default());
    let supported = bits & FEATURE_E2E_CRC != 0;
    if crc != expected && (supported || crc != 0xFFFF) {
        return Err(if supported {
            crc_mismatch(FEATURE, at, expected, crc)
        } else {
            r.malformed_at(
                at,
                format!("E2E-CRC is not supported, so the CRC field must be 0xFFFF (or 0x{expected:04X}); found 0x{crc:04X}"),
            )
        });
    }
    Ok(CgmFeature {
        bits,
        sample_type: type_location & 0x0F,
        sample_location: type_location >> 4,
        crc,
    })
}

/// The CGM Feature as a [`Decoded`] (no observations).
pub fn feature_decoded(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    feature(bytes).map(|_| Decoded::default())
}

/// Reads an optional trailing E2E-CRC over `bytes[..at]`.
fn trailing_crc(
    r: &mut Reader<'_>,
    bytes: &[u8],
    characteristic: u16,
    crc_required: bool,
) -> Result<Option<u16>, DecodeError> {
    let at = r.pos();
    if r.remaining() == 0 {
        if crc_required {
            return Err(r.malformed_at(
                at,
                "E2E-CRC missing although the CGM Feature announces E2E-CRC support",
            ));
        }
        return Ok(None);
    }
    let found = r.u16()?;
    let expected = crc16_mcrf4xx(bytes.get(..at).unwrap_or_default());
    if expected != found {
        return Err(crc_mismatch(characteristic, at, expected, found));
    }
    Ok(Some(found))
}

/// CGM Status (0x2AA9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgmStatus {
    /// Minutes since the session start.
    pub time_offset: u16,
    /// 24-bit Sensor Status Annunciation (status bits 0–7, cal/temp 8–15, warning 16–23).
    pub annunciation: u32,
    /// Verified E2E-CRC, if present.
    pub crc: Option<u16>,
}

/// Decode the CGM Status (0x2AA9); a present E2E-CRC is verified.
pub fn status(bytes: &[u8], crc_required: bool) -> Result<CgmStatus, DecodeError> {
    let mut r = Reader::new(STATUS, bytes);
    let time_offset = r.u16()?;
    let annunciation = r.u24()?;
    let crc = trailing_crc(&mut r, bytes, STATUS, crc_required)?;
    Ok(CgmStatus {
        time_offset,
        annunciation,
        crc,
    })
}

/// CGM Session Start Time (0x2AAA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStartTime {
    /// Local date and time of the session start.
    pub start: LocalDateTime,
    /// Time zone in 15-minute units (−48…56), `None` when unknown (−128).
    pub time_zone: Option<i8>,
    /// DST offset in 15-minute units (0, 2, 4, 8), `None` when unknown (255).
    pub dst: Option<u8>,
    /// Verified E2E-CRC, if present.
    pub crc: Option<u16>,
}

impl SessionStartTime {
    /// Offset of local time from UTC in minutes (time zone + DST), if both are known.
    pub fn utc_offset_minutes(&self) -> Option<i64> {
        Some(i64::from(self.time_zone?) * 15 + i64::from(self.dst?) * 15)
    }

    /// The session start as milliseconds since the Unix epoch (UTC), if the date and the
    /// offsets are known.
    pub fn start_utc_ms(&self) -> Option<i64> {
        let s = self.start;
        let days = days_from_civil(i64::from(s.year?), i64::from(s.month?), i64::from(s.day?));
        let local_s = days * 86_400
            + i64::from(s.hour) * 3600
            + i64::from(s.minute) * 60
            + i64::from(s.second);
        Some((local_s - self.utc_offset_minutes()? * 60) * 1000)
    }

    /// UTC time (ms since the Unix epoch) of a record's time offset.
    pub fn record_utc_ms(&self, time_offset_minutes: u16) -> Option<i64> {
        Some(self.start_utc_ms()? + i64::from(time_offset_minutes) * 60_000)
    }
}

/// Decode the CGM Session Start Time (0x2AAA); a present E2E-CRC is verified.
pub fn session_start_time(bytes: &[u8]) -> Result<SessionStartTime, DecodeError> {
    session_start_time_with_crc_required(bytes, false)
}

/// Decode the CGM Session Start Time; with `crc_required` the E2E-CRC must be present.
pub fn session_start_time_with_crc_required(
    bytes: &[u8],
    crc_required: bool,
) -> Result<SessionStartTime, DecodeError> {
    let mut r = Reader::new(SESSION_START_TIME, bytes);
    let start = r.date_time()?;
    let tz_at = r.pos();
    let tz = r.u8()? as i8;
    let dst_at = r.pos();
    let dst = r.u8()?;
    let time_zone = match tz {
        -128 => None,
        -48..=56 => Some(tz),
        other => {
            return Err(r.malformed_at(
                tz_at,
                format!("time zone {other} is outside −48…56 (×15 min; −128 = unknown)"),
            ));
        }
    };
    let dst = match dst {
        255 => None,
        0 | 2 | 4 | 8 => Some(dst),
        other => {
            return Err(r.malformed_at(
                dst_at,
                format!("DST offset {other} is reserved (0, 2, 4, 8 ×15 min; 255 = unknown)"),
            ));
        }
    };
    let crc = trailing_crc(&mut r, bytes, SESSION_START_TIME, crc_required)?;
    r.finish()?;
    Ok(SessionStartTime {
        start,
        time_zone,
        dst,
        crc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_crc(mut v: Vec<u8>) -> Vec<u8> {
        let c = crc16_mcrf4xx(&v);
        v.extend_from_slice(&c.to_le_bytes());
        v
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16_mcrf4xx(b"123456789"), 0x6F91);
        assert_eq!(crc16_mcrf4xx(&[]), 0xFFFF);
    }

    #[test]
    fn reference_record_with_crc() {
        let bytes = [0x08, 0x00, 0x70, 0x00, 0x4B, 0x00, 0xA3, 0xD1];
        let recs = records(&bytes, true).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].crc, Some(0xD1A3));
        let d = measurement(&bytes).unwrap();
        let o = &d.observations[0];
        assert_eq!(o.mdc.0, MDC_GLU_ISF);
        assert_eq!(o.value, Value::numeric_with_decimals(112.0, 0));
        assert_eq!(o.unit.as_ref().unwrap().as_str(), "mg/dL");
        assert_eq!(o.sequence, Some(75));
        assert_eq!(o.time, Some(DeviceTime::Relative(75 * 60_000)));
        assert_eq!(d.observations.len(), 1);
    }

    #[test]
    fn wrong_crc_is_malformed_at_the_crc() {
        let bytes = [0x08, 0x00, 0x70, 0x00, 0x4B, 0x00, 0xA3, 0xD2];
        let e = measurement(&bytes).unwrap_err();
        assert_eq!(e.at, 6);
        match e.kind {
            DecodeErrorKind::Malformed { what } => {
                assert!(what.contains("0xD1A3") && what.contains("0xD2A3"), "{what}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn required_crc_missing_is_an_error() {
        let bytes = [0x06, 0x00, 0x70, 0x00, 0x4B, 0x00];
        assert!(measurement(&bytes).is_ok());
        let e = measurement_with_crc_required(&bytes, true).unwrap_err();
        assert_eq!(e.at, 6);
        assert!(matches!(e.kind, DecodeErrorKind::Malformed { .. }));
    }

    #[test]
    fn several_records_with_all_fields() {
        // record 1: all optional fields, with CRC
        let r1 = with_crc(vec![
            15, 0xE3, 0x70, 0x00, 0x4B,
            0x00, // size 15, flags trend|quality|warning|caltemp|status
            0x01, // warning: below patient low (bit 16)
            0x04, // cal/temp: calibration recommended (bit 10)
            0x02, // status: battery low (bit 1)
            0xFB, 0xFF, // trend -5 e0? SFLOAT 0xFFFB = mantissa -5, exponent -1 → -0.5
            0x5F, 0x00, // quality 95 %
        ]);
        assert_eq!(r1.len(), 15);
        // record 2: minimal, no CRC
        let r2 = [0x06, 0x00, 0x6E, 0x00, 0x50, 0x00];
        let bytes: Vec<u8> = r1.iter().chain(r2.iter()).copied().collect();
        let recs = records(&bytes, false).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].annunciation(), Some(0x01_04_02));
        assert_eq!(recs[1].offset, 15);
        let d = measurement(&bytes).unwrap();
        assert_eq!(d.observations.len(), 4);
        assert_eq!(d.observations[1].mdc.0, MDC_GLU_TREND);
        assert_eq!(
            d.observations[1].value,
            Value::numeric_with_decimals(-0.5, 1)
        );
        assert_eq!(
            d.observations[1].unit.as_ref().unwrap().as_str(),
            "mg/dL/min"
        );
        assert_eq!(
            d.observations[2].value,
            Value::Enumerated(Enumerated::Bits {
                bits: 0x01_04_02,
                width: 24
            })
        );
        assert_eq!(d.observations[3].sequence, Some(80));
        assert_eq!(
            d.observations[3].value,
            Value::numeric_with_decimals(110.0, 0)
        );
        // with CRC required the second record fails at its end
        let e = measurement_with_crc_required(&bytes, true).unwrap_err();
        assert_eq!(e.at, 21);
    }

    #[test]
    fn truncation_and_bad_sizes() {
        let bytes = [0x08, 0x00, 0x70, 0x00, 0x4B, 0x00, 0xA3, 0xD1];
        for cut in 0..bytes.len() {
            let e = measurement(&bytes[..cut]).unwrap_err();
            assert_eq!(e.at, cut, "cut {cut}");
            let needed = if cut == 0 { 1 } else { 8 };
            assert_eq!(e.kind, DecodeErrorKind::Incomplete { needed }, "cut {cut}");
        }
        // size 5 is below the minimum
        assert_eq!(measurement(&[0x05, 0, 0, 0, 0]).unwrap_err().at, 0);
        // size 7 matches neither 6 nor 8
        assert!(matches!(
            measurement(&[0x07, 0, 0x70, 0, 0x4B, 0, 0])
                .unwrap_err()
                .kind,
            DecodeErrorKind::Malformed { .. }
        ));
        // second record truncated: error at the end with the right need
        let e = measurement(&[0x06, 0, 0x70, 0, 0x4B, 0, 0x06, 0]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (8, DecodeErrorKind::Incomplete { needed: 12 })
        );
    }

    #[test]
    fn feature_crc() {
        // E2E-CRC supported (b12) + trend (b15) + quality (b16); ISF at subcutaneous tissue.
        let f = with_crc(vec![0x00, 0x90, 0x01, 0x59]);
        let feat = feature(&f).unwrap();
        assert!(feat.e2e_crc() && feat.trend() && feat.quality());
        assert_eq!((feat.sample_type, feat.sample_location), (9, 5));
        let mut bad = f.clone();
        bad[4] ^= 1;
        assert_eq!(feature(&bad).unwrap_err().at, 4);
        // not supported: 0xFFFF
        let ok = [0x00, 0x80, 0x00, 0x59, 0xFF, 0xFF];
        assert!(!feature(&ok).unwrap().e2e_crc());
        let bad = [0x00, 0x80, 0x00, 0x59, 0x12, 0x34];
        assert_eq!(feature(&bad).unwrap_err().at, 4);
        assert_eq!(
            feature(&ok[..5]).unwrap_err().kind,
            DecodeErrorKind::Incomplete { needed: 6 }
        );
    }

    #[test]
    fn session_start_time_and_utc() {
        // 2025-03-14 07:05:09, UTC+1 (4 × 15 min), DST +1 h (4)
        let base = vec![0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x04, 0x04];
        let s = session_start_time(&base).unwrap();
        assert_eq!(s.time_zone, Some(4));
        assert_eq!(s.dst, Some(4));
        assert_eq!(s.crc, None);
        // 2025-03-14T05:05:09Z
        assert_eq!(s.start_utc_ms(), Some(1_741_928_709_000));
        assert_eq!(s.record_utc_ms(75), Some(1_741_928_709_000 + 75 * 60_000));
        let with = with_crc(base.clone());
        assert!(
            session_start_time_with_crc_required(&with, true)
                .unwrap()
                .crc
                .is_some()
        );
        assert!(session_start_time_with_crc_required(&base, true).is_err());
        let mut bad = with.clone();
        bad[9] ^= 0xFF;
        assert_eq!(session_start_time(&bad).unwrap_err().at, 9);
        let unknown = [0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x80, 0xFF];
        let s = session_start_time(&unknown).unwrap();
        assert_eq!((s.time_zone, s.dst, s.start_utc_ms()), (None, None, None));
        assert_eq!(
            session_start_time(&[0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 57, 0])
                .unwrap_err()
                .at,
            7
        );
        assert_eq!(
            session_start_time(&[0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0, 3])
                .unwrap_err()
                .at,
            8
        );
        assert_eq!(
            session_start_time(&base[..8]).unwrap_err().kind,
            DecodeErrorKind::Incomplete { needed: 9 }
        );
    }

    #[test]
    fn status_characteristic() {
        let s = status(&with_crc(vec![0x4B, 0x00, 0x01, 0x00, 0x80]), true).unwrap();
        assert_eq!(s.time_offset, 75);
        assert_eq!(s.annunciation, 0x80_00_01);
        assert!(status(&[0x4B, 0x00, 0x01, 0x00, 0x80], true).is_err());
    }
}
