//! Device Information Service (0x180A): System ID (0x2A23) and the string characteristics
//! Model Number (0x2A24), Serial Number (0x2A25), Firmware Revision (0x2A26), Hardware Revision
//! (0x2A27), Software Revision (0x2A28) and Manufacturer Name (0x2A29).
//!
//! **System ID rule (stable; it feeds device identity).** The value is 8 octets, least
//! significant octet first: a 40-bit manufacturer-defined identifier followed by the 24-bit
//! OUI (SIG XML `system_id`, GSS; nRF5 `ble_dis_sys_id_t`). hearth reports the EUI-64 most
//! significant octet first — OUI first — which is the byte reversal of the wire octets, as 16
//! lowercase hex digits: wire `71 10 00 FE FF 5F 49 B0` → `b0495ffffe001071`. (The PHD IG's
//! Omron example writes the wire order instead; hearth does not.) An all-zero or all-ones
//! System ID identifies nothing (placeholder firmware values) and yields no EUI-64, so such
//! devices are never merged by identity. The value must be exactly 8 octets.
//!
//! **Strings** are UTF-8 (GSS `utf8s`). Trailing NUL octets (fixed-size firmware buffers) are
//! removed; invalid UTF-8 is malformed at the first offending octet; an empty string yields no
//! fact.

use crate::decode::{DecodeError, DecodeErrorKind, Decoded, DeviceFacts, Reader};

/// Device Information service.
pub const SERVICE: u16 = 0x180A;
/// System ID.
pub const SYSTEM_ID: u16 = 0x2A23;
/// Model Number String.
pub const MODEL_NUMBER: u16 = 0x2A24;
/// Serial Number String.
pub const SERIAL_NUMBER: u16 = 0x2A25;
/// Firmware Revision String.
pub const FIRMWARE_REVISION: u16 = 0x2A26;
/// Hardware Revision String.
pub const HARDWARE_REVISION: u16 = 0x2A27;
/// Software Revision String.
pub const SOFTWARE_REVISION: u16 = 0x2A28;
/// Manufacturer Name String.
pub const MANUFACTURER_NAME: u16 = 0x2A29;

/// The string characteristics [`string`] decodes.
pub const STRINGS: [u16; 6] = [
    MODEL_NUMBER,
    SERIAL_NUMBER,
    FIRMWARE_REVISION,
    HARDWARE_REVISION,
    SOFTWARE_REVISION,
    MANUFACTURER_NAME,
];

/// The EUI-64 of a System ID value (8 wire octets): byte reversal, 16 lowercase hex digits;
/// `None` for all-zero or all-ones placeholders.
pub fn eui64_from_system_id(wire: [u8; 8]) -> Option<String> {
    if wire == [0; 8] || wire == [0xFF; 8] {
        return None;
    }
    Some(wire.iter().rev().map(|b| format!("{b:02x}")).collect())
}

/// Decode a System ID (0x2A23) into `facts.eui64`.
pub fn system_id(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(SYSTEM_ID, bytes);
    let raw = r.take(8)?;
    if r.remaining() > 0 {
        return Err(r.malformed(format!(
            "System ID is 8 octets, this value has {}",
            bytes.len()
        )));
    }
    let mut wire = [0u8; 8];
    wire.copy_from_slice(raw);
    Ok(Decoded {
        facts: DeviceFacts {
            eui64: eui64_from_system_id(wire),
            ..DeviceFacts::default()
        },
        ..Decoded::default()
    })
}

/// The text of a DIS string characteristic: UTF-8 with trailing NULs removed.
pub fn parse_string(uuid: u16, bytes: &[u8]) -> Result<String, DecodeError> {
    if !STRINGS.contains(&uuid) {
        return Err(DecodeError {
            characteristic: uuid,
            at: 0,
            kind: DecodeErrorKind::Unsupported,
        });
    }
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let trimmed = bytes.get(..end).unwrap_or_default();
    match std::str::from_utf8(trimmed) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => {
            let at = e.valid_up_to();
            let byte = trimmed.get(at).copied().unwrap_or_default();
            Err(Reader::new(uuid, bytes)
                .malformed_at(at, format!("byte 0x{byte:02X} is not valid UTF-8")))
        }
    }
}

/// Decode a DIS string characteristic (0x2A24…0x2A29) into the matching fact; an empty string
/// sets nothing. Other UUIDs are [`DecodeErrorKind::Unsupported`].
pub fn string(uuid: u16, bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let text = parse_string(uuid, bytes)?;
    let value = (!text.is_empty()).then_some(text);
    let mut facts = DeviceFacts::default();
    match uuid {
        MODEL_NUMBER => facts.model = value,
        SERIAL_NUMBER => facts.serial = value,
        FIRMWARE_REVISION => facts.firmware = value,
        HARDWARE_REVISION => facts.hardware = value,
        SOFTWARE_REVISION => facts.software = value,
        _ => facts.manufacturer = value,
    }
    Ok(Decoded {
        facts,
        ..Decoded::default()
    })
}

/// Model Number String (0x2A24).
pub fn model_number(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    string(MODEL_NUMBER, bytes)
}

/// Serial Number String (0x2A25).
pub fn serial_number(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    string(SERIAL_NUMBER, bytes)
}

/// Firmware Revision String (0x2A26).
pub fn firmware_revision(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    string(FIRMWARE_REVISION, bytes)
}

/// Hardware Revision String (0x2A27).
pub fn hardware_revision(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    string(HARDWARE_REVISION, bytes)
}

/// Software Revision String (0x2A28).
pub fn software_revision(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    string(SOFTWARE_REVISION, bytes)
}

/// Manufacturer Name String (0x2A29).
pub fn manufacturer_name(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    string(MANUFACTURER_NAME, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_id_is_reversed() {
        let d = system_id(&[0x71, 0x10, 0x00, 0xFE, 0xFF, 0x5F, 0x49, 0xB0]).unwrap();
        assert_eq!(d.facts.eui64.as_deref(), Some("b0495ffffe001071"));
        assert!(d.observations.is_empty());
        // GSS example: OUI 0x123456, company-assigned 0x9ABCDE → 0x123456FFFE9ABCDE.
        let wire = 0x1234_56FF_FE9A_BCDEu64.to_le_bytes();
        assert_eq!(
            system_id(&wire).unwrap().facts.eui64.as_deref(),
            Some("123456fffe9abcde")
        );
        assert_eq!(system_id(&[0; 8]).unwrap().facts.eui64, None);
        assert_eq!(system_id(&[0xFF; 8]).unwrap().facts.eui64, None);
    }

    #[test]
    fn system_id_length() {
        let e = system_id(&[1, 2, 3]).unwrap_err();
        assert_eq!(
            (e.characteristic, e.at, e.kind),
            (0x2A23, 3, DecodeErrorKind::Incomplete { needed: 8 })
        );
        let e = system_id(&[1; 9]).unwrap_err();
        assert_eq!(e.at, 8);
        assert!(matches!(e.kind, DecodeErrorKind::Malformed { .. }));
    }

    #[test]
    fn strings_go_to_their_facts() {
        assert_eq!(
            string(0x2A24, b"HEM-7600T\0\0")
                .unwrap()
                .facts
                .model
                .as_deref(),
            Some("HEM-7600T")
        );
        assert_eq!(
            string(0x2A25, b"123").unwrap().facts.serial.as_deref(),
            Some("123")
        );
        assert_eq!(
            firmware_revision(b"1.0").unwrap().facts.firmware.as_deref(),
            Some("1.0")
        );
        assert_eq!(
            hardware_revision(b"B").unwrap().facts.hardware.as_deref(),
            Some("B")
        );
        assert_eq!(
            software_revision(b"2").unwrap().facts.software.as_deref(),
            Some("2")
        );
        assert_eq!(
            manufacturer_name("Ærø AS".as_bytes())
                .unwrap()
                .facts
                .manufacturer
                .as_deref(),
            Some("Ærø AS")
        );
        assert_eq!(model_number(b"\0\0").unwrap().facts, DeviceFacts::default());
        assert_eq!(serial_number(b"").unwrap().facts, DeviceFacts::default());
        // An inner NUL stays (only trailing NULs are padding).
        assert_eq!(parse_string(0x2A24, b"a\0b\0").unwrap(), "a\u{0}b");
    }

    #[test]
    fn invalid_utf8_names_the_byte() {
        let e = string(0x2A29, &[b'O', b'k', 0xC3, 0x28, 0x00]).unwrap_err();
        assert_eq!((e.characteristic, e.at), (0x2A29, 2));
        assert!(matches!(&e.kind, DecodeErrorKind::Malformed { what } if what.contains("0xC3")));
        // A multi-byte sequence cut short at the end.
        let e = string(0x2A24, &[b'x', 0xE2, 0x82]).unwrap_err();
        assert_eq!(e.at, 1);
        let e = string(0x2A24, &[0xFF]).unwrap_err();
        assert_eq!(e.at, 0);
    }

    #[test]
    fn other_uuids_are_unsupported() {
        let e = string(0x2A23, b"x").unwrap_err();
        assert_eq!(
            (e.characteristic, e.at, e.kind),
            (0x2A23, 0, DecodeErrorKind::Unsupported)
        );
    }
}
