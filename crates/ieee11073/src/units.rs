//! MDC unit codes (IEEE 11073-10101 partition 4, DIM) and their UCUM codes.
//!
//! FHIR `valueQuantity` carries the UCUM code (system `http://unitsofmeasure.org`); HL7 v2
//! (IHE PCD-01) OBX-6 carries `<MDC code>^<reference id>^MDC`, optionally followed by the UCUM
//! code. A Generic Health Sensor (GHS) numeric observation sends only the 16-bit term code within
//! partition 4 ([`ucum_for_dim_term`]).
//!
//! Each MDC code has exactly one UCUM code here and the reverse lookup is exact (UCUM is
//! case-sensitive), so both directions round-trip (`tests/units.rs`). The UCUM column follows
//! the PHD IG examples and the DK Core value set. [`Unit::verified`] is `false` for a code that is
//! computed rather than seen ([`KILO_JOULES`]) or that one header alone gives
//! ([`MILLI_G_PER_DL_PER_MIN`]).
//!
//! ```
//! use hearth_ieee11073::units;
//! assert_eq!(units::ucum_for_mdc(266016), Some("mm[Hg]"));
//! assert_eq!(units::mdc_for_ucum("mm[Hg]"), Some(266016));
//! assert_eq!(units::ucum_for_dim_term(3872), Some("mm[Hg]"));   // GHS: 266016 − 4 × 65536
//! assert_eq!(units::mdc_for_ucum("mmHg"), None);                // not UCUM
//! ```

use crate::mdc::{PART_DIM, code};

/// One unit of measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unit {
    /// The 32-bit MDC code (4 × 65536 + term code).
    pub mdc: u32,
    /// The MDC reference id, e.g. `"MDC_DIM_MMHG"` (PCD-01 OBX-6.2).
    pub reference_id: &'static str,
    /// The UCUM code, e.g. `"mm[Hg]"` (FHIR `valueQuantity.code`).
    pub ucum: &'static str,
    /// Whether the MDC code was seen in an authoritative or a second independent source;
    /// `false` for a computed or single-source code.
    pub verified: bool,
}

impl Unit {
    /// The 16-bit term code within partition 4, as GHS sends it.
    pub const fn dim_term(&self) -> u16 {
        crate::mdc::term_code(self.mdc)
    }
}

/// Dimensionless (ratio, count).
pub const DIMLESS: Unit = verified(262656, "MDC_DIM_DIMLESS", "1");
/// Percent (SpO2, body fat, HbA1c, battery level).
pub const PERCENT: Unit = verified(262688, "MDC_DIM_PERCENT", "%");
/// Metre (body height in metres).
pub const X_M: Unit = verified(263424, "MDC_DIM_X_M", "m");
/// Centimetre (body height).
pub const CENTI_M: Unit = verified(263441, "MDC_DIM_CENTI_M", "cm");
/// International inch (body height, imperial scales).
pub const INCH: Unit = verified(263520, "MDC_DIM_INCH", "[in_i]");
/// Litre (glucose context medication with the volume flag); term code confirmed by two
/// headers (LNI, Philips), not listed in the research notes.
pub const X_L: Unit = verified(263744, "MDC_DIM_X_L", "L");
/// Gram.
pub const X_G: Unit = verified(263872, "MDC_DIM_X_G", "g");
/// Kilogram (body weight, body composition masses).
pub const KILO_G: Unit = verified(263875, "MDC_DIM_KILO_G", "kg");
/// Avoirdupois pound (body weight, imperial scales).
pub const LB: Unit = verified(263904, "MDC_DIM_LB", "[lb_av]");
/// Kilogram per square metre (body mass index).
pub const KG_PER_M_SQ: Unit = verified(264096, "MDC_DIM_KG_PER_M_SQ", "kg/m2");
/// Milligram per decilitre (glucose).
pub const MILLI_G_PER_DL: Unit = verified(264274, "MDC_DIM_MILLI_G_PER_DL", "mg/dL");
/// Second.
pub const SEC: Unit = verified(264320, "MDC_DIM_SEC", "s");
/// Millisecond (RR interval).
pub const MILLI_SEC: Unit = verified(264338, "MDC_DIM_MILLI_SEC", "ms");
/// Beats per minute (pulse rate, heart rate). The PHD IG shows `{beat}/min` as display only.
pub const BEAT_PER_MIN: Unit = verified(264864, "MDC_DIM_BEAT_PER_MIN", "/min");
/// Kilopascal (blood pressure with the kPa flag).
pub const KILO_PASCAL: Unit = verified(265987, "MDC_DIM_KILO_PASCAL", "kPa");
/// Millimetre of mercury (blood pressure).
pub const MMHG: Unit = verified(266016, "MDC_DIM_MMHG", "mm[Hg]");
/// Joule.
pub const X_JOULES: Unit = verified(266112, "MDC_DIM_X_JOULES", "J");
/// Kilojoule (basal metabolism, energy expended). **Computed**, not seen in any source:
/// MDC_DIM_X_JOULES 266112 + the kilo prefix 3, as MDC_DIM_KILO_G 263875 = MDC_DIM_X_G 263872 + 3.
pub const KILO_JOULES: Unit = unverified(266115, "MDC_DIM_KILO_JOULES", "kJ");
/// Ohm (body electrical impedance).
pub const X_OHM: Unit = verified(266432, "MDC_DIM_X_OHM", "Ohm");
/// Degree Fahrenheit (thermometers with the °F flag).
pub const FAHR: Unit = verified(266560, "MDC_DIM_FAHR", "[degF]");
/// Millimole per litre (glucose).
pub const MILLI_MOLE_PER_L: Unit = verified(266866, "MDC_DIM_MILLI_MOLE_PER_L", "mmol/L");
/// Milligram per decilitre per minute (CGM trend); one header only.
pub const MILLI_G_PER_DL_PER_MIN: Unit =
    unverified(266868, "MDC_DIM_MILLI_G_PER_DL_PER_MIN", "mg/dL/min");
/// Degree Celsius (body temperature).
pub const DEGC: Unit = verified(268192, "MDC_DIM_DEGC", "Cel");

/// Every unit of this module, sorted by MDC code.
pub static UNITS: &[Unit] = &[
    DIMLESS,
    PERCENT,
    X_M,
    CENTI_M,
    INCH,
    X_L,
    X_G,
    KILO_G,
    LB,
    KG_PER_M_SQ,
    MILLI_G_PER_DL,
    SEC,
    MILLI_SEC,
    BEAT_PER_MIN,
    KILO_PASCAL,
    MMHG,
    X_JOULES,
    KILO_JOULES,
    X_OHM,
    FAHR,
    MILLI_MOLE_PER_L,
    MILLI_G_PER_DL_PER_MIN,
    DEGC,
];

/// Other spellings that UCUM itself treats as the same unit, accepted by [`mdc_for_ucum`] and
/// [`unit_for_ucum`] but never produced: `l` (UCUM allows both `l` and `L`) and `{beat}/min`
/// (an annotation, equal to `/min`).
pub static UCUM_ALIASES: &[(&str, Unit)] = &[("l", X_L), ("{beat}/min", BEAT_PER_MIN)];

/// The unit with this 32-bit MDC code (binary search in [`UNITS`]).
pub fn lookup(mdc: u32) -> Option<&'static Unit> {
    UNITS
        .binary_search_by_key(&mdc, |u| u.mdc)
        .ok()
        .and_then(|i| UNITS.get(i))
}

/// The unit with this UCUM code (exact match, or one of [`UCUM_ALIASES`]).
pub fn unit_for_ucum(ucum: &str) -> Option<&'static Unit> {
    UNITS.iter().find(|u| u.ucum == ucum).or_else(|| {
        UCUM_ALIASES
            .iter()
            .find(|(alias, _)| *alias == ucum)
            .map(|(_, u)| u)
    })
}

/// The UCUM code of a 32-bit MDC unit code.
pub fn ucum_for_mdc(mdc: u32) -> Option<&'static str> {
    lookup(mdc).map(|u| u.ucum)
}

/// The 32-bit MDC unit code of a UCUM code (exact match, or one of [`UCUM_ALIASES`]).
pub fn mdc_for_ucum(ucum: &str) -> Option<u32> {
    unit_for_ucum(ucum).map(|u| u.mdc)
}

/// The UCUM code of a 16-bit DIM term code (partition 4), as a GHS numeric observation sends it.
pub fn ucum_for_dim_term(term: u16) -> Option<&'static str> {
    ucum_for_mdc(code(PART_DIM, term))
}

const fn verified(mdc: u32, reference_id: &'static str, ucum: &'static str) -> Unit {
    Unit {
        mdc,
        reference_id,
        ucum,
        verified: true,
    }
}

const fn unverified(mdc: u32, reference_id: &'static str, ucum: &'static str) -> Unit {
    Unit {
        mdc,
        reference_id,
        ucum,
        verified: false,
    }
}
