//! Record Access Control Point (0x2A52): requests hearth writes and the responses it decodes.
//!
//! Used by Glucose (u16 sequence numbers), CGM (u16 time offsets), Pulse Oximeter and Generic
//! Health Sensor (u32 record numbers, combined report 0x07/0x08).

pub use crate::control::{RacpCode, RacpResponse};
use crate::decode::{DecodeError, Decoded, Reader};

/// The characteristic.
pub const UUID: u16 = 0x2A52;

const REPORT: u8 = 0x01;
const DELETE: u8 = 0x02;
const ABORT: u8 = 0x03;
const REPORT_NUMBER: u8 = 0x04;
const NUMBER_RESPONSE: u8 = 0x05;
const RESPONSE_CODE: u8 = 0x06;
const COMBINED_REPORT: u8 = 0x07;
const COMBINED_REPORT_RESPONSE: u8 = 0x08;

const OP_NULL: u8 = 0x00;
const OP_ALL: u8 = 0x01;
const OP_GREATER_OR_EQUAL: u8 = 0x03;
const FILTER_SEQUENCE: u8 = 0x01;

/// Decode an indication of the RACP.
pub fn response(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let mut r = Reader::new(UUID, bytes);
    let opcode = r.u8()?;
    let _operator = r.u8()?;
    let resp = match opcode {
        NUMBER_RESPONSE => {
            let n = if r.remaining() >= 4 {
                r.u32()?
            } else {
                u32::from(r.u16()?)
            };
            RacpResponse::NumberOfRecords(n)
        }
        RESPONSE_CODE => {
            let request = r.u8()?;
            RacpResponse::Response {
                request,
                code: RacpCode::from_u8(r.u8()?),
            }
        }
        COMBINED_REPORT_RESPONSE => RacpResponse::CombinedReport(r.u32()?),
        other => {
            return Err(r.malformed_at(
                0,
                format!(
                    "opcode 0x{other:02X} is not a RACP response (expected 0x05, 0x06 or 0x08)"
                ),
            ));
        }
    };
    Ok(Decoded {
        control: Some(resp),
        ..Decoded::default()
    })
}

/// "Report all stored records".
pub fn report_all() -> Vec<u8> {
    vec![REPORT, OP_ALL]
}

/// "Report stored records with sequence number ≥ `from`" (u16 sequence numbers: GLS).
pub fn report_from_u16(from: u16) -> Vec<u8> {
    let [a, b] = from.to_le_bytes();
    vec![REPORT, OP_GREATER_OR_EQUAL, FILTER_SEQUENCE, a, b]
}

/// "Report number of all stored records".
pub fn report_number_all() -> Vec<u8> {
    vec![REPORT_NUMBER, OP_ALL]
}

/// "Delete all stored records" (only after they are durably committed).
pub fn delete_all() -> Vec<u8> {
    vec![DELETE, OP_ALL]
}

/// "Abort operation".
pub fn abort() -> Vec<u8> {
    vec![ABORT, OP_NULL]
}

/// GHS "combined report" of records with record number ≥ `from` (u32).
pub fn combined_report_from_u32(from: u32) -> Vec<u8> {
    let mut v = vec![COMBINED_REPORT, OP_GREATER_OR_EQUAL, FILTER_SEQUENCE];
    v.extend_from_slice(&from.to_le_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_match_the_reference() {
        assert_eq!(report_all(), [0x01, 0x01]);
        assert_eq!(report_from_u16(0x0102), [0x01, 0x03, 0x01, 0x02, 0x01]);
        assert_eq!(report_number_all(), [0x04, 0x01]);
        assert_eq!(delete_all(), [0x02, 0x01]);
        assert_eq!(abort(), [0x03, 0x00]);
    }

    #[test]
    fn responses_decode() {
        let ok = response(&[0x06, 0x00, 0x01, 0x01])
            .unwrap()
            .control
            .unwrap();
        assert_eq!(
            ok,
            RacpResponse::Response {
                request: 1,
                code: RacpCode::Success
            }
        );
        let none = response(&[0x06, 0x00, 0x01, 0x06])
            .unwrap()
            .control
            .unwrap();
        assert!(matches!(
            none,
            RacpResponse::Response {
                code: RacpCode::NoRecordsFound,
                ..
            }
        ));
        let n = response(&[0x05, 0x00, 0x2C, 0x01])
            .unwrap()
            .control
            .unwrap();
        assert_eq!(n, RacpResponse::NumberOfRecords(300));
        assert!(response(&[0x01, 0x01]).is_err());
        assert!(response(&[0x06]).is_err());
    }
}
