//! Pulse Oximeter Service (0x1822): PLX Spot-check Measurement (0x2A5E), PLX Continuous
//! Measurement (0x2A5F) and PLX Features (0x2A60).
//!
//! Layouts (SIG XML `plx_spot_check_measurement`, `plx_continuous_measurement`, `plx_features`;
//! GSS):
//!
//! ```text
//! spot-check: flags u8 | SpO2 medfloat16 % | PR medfloat16 /min | [Date Time, 7]
//!             | [measurement status u16] | [device and sensor status u24] | [PAI medfloat16 %]
//!   flags: b0 time stamp, b1 measurement status, b2 device and sensor status, b3 PAI,
//!          b4 device clock is not set, b5–b7 RFU
//! continuous: flags u8 | SpO2, PR (normal) | [SpO2, PR fast] | [SpO2, PR slow]
//!             | [measurement status u16] | [device and sensor status u24] | [PAI]
//!   flags: b0 fast, b1 slow, b2 measurement status, b3 device and sensor status, b4 PAI,
//!          b5–b7 RFU
//! features: supported u16 | [measurement status support u16 (b0)]
//!           | [device and sensor status support u24 (b1)]
//! ```
//!
//! Observations: SpO2 150456 MDC_PULS_OXIM_SAT_O2 `%` and pulse rate 149530
//! MDC_PULS_OXIM_PULS_RATE `/min` (both IG/PCD/DK verified); device and sensor status 150604
//! MDC_PULS_OXIM_DEV_STATUS as a 16-bit bit field (IG; BLE bit n = status bit n, LSB first — the
//! mapping to the 11073 BITs numbering, BLE bit n ↔ 150604.(15−n), is the uplink's; bits
//! 16–23 are RFU and cleared); Pulse Amplitude Index 150448 MDC_PULS_OXIM_PERF_REL `%` (code in
//! two nomenclature headers and the Philips list; PAI ↔ relative perfusion is a derived
//! mapping — note 150488 is a different term, MDC_BLD_PERF_INDEX).
//!
//! Not emitted (no MDC code in mdc-codes.md, or no way to qualify it): the measurement status
//! (parsed into [`SpotCheck`]/[`Continuous`]), and the continuous fast and slow SpO2/PR pairs
//! — 11073 distinguishes them only by a supplemental type (MDC_MODALITY_FAST/SLOW), which an
//! [`Observation`] cannot carry, and emitting them under the plain codes would duplicate the
//! normal reading. They are available from [`parse_continuous`].
//!
//! Spot-check flag b4 "device clock is not set" sets [`DeviceFacts::clock_unset`]; the time
//! stamp, if any, is still attached and the session
//! decides how far to trust it.

use hearth_model::{Enumerated, Value};

use crate::decode::{
    DecodeError, Decoded, DeviceFacts, DeviceTime, LocalDateTime, Observation, Reader,
    announced_len,
};

/// Pulse Oximeter service.
pub const SERVICE: u16 = 0x1822;
/// PLX Spot-check Measurement (Indicate).
pub const SPOT_CHECK: u16 = 0x2A5E;
/// PLX Continuous Measurement (Notify).
pub const CONTINUOUS: u16 = 0x2A5F;
/// PLX Features (Read).
pub const FEATURES: u16 = 0x2A60;

/// MDC_PULS_OXIM_SAT_O2.
pub const MDC_PULS_OXIM_SAT_O2: u32 = 150_456;
/// MDC_PULS_OXIM_PULS_RATE.
pub const MDC_PULS_OXIM_PULS_RATE: u32 = 149_530;
/// MDC_PULS_OXIM_PERF_REL (Pulse Amplitude Index).
pub const MDC_PULS_OXIM_PERF_REL: u32 = 150_448;
/// MDC_PULS_OXIM_DEV_STATUS (BITs).
pub const MDC_PULS_OXIM_DEV_STATUS: u32 = 150_604;

/// Defined bits of the Measurement Status field (b5–b15; b0–b4 RFU).
pub const MEASUREMENT_STATUS_DEFINED: u16 = 0xFFE0;
/// Defined bits of the Device and Sensor Status field (b0–b15; b16–b23 RFU).
pub const DEVICE_STATUS_DEFINED: u32 = 0x00_FFFF;

const SPOT_TIME: u8 = 0x01;
const SPOT_MEAS_STATUS: u8 = 0x02;
const SPOT_DEV_STATUS: u8 = 0x04;
const SPOT_PAI: u8 = 0x08;
const SPOT_CLOCK_NOT_SET: u8 = 0x10;

const CONT_FAST: u8 = 0x01;
const CONT_SLOW: u8 = 0x02;
const CONT_MEAS_STATUS: u8 = 0x04;
const CONT_DEV_STATUS: u8 = 0x08;
const CONT_PAI: u8 = 0x10;

/// An SpO2 and pulse-rate pair.
#[derive(Debug, Clone, PartialEq)]
pub struct SpO2Pr {
    /// SpO2 in %.
    pub spo2: Value,
    /// Pulse rate in beats per minute.
    pub pulse_rate: Value,
}

/// A PLX Spot-check Measurement, field by field.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotCheck {
    /// SpO2 and pulse rate.
    pub reading: SpO2Pr,
    /// Time stamp.
    pub time: Option<LocalDateTime>,
    /// Measurement status (RFU bits cleared).
    pub measurement_status: Option<u16>,
    /// Device and sensor status (RFU bits cleared).
    pub device_status: Option<u32>,
    /// Pulse Amplitude Index in %.
    pub pulse_amplitude_index: Option<Value>,
    /// Flag b4: the device clock is not set.
    pub clock_unset: bool,
}

/// A PLX Continuous Measurement, field by field.
#[derive(Debug, Clone, PartialEq)]
pub struct Continuous {
    /// SpO2PR-Normal.
    pub normal: SpO2Pr,
    /// SpO2PR-Fast.
    pub fast: Option<SpO2Pr>,
    /// SpO2PR-Slow.
    pub slow: Option<SpO2Pr>,
    /// Measurement status (RFU bits cleared).
    pub measurement_status: Option<u16>,
    /// Device and sensor status (RFU bits cleared).
    pub device_status: Option<u32>,
    /// Pulse Amplitude Index in %.
    pub pulse_amplitude_index: Option<Value>,
}

fn pair(r: &mut Reader<'_>) -> Result<SpO2Pr, DecodeError> {
    Ok(SpO2Pr {
        spo2: r.sfloat_value()?,
        pulse_rate: r.sfloat_value()?,
    })
}

/// Decode a PLX Spot-check Measurement (0x2A5E) into its fields.
pub fn parse_spot_check(bytes: &[u8]) -> Result<SpotCheck, DecodeError> {
    let mut r = Reader::new(SPOT_CHECK, bytes);
    let flags = r.u8()?;
    r.need(announced_len(
        flags,
        4,
        &[
            (SPOT_TIME, 7),
            (SPOT_MEAS_STATUS, 2),
            (SPOT_DEV_STATUS, 3),
            (SPOT_PAI, 2),
        ],
    ))?;
    let reading = pair(&mut r)?;
    let time = if flags & SPOT_TIME != 0 {
        Some(r.date_time()?)
    } else {
        None
    };
    let measurement_status = if flags & SPOT_MEAS_STATUS != 0 {
        Some(r.u16()? & MEASUREMENT_STATUS_DEFINED)
    } else {
        None
    };
    let device_status = if flags & SPOT_DEV_STATUS != 0 {
        Some(r.u24()? & DEVICE_STATUS_DEFINED)
    } else {
        None
    };
    let pulse_amplitude_index = if flags & SPOT_PAI != 0 {
        Some(r.sfloat_value()?)
    } else {
        None
    };
    r.finish()?;
    Ok(SpotCheck {
        reading,
        time,
        measurement_status,
        device_status,
        pulse_amplitude_index,
        clock_unset: flags & SPOT_CLOCK_NOT_SET != 0,
    })
}

/// Decode a PLX Continuous Measurement (0x2A5F) into its fields.
pub fn parse_continuous(bytes: &[u8]) -> Result<Continuous, DecodeError> {
    let mut r = Reader::new(CONTINUOUS, bytes);
    let flags = r.u8()?;
    r.need(announced_len(
        flags,
        4,
        &[
            (CONT_FAST, 4),
            (CONT_SLOW, 4),
            (CONT_MEAS_STATUS, 2),
            (CONT_DEV_STATUS, 3),
            (CONT_PAI, 2),
        ],
    ))?;
    let normal = pair(&mut r)?;
    let fast = if flags & CONT_FAST != 0 {
        Some(pair(&mut r)?)
    } else {
        None
    };
    let slow = if flags & CONT_SLOW != 0 {
        Some(pair(&mut r)?)
    } else {
        None
    };
    let measurement_status = if flags & CONT_MEAS_STATUS != 0 {
        Some(r.u16()? & MEASUREMENT_STATUS_DEFINED)
    } else {
        None
    };
    let device_status = if flags & CONT_DEV_STATUS != 0 {
        Some(r.u24()? & DEVICE_STATUS_DEFINED)
    } else {
        None
    };
    let pulse_amplitude_index = if flags & CONT_PAI != 0 {
        Some(r.sfloat_value()?)
    } else {
        None
    };
    r.finish()?;
    Ok(Continuous {
        normal,
        fast,
        slow,
        measurement_status,
        device_status,
        pulse_amplitude_index,
    })
}

fn emit(reading: &SpO2Pr, device_status: Option<u32>, pai: &Option<Value>) -> Vec<Observation> {
    let mut out = vec![
        Observation::new(MDC_PULS_OXIM_SAT_O2, reading.spo2.clone(), Some("%")),
        Observation::new(
            MDC_PULS_OXIM_PULS_RATE,
            reading.pulse_rate.clone(),
            Some("/min"),
        ),
    ];
    if let Some(bits) = device_status {
        out.push(Observation::new(
            MDC_PULS_OXIM_DEV_STATUS,
            Value::Enumerated(Enumerated::Bits { bits, width: 16 }),
            None,
        ));
    }
    if let Some(v) = pai {
        out.push(Observation::new(
            MDC_PULS_OXIM_PERF_REL,
            v.clone(),
            Some("%"),
        ));
    }
    out
}

/// Decode a PLX Spot-check Measurement (0x2A5E).
pub fn spot_check(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let s = parse_spot_check(bytes)?;
    let mut observations = emit(&s.reading, s.device_status, &s.pulse_amplitude_index);
    for o in &mut observations {
        o.time = s.time.map(DeviceTime::Local);
    }
    Ok(Decoded {
        observations,
        facts: DeviceFacts {
            clock_unset: s.clock_unset,
            ..DeviceFacts::default()
        },
        ..Decoded::default()
    })
}

/// Decode a PLX Continuous Measurement (0x2A5F): the SpO2PR-Normal pair, device status and PAI
/// (fast and slow pairs: see the module doc and [`parse_continuous`]).
pub fn continuous(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let c = parse_continuous(bytes)?;
    Ok(Decoded {
        observations: emit(&c.normal, c.device_status, &c.pulse_amplitude_index),
        ..Decoded::default()
    })
}

/// PLX Features (0x2A60).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlxFeatures {
    /// The Supported Features field.
    pub raw: u16,
    /// b2: measurement storage for spot-check measurements.
    pub spot_check_storage: bool,
    /// b3: time stamp for spot-check measurements.
    pub spot_check_time_stamp: bool,
    /// b4: SpO2PR-Fast.
    pub fast: bool,
    /// b5: SpO2PR-Slow.
    pub slow: bool,
    /// b6: Pulse Amplitude Index.
    pub pulse_amplitude_index: bool,
    /// b7: multiple bonds.
    pub multiple_bonds: bool,
    /// Measurement Status Support (present when b0 is set).
    pub measurement_status_support: Option<u16>,
    /// Device and Sensor Status Support (present when b1 is set).
    pub device_status_support: Option<u32>,
}

/// Decode the PLX Features (0x2A60).
pub fn parse_features(bytes: &[u8]) -> Result<PlxFeatures, DecodeError> {
    let mut r = Reader::new(FEATURES, bytes);
    let raw = r.u16()?;
    let mut needed = 0;
    if raw & 0x1 != 0 {
        needed += 2;
    }
    if raw & 0x2 != 0 {
        needed += 3;
    }
    r.need(needed)?;
    let measurement_status_support = if raw & 0x1 != 0 { Some(r.u16()?) } else { None };
    let device_status_support = if raw & 0x2 != 0 { Some(r.u24()?) } else { None };
    r.finish()?;
    let bit = |n: u16| raw & (1 << n) != 0;
    Ok(PlxFeatures {
        raw,
        spot_check_storage: bit(2),
        spot_check_time_stamp: bit(3),
        fast: bit(4),
        slow: bit(5),
        pulse_amplitude_index: bit(6),
        multiple_bonds: bit(7),
        measurement_status_support,
        device_status_support,
    })
}

/// Decode the PLX Features as a [`Decoded`] without observations; use [`parse_features`] for
/// the content.
pub fn features(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    parse_features(bytes)?;
    Ok(Decoded::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodeErrorKind;
    use hearth_model::{AbsentReason, Mdc};

    fn codes(d: &Decoded) -> Vec<u32> {
        d.observations.iter().map(|o| o.mdc.0).collect()
    }

    #[test]
    fn spot_check_minimal() {
        // SpO2 97 %, PR 62 /min.
        let d = spot_check(&[0x00, 0x61, 0x00, 0x3E, 0x00]).unwrap();
        assert_eq!(codes(&d), [150_456, 149_530]);
        assert_eq!(
            d.observations[0].value,
            Value::numeric_with_decimals(97.0, 0)
        );
        assert_eq!(d.observations[0].unit.as_ref().unwrap().as_str(), "%");
        assert_eq!(
            d.observations[1].value,
            Value::numeric_with_decimals(62.0, 0)
        );
        assert_eq!(d.observations[1].unit.as_ref().unwrap().as_str(), "/min");
        assert!(!d.facts.clock_unset);
        assert!(d.observations.iter().all(|o| o.time.is_none()));
    }

    #[test]
    fn spot_check_everything() {
        // time, meas status (0x0080 validated + RFU 0x0001), dev status (0x000820 low
        // perfusion + unconnected, RFU 0x010000), PAI 2.5 % (25e-1), clock not set.
        let bytes = [
            0x1F, 0x61, 0x00, 0x3E, 0x00, 0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x81, 0x00,
            0x20, 0x08, 0x01, 0x19, 0xF0,
        ];
        let s = parse_spot_check(&bytes).unwrap();
        assert_eq!(s.measurement_status, Some(0x0080));
        assert_eq!(s.device_status, Some(0x0820));
        assert!(s.clock_unset);
        let d = spot_check(&bytes).unwrap();
        assert_eq!(codes(&d), [150_456, 149_530, 150_604, 150_448]);
        assert_eq!(
            d.observations[2].value,
            Value::Enumerated(Enumerated::Bits {
                bits: 0x0820,
                width: 16
            })
        );
        assert_eq!(
            d.observations[3].value,
            Value::numeric_with_decimals(2.5, 1)
        );
        assert!(d.facts.clock_unset);
        assert!(d.observations.iter().all(|o| o.time.is_some()));
    }

    #[test]
    fn spot_check_specials_and_truncation() {
        let d = spot_check(&[0x10, 0xFF, 0x07, 0x00, 0x08]).unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::Absent(AbsentReason::NotANumber)
        );
        assert_eq!(
            d.observations[1].value,
            Value::Absent(AbsentReason::NotAtThisResolution)
        );
        assert!(d.facts.clock_unset);
        for flags in 0u8..=0xFF {
            let mut len = 5;
            for (f, l) in [
                (SPOT_TIME, 7),
                (SPOT_MEAS_STATUS, 2),
                (SPOT_DEV_STATUS, 3),
                (SPOT_PAI, 2),
            ] {
                if flags & f != 0 {
                    len += l;
                }
            }
            let mut bytes = vec![0u8; len];
            bytes[0] = flags;
            assert!(spot_check(&bytes).is_ok());
            let e = spot_check(&bytes[..len - 1]).unwrap_err();
            assert_eq!(
                (e.at, e.kind),
                (len - 1, DecodeErrorKind::Incomplete { needed: len }),
                "flags {flags:#04x}"
            );
        }
    }

    #[test]
    fn continuous_all_fields() {
        // normal 98/70, fast 97/72, slow 98/69, meas status, dev status, PAI 4.
        let bytes = [
            0x1F, 0x62, 0x00, 0x46, 0x00, 0x61, 0x00, 0x48, 0x00, 0x62, 0x00, 0x45, 0x00, 0x00,
            0x01, 0x02, 0x00, 0x00, 0x04, 0x00,
        ];
        let c = parse_continuous(&bytes).unwrap();
        assert_eq!(
            c.fast.as_ref().unwrap().pulse_rate,
            Value::numeric_with_decimals(72.0, 0)
        );
        assert_eq!(
            c.slow.as_ref().unwrap().pulse_rate,
            Value::numeric_with_decimals(69.0, 0)
        );
        assert_eq!(c.measurement_status, Some(0x0100));
        assert_eq!(c.device_status, Some(0x0002));
        let d = continuous(&bytes).unwrap();
        assert_eq!(codes(&d), [150_456, 149_530, 150_604, 150_448]);
        assert_eq!(
            d.observations[0].value,
            Value::numeric_with_decimals(98.0, 0)
        );
        assert_eq!(
            d.observations[1].value,
            Value::numeric_with_decimals(70.0, 0)
        );
        assert_eq!(d.facts, DeviceFacts::default());
    }

    #[test]
    fn continuous_layouts() {
        for flags in 0u8..=0xFF {
            let mut len = 5;
            for (f, l) in [
                (CONT_FAST, 4),
                (CONT_SLOW, 4),
                (CONT_MEAS_STATUS, 2),
                (CONT_DEV_STATUS, 3),
                (CONT_PAI, 2),
            ] {
                if flags & f != 0 {
                    len += l;
                }
            }
            let mut bytes = vec![0u8; len];
            bytes[0] = flags;
            let d = continuous(&bytes).unwrap();
            let mut n = 2;
            if flags & CONT_DEV_STATUS != 0 {
                n += 1;
            }
            if flags & CONT_PAI != 0 {
                n += 1;
            }
            assert_eq!(d.observations.len(), n);
            let e = continuous(&bytes[..len - 1]).unwrap_err();
            assert_eq!(e.characteristic, 0x2A5F);
            assert_eq!(
                (e.at, e.kind),
                (len - 1, DecodeErrorKind::Incomplete { needed: len })
            );
        }
    }

    #[test]
    fn features_with_and_without_extras() {
        let f = parse_features(&[0xFC, 0x00]).unwrap();
        assert!(
            f.spot_check_storage
                && f.spot_check_time_stamp
                && f.fast
                && f.slow
                && f.pulse_amplitude_index
        );
        assert!(f.multiple_bonds);
        assert_eq!(
            (f.measurement_status_support, f.device_status_support),
            (None, None)
        );
        let f = parse_features(&[0x03, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0x00]).unwrap();
        assert_eq!(f.measurement_status_support, Some(0xFFE0));
        assert_eq!(f.device_status_support, Some(0x00FFFF));
        let e = parse_features(&[0x03, 0x00, 0xE0, 0xFF, 0xFF]).unwrap_err();
        assert_eq!(
            (e.characteristic, e.at, e.kind),
            (0x2A60, 5, DecodeErrorKind::Incomplete { needed: 7 })
        );
        let f = parse_features(&[0x02, 0x00, 0x01, 0x02, 0x03]).unwrap();
        assert_eq!(f.device_status_support, Some(0x030201));
        assert_eq!(features(&[0, 0]).unwrap(), Decoded::default());
        assert_eq!(Mdc(MDC_PULS_OXIM_SAT_O2), Mdc(150_456));
    }
}
