//! What a device's control point answered (the Record Access Control Point, 0x2A52), as a
//! decoded value. Kept apart from its decoder (`profiles/racp.rs`) because [`crate::Decoded`]
//! carries it: the decoders depend on `decode`, and `decode` on this leaf, with no circle
//! between `decode` and a profile (issue 14).

/// RACP response codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RacpCode {
    /// 0x01.
    Success,
    /// 0x02.
    OpcodeNotSupported,
    /// 0x03.
    InvalidOperator,
    /// 0x04.
    OperatorNotSupported,
    /// 0x05.
    InvalidOperand,
    /// 0x06: nothing matched the filter (not an error for an incremental fetch).
    NoRecordsFound,
    /// 0x07.
    AbortUnsuccessful,
    /// 0x08.
    ProcedureNotCompleted,
    /// 0x09.
    OperandNotSupported,
    /// 0x0A.
    ServerBusy,
    /// Any other value.
    Other(u8),
}

impl RacpCode {
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            0x01 => RacpCode::Success,
            0x02 => RacpCode::OpcodeNotSupported,
            0x03 => RacpCode::InvalidOperator,
            0x04 => RacpCode::OperatorNotSupported,
            0x05 => RacpCode::InvalidOperand,
            0x06 => RacpCode::NoRecordsFound,
            0x07 => RacpCode::AbortUnsuccessful,
            0x08 => RacpCode::ProcedureNotCompleted,
            0x09 => RacpCode::OperandNotSupported,
            0x0A => RacpCode::ServerBusy,
            other => RacpCode::Other(other),
        }
    }

    /// Whether a report procedure ended well (success, or nothing newer to report).
    pub fn is_complete(self) -> bool {
        matches!(self, RacpCode::Success | RacpCode::NoRecordsFound)
    }
}

/// A decoded RACP indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RacpResponse {
    /// Answer to "report number of stored records".
    NumberOfRecords(u32),
    /// Answer to a request: which opcode, and how it went.
    Response {
        /// The request's opcode.
        request: u8,
        /// The outcome.
        code: RacpCode,
    },
    /// GHS combined report response: number of records reported.
    CombinedReport(u32),
}
