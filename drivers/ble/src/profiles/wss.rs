//! Weight Scale Service (0x181D): Weight Measurement (0x2A9D) and Weight Scale Feature (0x2A9E).
//!
//! Layout (GSS "Weight Measurement"; SIG XML `weight_measurement`, `weight_scale_feature`):
//!
//! ```text
//! flags u8 | weight u16 | [Date Time, 7] | [user u8] | [BMI u16, height u16]
//! flags: b0 units (0 kg and m, 1 lb and in), b1 time stamp, b2 user ID,
//!        b3 BMI and height (one flag for both fields), b4–b7 RFU (ignored)
//! weight: 0.005 kg or 0.01 lb; 0xFFFF = "Measurement Unsuccessful"
//! BMI: 0.1 kg/m²; height: 0.001 m or 0.1 in
//! ```
//!
//! Output: 188736 MDC_MASS_BODY_ACTUAL (`kg` / `[lb_av]`; 0xFFFF → absent, reason error),
//! and with flag b3 188752 MDC_RATIO_MASS_BODY_LEN_SQ (`kg/m2`) and 188740 MDC_LEN_BODY_ACTUAL
//! (`m` / `[in_i]`). Time stamp and user (0xFF → `None`) go on every observation.
//!
//! The Weight Scale Feature's resolutions state the precision the scale resolves; they never
//! rescale the field (GSS fixes the field units above). [`measurement_with_feature`] therefore
//! only sets `decimals` from the declared resolution (e.g. 0.1 kg → 1 decimal) and keeps the
//! value. (Some open-source collectors multiply the raw value by the feature resolution; that
//! contradicts the GSS.)

use hearth_model::{AbsentReason, Value};

use crate::decode::{
    DecodeError, Decoded, DeviceTime, LocalDateTime, Observation, Reader, announced_len, fixed,
};

/// Weight Scale service.
pub const SERVICE: u16 = 0x181D;
/// Weight Measurement (Indicate).
pub const MEASUREMENT: u16 = 0x2A9D;
/// Weight Scale Feature (Read).
pub const FEATURE: u16 = 0x2A9E;

/// MDC_MASS_BODY_ACTUAL.
pub const MDC_MASS_BODY_ACTUAL: u32 = 188_736;
/// MDC_LEN_BODY_ACTUAL.
pub const MDC_LEN_BODY_ACTUAL: u32 = 188_740;
/// MDC_RATIO_MASS_BODY_LEN_SQ (BMI).
pub const MDC_RATIO_MASS_BODY_LEN_SQ: u32 = 188_752;

/// The raw weight value meaning "Measurement Unsuccessful".
pub const MEASUREMENT_UNSUCCESSFUL: u16 = 0xFFFF;

const FLAG_IMPERIAL: u8 = 0x01;
const FLAG_TIME: u8 = 0x02;
const FLAG_USER: u8 = 0x04;
const FLAG_BMI_HEIGHT: u8 = 0x08;
const UNKNOWN_USER: u8 = 0xFF;

/// A resolution step from a feature characteristic, in both unit systems.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolution {
    /// The enumeration value on the wire.
    pub code: u8,
    /// Step in kg (mass) or m (height).
    pub metric: f64,
    /// Decimal places of the metric step.
    pub metric_decimals: u8,
    /// Step in lb (mass) or in (height).
    pub imperial: f64,
    /// Decimal places of the imperial step.
    pub imperial_decimals: u8,
}

impl Resolution {
    /// Decimal places for a value in the given unit system.
    pub fn decimals(&self, imperial: bool) -> u8 {
        if imperial {
            self.imperial_decimals
        } else {
            self.metric_decimals
        }
    }
}

/// Mass resolution codes 1–7 (Weight Scale Feature b3–b6, Body Composition Feature b11–b14);
/// 0 "not specified" and 8–15 RFU → `None`.
pub fn mass_resolution(code: u8) -> Option<Resolution> {
    let (metric, metric_decimals, imperial, imperial_decimals) = match code {
        1 => (0.5, 1, 1.0, 0),
        2 => (0.2, 1, 0.5, 1),
        3 => (0.1, 1, 0.2, 1),
        4 => (0.05, 2, 0.1, 1),
        5 => (0.02, 2, 0.05, 2),
        6 => (0.01, 2, 0.02, 2),
        7 => (0.005, 3, 0.01, 2),
        _ => return None,
    };
    Some(Resolution {
        code,
        metric,
        metric_decimals,
        imperial,
        imperial_decimals,
    })
}

/// Height resolution codes 1–3 (Weight Scale Feature b7–b9, Body Composition Feature b15–b17);
/// 0 "not specified" and 4–7 RFU → `None`.
pub fn height_resolution(code: u8) -> Option<Resolution> {
    let (metric, metric_decimals, imperial, imperial_decimals) = match code {
        1 => (0.01, 2, 1.0, 0),
        2 => (0.005, 3, 0.5, 1),
        3 => (0.001, 3, 0.1, 1),
        _ => return None,
    };
    Some(Resolution {
        code,
        metric,
        metric_decimals,
        imperial,
        imperial_decimals,
    })
}

/// Weight Scale Feature (0x2A9E).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightFeature {
    /// The raw 32-bit field.
    pub raw: u32,
    /// b0: time stamp supported.
    pub time_stamp_supported: bool,
    /// b1: multiple users supported.
    pub multiple_users_supported: bool,
    /// b2: BMI supported.
    pub bmi_supported: bool,
    /// b3–b6: weight resolution (`None` = not specified or RFU).
    pub weight_resolution: Option<Resolution>,
    /// b7–b9: height resolution (`None` = not specified or RFU).
    pub height_resolution: Option<Resolution>,
}

/// Decode the Weight Scale Feature (0x2A9E).
pub fn parse_feature(bytes: &[u8]) -> Result<WeightFeature, DecodeError> {
    let mut r = Reader::new(FEATURE, bytes);
    let raw = r.u32()?;
    r.finish()?;
    Ok(WeightFeature {
        raw,
        time_stamp_supported: raw & 0x1 != 0,
        multiple_users_supported: raw & 0x2 != 0,
        bmi_supported: raw & 0x4 != 0,
        weight_resolution: mass_resolution(((raw >> 3) & 0xF) as u8),
        height_resolution: height_resolution(((raw >> 7) & 0x7) as u8),
    })
}

/// Decode the Weight Scale Feature as a [`Decoded`] without observations; use
/// [`parse_feature`] for the content.
pub fn feature(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    parse_feature(bytes)?;
    Ok(Decoded::default())
}

/// Mass in the measurement's unit: 0.005 kg or 0.01 lb per step; 0xFFFF → absent (error).
pub(crate) fn mass_value(raw: u16, imperial: bool) -> Value {
    if raw == MEASUREMENT_UNSUCCESSFUL {
        Value::Absent(AbsentReason::Error)
    } else if imperial {
        fixed(i64::from(raw), 1, 2)
    } else {
        fixed(i64::from(raw), 5, 3)
    }
}

/// Height in the measurement's unit: 0.001 m or 0.1 in per step.
pub(crate) fn height_value(raw: u16, imperial: bool) -> Value {
    if imperial {
        fixed(i64::from(raw), 1, 1)
    } else {
        fixed(i64::from(raw), 1, 3)
    }
}

/// UCUM units for (mass, height) in the given unit system.
pub(crate) fn units(imperial: bool) -> (&'static str, &'static str) {
    if imperial {
        ("[lb_av]", "[in_i]")
    } else {
        ("kg", "m")
    }
}

/// Replace the decimals of a numeric value (absent values stay as they are).
pub(crate) fn with_decimals(
    value: Value,
    resolution: Option<&Resolution>,
    imperial: bool,
) -> Value {
    match (value, resolution) {
        (Value::Numeric { value, .. }, Some(res)) => {
            Value::numeric_with_decimals(value, res.decimals(imperial))
        }
        (v, _) => v,
    }
}

pub(crate) fn stamp(
    observations: &mut [Observation],
    time: Option<LocalDateTime>,
    user: Option<u8>,
) {
    for o in observations {
        o.time = time.map(DeviceTime::Local);
        o.user = user;
    }
}

/// Decode a Weight Measurement (0x2A9D) with the field resolutions (weight 3 decimals in kg,
/// 2 in lb; height 3 in m, 1 in in; BMI 1).
pub fn measurement(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    measurement_with_feature(bytes, None)
}

/// Decode a Weight Measurement (0x2A9D), taking `decimals` from the resolutions the scale
/// declared in its Weight Scale Feature (values are not rescaled).
pub fn measurement_with_feature(
    bytes: &[u8],
    feature: Option<&WeightFeature>,
) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(MEASUREMENT, bytes);
    let flags = r.u8()?;
    r.need(announced_len(
        flags,
        2,
        &[(FLAG_TIME, 7), (FLAG_USER, 1), (FLAG_BMI_HEIGHT, 4)],
    ))?;
    let imperial = flags & FLAG_IMPERIAL != 0;
    let (mass_unit, height_unit) = units(imperial);
    let weight_raw = r.u16()?;
    let time = if flags & FLAG_TIME != 0 {
        Some(r.date_time()?)
    } else {
        None
    };
    let user = if flags & FLAG_USER != 0 {
        let u = r.u8()?;
        (u != UNKNOWN_USER).then_some(u)
    } else {
        None
    };
    let weight = with_decimals(
        mass_value(weight_raw, imperial),
        feature.and_then(|f| f.weight_resolution.as_ref()),
        imperial,
    );
    let mut observations = vec![Observation::new(
        MDC_MASS_BODY_ACTUAL,
        weight,
        Some(mass_unit),
    )];
    if flags & FLAG_BMI_HEIGHT != 0 {
        let bmi = fixed(i64::from(r.u16()?), 1, 1);
        let height = with_decimals(
            height_value(r.u16()?, imperial),
            feature.and_then(|f| f.height_resolution.as_ref()),
            imperial,
        );
        observations.push(Observation::new(
            MDC_RATIO_MASS_BODY_LEN_SQ,
            bmi,
            Some("kg/m2"),
        ));
        observations.push(Observation::new(
            MDC_LEN_BODY_ACTUAL,
            height,
            Some(height_unit),
        ));
    }
    r.finish()?;
    stamp(&mut observations, time, user);
    Ok(Decoded {
        observations,
        ..Decoded::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodeErrorKind;
    use hearth_model::Mdc;

    fn unit(o: &Observation) -> &str {
        o.unit.as_ref().unwrap().as_str()
    }

    #[test]
    fn reference_example() {
        let d = measurement(&[0x00, 0x9A, 0x38]).unwrap();
        assert_eq!(d.observations.len(), 1);
        let o = &d.observations[0];
        assert_eq!(o.mdc, Mdc(188_736));
        assert_eq!(o.value, Value::numeric_with_decimals(72.45, 3));
        assert_eq!(unit(o), "kg");
        assert_eq!((o.time, o.user), (None, None));
    }

    #[test]
    fn imperial_with_everything() {
        // 159.72 lb, 2025-03-14 07:05:09, user 1, BMI 22.6, height 70.0 in.
        let bytes = [
            0x0F, 0x64, 0x3E, 0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x01, 0xE2, 0x00, 0xBC,
            0x02,
        ];
        let d = measurement(&bytes).unwrap();
        assert_eq!(d.observations.len(), 3);
        let [w, bmi, h] = [&d.observations[0], &d.observations[1], &d.observations[2]];
        assert_eq!(
            (w.mdc, &w.value, unit(w)),
            (
                Mdc(188_736),
                &Value::numeric_with_decimals(159.72, 2),
                "[lb_av]"
            )
        );
        assert_eq!(
            (bmi.mdc, &bmi.value, unit(bmi)),
            (
                Mdc(188_752),
                &Value::numeric_with_decimals(22.6, 1),
                "kg/m2"
            )
        );
        assert_eq!(
            (h.mdc, &h.value, unit(h)),
            (
                Mdc(188_740),
                &Value::numeric_with_decimals(70.0, 1),
                "[in_i]"
            )
        );
        assert!(
            d.observations
                .iter()
                .all(|o| o.user == Some(1) && o.time.is_some())
        );
    }

    #[test]
    fn metric_bmi_and_height() {
        // 80 kg (16000 × 0.005), BMI 24.7, height 1.800 m.
        let d = measurement(&[0x08, 0x80, 0x3E, 0xF7, 0x00, 0x08, 0x07]).unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::numeric_with_decimals(80.0, 3)
        );
        assert_eq!(
            d.observations[1].value,
            Value::numeric_with_decimals(24.7, 1)
        );
        assert_eq!(
            d.observations[2].value,
            Value::numeric_with_decimals(1.8, 3)
        );
        assert_eq!(unit(&d.observations[2]), "m");
    }

    #[test]
    fn unsuccessful_measurement_is_absent() {
        let d = measurement(&[0x04, 0xFF, 0xFF, 0xFF]).unwrap();
        assert_eq!(d.observations.len(), 1);
        assert_eq!(d.observations[0].value, Value::Absent(AbsentReason::Error));
        assert_eq!(d.observations[0].user, None);
        let d = measurement(&[0x01, 0xFF, 0xFF]).unwrap();
        assert_eq!(d.observations[0].value, Value::Absent(AbsentReason::Error));
        assert_eq!(unit(&d.observations[0]), "[lb_av]");
    }

    #[test]
    fn feature_sets_decimals_not_scale() {
        // time stamp + multiple users + BMI, weight resolution 3 (0.1 kg / 0.2 lb), height 1.
        let raw: u32 = 0x7 | (3 << 3) | (1 << 7);
        let f = parse_feature(&raw.to_le_bytes()).unwrap();
        assert!(f.time_stamp_supported && f.multiple_users_supported && f.bmi_supported);
        assert_eq!(f.weight_resolution.unwrap().metric, 0.1);
        assert_eq!(f.weight_resolution.unwrap().imperial, 0.2);
        assert_eq!(f.height_resolution.unwrap().metric, 0.01);
        let d = measurement_with_feature(&[0x08, 0x9A, 0x38, 0xF7, 0x00, 0x08, 0x07], Some(&f))
            .unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::numeric_with_decimals(72.45, 1)
        );
        assert_eq!(
            d.observations[1].value,
            Value::numeric_with_decimals(24.7, 1)
        );
        assert_eq!(
            d.observations[2].value,
            Value::numeric_with_decimals(1.8, 2)
        );
        // Imperial decimals come from the imperial step.
        let d = measurement_with_feature(&[0x09, 0x64, 0x3E, 0xE2, 0x00, 0xBC, 0x02], Some(&f))
            .unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::numeric_with_decimals(159.72, 1)
        );
        assert_eq!(
            d.observations[2].value,
            Value::numeric_with_decimals(70.0, 0)
        );
        // Unsuccessful stays absent; unspecified resolution keeps field decimals.
        let d = measurement_with_feature(&[0x00, 0xFF, 0xFF], Some(&f)).unwrap();
        assert_eq!(d.observations[0].value, Value::Absent(AbsentReason::Error));
        let none = parse_feature(&[0, 0, 0, 0]).unwrap();
        assert_eq!(none.weight_resolution, None);
        let d = measurement_with_feature(&[0x00, 0x9A, 0x38], Some(&none)).unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::numeric_with_decimals(72.45, 3)
        );
    }

    #[test]
    fn resolution_tables() {
        let decimals: Vec<_> = (0..=15)
            .map(|c| mass_resolution(c).map(|r| (r.metric_decimals, r.imperial_decimals)))
            .collect();
        assert_eq!(decimals[0], None);
        assert_eq!(decimals[1], Some((1, 0)));
        assert_eq!(decimals[4], Some((2, 1)));
        assert_eq!(decimals[7], Some((3, 2)));
        assert!(decimals[8..].iter().all(Option::is_none));
        assert_eq!(
            height_resolution(2).map(|r| (r.metric, r.imperial)),
            Some((0.005, 0.5))
        );
        assert_eq!(height_resolution(3).map(|r| r.decimals(false)), Some(3));
        assert!(height_resolution(4).is_none() && height_resolution(0).is_none());
        let e = parse_feature(&[0, 0, 0]).unwrap_err();
        assert_eq!(
            (e.characteristic, e.at, e.kind),
            (0x2A9E, 3, DecodeErrorKind::Incomplete { needed: 4 })
        );
    }

    #[test]
    fn every_flag_layout_and_truncation() {
        for flags in 0u8..=0xFF {
            let mut len = 3;
            if flags & FLAG_TIME != 0 {
                len += 7;
            }
            if flags & FLAG_USER != 0 {
                len += 1;
            }
            if flags & FLAG_BMI_HEIGHT != 0 {
                len += 4;
            }
            let bytes = {
                let mut b = vec![0u8; len];
                b[0] = flags;
                b
            };
            let d = measurement(&bytes).unwrap();
            assert_eq!(
                d.observations.len(),
                if flags & FLAG_BMI_HEIGHT != 0 { 3 } else { 1 }
            );
            let e = measurement(&bytes[..len - 1]).unwrap_err();
            assert_eq!(
                (e.at, e.kind),
                (len - 1, DecodeErrorKind::Incomplete { needed: len }),
                "flags {flags:#04x}"
            );
        }
        let e = measurement(&[]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (0, DecodeErrorKind::Incomplete { needed: 1 })
        );
    }
}
