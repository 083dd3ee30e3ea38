//! Glucose Service (0x1808): Glucose Measurement (0x2A18), Glucose Measurement Context (0x2A34)
//! and Glucose Feature (0x2A51).
//!
//! Layouts follow the Glucose Profile/Service 1.0 characteristic definitions as published by the
//! Bluetooth SIG (GATT XML `org.bluetooth.characteristic.glucose_measurement`,
//! `…glucose_measurement_context`, `…glucose_feature`; GATT Specification Supplement
//! `GLUCOSE_MEASUREMENT`), checked against `ble-health-gatt.md` §8:
//!
//! ```text
//! 0x2A18  flags u8 | sequence u16 | base time DateTime(7) | [time offset sint16 min]
//!         | [concentration SFLOAT, type (low nibble) / sample location (high nibble) u8]
//!         | [sensor status annunciation u16]
//! 0x2A34  flags u8 | sequence u16 | [extended flags u8] | [carbohydrate id u8, SFLOAT kg]
//!         | [meal u8] | [tester (low) / health (high) u8] | [exercise duration u16 s,
//!         intensity u8 %] | [medication id u8, SFLOAT kg or L] | [HbA1c SFLOAT %]
//! 0x2A51  features u16
//! ```
//!
//! Units are converted on the decimal mantissa/exponent, never through binary floating point:
//! kg/L → mg/dL shifts the exponent by +5, mol/L → mmol/L by +3, carbohydrate kg → g by +3,
//! medication kg → mg by +6 and L → mL by +3. So `64 B0` (100 × 10⁻⁵ kg/L) is exactly
//! 100 mg/dL and `38 C0` (56 × 10⁻⁴ mol/L) is exactly 5.6 mmol/L.
//!
//! Flag b4 of the measurement ("context information follows") is exposed as
//! [`GlucoseMeasurement::context_follows`] (via [`measurement_full`]): the session then waits for
//! the 0x2A34 notification with the same sequence number. Context observations carry that
//! sequence number so they can be joined to the measurement.

use hearth_ieee11073::{Number, Special};
use hearth_model::{AbsentReason, Enumerated, Mdc, Value};

use crate::decode::{DecodeError, Decoded, DeviceTime, LocalDateTime, Observation, Reader};

/// Glucose service.
pub const SERVICE: u16 = 0x1808;
/// Glucose Measurement characteristic (Notify).
pub const MEASUREMENT: u16 = 0x2A18;
/// Glucose Measurement Context characteristic (Notify).
pub const CONTEXT: u16 = 0x2A34;
/// Glucose Feature characteristic (Read).
pub const FEATURE: u16 = 0x2A51;
/// Record Access Control Point, see [`crate::profiles::racp`].
pub const RACP: u16 = crate::profiles::racp::UUID;

// MDC codes (mdc-codes.md §1). Verification status per code is given in that file; noted here.
/// MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD (PCD, T2).
pub const MDC_GLU_CAPILLARY_WHOLE_BLOOD: u32 = 160_184;
/// MDC_CONC_GLU_CAPILLARY_PLASMA (T2, PH).
pub const MDC_GLU_CAPILLARY_PLASMA: u32 = 160_188;
/// MDC_CONC_GLU_VENOUS_WHOLEBLOOD (T2, PH).
pub const MDC_GLU_VENOUS_WHOLE_BLOOD: u32 = 160_192;
/// MDC_CONC_GLU_VENOUS_PLASMA (T2, PH).
pub const MDC_GLU_VENOUS_PLASMA: u32 = 160_196;
/// MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD (T2, PH).
pub const MDC_GLU_ARTERIAL_WHOLE_BLOOD: u32 = 160_200;
/// MDC_CONC_GLU_ARTERIAL_PLASMA (T2, PH).
pub const MDC_GLU_ARTERIAL_PLASMA: u32 = 160_204;
/// MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD (T1, PH).
pub const MDC_GLU_UNDETERMINED_WHOLE_BLOOD: u32 = 160_364;
/// MDC_CONC_GLU_UNDETERMINED_PLASMA (IG, T1, PH).
pub const MDC_GLU_UNDETERMINED_PLASMA: u32 = 160_368;
/// MDC_CONC_GLU_ISF (T2, PH).
pub const MDC_GLU_ISF: u32 = 160_212;
/// MDC_CONC_GLU_CONTROL (T2, PH).
pub const MDC_GLU_CONTROL: u32 = 160_208;
/// MDC_CONC_HBA1C (T2, PH).
pub const MDC_HBA1C: u32 = 160_220;
/// MDC_GLU_METER_DEV_STATUS, BITs (IG, PH).
pub const MDC_GLU_METER_DEV_STATUS: u32 = 8_417_752;
/// MDC_CTXT_GLU_SAMPLELOCATION (T2 parent; values T1).
pub const MDC_CTXT_GLU_SAMPLELOCATION: u32 = 8_417_844;
/// MDC_CTXT_GLU_MEAL (IG, PH; values T1 except POSTPRANDIAL IG).
pub const MDC_CTXT_GLU_MEAL: u32 = 8_417_864;
/// MDC_CTXT_GLU_TESTER (PH; values T1).
pub const MDC_CTXT_GLU_TESTER: u32 = 8_417_884;
/// MDC_CTXT_GLU_HEALTH (PH; values T1).
pub const MDC_CTXT_GLU_HEALTH: u32 = 8_417_820;
/// MDC_CTXT_GLU_CARB (T2).
pub const MDC_CTXT_GLU_CARB: u32 = 8_417_764;
/// MDC_CTXT_MEDICATION (T2).
pub const MDC_CTXT_MEDICATION: u32 = 8_417_796;
/// MDC_CTXT_GLU_EXERCISE (T2).
pub const MDC_CTXT_GLU_EXERCISE: u32 = 8_417_760;

/// Sensor status bits that have an 8417752.n counterpart (b0…b10, mdc-codes §1 notes). b11
/// ("time fault") has none — 8417752.11 means something else — and is reported as a clock
/// problem ([`crate::decode::DeviceFacts::clock_unset`]) instead; b12…b15 are reserved.
const STATUS_MAPPED_BITS: u16 = 0x07FF;
const STATUS_TIME_FAULT: u16 = 1 << 11;

/// Time offset values that mean "does not fit" (GATT XML: 0x7FFF overrun, 0x8000 underrun).
const OFFSET_OVERRUN: i16 = i16::MAX;
const OFFSET_UNDERRUN: i16 = i16::MIN;

/// Unit of the glucose concentration on the wire (flag b2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcentrationUnit {
    /// b2 = 0: kg/L, reported as mg/dL.
    KilogramPerLitre,
    /// b2 = 1: mol/L, reported as mmol/L.
    MolePerLitre,
}

impl ConcentrationUnit {
    /// The UCUM unit hearth reports.
    pub fn ucum(self) -> &'static str {
        match self {
            ConcentrationUnit::KilogramPerLitre => "mg/dL",
            ConcentrationUnit::MolePerLitre => "mmol/L",
        }
    }

    /// Decimal exponent shift from the wire unit to the reported unit.
    fn shift(self) -> i8 {
        match self {
            ConcentrationUnit::KilogramPerLitre => 5,
            ConcentrationUnit::MolePerLitre => 3,
        }
    }
}

/// A fully decoded Glucose Measurement (0x2A18).
#[derive(Debug, Clone, PartialEq)]
pub struct GlucoseMeasurement {
    /// The raw flags octet.
    pub flags: u8,
    /// Sequence number (also [`Observation::sequence`] of every observation).
    pub sequence: u16,
    /// Base time as sent.
    pub base_time: LocalDateTime,
    /// Time offset in minutes, if flag b0.
    pub time_offset: Option<i16>,
    /// Base time + offset; `None` if the offset is an overrun/underrun marker or the base date
    /// is incomplete while an offset must be applied.
    pub time: Option<LocalDateTime>,
    /// The concentration exactly as sent (flag b1), in the wire unit.
    pub concentration: Option<Result<Number, Special>>,
    /// Wire unit of the concentration (flag b2), when a concentration is present.
    pub unit: Option<ConcentrationUnit>,
    /// Type nibble (1…10 defined; 0 and 11…15 reserved).
    pub sample_type: Option<u8>,
    /// Sample-location nibble (1…4 defined, 15 = not available).
    pub sample_location: Option<u8>,
    /// Sensor status annunciation (flag b3), all 16 bits as sent.
    pub status: Option<u16>,
    /// Flag b4: a Glucose Measurement Context (0x2A34) with the same sequence number follows.
    pub context_follows: bool,
    /// The observations and facts ([`measurement`] returns exactly this).
    pub decoded: Decoded,
}

/// The MDC code for a glucose sample type (low nibble of the Type-Sample Location octet).
///
/// Reserved types (0, 11…15) map to MDC_CONC_GLU_UNDETERMINED_PLASMA (160368): the sample type
/// is then unknown, the reading itself is still valid, and current meters report
/// plasma-referenced values (ISO 15197); the raw nibble stays available in
/// [`GlucoseMeasurement::sample_type`].
pub fn sample_type_mdc(sample_type: u8) -> u32 {
    match sample_type {
        1 => MDC_GLU_CAPILLARY_WHOLE_BLOOD,
        2 => MDC_GLU_CAPILLARY_PLASMA,
        3 => MDC_GLU_VENOUS_WHOLE_BLOOD,
        4 => MDC_GLU_VENOUS_PLASMA,
        5 => MDC_GLU_ARTERIAL_WHOLE_BLOOD,
        6 => MDC_GLU_ARTERIAL_PLASMA,
        7 => MDC_GLU_UNDETERMINED_WHOLE_BLOOD,
        8 => MDC_GLU_UNDETERMINED_PLASMA,
        9 => MDC_GLU_ISF,
        10 => MDC_GLU_CONTROL,
        _ => MDC_GLU_UNDETERMINED_PLASMA,
    }
}

/// The MDC_CTXT_GLU_SAMPLELOCATION value for a sample-location nibble; `None` for reserved
/// values (0, 5…14), which are then not reported.
pub fn sample_location_mdc(location: u8) -> Option<u32> {
    match location {
        1 => Some(8_417_848),  // FINGER
        2 => Some(8_417_852),  // AST
        3 => Some(8_417_856),  // EARLOBE
        4 => Some(8_417_860),  // CTRLSOLUTION
        15 => Some(8_417_845), // not available → UNDETERMINED (mdc-codes §1)
        _ => None,
    }
}

/// A decimal number scaled by 10^`shift`, keeping the device's resolution.
pub(crate) fn shifted(raw: Result<Number, Special>, shift: i8) -> Value {
    match raw {
        Ok(n) => match n.exponent.checked_add(shift) {
            Some(exponent) => Number {
                mantissa: n.mantissa,
                exponent,
            }
            .to_value(),
            // Unreachable for SFLOAT/FLOAT exponents with the shifts used here; stay exact-ish.
            None => Value::numeric(n.to_f64() * 10f64.powi(i32::from(shift))),
        },
        Err(s) => Value::Absent(s.reason()),
    }
}

fn with_context(mut o: Observation, sequence: u16, time: Option<DeviceTime>) -> Observation {
    o.sequence = Some(u64::from(sequence));
    o.time = time;
    o
}

/// Decode a Glucose Measurement (0x2A18) into observations.
///
/// Observations, in this order: the concentration (MDC by sample type, `mg/dL` or `mmol/L`),
/// the sample location (MDC_CTXT_GLU_SAMPLELOCATION, coded, if the nibble is defined) and the
/// sensor status annunciation (MDC_GLU_METER_DEV_STATUS, 16-bit BITs, BLE bit numbering, bits
/// b0…b10 only). All carry the sequence number and the time stamp.
pub fn measurement(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    Ok(measurement_full(bytes)?.decoded)
}

/// Decode a Glucose Measurement (0x2A18) into the typed record, including
/// [`GlucoseMeasurement::context_follows`].
pub fn measurement_full(bytes: &[u8]) -> Result<GlucoseMeasurement, DecodeError> {
    let mut r = Reader::new(MEASUREMENT, bytes);
    let flags = r.u8()?;
    let sequence = r.u16()?;
    let base_time = r.date_time()?;
    let time_offset = if flags & 0x01 != 0 {
        Some(r.i16()?)
    } else {
        None
    };
    let (concentration, type_location) = if flags & 0x02 != 0 {
        (Some(r.sfloat()?), Some(r.u8()?))
    } else {
        (None, None)
    };
    let status = if flags & 0x08 != 0 {
        Some(r.u16()?)
    } else {
        None
    };
    r.finish()?;

    let context_follows = flags & 0x10 != 0;
    let unit = concentration.map(|_| {
        if flags & 0x04 != 0 {
            ConcentrationUnit::MolePerLitre
        } else {
            ConcentrationUnit::KilogramPerLitre
        }
    });
    let time = match time_offset {
        None => Some(base_time),
        Some(OFFSET_OVERRUN | OFFSET_UNDERRUN) => None,
        Some(minutes) => base_time.plus_minutes(i64::from(minutes)),
    };
    let device_time = time.map(DeviceTime::Local);

    let mut decoded = Decoded::default();
    // A base time with unknown date fields cannot be placed on the timeline; a time fault (b11)
    // means the device itself doubts its clock.
    decoded.facts.clock_unset =
        !base_time.is_complete() || status.is_some_and(|s| s & STATUS_TIME_FAULT != 0);

    let sample_type = type_location.map(|b| b & 0x0F);
    let sample_location = type_location.map(|b| b >> 4);
    if let (Some(raw), Some(unit), Some(kind)) = (concentration, unit, sample_type) {
        let o = Observation::new(
            sample_type_mdc(kind),
            shifted(raw, unit.shift()),
            Some(unit.ucum()),
        );
        decoded
            .observations
            .push(with_context(o, sequence, device_time));
    }
    if let Some(code) = sample_location.and_then(sample_location_mdc) {
        let o = Observation::new(
            MDC_CTXT_GLU_SAMPLELOCATION,
            Value::Enumerated(Enumerated::Code(Mdc(code))),
            None,
        );
        decoded
            .observations
            .push(with_context(o, sequence, device_time));
    }
    if let Some(s) = status {
        let bits = u32::from(s & STATUS_MAPPED_BITS);
        let o = Observation::new(
            MDC_GLU_METER_DEV_STATUS,
            Value::Enumerated(Enumerated::Bits { bits, width: 16 }),
            None,
        );
        decoded
            .observations
            .push(with_context(o, sequence, device_time));
    }

    Ok(GlucoseMeasurement {
        flags,
        sequence,
        base_time,
        time_offset,
        time,
        concentration,
        unit,
        sample_type,
        sample_location,
        status,
        context_follows,
        decoded,
    })
}

/// Unit of the medication amount in the context (flag b5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MedicationUnit {
    /// b5 = 0: kilograms on the wire, reported in mg.
    Kilogram,
    /// b5 = 1: litres on the wire, reported in mL.
    Litre,
}

/// A fully decoded Glucose Measurement Context (0x2A34). Amounts are as sent (wire units).
#[derive(Debug, Clone, PartialEq)]
pub struct GlucoseContext {
    /// The raw flags octet.
    pub flags: u8,
    /// Sequence number of the measurement this context belongs to.
    pub sequence: u16,
    /// Extended flags (flag b7; all bits reserved in GLS 1.0).
    pub extended_flags: Option<u8>,
    /// Carbohydrate id (1 breakfast … 7 brunch) and amount in kg (flag b0).
    pub carbohydrate: Option<(u8, Result<Number, Special>)>,
    /// Meal (1 preprandial … 5 bedtime) (flag b1).
    pub meal: Option<u8>,
    /// Tester nibble (1 self, 2 HCP, 3 lab, 15 n/a) (flag b2).
    pub tester: Option<u8>,
    /// Health nibble (1 minor … 5 none, 15 n/a) (flag b2).
    pub health: Option<u8>,
    /// Exercise duration in s (0xFFFF = overrun) and intensity in % (flag b3).
    pub exercise: Option<(u16, u8)>,
    /// Medication id (1 rapid … 5 pre-mixed insulin), amount and its unit (flags b4, b5).
    pub medication: Option<(u8, Result<Number, Special>, MedicationUnit)>,
    /// HbA1c in % (flag b6).
    pub hba1c: Option<Result<Number, Special>>,
    /// The observations ([`context`] returns exactly this).
    pub decoded: Decoded,
}

fn carbohydrate_mdc(id: u8) -> u32 {
    match id {
        1 => 8_417_768, // BREAKFAST
        2 => 8_417_772, // LUNCH
        3 => 8_417_776, // DINNER
        4 => 8_417_780, // SNACK
        5 => 8_417_784, // DRINK
        6 => 8_417_788, // SUPPER
        7 => 8_417_792, // BRUNCH
        _ => MDC_CTXT_GLU_CARB,
    }
}

fn medication_mdc(id: u8) -> u32 {
    match id {
        1 => 8_417_800, // RAPIDACTING
        2 => 8_417_804, // SHORTACTING
        3 => 8_417_808, // INTERMEDIATEACTING
        4 => 8_417_812, // LONGACTING
        5 => 8_417_816, // PREMIX
        _ => MDC_CTXT_MEDICATION,
    }
}

fn meal_mdc(meal: u8) -> Option<u32> {
    match meal {
        1 => Some(8_417_868), // PREPRANDIAL
        2 => Some(8_417_872), // POSTPRANDIAL
        3 => Some(8_417_876), // FASTING
        4 => Some(8_417_880), // CASUAL
        5 => Some(8_417_869), // BEDTIME (term as listed in mdc-codes §1, T1)
        _ => None,
    }
}

fn tester_mdc(tester: u8) -> Option<u32> {
    match tester {
        1 => Some(8_417_888), // SELF
        2 => Some(8_417_892), // HCP
        3 => Some(8_417_896), // LAB
        _ => None,
    }
}

fn health_mdc(health: u8) -> Option<u32> {
    match health {
        1 => Some(8_417_824), // MINOR
        2 => Some(8_417_828), // MAJOR
        3 => Some(8_417_832), // MENSES
        4 => Some(8_417_836), // STRESS
        5 => Some(8_417_840), // NONE
        _ => None,
    }
}

/// Decode a Glucose Measurement Context (0x2A34) into observations carrying the measurement's
/// sequence number (no time: the session takes it from the measurement with that sequence).
///
/// - carbohydrate → MDC_CTXT_GLU_CARB_<meal> (8417768…8417792; 8417764 for a reserved id),
///   grams (wire: kg, exponent + 3);
/// - meal / tester / health → MDC_CTXT_GLU_MEAL / _TESTER / _HEALTH with a coded value
///   (reserved and "not available" values are not reported);
/// - exercise → MDC_CTXT_GLU_EXERCISE, value = intensity in `%` (the duration has no place in
///   the observation model; it stays in [`GlucoseContext::exercise`]);
/// - medication → MDC_CTXT_MEDICATION_<kind> (8417800…8417816; 8417796 for a reserved id),
///   `mg` (wire kg, exponent + 6) or `mL` (wire L, exponent + 3);
/// - HbA1c → MDC_CONC_HBA1C 160220, `%`.
pub fn context(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    Ok(context_full(bytes)?.decoded)
}

/// Decode a Glucose Measurement Context (0x2A34) into the typed record.
pub fn context_full(bytes: &[u8]) -> Result<GlucoseContext, DecodeError> {
    let mut r = Reader::new(CONTEXT, bytes);
    let flags = r.u8()?;
    let sequence = r.u16()?;
    let extended_flags = if flags & 0x80 != 0 {
        Some(r.u8()?)
    } else {
        None
    };
    let carbohydrate = if flags & 0x01 != 0 {
        Some((r.u8()?, r.sfloat()?))
    } else {
        None
    };
    let meal = if flags & 0x02 != 0 {
        Some(r.u8()?)
    } else {
        None
    };
    let tester_health = if flags & 0x04 != 0 {
        Some(r.u8()?)
    } else {
        None
    };
    let exercise = if flags & 0x08 != 0 {
        Some((r.u16()?, r.u8()?))
    } else {
        None
    };
    let medication_unit = if flags & 0x20 != 0 {
        MedicationUnit::Litre
    } else {
        MedicationUnit::Kilogram
    };
    let medication = if flags & 0x10 != 0 {
        Some((r.u8()?, r.sfloat()?, medication_unit))
    } else {
        None
    };
    let hba1c = if flags & 0x40 != 0 {
        Some(r.sfloat()?)
    } else {
        None
    };
    r.finish()?;

    let tester = tester_health.map(|b| b & 0x0F);
    let health = tester_health.map(|b| b >> 4);
    let mut observations = Vec::new();
    let mut push = |o: Observation| observations.push(with_context(o, sequence, None));
    let coded = |parent: u32, value: u32| {
        Observation::new(
            parent,
            Value::Enumerated(Enumerated::Code(Mdc(value))),
            None,
        )
    };

    if let Some((id, amount)) = carbohydrate {
        push(Observation::new(
            carbohydrate_mdc(id),
            shifted(amount, 3),
            Some("g"),
        ));
    }
    if let Some(code) = meal.and_then(meal_mdc) {
        push(coded(MDC_CTXT_GLU_MEAL, code));
    }
    if let Some(code) = tester.and_then(tester_mdc) {
        push(coded(MDC_CTXT_GLU_TESTER, code));
    }
    if let Some(code) = health.and_then(health_mdc) {
        push(coded(MDC_CTXT_GLU_HEALTH, code));
    }
    if let Some((_duration, intensity)) = exercise {
        push(Observation::new(
            MDC_CTXT_GLU_EXERCISE,
            Value::numeric_with_decimals(f64::from(intensity), 0),
            Some("%"),
        ));
    }
    if let Some((id, amount, unit)) = medication {
        let (shift, ucum) = match unit {
            MedicationUnit::Kilogram => (6, "mg"),
            MedicationUnit::Litre => (3, "mL"),
        };
        push(Observation::new(
            medication_mdc(id),
            shifted(amount, shift),
            Some(ucum),
        ));
    }
    if let Some(value) = hba1c {
        push(Observation::new(MDC_HBA1C, shifted(value, 0), Some("%")));
    }

    Ok(GlucoseContext {
        flags,
        sequence,
        extended_flags,
        carbohydrate,
        meal,
        tester,
        health,
        exercise,
        medication,
        hba1c,
        decoded: Decoded {
            observations,
            ..Decoded::default()
        },
    })
}

/// Glucose Feature (0x2A51).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlucoseFeature {
    /// All 16 bits as sent.
    pub bits: u16,
}

impl GlucoseFeature {
    fn bit(self, n: u16) -> bool {
        self.bits & (1 << n) != 0
    }
    /// b0: low battery detection during measurement.
    pub fn low_battery_detection(self) -> bool {
        self.bit(0)
    }
    /// b1: sensor malfunction detection.
    pub fn sensor_malfunction_detection(self) -> bool {
        self.bit(1)
    }
    /// b2: sensor sample size.
    pub fn sample_size(self) -> bool {
        self.bit(2)
    }
    /// b3: strip insertion error detection.
    pub fn strip_insertion_error_detection(self) -> bool {
        self.bit(3)
    }
    /// b4: strip type error detection.
    pub fn strip_type_error_detection(self) -> bool {
        self.bit(4)
    }
    /// b5: sensor result high-low detection.
    pub fn result_high_low_detection(self) -> bool {
        self.bit(5)
    }
    /// b6: sensor temperature high-low detection.
    pub fn temperature_high_low_detection(self) -> bool {
        self.bit(6)
    }
    /// b7: sensor read interrupt detection.
    pub fn read_interrupt_detection(self) -> bool {
        self.bit(7)
    }
    /// b8: general device fault.
    pub fn general_device_fault(self) -> bool {
        self.bit(8)
    }
    /// b9: time fault.
    pub fn time_fault(self) -> bool {
        self.bit(9)
    }
    /// b10: multiple bond.
    pub fn multiple_bond(self) -> bool {
        self.bit(10)
    }
}

/// Decode the Glucose Feature (0x2A51).
pub fn feature(bytes: &[u8]) -> Result<GlucoseFeature, DecodeError> {
    let mut r = Reader::new(FEATURE, bytes);
    let bits = r.u16()?;
    r.finish()?;
    Ok(GlucoseFeature { bits })
}

/// The Glucose Feature as a [`Decoded`] (no observations: features are device capabilities).
pub fn feature_decoded(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    feature(bytes).map(|_| Decoded::default())
}

/// Absent-reason helper for callers that want to test whether a concentration was a number.
pub fn concentration_absent(m: &GlucoseMeasurement) -> Option<AbsentReason> {
    match m.concentration {
        Some(Err(s)) => Some(s.reason()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodeErrorKind;

    const TIME: [u8; 7] = [0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09]; // 2025-03-14 07:05:09

    fn meas(flags: u8, seq: u16, tail: &[u8]) -> Vec<u8> {
        let mut v = vec![flags];
        v.extend_from_slice(&seq.to_le_bytes());
        v.extend_from_slice(&TIME);
        v.extend_from_slice(tail);
        v
    }

    #[test]
    fn mmol_reference_vector() {
        // flags: offset, concentration, mol/L; offset +15 min; 5.6 mmol/L = 38 C0; capillary
        // plasma (2) at finger (1) = 0x12.
        let bytes = meas(0x07, 7, &[0x0F, 0x00, 0x38, 0xC0, 0x12]);
        let m = measurement_full(&bytes).unwrap();
        assert_eq!(m.sequence, 7);
        assert!(!m.context_follows);
        assert_eq!(m.time.unwrap().to_string(), "2025-03-14T07:20:09");
        let o = &m.decoded.observations[0];
        assert_eq!(o.mdc, Mdc(MDC_GLU_CAPILLARY_PLASMA));
        assert_eq!(o.value, Value::numeric_with_decimals(5.6, 1));
        assert_eq!(o.unit.as_ref().unwrap().as_str(), "mmol/L");
        assert_eq!(o.sequence, Some(7));
        assert_eq!(o.time, Some(DeviceTime::Local(m.time.unwrap())));
        let loc = &m.decoded.observations[1];
        assert_eq!(loc.mdc, Mdc(MDC_CTXT_GLU_SAMPLELOCATION));
        assert_eq!(
            loc.value,
            Value::Enumerated(Enumerated::Code(Mdc(8_417_848)))
        );
        assert!(!m.decoded.facts.clock_unset);
    }

    #[test]
    fn mg_per_dl_reference_vector_keeps_decimals() {
        // 100 mg/dL = 0.001 kg/L = 64 B0; capillary whole blood, location n/a (0xF1).
        let bytes = meas(0x02, 1, &[0x64, 0xB0, 0xF1]);
        let d = measurement(&bytes).unwrap();
        // location 15 (not available) → UNDETERMINED
        assert_eq!(
            d.observations[1].value,
            Value::Enumerated(Enumerated::Code(Mdc(8_417_845)))
        );
        let o = &d.observations[0];
        assert_eq!(o.mdc, Mdc(MDC_GLU_CAPILLARY_WHOLE_BLOOD));
        assert_eq!(o.value, Value::numeric_with_decimals(100.0, 0));
        assert_eq!(o.unit.as_ref().unwrap().as_str(), "mg/dL");
        // 0.00123 kg/L (123e-5) → 123 mg/dL; 1235e-6 kg/L → 123.5 mg/dL
        let d = measurement(&meas(0x02, 1, &[0x7B, 0xB0, 0x11])).unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::numeric_with_decimals(123.0, 0)
        );
        let d = measurement(&meas(0x02, 1, &[0xD3, 0xA4, 0x11])).unwrap();
        assert_eq!(
            d.observations[0].value,
            Value::numeric_with_decimals(123.5, 1)
        );
        // location 1 → FINGER
        assert_eq!(
            d.observations[1].value,
            Value::Enumerated(Enumerated::Code(Mdc(8_417_848)))
        );
    }

    #[test]
    fn sample_types_map_to_their_codes() {
        let want = [
            160_184, 160_188, 160_192, 160_196, 160_200, 160_204, 160_364, 160_368, 160_212,
            160_208,
        ];
        for (i, code) in want.into_iter().enumerate() {
            let t = (i + 1) as u8;
            let d = measurement(&meas(0x02, 1, &[0x64, 0xB0, 0x10 | t])).unwrap();
            assert_eq!(d.observations[0].mdc, Mdc(code), "type {t}");
        }
        for reserved in [0u8, 11, 15] {
            let d = measurement(&meas(0x02, 1, &[0x64, 0xB0, 0x50 | reserved])).unwrap();
            assert_eq!(d.observations[0].mdc, Mdc(MDC_GLU_UNDETERMINED_PLASMA));
            // reserved location 5: no location observation
            assert_eq!(d.observations.len(), 1);
        }
    }

    #[test]
    fn status_bits_follow_the_corrected_table() {
        // b5 = result HIGHER than the device can process → 8417752.5; b11 time fault masked.
        let bytes = meas(0x0A, 3, &[0x64, 0xB0, 0x11, 0x20, 0x08]);
        let d = measurement(&bytes).unwrap();
        let s = d
            .observations
            .iter()
            .find(|o| o.mdc == Mdc(MDC_GLU_METER_DEV_STATUS))
            .unwrap();
        assert_eq!(
            s.value,
            Value::Enumerated(Enumerated::Bits {
                bits: 0x20,
                width: 16
            })
        );
        assert!(d.facts.clock_unset, "time fault is a clock problem");
        let low = measurement(&meas(0x08, 3, &[0x40, 0x00])).unwrap();
        assert_eq!(
            low.observations[0].value,
            Value::Enumerated(Enumerated::Bits {
                bits: 0x40,
                width: 16
            })
        );
    }

    #[test]
    fn context_follows_and_special_values() {
        let m = measurement_full(&meas(0x12, 9, &[0xFF, 0x07, 0x11])).unwrap();
        assert!(m.context_follows);
        assert_eq!(
            m.decoded.observations[0].value,
            Value::Absent(AbsentReason::NotANumber)
        );
        assert_eq!(concentration_absent(&m), Some(AbsentReason::NotANumber));
    }

    #[test]
    fn offsets_cross_days_and_overruns_drop_the_time() {
        let m = measurement_full(&meas(0x01, 1, &(-(8 * 60) as i16).to_le_bytes())).unwrap();
        assert_eq!(m.time.unwrap().to_string(), "2025-03-13T23:05:09");
        let m = measurement_full(&meas(0x01, 1, &[0xFF, 0x7F])).unwrap();
        assert_eq!(m.time, None);
        let m = measurement_full(&meas(0x01, 1, &[0x00, 0x80])).unwrap();
        assert_eq!(m.time, None);
    }

    #[test]
    fn truncated_measurement_names_the_offset() {
        let full = meas(0x0B, 1, &[0x05, 0x00, 0x64, 0xB0, 0x11, 0x00, 0x00]);
        for cut in 0..full.len() {
            let e = measurement(&full[..cut]).unwrap_err();
            assert_eq!(e.at, cut, "cut {cut}");
            assert!(
                matches!(e.kind, DecodeErrorKind::Incomplete { .. }),
                "cut {cut}"
            );
        }
        let e = measurement(&full[..13]).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::Incomplete { needed: 14 });
        assert!(measurement(&full).is_ok());
        // invalid base time
        let mut bad = full.clone();
        bad[5] = 13;
        assert_eq!(measurement(&bad).unwrap_err().at, 5);
    }

    #[test]
    fn context_decodes_every_field() {
        // flags: carb, meal, tester-health, exercise, medication (L), HbA1c, extended flags
        let bytes = [
            0xFF, 0x09, 0x00, // flags, seq 9
            0x00, // extended flags
            0x01, 0x32, 0xD0, // breakfast, 50e-3 kg = 50 g
            0x01, // preprandial
            0x21, // tester self (1), health major (2)
            0x2C, 0x01, 0x50, // 300 s, 80 %
            0x01, 0x05, 0xD0, // rapid-acting, 5e-3 L = 5 mL
            0x3A, 0xF0, // HbA1c 5.8 %
        ];
        let c = context_full(&bytes).unwrap();
        assert_eq!(c.sequence, 9);
        let obs = &c.decoded.observations;
        assert!(obs.iter().all(|o| o.sequence == Some(9)));
        assert_eq!(obs[0].mdc, Mdc(8_417_768));
        assert_eq!(obs[0].value, Value::numeric_with_decimals(50.0, 0));
        assert_eq!(obs[0].unit.as_ref().unwrap().as_str(), "g");
        assert_eq!(
            obs[1].value,
            Value::Enumerated(Enumerated::Code(Mdc(8_417_868)))
        );
        assert_eq!(obs[2].mdc, Mdc(MDC_CTXT_GLU_TESTER));
        assert_eq!(
            obs[3].value,
            Value::Enumerated(Enumerated::Code(Mdc(8_417_828)))
        );
        assert_eq!(obs[4].mdc, Mdc(MDC_CTXT_GLU_EXERCISE));
        assert_eq!(obs[4].value, Value::numeric_with_decimals(80.0, 0));
        assert_eq!(c.exercise, Some((300, 80)));
        assert_eq!(obs[5].mdc, Mdc(8_417_800));
        assert_eq!(obs[5].value, Value::numeric_with_decimals(5.0, 0));
        assert_eq!(obs[5].unit.as_ref().unwrap().as_str(), "mL");
        assert_eq!(obs[6].mdc, Mdc(MDC_HBA1C));
        assert_eq!(obs[6].value, Value::numeric_with_decimals(5.8, 1));
        // medication in kg: 2e-6 kg = 2 mg (SFLOAT mantissa 2, exponent -6 = 0xA002)
        let c = context(&[0x10, 0x01, 0x00, 0x04, 0x02, 0xA0]).unwrap();
        assert_eq!(c.observations[0].mdc, Mdc(8_417_812));
        assert_eq!(
            c.observations[0].value,
            Value::numeric_with_decimals(2.0, 0)
        );
        assert_eq!(c.observations[0].unit.as_ref().unwrap().as_str(), "mg");
        // truncated: HbA1c announced but missing
        let e = context(&[0x40, 0x01, 0x00, 0x3A]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (4, DecodeErrorKind::Incomplete { needed: 5 })
        );
    }

    #[test]
    fn feature_is_typed() {
        let f = feature(&[0x21, 0x04]).unwrap();
        assert!(f.low_battery_detection() && f.result_high_low_detection() && f.multiple_bond());
        assert!(!f.time_fault());
        assert_eq!(
            feature(&[0x01]).unwrap_err().kind,
            DecodeErrorKind::Incomplete { needed: 2 }
        );
    }
}
