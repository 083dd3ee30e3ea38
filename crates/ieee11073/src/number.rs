//! SFLOAT (16-bit) and FLOAT (32-bit) per IEEE 11073-20601 §F.8 / the GATT Specification
//! Supplement "medfloat16"/"medfloat32": value = mantissa × 10^exponent, both two's complement.

use hearth_model::{AbsentReason, Value};

/// A finite decimal number exactly as the device sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    /// Signed mantissa.
    pub mantissa: i32,
    /// Signed power of ten.
    pub exponent: i8,
}

impl Number {
    /// The nearest `f64`. Negative exponents divide by an exact power of ten, so the result is
    /// the correctly rounded value of the decimal (113.8, not 113.80000000000001).
    pub fn to_f64(self) -> f64 {
        let m = f64::from(self.mantissa);
        let e = i32::from(self.exponent);
        if e >= 0 {
            m * 10f64.powi(e)
        } else {
            m / 10f64.powi(-e)
        }
    }

    /// Decimal places the device resolved (`0xF014` = 2.0 has 1).
    pub fn decimals(self) -> u8 {
        if self.exponent < 0 {
            self.exponent.unsigned_abs()
        } else {
            0
        }
    }

    /// As a model value that keeps the resolution.
    pub fn to_value(self) -> Value {
        Value::numeric_with_decimals(self.to_f64(), self.decimals())
    }
}

/// The special (non-numeric) values of both formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Special {
    /// Not a number.
    #[error("NaN (not a number)")]
    NaN,
    /// Not at this resolution.
    #[error("NRes (not at this resolution)")]
    NRes,
    /// Positive infinity.
    #[error("+INFINITY")]
    PositiveInfinity,
    /// Negative infinity.
    #[error("-INFINITY")]
    NegativeInfinity,
    /// Reserved for future use.
    #[error("reserved value")]
    Reserved,
}

impl Special {
    /// The model's reason for an absent value.
    pub fn reason(self) -> AbsentReason {
        match self {
            Special::NaN => AbsentReason::NotANumber,
            Special::NRes => AbsentReason::NotAtThisResolution,
            Special::PositiveInfinity => AbsentReason::PositiveInfinity,
            Special::NegativeInfinity => AbsentReason::NegativeInfinity,
            Special::Reserved => AbsentReason::Reserved,
        }
    }
}

/// Decode result to a model value: a number, or absent with the special value's reason.
pub fn value_of(r: Result<Number, Special>) -> Value {
    match r {
        Ok(n) => n.to_value(),
        Err(s) => Value::Absent(s.reason()),
    }
}

fn sign_extend(raw: u32, bits: u32) -> i32 {
    let shift = 32 - bits;
    ((raw << shift) as i32) >> shift
}

/// 16-bit SFLOAT: 4-bit exponent, 12-bit mantissa.
pub mod sfloat {
    use super::*;

    /// NaN.
    pub const NAN: u16 = 0x07FF;
    /// NRes.
    pub const NRES: u16 = 0x0800;
    /// +INFINITY.
    pub const POS_INF: u16 = 0x07FE;
    /// −INFINITY.
    pub const NEG_INF: u16 = 0x0802;
    /// Reserved.
    pub const RESERVED: u16 = 0x0801;

    /// Decode the little-endian word (already assembled from the two wire bytes).
    pub fn decode(raw: u16) -> Result<Number, Special> {
        // Special values have exponent 0: test the raw word before sign-extending.
        match raw {
            NAN => return Err(Special::NaN),
            NRES => return Err(Special::NRes),
            POS_INF => return Err(Special::PositiveInfinity),
            NEG_INF => return Err(Special::NegativeInfinity),
            RESERVED => return Err(Special::Reserved),
            _ => {}
        }
        let mantissa = sign_extend(u32::from(raw & 0x0FFF), 12);
        let exponent = sign_extend(u32::from(raw >> 12), 4) as i8;
        Ok(Number { mantissa, exponent })
    }

    /// Encode a number; `None` if it does not fit: exponent −8…7, mantissa −2048…2047, and
    /// with exponent 0 not one of the five special codes (so −2045…2045).
    pub fn encode(n: Number) -> Option<u16> {
        let mantissa_ok = if n.exponent == 0 {
            (-2045..=2045).contains(&n.mantissa)
        } else {
            (-2048..=2047).contains(&n.mantissa)
        };
        if !(-8..=7).contains(&n.exponent) || !mantissa_ok {
            return None;
        }
        let word = ((n.exponent as u16 & 0xF) << 12) | (n.mantissa as u16 & 0x0FFF);
        Some(word)
    }

    /// Encode a special value.
    pub fn encode_special(s: Special) -> u16 {
        match s {
            Special::NaN => NAN,
            Special::NRes => NRES,
            Special::PositiveInfinity => POS_INF,
            Special::NegativeInfinity => NEG_INF,
            Special::Reserved => RESERVED,
        }
    }
}

/// 32-bit FLOAT: 8-bit exponent, 24-bit mantissa.
pub mod float {
    use super::*;

    /// NaN.
    pub const NAN: u32 = 0x007F_FFFF;
    /// NRes.
    pub const NRES: u32 = 0x0080_0000;
    /// +INFINITY.
    pub const POS_INF: u32 = 0x007F_FFFE;
    /// −INFINITY.
    pub const NEG_INF: u32 = 0x0080_0002;
    /// Reserved.
    pub const RESERVED: u32 = 0x0080_0001;

    /// Decode the little-endian 32-bit word.
    pub fn decode(raw: u32) -> Result<Number, Special> {
        match raw {
            NAN => return Err(Special::NaN),
            NRES => return Err(Special::NRes),
            POS_INF => return Err(Special::PositiveInfinity),
            NEG_INF => return Err(Special::NegativeInfinity),
            RESERVED => return Err(Special::Reserved),
            _ => {}
        }
        let mantissa = sign_extend(raw & 0x00FF_FFFF, 24);
        let exponent = (raw >> 24) as u8 as i8;
        Ok(Number { mantissa, exponent })
    }

    /// Encode a number; `None` if the mantissa does not fit: −8388608…8388607, and with
    /// exponent 0 not one of the five special codes (so −8388605…8388605).
    pub fn encode(n: Number) -> Option<u32> {
        let ok = if n.exponent == 0 {
            (-8_388_605..=8_388_605).contains(&n.mantissa)
        } else {
            (-8_388_608..=8_388_607).contains(&n.mantissa)
        };
        if !ok {
            return None;
        }
        Some((u32::from(n.exponent as u8) << 24) | (n.mantissa as u32 & 0x00FF_FFFF))
    }

    /// Encode a special value.
    pub fn encode_special(s: Special) -> u32 {
        match s {
            Special::NaN => NAN,
            Special::NRes => NRES,
            Special::PositiveInfinity => POS_INF,
            Special::NegativeInfinity => NEG_INF,
            Special::Reserved => RESERVED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_vectors_decode() {
        assert_eq!(
            sfloat::decode(u16::from_le_bytes([0x72, 0xF4]))
                .unwrap()
                .to_f64(),
            113.8
        );
        assert_eq!(
            sfloat::decode(u16::from_le_bytes([0xF1, 0xFF]))
                .unwrap()
                .to_f64(),
            -1.5
        );
        assert_eq!(
            float::decode(u32::from_le_bytes([0x6F, 0x01, 0x00, 0xFF]))
                .unwrap()
                .to_f64(),
            36.7
        );
        let two = sfloat::decode(0xE0C8).unwrap();
        assert_eq!((two.to_f64(), two.decimals()), (2.0, 2));
        let two = sfloat::decode(0xF014).unwrap();
        assert_eq!((two.to_f64(), two.decimals()), (2.0, 1));
        assert_eq!(sfloat::decode(0x0080).unwrap().to_f64(), 128.0);
        assert_eq!(
            sfloat::decode(0xB064).unwrap(),
            Number {
                mantissa: 100,
                exponent: -5
            }
        );
    }

    #[test]
    fn every_sfloat_word_round_trips() {
        for raw in 0..=u16::MAX {
            match sfloat::decode(raw) {
                Ok(n) => assert_eq!(sfloat::encode(n), Some(raw), "{raw:#06x}"),
                Err(s) => assert_eq!(sfloat::encode_special(s), raw),
            }
        }
    }

    #[test]
    fn specials_are_never_numbers() {
        for (raw, s) in [
            (0x07FF, Special::NaN),
            (0x0800, Special::NRes),
            (0x07FE, Special::PositiveInfinity),
            (0x0802, Special::NegativeInfinity),
            (0x0801, Special::Reserved),
        ] {
            assert_eq!(sfloat::decode(raw), Err(s));
            assert!(value_of(sfloat::decode(raw)).is_absent());
            assert_eq!(sfloat::encode_special(s), raw);
        }
        for (raw, s) in [
            (0x007F_FFFF, Special::NaN),
            (0x0080_0000, Special::NRes),
            (0x007F_FFFE, Special::PositiveInfinity),
            (0x0080_0002, Special::NegativeInfinity),
            (0x0080_0001, Special::Reserved),
        ] {
            assert_eq!(float::decode(raw), Err(s));
            assert_eq!(float::encode_special(s), raw);
        }
        // A special mantissa with a non-zero exponent is an ordinary number.
        assert!(sfloat::decode(0x17FF).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]
        #[test]
        fn sfloat_round_trips(raw in any::<u16>()) {
            match sfloat::decode(raw) {
                Ok(n) => {
                    // 0x7FF / 0x800 / … with exponent 0 are specials; others re-encode exactly.
                    prop_assert_eq!(sfloat::encode(n), Some(raw));
                }
                Err(s) => prop_assert_eq!(sfloat::encode_special(s), raw),
            }
        }

        #[test]
        fn float_round_trips(raw in any::<u32>()) {
            match float::decode(raw) {
                Ok(n) => prop_assert_eq!(float::encode(n), Some(raw)),
                Err(s) => prop_assert_eq!(float::encode_special(s), raw),
            }
        }

        #[test]
        fn decimal_values_survive_to_f64(m in -2048i32..=2047, e in -8i8..=7) {
            let n = Number { mantissa: m, exponent: e };
            let text = format!("{}e{}", m, e);
            let parsed: f64 = text.parse().unwrap();
            prop_assert_eq!(n.to_f64(), parsed);
        }
    }
}
