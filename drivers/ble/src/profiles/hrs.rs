//! Heart Rate Service (0x180D): Heart Rate Measurement (0x2A37) and Body Sensor Location
//! (0x2A38).
//!
//! Layout (SIG XML `heart_rate_measurement`, GSS "Heart Rate Measurement"):
//!
//! ```text
//! flags u8 | HR u8 or u16 (b0) | [energy expended u16 kJ] | [RR-interval u16 (1/1024 s)]…
//! flags: b0 HR format (0 uint8, 1 uint16), b1–b2 sensor contact (0/1 not supported,
//!        2 supported but not detected, 3 supported and detected), b3 energy expended,
//!        b4 RR-intervals, b5–b7 RFU (ignored)
//! ```
//!
//! RR-intervals fill the rest of the value, oldest first. With b4 set at least one is required
//! and the remainder must be a whole number of u16 words (a truncated last word is
//! [`Incomplete`](crate::decode::DecodeErrorKind::Incomplete)).
//!
//! Observations: heart rate 147842 MDC_ECG_HEART_RATE `/min` (mdc-codes.md, PCD + DK);
//! energy expended 8454263 MDC_HF_ENERGY `kJ` (term 119 in partition 129; found in several
//! independent nomenclature headers — `mdc-codes.md` lists it as single-source); each
//! RR-interval as 147240 MDC_ECG_TIME_PD_RR_GL in milliseconds (`ms`, MDC_DIM_MILLI_SEC, as in
//! mdc-codes.md and docs/ble.md): value = raw × 1000 / 1024 (= raw × 125 / 128, exact in
//! binary), `decimals` 0 because the resolution 1/1024 s ≈ 0.98 ms resolves milliseconds. The
//! RR code's use for BLE RR-intervals is derived (mdc-codes.md: "BLE mapping derived").
//! Energy expended saturates at 0xFFFF kJ (HRS: it then stays at 65535); it is not a special
//! value. Sensor contact has no MDC code: it is available from [`parse_measurement`] only.

use hearth_model::Value;

use crate::decode::{DecodeError, Decoded, Observation, Reader, fixed};

/// Heart Rate service.
pub const SERVICE: u16 = 0x180D;
/// Heart Rate Measurement (Notify).
pub const MEASUREMENT: u16 = 0x2A37;
/// Body Sensor Location (Read).
pub const BODY_SENSOR_LOCATION: u16 = 0x2A38;
/// Heart Rate Control Point (Write).
pub const CONTROL_POINT: u16 = 0x2A39;

/// MDC_ECG_HEART_RATE.
pub const MDC_ECG_HEART_RATE: u32 = 147_842;
/// MDC_ECG_TIME_PD_RR_GL.
pub const MDC_ECG_TIME_PD_RR_GL: u32 = 147_240;
/// MDC_HF_ENERGY.
pub const MDC_HF_ENERGY: u32 = 8_454_263;

/// Heart Rate Control Point command "reset energy expended".
pub const RESET_ENERGY_EXPENDED: u8 = 0x01;

const FLAG_HR_U16: u8 = 0x01;
const FLAG_CONTACT_SUPPORTED: u8 = 0x04;
const FLAG_CONTACT_DETECTED: u8 = 0x02;
const FLAG_ENERGY: u8 = 0x08;
const FLAG_RR: u8 = 0x10;

/// Sensor contact status (flags b1–b2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorContact {
    /// Values 0 and 1: the feature is not supported in this connection.
    NotSupported,
    /// Value 2: supported, no contact (the heart rate may be meaningless).
    NotDetected,
    /// Value 3: supported, contact detected.
    Detected,
}

/// A Heart Rate Measurement, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartRateMeasurement {
    /// Beats per minute.
    pub heart_rate: u16,
    /// Sensor contact.
    pub contact: SensorContact,
    /// Energy expended since the last reset, kJ.
    pub energy_expended_kj: Option<u16>,
    /// RR-intervals in 1/1024 s, oldest first.
    pub rr_intervals: Vec<u16>,
}

/// Decode a Heart Rate Measurement (0x2A37) into its fields.
pub fn parse_measurement(bytes: &[u8]) -> Result<HeartRateMeasurement, DecodeError> {
    let mut r = Reader::new(MEASUREMENT, bytes);
    let flags = r.u8()?;
    let mut needed = if flags & FLAG_HR_U16 != 0 { 2 } else { 1 };
    if flags & FLAG_ENERGY != 0 {
        needed += 2;
    }
    if flags & FLAG_RR != 0 {
        needed += 2;
    }
    r.need(needed)?;
    let heart_rate = if flags & FLAG_HR_U16 != 0 {
        r.u16()?
    } else {
        u16::from(r.u8()?)
    };
    let contact = match (
        flags & FLAG_CONTACT_SUPPORTED != 0,
        flags & FLAG_CONTACT_DETECTED != 0,
    ) {
        (false, _) => SensorContact::NotSupported,
        (true, false) => SensorContact::NotDetected,
        (true, true) => SensorContact::Detected,
    };
    let energy_expended_kj = if flags & FLAG_ENERGY != 0 {
        Some(r.u16()?)
    } else {
        None
    };
    let mut rr_intervals = Vec::new();
    if flags & FLAG_RR != 0 {
        while r.remaining() > 0 {
            rr_intervals.push(r.u16()?);
        }
    }
    r.finish()?;
    Ok(HeartRateMeasurement {
        heart_rate,
        contact,
        energy_expended_kj,
        rr_intervals,
    })
}

/// An RR-interval in milliseconds: raw × 1000 / 1024 (exact), 0 decimals.
pub fn rr_millis(raw: u16) -> Value {
    Value::numeric_with_decimals(f64::from(raw) * 125.0 / 128.0, 0)
}

/// Decode a Heart Rate Measurement (0x2A37).
pub fn measurement(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let m = parse_measurement(bytes)?;
    let mut observations = vec![Observation::new(
        MDC_ECG_HEART_RATE,
        fixed(i64::from(m.heart_rate), 1, 0),
        Some("/min"),
    )];
    if let Some(kj) = m.energy_expended_kj {
        observations.push(Observation::new(
            MDC_HF_ENERGY,
            fixed(i64::from(kj), 1, 0),
            Some("kJ"),
        ));
    }
    for rr in &m.rr_intervals {
        observations.push(Observation::new(
            MDC_ECG_TIME_PD_RR_GL,
            rr_millis(*rr),
            Some("ms"),
        ));
    }
    Ok(Decoded {
        observations,
        ..Decoded::default()
    })
}

/// Body Sensor Location (0x2A38).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySensorLocation {
    /// 0.
    Other,
    /// 1.
    Chest,
    /// 2.
    Wrist,
    /// 3.
    Finger,
    /// 4.
    Hand,
    /// 5.
    EarLobe,
    /// 6.
    Foot,
    /// 7–255: reserved for future use.
    Reserved(u8),
}

/// Decode the Body Sensor Location (0x2A38).
pub fn body_sensor_location(bytes: &[u8]) -> Result<BodySensorLocation, DecodeError> {
    let mut r = Reader::new(BODY_SENSOR_LOCATION, bytes);
    let v = r.u8()?;
    r.finish()?;
    Ok(match v {
        0 => BodySensorLocation::Other,
        1 => BodySensorLocation::Chest,
        2 => BodySensorLocation::Wrist,
        3 => BodySensorLocation::Finger,
        4 => BodySensorLocation::Hand,
        5 => BodySensorLocation::EarLobe,
        6 => BodySensorLocation::Foot,
        other => BodySensorLocation::Reserved(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodeErrorKind;
    use hearth_model::Mdc;

    #[test]
    fn uint8_heart_rate() {
        let d = measurement(&[0x00, 0x48]).unwrap();
        assert_eq!(d.observations.len(), 1);
        let o = &d.observations[0];
        assert_eq!(o.mdc, Mdc(147_842));
        assert_eq!(o.value, Value::numeric_with_decimals(72.0, 0));
        assert_eq!(o.unit.as_ref().unwrap().as_str(), "/min");
        assert_eq!((o.time, o.user), (None, None));
    }

    #[test]
    fn uint16_energy_and_rr() {
        // HR 300 (u16), contact detected, energy 1000 kJ, RR 1024 (1000 ms) and 820 (800.78125 ms).
        let bytes = [0x1F, 0x2C, 0x01, 0xE8, 0x03, 0x00, 0x04, 0x34, 0x03];
        let m = parse_measurement(&bytes).unwrap();
        assert_eq!(
            m,
            HeartRateMeasurement {
                heart_rate: 300,
                contact: SensorContact::Detected,
                energy_expended_kj: Some(1000),
                rr_intervals: vec![1024, 820]
            }
        );
        let d = measurement(&bytes).unwrap();
        let codes: Vec<_> = d.observations.iter().map(|o| o.mdc.0).collect();
        assert_eq!(codes, [147_842, 8_454_263, 147_240, 147_240]);
        assert_eq!(
            d.observations[1].value,
            Value::numeric_with_decimals(1000.0, 0)
        );
        assert_eq!(d.observations[1].unit.as_ref().unwrap().as_str(), "kJ");
        assert_eq!(
            d.observations[2].value,
            Value::numeric_with_decimals(1000.0, 0)
        );
        assert_eq!(
            d.observations[3].value,
            Value::numeric_with_decimals(800.781_25, 0)
        );
        assert_eq!(d.observations[3].unit.as_ref().unwrap().as_str(), "ms");
    }

    #[test]
    fn contact_status_values() {
        for (flags, c) in [
            (0x00, SensorContact::NotSupported),
            (0x02, SensorContact::NotSupported),
            (0x04, SensorContact::NotDetected),
            (0x06, SensorContact::Detected),
        ] {
            assert_eq!(parse_measurement(&[flags, 60]).unwrap().contact, c);
        }
    }

    #[test]
    fn rr_without_energy_and_truncation() {
        let d = measurement(&[0x10, 0x40, 0x00, 0x04]).unwrap();
        assert_eq!(d.observations.len(), 2);
        // RR flag but no RR word.
        let e = measurement(&[0x10, 0x40]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (2, DecodeErrorKind::Incomplete { needed: 4 })
        );
        // Odd trailing byte.
        let e = measurement(&[0x10, 0x40, 0x00, 0x04, 0x01]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (5, DecodeErrorKind::Incomplete { needed: 6 })
        );
        let e = measurement(&[0x01, 0x40]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (2, DecodeErrorKind::Incomplete { needed: 3 })
        );
        let e = measurement(&[0x09, 0x40, 0x00, 0x01]).unwrap_err();
        assert_eq!(
            (e.characteristic, e.at, e.kind),
            (0x2A37, 4, DecodeErrorKind::Incomplete { needed: 5 })
        );
        let e = measurement(&[]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (0, DecodeErrorKind::Incomplete { needed: 1 })
        );
    }

    #[test]
    fn every_flag_layout() {
        for flags in 0u8..=0xFF {
            let mut len = 1 + if flags & FLAG_HR_U16 != 0 { 2 } else { 1 };
            if flags & FLAG_ENERGY != 0 {
                len += 2;
            }
            if flags & FLAG_RR != 0 {
                len += 2;
            }
            let mut bytes = vec![0u8; len];
            bytes[0] = flags;
            assert!(measurement(&bytes).is_ok(), "flags {flags:#04x}");
            let e = measurement(&bytes[..len - 1]).unwrap_err();
            assert_eq!(
                (e.at, e.kind),
                (len - 1, DecodeErrorKind::Incomplete { needed: len })
            );
        }
    }

    #[test]
    fn sensor_location() {
        assert_eq!(
            body_sensor_location(&[1]).unwrap(),
            BodySensorLocation::Chest
        );
        assert_eq!(
            body_sensor_location(&[6]).unwrap(),
            BodySensorLocation::Foot
        );
        assert_eq!(
            body_sensor_location(&[9]).unwrap(),
            BodySensorLocation::Reserved(9)
        );
        assert!(body_sensor_location(&[]).is_err());
    }
}
