//! # hearth-ieee11073
//!
//! The numbers and names of IEEE 11073 personal health devices, as Bluetooth LE health profiles
//! carry them:
//! - [`sfloat`] and [`float`]: the 16-bit and 32-bit decimal floating-point formats ("medfloat16",
//!   "medfloat32"), decoded to an exact [`Number`] (mantissa × 10^exponent, so `36.5` stays
//!   `36.5`) or to a [`Special`] value (NaN, NRes, ±INF, reserved) — a special value is never a
//!   number;
//! - [`mdc`]: IEEE 11073-10101 nomenclature codes for the measurements hearth collects;
//! - [`units`]: MDC unit codes ↔ UCUM.
//!
//! No I/O, no allocation in the number codecs; reusable outside hearth.
//!
//! ## Invariants
//! - Special values map to [`hearth_model::AbsentReason`], never to a number. Test:
//!   `number::tests::specials_are_never_numbers`.
//! - Encode ∘ decode is the identity for every finite value and every special value. Tests:
//!   `number::tests::sfloat_round_trips`, `number::tests::float_round_trips`.
//!
//! ## Example
//! ```
//! use hearth_ieee11073::{sfloat, Number};
//! let n = sfloat::decode(0xF472).unwrap();           // bytes 72 F4 on the wire
//! assert_eq!(n, Number { mantissa: 1138, exponent: -1 });
//! assert_eq!(n.to_f64(), 113.8);
//! assert!(sfloat::decode(0x07FF).is_err());          // NaN is not a number
//! ```
#![forbid(unsafe_code)]

pub mod mdc;
mod number;
pub mod units;

pub use number::{Number, Special, float, sfloat, value_of};
