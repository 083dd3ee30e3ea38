//! Blood Pressure Service (0x1810): Blood Pressure Measurement (0x2A35), Intermediate Cuff
//! Pressure (0x2A36) and Blood Pressure Feature (0x2A49).
//!
//! Layout (GATT Specification Supplement "Blood Pressure Measurement", BLS 1.0/1.1; checked
//! against the Bluetooth SIG characteristic XML `org.bluetooth.characteristic.blood_pressure_measurement`):
//!
//! ```text
//! flags u8 | SYS medfloat16 | DIA medfloat16 | MAP medfloat16 | [Date Time, 7] | [pulse medfloat16]
//!          | [user u8] | [status u16]
//! flags: b0 unit (0 mmHg, 1 kPa), b1 time stamp, b2 pulse rate, b3 user ID, b4 measurement status,
//!        b5–b7 RFU (ignored)
//! ```
//!
//! Output of [`measurement`]:
//! - one observation 150020 MDC_PRESS_BLD_NONINV, a compound of 150021 SYS, 150022 DIA and
//!   150023 MAP (each keeps the SFLOAT's decimals; a special value makes that component
//!   absent), unit `mm[Hg]` or `kPa`;
//! - 149546 MDC_PULS_RATE_NON_INV in `/min` when the pulse rate is present;
//! - 8410608 MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS as a 16-bit bit field when the status is
//!   present (BLE bit n = status bit n; the RFU bits 6–15 are cleared);
//! - the time stamp ([`DeviceTime::Local`]) and the user (0xFF "unknown user" → `None`) are put
//!   on every observation.
//!
//! Intermediate Cuff Pressure has the same layout; only the first value (current cuff pressure)
//! is meaningful ("the Diastolic and MAP fields are unused", SIG XML). It is emitted as
//! MDC_PRESS_CUFF **150300** (term 19228 in partition 2). Note: 150044 (suggested in the brief)
//! is not MDC_PRESS_CUFF; 19228 is from the MD PnP/ICE nomenclature header and agrees with
//! PCD-01 messages using 150301 MDC_PRESS_CUFF_SYS / 150303 MDC_PRESS_CUFF_MEAN (T1, not in
//! `mdc-codes.md`). The optional fields of an ICP value mean what they mean in a measurement
//! (a monitor shows the pulse while the cuff deflates), so the pulse rate and the status are
//! emitted exactly as for 0x2A35 ([`optional_observations`], shared by both).

use hearth_model::{Component, Enumerated, Mdc, Value};

use crate::decode::{
    DecodeError, Decoded, DeviceTime, LocalDateTime, Observation, Reader, announced_len,
};

/// Blood Pressure service.
pub const SERVICE: u16 = 0x1810;
/// Blood Pressure Measurement (Indicate).
pub const MEASUREMENT: u16 = 0x2A35;
/// Intermediate Cuff Pressure (Notify).
pub const INTERMEDIATE_CUFF_PRESSURE: u16 = 0x2A36;
/// Blood Pressure Feature (Read).
pub const FEATURE: u16 = 0x2A49;

/// MDC_PRESS_BLD_NONINV (compound).
pub const MDC_PRESS_BLD_NONINV: u32 = 150_020;
/// MDC_PRESS_BLD_NONINV_SYS.
pub const MDC_PRESS_BLD_NONINV_SYS: u32 = 150_021;
/// MDC_PRESS_BLD_NONINV_DIA.
pub const MDC_PRESS_BLD_NONINV_DIA: u32 = 150_022;
/// MDC_PRESS_BLD_NONINV_MEAN.
pub const MDC_PRESS_BLD_NONINV_MEAN: u32 = 150_023;
/// MDC_PULS_RATE_NON_INV.
pub const MDC_PULS_RATE_NON_INV: u32 = 149_546;
/// MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS (BITs).
pub const MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS: u32 = 8_410_608;
/// MDC_PRESS_CUFF (current cuff pressure of an Intermediate Cuff Pressure value).
pub const MDC_PRESS_CUFF: u32 = 150_300;

const UNIT_MMHG: &str = "mm[Hg]";
const UNIT_KPA: &str = "kPa";
const UNIT_PER_MIN: &str = "/min";

const FLAG_KPA: u8 = 0x01;
const FLAG_TIME: u8 = 0x02;
const FLAG_PULSE: u8 = 0x04;
const FLAG_USER: u8 = 0x08;
const FLAG_STATUS: u8 = 0x10;

/// Defined bits of the Measurement Status field (b0–b5); b6–b15 are RFU.
const STATUS_DEFINED: u16 = 0x003F;
const UNKNOWN_USER: u8 = 0xFF;

/// Measurement Status bit: body movement during measurement.
pub const STATUS_BODY_MOVEMENT: u16 = 0x0001;
/// Measurement Status bit: cuff too loose.
pub const STATUS_CUFF_TOO_LOOSE: u16 = 0x0002;
/// Measurement Status bit: irregular pulse detected.
pub const STATUS_IRREGULAR_PULSE: u16 = 0x0004;
/// Measurement Status bits 3–4: pulse rate range (0 within, 1 above upper limit, 2 below lower
/// limit, 3 RFU).
pub const STATUS_PULSE_RANGE_MASK: u16 = 0x0018;
/// Measurement Status bit: improper measurement position.
pub const STATUS_IMPROPER_POSITION: u16 = 0x0020;

/// A Blood Pressure Measurement or Intermediate Cuff Pressure value, field by field.
#[derive(Debug, Clone, PartialEq)]
struct Parsed {
    kpa: bool,
    values: [Value; 3],
    time: Option<LocalDateTime>,
    pulse: Option<Value>,
    user: Option<u8>,
    status: Option<u16>,
}

fn parse(characteristic: u16, bytes: &[u8]) -> Result<Parsed, DecodeError> {
    let mut r = Reader::new(characteristic, bytes);
    let flags = r.u8()?;
    // Check the whole announced length first so a truncated value names the total needed.
    r.need(announced_len(
        flags,
        6,
        &[
            (FLAG_TIME, 7),
            (FLAG_PULSE, 2),
            (FLAG_USER, 1),
            (FLAG_STATUS, 2),
        ],
    ))?;
    let values = [r.sfloat_value()?, r.sfloat_value()?, r.sfloat_value()?];
    let time = if flags & FLAG_TIME != 0 {
        Some(r.date_time()?)
    } else {
        None
    };
    let pulse = if flags & FLAG_PULSE != 0 {
        Some(r.sfloat_value()?)
    } else {
        None
    };
    let user = if flags & FLAG_USER != 0 {
        let u = r.u8()?;
        (u != UNKNOWN_USER).then_some(u)
    } else {
        None
    };
    let status = if flags & FLAG_STATUS != 0 {
        Some(r.u16()? & STATUS_DEFINED)
    } else {
        None
    };
    r.finish()?;
    Ok(Parsed {
        kpa: flags & FLAG_KPA != 0,
        values,
        time,
        pulse,
        user,
        status,
    })
}

/// The observations of the optional fields that 0x2A35 and 0x2A36 share (pulse rate, status),
/// in that order; one function so that neither characteristic drops a field the other keeps.
fn optional_observations(p: &Parsed) -> Vec<Observation> {
    let mut observations = Vec::new();
    if let Some(pulse) = &p.pulse {
        observations.push(Observation::new(
            MDC_PULS_RATE_NON_INV,
            pulse.clone(),
            Some(UNIT_PER_MIN),
        ));
    }
    if let Some(bits) = p.status {
        observations.push(Observation::new(
            MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS,
            Value::Enumerated(Enumerated::Bits {
                bits: u32::from(bits),
                width: 16,
            }),
            None,
        ));
    }
    observations
}

fn stamp(observations: &mut [Observation], time: Option<LocalDateTime>, user: Option<u8>) {
    for o in observations {
        o.time = time.map(DeviceTime::Local);
        o.user = user;
    }
}

/// Decode a Blood Pressure Measurement (0x2A35).
pub fn measurement(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let p = parse(MEASUREMENT, bytes)?;
    let unit = if p.kpa { UNIT_KPA } else { UNIT_MMHG };
    let optional = optional_observations(&p);
    let [sys, dia, map] = p.values;
    let compound = Value::Compound(vec![
        Component {
            mdc: Mdc(MDC_PRESS_BLD_NONINV_SYS),
            value: sys,
        },
        Component {
            mdc: Mdc(MDC_PRESS_BLD_NONINV_DIA),
            value: dia,
        },
        Component {
            mdc: Mdc(MDC_PRESS_BLD_NONINV_MEAN),
            value: map,
        },
    ]);
    let mut observations = vec![Observation::new(MDC_PRESS_BLD_NONINV, compound, Some(unit))];
    observations.extend(optional);
    stamp(&mut observations, p.time, p.user);
    Ok(Decoded {
        observations,
        ..Decoded::default()
    })
}

/// Decode an Intermediate Cuff Pressure (0x2A36): an observation MDC_PRESS_CUFF with the
/// current cuff pressure (first SFLOAT) in `mm[Hg]` or `kPa`, then the pulse rate and the
/// status when their flags are set, as for a measurement.
pub fn intermediate_cuff_pressure(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let p = parse(INTERMEDIATE_CUFF_PRESSURE, bytes)?;
    let unit = if p.kpa { UNIT_KPA } else { UNIT_MMHG };
    let optional = optional_observations(&p);
    let [current, _unused_dia, _unused_map] = p.values;
    let mut observations = vec![Observation::new(MDC_PRESS_CUFF, current, Some(unit))];
    observations.extend(optional);
    stamp(&mut observations, p.time, p.user);
    Ok(Decoded {
        observations,
        ..Decoded::default()
    })
}

/// Supported features of a blood pressure monitor (Blood Pressure Feature, 0x2A49).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BpFeature {
    /// The raw 16-bit field.
    pub raw: u16,
    /// b0: body movement detection.
    pub body_movement_detection: bool,
    /// b1: cuff fit detection.
    pub cuff_fit_detection: bool,
    /// b2: irregular pulse detection.
    pub irregular_pulse_detection: bool,
    /// b3: pulse rate range detection.
    pub pulse_rate_range_detection: bool,
    /// b4: measurement position detection.
    pub measurement_position_detection: bool,
    /// b5: multiple bonds.
    pub multiple_bonds: bool,
    /// b6 (BLS 1.1): E2E-CRC.
    pub e2e_crc: bool,
    /// b7 (BLS 1.1): User Data Service.
    pub user_data_service: bool,
    /// b8 (BLS 1.1): user facing time.
    pub user_facing_time: bool,
}

/// Decode the Blood Pressure Feature (0x2A49). Bits 0–5 per the SIG XML (BLS 1.0); bits 6–8
/// are the BLS 1.1 additions as listed in the project reference (not independently confirmed).
pub fn parse_feature(bytes: &[u8]) -> Result<BpFeature, DecodeError> {
    let mut r = Reader::new(FEATURE, bytes);
    let raw = r.u16()?;
    let bit = |n: u16| raw & (1 << n) != 0;
    Ok(BpFeature {
        raw,
        body_movement_detection: bit(0),
        cuff_fit_detection: bit(1),
        irregular_pulse_detection: bit(2),
        pulse_rate_range_detection: bit(3),
        measurement_position_detection: bit(4),
        multiple_bonds: bit(5),
        e2e_crc: bit(6),
        user_data_service: bit(7),
        user_facing_time: bit(8),
    })
}

/// Decode the Blood Pressure Feature as a [`Decoded`] without observations (it describes the
/// device, not a measurement); use [`parse_feature`] for the content.
pub fn feature(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    parse_feature(bytes)?;
    Ok(Decoded::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodeErrorKind;
    use hearth_model::AbsentReason;

    const REFERENCE: [u8; 16] = [
        0x06, 0x80, 0x00, 0x54, 0x00, 0x63, 0x00, 0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x42,
        0x00,
    ];

    fn num(v: f64, d: u8) -> Value {
        Value::numeric_with_decimals(v, d)
    }

    fn components(o: &Observation) -> Vec<(u32, Value)> {
        match &o.value {
            Value::Compound(c) => c.iter().map(|c| (c.mdc.0, c.value.clone())).collect(),
            other => panic!("not compound: {other:?}"),
        }
    }

    #[test]
    fn reference_example_decodes() {
        let d = measurement(&REFERENCE).unwrap();
        assert_eq!(d.observations.len(), 2);
        let bp = &d.observations[0];
        assert_eq!(bp.mdc, Mdc(150_020));
        assert_eq!(bp.unit.as_ref().unwrap().as_str(), "mm[Hg]");
        assert_eq!(
            components(bp),
            vec![
                (150_021, num(128.0, 0)),
                (150_022, num(84.0, 0)),
                (150_023, num(99.0, 0))
            ]
        );
        let t = LocalDateTime {
            year: Some(2025),
            month: Some(3),
            day: Some(14),
            hour: 7,
            minute: 5,
            second: 9,
        };
        assert_eq!(bp.time, Some(DeviceTime::Local(t)));
        assert_eq!(bp.user, None);
        let pulse = &d.observations[1];
        assert_eq!(pulse.mdc, Mdc(149_546));
        assert_eq!(pulse.value, num(66.0, 0));
        assert_eq!(pulse.unit.as_ref().unwrap().as_str(), "/min");
        assert_eq!(pulse.time, Some(DeviceTime::Local(t)));
        assert!(!d.more_follows);
        assert_eq!(d.facts, Default::default());
    }

    #[test]
    fn minimal_kpa_with_decimals() {
        // 17.1 / 11.2 / 13.2 kPa: mantissa 171, exponent −1 → 0xF0AB.
        let d = measurement(&[0x01, 0xAB, 0xF0, 0x70, 0xF0, 0x84, 0xF0]).unwrap();
        assert_eq!(d.observations.len(), 1);
        let bp = &d.observations[0];
        assert_eq!(bp.unit.as_ref().unwrap().as_str(), "kPa");
        assert_eq!(
            components(bp),
            vec![
                (150_021, num(17.1, 1)),
                (150_022, num(11.2, 1)),
                (150_023, num(13.2, 1))
            ]
        );
        assert_eq!(bp.time, None);
    }

    #[test]
    fn special_values_make_components_absent() {
        let d = measurement(&[0x00, 0x80, 0x00, 0xFF, 0x07, 0x00, 0x08]).unwrap();
        assert_eq!(
            components(&d.observations[0]),
            vec![
                (150_021, num(128.0, 0)),
                (150_022, Value::Absent(AbsentReason::NotANumber)),
                (150_023, Value::Absent(AbsentReason::NotAtThisResolution)),
            ]
        );
        let d = measurement(&[0x04, 0xFE, 0x07, 0x02, 0x08, 0x01, 0x08, 0xFF, 0x07]).unwrap();
        let c = components(&d.observations[0]);
        assert_eq!(c[0].1, Value::Absent(AbsentReason::PositiveInfinity));
        assert_eq!(c[1].1, Value::Absent(AbsentReason::NegativeInfinity));
        assert_eq!(c[2].1, Value::Absent(AbsentReason::Reserved));
        assert_eq!(
            d.observations[1].value,
            Value::Absent(AbsentReason::NotANumber)
        );
    }

    #[test]
    fn user_and_status() {
        // flags: user + status; user 3; status: body movement + pulse above range (0b01 << 3)
        // + RFU bit 15 (cleared).
        let d = measurement(&[0x18, 0x80, 0x00, 0x54, 0x00, 0x63, 0x00, 0x03, 0x09, 0x80]).unwrap();
        assert_eq!(d.observations.len(), 2);
        assert!(
            d.observations
                .iter()
                .all(|o| o.user == Some(3) && o.time.is_none())
        );
        let st = &d.observations[1];
        assert_eq!(st.mdc, Mdc(8_410_608));
        assert_eq!(
            st.value,
            Value::Enumerated(Enumerated::Bits {
                bits: 0x0009,
                width: 16
            })
        );
        assert_eq!(st.unit, None);
        // Unknown user 0xFF → None.
        let d = measurement(&[0x08, 0x80, 0x00, 0x54, 0x00, 0x63, 0x00, 0xFF]).unwrap();
        assert_eq!(d.observations[0].user, None);
    }

    #[test]
    fn all_flags() {
        let bytes = [
            0x1F, 0x80, 0x00, 0x54, 0x00, 0x63, 0x00, 0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09,
            0x42, 0x00, 0x02, 0x20, 0x00,
        ];
        let d = measurement(&bytes).unwrap();
        assert_eq!(d.observations.len(), 3);
        assert!(
            d.observations
                .iter()
                .all(|o| o.user == Some(2) && o.time.is_some())
        );
        assert_eq!(d.observations[0].unit.as_ref().unwrap().as_str(), "kPa");
        assert_eq!(
            d.observations[2].value,
            Value::Enumerated(Enumerated::Bits {
                bits: 0x20,
                width: 16
            })
        );
    }

    #[test]
    fn every_flag_combination_has_the_right_length() {
        for flags in 0u8..=0xFF {
            let mut len = 7;
            if flags & FLAG_TIME != 0 {
                len += 7;
            }
            if flags & FLAG_PULSE != 0 {
                len += 2;
            }
            if flags & FLAG_USER != 0 {
                len += 1;
            }
            if flags & FLAG_STATUS != 0 {
                len += 2;
            }
            let mut bytes = vec![0u8; len];
            bytes[0] = flags;
            if flags & FLAG_TIME != 0 {
                bytes[7..14].copy_from_slice(&[0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09]);
            }
            assert!(measurement(&bytes).is_ok(), "flags {flags:#04x}");
            let e = measurement(&bytes[..len - 1]).unwrap_err();
            assert_eq!(
                (e.at, e.kind),
                (len - 1, DecodeErrorKind::Incomplete { needed: len }),
                "flags {flags:#04x}"
            );
        }
    }

    #[test]
    fn truncation_names_offsets() {
        let e = measurement(&[]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (0, DecodeErrorKind::Incomplete { needed: 1 })
        );
        let e = measurement(&REFERENCE[..5]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (5, DecodeErrorKind::Incomplete { needed: 16 })
        );
        let e = measurement(&REFERENCE[..15]).unwrap_err();
        assert_eq!(
            (e.characteristic, e.at, e.kind),
            (0x2A35, 15, DecodeErrorKind::Incomplete { needed: 16 })
        );
    }

    #[test]
    fn bad_time_stamp_is_malformed() {
        let mut bytes = REFERENCE;
        bytes[9] = 13; // month 13
        let e = measurement(&bytes).unwrap_err();
        assert_eq!(e.at, 9);
        assert!(matches!(e.kind, DecodeErrorKind::Malformed { .. }));
    }

    #[test]
    fn intermediate_cuff_pressure_uses_first_value() {
        // 150 mmHg current, DIA/MAP NaN as BLS devices send them.
        let d = intermediate_cuff_pressure(&[0x00, 0x96, 0x00, 0xFF, 0x07, 0xFF, 0x07]).unwrap();
        assert_eq!(d.observations.len(), 1);
        assert_eq!(d.observations[0].mdc, Mdc(150_300));
        assert_eq!(d.observations[0].value, num(150.0, 0));
        assert_eq!(d.observations[0].unit.as_ref().unwrap().as_str(), "mm[Hg]");
        // With time, pulse, user and status: the cuff pressure first, then pulse and status
        // (issue 6: this asserted a single observation, i.e. that the pulse was dropped).
        let d = intermediate_cuff_pressure(&[
            0x1F, 0xC8, 0xF0, 0xFF, 0x07, 0xFF, 0x07, 0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09,
            0x42, 0x00, 0x01, 0x00, 0x00,
        ])
        .unwrap();
        assert_eq!(d.observations.len(), 3);
        assert_eq!(d.observations[0].value, num(20.0, 1));
        assert_eq!(d.observations[0].unit.as_ref().unwrap().as_str(), "kPa");
        assert_eq!(d.observations[0].user, Some(1));
        assert!(d.observations[0].time.is_some());
        assert_eq!(d.observations[1].mdc, Mdc(MDC_PULS_RATE_NON_INV));
        assert_eq!(d.observations[1].value, num(66.0, 0));
        assert_eq!(
            d.observations[2].mdc,
            Mdc(MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS)
        );
        let e = intermediate_cuff_pressure(&[0x00, 0x96, 0x00, 0xFF, 0x07]).unwrap_err();
        assert_eq!(
            (e.characteristic, e.at, e.kind),
            (0x2A36, 5, DecodeErrorKind::Incomplete { needed: 7 })
        );
    }

    /// Issue 6: an Intermediate Cuff Pressure notification with the pulse-rate flag set lost
    /// its pulse rate. The bytes as a monitor sends them while the cuff deflates: flags 0x06
    /// (time stamp + pulse rate, mmHg), cuff 112 mmHg, DIA and MAP NaN (unused in 0x2A36),
    /// 2025-03-14 07:05:02, pulse 72 /min.
    #[test]
    fn issue_6_intermediate_cuff_pressure_keeps_the_pulse_rate() {
        let bytes = [
            0x06, 0x70, 0x00, 0xFF, 0x07, 0xFF, 0x07, 0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x02,
            0x48, 0x00,
        ];
        let d = intermediate_cuff_pressure(&bytes).unwrap();
        let time = Some(DeviceTime::Local(LocalDateTime {
            year: Some(2025),
            month: Some(3),
            day: Some(14),
            hour: 7,
            minute: 5,
            second: 2,
        }));
        let got: Vec<_> = d
            .observations
            .iter()
            .map(|o| {
                let unit = o.unit.as_ref().map(|u| u.as_str().to_owned());
                (o.mdc.0, o.value.clone(), unit, o.time)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (150_300, num(112.0, 0), Some("mm[Hg]".to_owned()), time),
                (149_546, num(72.0, 0), Some("/min".to_owned()), time),
            ]
        );
        // The same optional fields as the final measurement with the same flags.
        let m = measurement(&bytes).unwrap();
        assert_eq!(d.observations[1..], m.observations[1..]);
    }

    #[test]
    fn feature_bits() {
        let f = parse_feature(&[0x21, 0x01]).unwrap();
        assert_eq!(f.raw, 0x0121);
        assert!(f.body_movement_detection && f.multiple_bonds && f.user_facing_time);
        assert!(!f.cuff_fit_detection && !f.e2e_crc && !f.user_data_service);
        let e = parse_feature(&[0x01]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (1, DecodeErrorKind::Incomplete { needed: 2 })
        );
        assert_eq!(feature(&[0, 0]).unwrap(), Decoded::default());
    }
}
