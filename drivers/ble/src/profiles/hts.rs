//! Health Thermometer Service (0x1809): Temperature Measurement (0x2A1C), Intermediate
//! Temperature (0x2A1E, same layout) and Temperature Type (0x2A1D).
//!
//! Layout (SIG characteristic XML `temperature_measurement`, GSS "Temperature Measurement"):
//!
//! ```text
//! flags u8 | value medfloat32 | [Date Time, 7] | [Temperature Type u8]
//! flags: b0 unit (0 °C, 1 °F), b1 time stamp, b2 temperature type, b3–b7 RFU (ignored)
//! ```
//!
//! Output: one observation, unit `Cel` or `[degF]`, FLOAT decimals kept, special FLOAT values
//! absent. The MDC code follows the measurement site (mdc-codes.md §1; codes from the
//! 11073-10408 names): 1 armpit 188452 MDC_TEMP_AXILLA, 2 body (general) 150364 MDC_TEMP_BODY,
//! 3 ear 188428 MDC_TEMP_EAR, 4 finger 188432 MDC_TEMP_FINGER, 5 GI tract 188456 MDC_TEMP_GIT,
//! 6 mouth 188424 MDC_TEMP_ORAL, 7 rectum 188420 MDC_TEMP_RECT, 8 toe 188448 MDC_TEMP_TOE,
//! 9 tympanum 150392 MDC_TEMP_TYMP.
//!
//! No site given, or a reserved Temperature Type value (0 and 10–255 are "Reserved for Future
//! Use" in the SIG XML): the reading is reported as MDC_TEMP_BODY 150364 — the temperature
//! itself is valid, and a site hearth does not know is not invented. This is deliberate: an
//! RFU value is not a malformed value (receivers ignore what is reserved for future use).
//!
//! HTS 1.0 §3.1: the type is either in the measurement or in the Temperature Type
//! characteristic, not both. [`measurement_with_site`] applies a separately read 0x2A1D value;
//! if a device nevertheless sends both, the in-measurement type wins (it belongs to this
//! reading).

use crate::decode::{DecodeError, Decoded, DeviceTime, Observation, Reader, announced_len};

/// Health Thermometer service.
pub const SERVICE: u16 = 0x1809;
/// Temperature Measurement (Indicate).
pub const MEASUREMENT: u16 = 0x2A1C;
/// Temperature Type (Read).
pub const TEMPERATURE_TYPE: u16 = 0x2A1D;
/// Intermediate Temperature (Notify).
pub const INTERMEDIATE_TEMPERATURE: u16 = 0x2A1E;

/// MDC_TEMP_BODY: body temperature, site general or not given.
pub const MDC_TEMP_BODY: u32 = 150_364;
/// MDC_TEMP_AXILLA (type 1, armpit).
pub const MDC_TEMP_AXILLA: u32 = 188_452;
/// MDC_TEMP_EAR (type 3).
pub const MDC_TEMP_EAR: u32 = 188_428;
/// MDC_TEMP_FINGER (type 4).
pub const MDC_TEMP_FINGER: u32 = 188_432;
/// MDC_TEMP_GIT (type 5, gastro-intestinal tract).
pub const MDC_TEMP_GIT: u32 = 188_456;
/// MDC_TEMP_ORAL (type 6, mouth).
pub const MDC_TEMP_ORAL: u32 = 188_424;
/// MDC_TEMP_RECT (type 7, rectum).
pub const MDC_TEMP_RECT: u32 = 188_420;
/// MDC_TEMP_TOE (type 8).
pub const MDC_TEMP_TOE: u32 = 188_448;
/// MDC_TEMP_TYMP (type 9, tympanum).
pub const MDC_TEMP_TYMP: u32 = 150_392;

const FLAG_FAHRENHEIT: u8 = 0x01;
const FLAG_TIME: u8 = 0x02;
const FLAG_TYPE: u8 = 0x04;

/// The MDC code for a Temperature Type value; reserved values (0, 10–255) give MDC_TEMP_BODY.
pub fn site_mdc(temperature_type: u8) -> u32 {
    match temperature_type {
        1 => MDC_TEMP_AXILLA,
        3 => MDC_TEMP_EAR,
        4 => MDC_TEMP_FINGER,
        5 => MDC_TEMP_GIT,
        6 => MDC_TEMP_ORAL,
        7 => MDC_TEMP_RECT,
        8 => MDC_TEMP_TOE,
        9 => MDC_TEMP_TYMP,
        // 2 = body (general); 0 and 10–255 are RFU: no site is invented.
        _ => MDC_TEMP_BODY,
    }
}

/// Whether a Temperature Type value is one the specification defines (1–9).
pub fn is_defined_type(temperature_type: u8) -> bool {
    (1..=9).contains(&temperature_type)
}

fn decode(characteristic: u16, bytes: &[u8], site: Option<u8>) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(characteristic, bytes);
    let flags = r.u8()?;
    r.need(announced_len(flags, 4, &[(FLAG_TIME, 7), (FLAG_TYPE, 1)]))?;
    let value = r.float_value()?;
    let time = if flags & FLAG_TIME != 0 {
        Some(r.date_time()?)
    } else {
        None
    };
    let in_measurement = if flags & FLAG_TYPE != 0 {
        Some(r.u8()?)
    } else {
        None
    };
    r.finish()?;
    let mdc = in_measurement.or(site).map_or(MDC_TEMP_BODY, site_mdc);
    let unit = if flags & FLAG_FAHRENHEIT != 0 {
        "[degF]"
    } else {
        "Cel"
    };
    let mut o = Observation::new(mdc, value, Some(unit));
    o.time = time.map(DeviceTime::Local);
    Ok(Decoded {
        observations: vec![o],
        ..Decoded::default()
    })
}

/// Decode a Temperature Measurement (0x2A1C).
pub fn measurement(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode(MEASUREMENT, bytes, None)
}

/// Decode a Temperature Measurement (0x2A1C) from a device that exposes the site in the
/// Temperature Type characteristic (0x2A1D, read once per connection and passed here).
pub fn measurement_with_site(
    bytes: &[u8],
    site_from_0x2a1d: Option<u8>,
) -> Result<Decoded, DecodeError> {
    decode(MEASUREMENT, bytes, site_from_0x2a1d)
}

/// Decode an Intermediate Temperature (0x2A1E).
pub fn intermediate_temperature(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode(INTERMEDIATE_TEMPERATURE, bytes, None)
}

/// Decode an Intermediate Temperature (0x2A1E) with a separately read Temperature Type.
pub fn intermediate_temperature_with_site(
    bytes: &[u8],
    site_from_0x2a1d: Option<u8>,
) -> Result<Decoded, DecodeError> {
    decode(INTERMEDIATE_TEMPERATURE, bytes, site_from_0x2a1d)
}

/// Decode the Temperature Type characteristic (0x2A1D): the raw site value, to be passed to
/// [`measurement_with_site`] (reserved values are returned as they are; see [`site_mdc`]).
pub fn temperature_type(bytes: &[u8]) -> Result<u8, DecodeError> {
    let mut r = Reader::new(TEMPERATURE_TYPE, bytes);
    let t = r.u8()?;
    r.finish()?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodeErrorKind, LocalDateTime};
    use hearth_model::{AbsentReason, Mdc, Value};

    #[test]
    fn reference_float_decodes_as_body_temperature() {
        // 36.7 °C: FLOAT 6F 01 00 FF.
        let d = measurement(&[0x00, 0x6F, 0x01, 0x00, 0xFF]).unwrap();
        assert_eq!(d.observations.len(), 1);
        let o = &d.observations[0];
        assert_eq!(o.mdc, Mdc(150_364));
        assert_eq!(o.value, Value::numeric_with_decimals(36.7, 1));
        assert_eq!(o.unit.as_ref().unwrap().as_str(), "Cel");
        assert_eq!((o.time, o.user, o.sequence), (None, None, None));
    }

    #[test]
    fn fahrenheit_time_and_type() {
        // 98.60 °F (9860e-2), time 2025-03-14 07:05:09, type 6 mouth.
        let bytes = [
            0x07, 0x84, 0x26, 0x00, 0xFE, 0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x06,
        ];
        let d = measurement(&bytes).unwrap();
        let o = &d.observations[0];
        assert_eq!(o.mdc, Mdc(188_424));
        assert_eq!(o.value, Value::numeric_with_decimals(98.6, 2));
        assert_eq!(o.unit.as_ref().unwrap().as_str(), "[degF]");
        let t = LocalDateTime {
            year: Some(2025),
            month: Some(3),
            day: Some(14),
            hour: 7,
            minute: 5,
            second: 9,
        };
        assert_eq!(o.time, Some(DeviceTime::Local(t)));
        // Type without time stamp.
        let d = measurement(&[0x04, 0x6F, 0x01, 0x00, 0xFF, 0x09]).unwrap();
        assert_eq!(d.observations[0].mdc, Mdc(150_392));
    }

    #[test]
    fn every_site() {
        let expected = [
            (0u8, 150_364u32),
            (1, 188_452),
            (2, 150_364),
            (3, 188_428),
            (4, 188_432),
            (5, 188_456),
            (6, 188_424),
            (7, 188_420),
            (8, 188_448),
            (9, 150_392),
            (10, 150_364),
            (255, 150_364),
        ];
        for (t, mdc) in expected {
            let d = measurement(&[0x04, 0x6F, 0x01, 0x00, 0xFF, t]).unwrap();
            assert_eq!(d.observations[0].mdc, Mdc(mdc), "type {t}");
            assert_eq!(site_mdc(t), mdc);
            assert_eq!(is_defined_type(t), (1..=9).contains(&t));
        }
    }

    #[test]
    fn separately_read_site() {
        let plain = [0x00, 0x6F, 0x01, 0x00, 0xFF];
        assert_eq!(
            measurement_with_site(&plain, Some(3)).unwrap().observations[0].mdc,
            Mdc(188_428)
        );
        assert_eq!(
            measurement_with_site(&plain, None).unwrap().observations[0].mdc,
            Mdc(150_364)
        );
        // The in-measurement type wins over a separately read one.
        let typed = [0x04, 0x6F, 0x01, 0x00, 0xFF, 0x07];
        assert_eq!(
            measurement_with_site(&typed, Some(3)).unwrap().observations[0].mdc,
            Mdc(188_420)
        );
        let site = temperature_type(&[0x01]).unwrap();
        assert_eq!(
            measurement_with_site(&plain, Some(site))
                .unwrap()
                .observations[0]
                .mdc,
            Mdc(188_452)
        );
        assert_eq!(
            intermediate_temperature_with_site(&plain, Some(8))
                .unwrap()
                .observations[0]
                .mdc,
            Mdc(188_448)
        );
        let e = temperature_type(&[]).unwrap_err();
        assert_eq!(
            (e.characteristic, e.at, e.kind),
            (0x2A1D, 0, DecodeErrorKind::Incomplete { needed: 1 })
        );
    }

    #[test]
    fn special_values_are_absent() {
        for (raw, reason) in [
            (0x007F_FFFFu32, AbsentReason::NotANumber),
            (0x0080_0000, AbsentReason::NotAtThisResolution),
            (0x007F_FFFE, AbsentReason::PositiveInfinity),
            (0x0080_0002, AbsentReason::NegativeInfinity),
            (0x0080_0001, AbsentReason::Reserved),
        ] {
            let mut bytes = vec![0x00];
            bytes.extend_from_slice(&raw.to_le_bytes());
            let d = measurement(&bytes).unwrap();
            assert_eq!(d.observations[0].value, Value::Absent(reason));
        }
        // Negative exponent and negative mantissa: −1.5 = −15e−1.
        let d = measurement(&[0x00, 0xF1, 0xFF, 0xFF, 0xFF]).unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::numeric_with_decimals(-1.5, 1)
        );
    }

    #[test]
    fn truncation_and_flag_layouts() {
        for flags in 0u8..=0xFF {
            let mut len = 5;
            if flags & FLAG_TIME != 0 {
                len += 7;
            }
            if flags & FLAG_TYPE != 0 {
                len += 1;
            }
            let mut bytes = vec![0u8; len];
            bytes[0] = flags;
            assert!(measurement(&bytes).is_ok(), "flags {flags:#04x}");
            let e = intermediate_temperature(&bytes[..len - 1]).unwrap_err();
            assert_eq!(e.characteristic, 0x2A1E);
            assert_eq!(
                (e.at, e.kind),
                (len - 1, DecodeErrorKind::Incomplete { needed: len })
            );
        }
        let e = measurement(&[]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (0, DecodeErrorKind::Incomplete { needed: 1 })
        );
    }

    #[test]
    fn invalid_time_is_malformed() {
        let e = measurement(&[
            0x02, 0x6F, 0x01, 0x00, 0xFF, 0xE9, 0x07, 0x03, 0x20, 0x07, 0x05, 0x09,
        ])
        .unwrap_err();
        assert_eq!(e.at, 8);
        assert!(matches!(e.kind, DecodeErrorKind::Malformed { .. }));
    }
}
