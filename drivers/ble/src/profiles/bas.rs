//! Battery Service (0x180F): Battery Level (0x2A19).
//!
//! One octet, 0–100 % (SIG XML `battery_level`: 101–255 reserved). A reserved value is
//! malformed: a battery level above 100 % would be a lie, not a reading. The decoder only
//! reports the level in [`DeviceFacts::battery_percent`]; what counts as "low" is configuration,
//! not decoding. (As an observation the level would be MDC_ATTR_VAL_BATT_CHARGE 67996 `%`,
//! PHD IG; that mapping belongs to the uplink.)

use crate::decode::{DecodeError, Decoded, DeviceFacts, Reader};

/// Battery service.
pub const SERVICE: u16 = 0x180F;
/// Battery Level (Read, optionally Notify).
pub const BATTERY_LEVEL: u16 = 0x2A19;
/// MDC_ATTR_VAL_BATT_CHARGE, for uplinks that report the level as an observation.
pub const MDC_ATTR_VAL_BATT_CHARGE: u32 = 67_996;

/// Decode a Battery Level (0x2A19) into `facts.battery_percent`.
pub fn level(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(BATTERY_LEVEL, bytes);
    let level = r.u8()?;
    if level > 100 {
        return Err(r.malformed_at(
            0,
            format!("battery level {level} % is above 100 % (101–255 are reserved)"),
        ));
    }
    r.finish()?;
    Ok(Decoded {
        facts: DeviceFacts {
            battery_percent: Some(level),
            ..DeviceFacts::default()
        },
        ..Decoded::default()
    })
}

/// Same as [`level`].
pub fn battery_level(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    level(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodeErrorKind;

    #[test]
    fn levels() {
        for value in [0u8, 1, 20, 99, 100] {
            let d = level(&[value]).unwrap();
            assert_eq!(d.facts.battery_percent, Some(value));
            assert!(d.observations.is_empty());
        }
    }

    #[test]
    fn reserved_and_missing() {
        for level in [101u8, 200, 255] {
            let e = battery_level(&[level]).unwrap_err();
            assert_eq!((e.characteristic, e.at), (0x2A19, 0));
            assert!(matches!(e.kind, DecodeErrorKind::Malformed { .. }));
        }
        let e = battery_level(&[]).unwrap_err();
        assert_eq!(
            (e.at, e.kind),
            (0, DecodeErrorKind::Incomplete { needed: 1 })
        );
    }
}
