use crate::Mdc;

/// Why a value is absent. A device's special values never become numbers (invariant of this crate).
///
/// The names follow the FHIR data-absent-reason codes where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbsentReason {
    /// IEEE 11073 NaN (not a number).
    NotANumber,
    /// IEEE 11073 NRes (not at this resolution).
    NotAtThisResolution,
    /// IEEE 11073 +INF.
    PositiveInfinity,
    /// IEEE 11073 −INF.
    NegativeInfinity,
    /// A reserved special value of the number format.
    Reserved,
    /// The device reported an error instead of a value.
    Error,
    /// The device did not say.
    Unknown,
}

impl AbsentReason {
    /// Every reason.
    pub const ALL: [AbsentReason; 7] = [
        AbsentReason::NotANumber,
        AbsentReason::NotAtThisResolution,
        AbsentReason::PositiveInfinity,
        AbsentReason::NegativeInfinity,
        AbsentReason::Reserved,
        AbsentReason::Error,
        AbsentReason::Unknown,
    ];

    /// Stable kebab-case name (`not-a-number`, …), also used in JSON output.
    pub const fn as_str(self) -> &'static str {
        match self {
            AbsentReason::NotANumber => "not-a-number",
            AbsentReason::NotAtThisResolution => "not-at-this-resolution",
            AbsentReason::PositiveInfinity => "positive-infinity",
            AbsentReason::NegativeInfinity => "negative-infinity",
            AbsentReason::Reserved => "reserved",
            AbsentReason::Error => "error",
            AbsentReason::Unknown => "unknown",
        }
    }

    /// The inverse of [`AbsentReason::as_str`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One part of a compound value, e.g. the systolic pressure of a blood-pressure measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// What this component measures.
    pub mdc: Mdc,
    /// A numeric or absent value (components are never compound themselves).
    pub value: Value,
}

/// The value of a reading.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number. `decimals` keeps the device's resolution (an SFLOAT `365e-1` has 1 decimal), so
    /// uplinks print `36.5`, not a binary approximation.
    Numeric {
        /// The value in the reading's unit.
        value: f64,
        /// Decimal places the device resolved, when known.
        decimals: Option<u8>,
    },
    /// Several numbers measured together (blood pressure: systolic, diastolic, mean).
    Compound(Vec<Component>),
    /// A coded state: an MDC code, a bit field or a short text (e.g. `open`/`closed`).
    Enumerated(Enumerated),
    /// No value, with the reason the device gave.
    Absent(AbsentReason),
}

/// A coded (non-numeric) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enumerated {
    /// An MDC code (e.g. a measurement site).
    Code(Mdc),
    /// A bit field (e.g. a measurement-status word) and its width in bits.
    Bits {
        /// The bits, least significant first.
        bits: u32,
        /// How many bits are meaningful.
        width: u8,
    },
    /// A short text state.
    Text(String),
}

impl Value {
    /// A numeric value of unknown resolution.
    pub fn numeric(value: f64) -> Self {
        Value::Numeric {
            value,
            decimals: None,
        }
    }

    /// A numeric value with a known number of decimals.
    pub fn numeric_with_decimals(value: f64, decimals: u8) -> Self {
        Value::Numeric {
            value,
            decimals: Some(decimals),
        }
    }

    /// A numeric value whose resolution is that of `text`, the decimal text it was written as
    /// (a JSON number as serde_json prints it, its shortest round-trip form): `"20.50"` keeps 2
    /// decimals, `"21"` 0; exponent forms and more than 15 decimals leave the resolution unknown.
    /// Drivers that read JSON numbers share this rule.
    pub fn numeric_from_text(value: f64, text: &str) -> Self {
        let decimals = if text.contains(['e', 'E']) {
            None
        } else {
            let d = text.split_once('.').map_or(0, |(_, f)| f.len());
            u8::try_from(d).ok().filter(|d| *d <= 15)
        };
        Value::Numeric { value, decimals }
    }

    /// The number, if this is a numeric value.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Numeric { value, .. } => Some(*value),
            _ => None,
        }
    }

    /// Whether this is an absent value.
    pub fn is_absent(&self) -> bool {
        matches!(self, Value::Absent(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_comes_from_the_text() {
        let d = |text: &str| match Value::numeric_from_text(1.0, text) {
            Value::Numeric { decimals, .. } => decimals,
            _ => unreachable!(),
        };
        assert_eq!(d("21"), Some(0));
        assert_eq!(d("-3"), Some(0));
        assert_eq!(d("20.5"), Some(1));
        assert_eq!(d("20.50"), Some(2));
        assert_eq!(d("1e21"), None);
        assert_eq!(d("2.5E-7"), None);
        assert_eq!(d("0.123456789012345"), Some(15));
        assert_eq!(d("0.1234567890123456"), None);
    }

    #[test]
    fn absent_is_not_numeric() {
        for r in AbsentReason::ALL {
            let v = Value::Absent(r);
            assert_eq!(v.as_f64(), None);
            assert!(v.is_absent());
            assert_eq!(AbsentReason::from_name(r.as_str()), Some(r));
        }
        assert_eq!(Value::numeric(1.5).as_f64(), Some(1.5));
    }
}
